"""`medmtl download`: fetch a dataset's released files and verify their sha256 sums."""

from __future__ import annotations

import argparse
from pathlib import Path

PART_CHOICES = ("training", "validation", "test")
DATASETS = ("isic2017", "busi")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `download` parser."""
    p = sub.add_parser(
        "download",
        help="fetch the official archives (or a mirror) and verify their sha256",
        description=(
            "Fetch a dataset's files byte for byte from SOURCE/<name> into OUT, streaming into "
            "<name>.part and renaming only after the sha256 check (http downloads resume a "
            "partial .part). Sums come from src/medmtl/data/checksums/<dataset>.official.sha256 "
            "for the official URL and <dataset>.mirror.sha256 for any other source; a file with "
            "no recorded sum has its sum recorded, a mismatch is an error. Files already in OUT "
            "with the recorded sum are skipped. busi (Dataset_BUSI_with_GT.zip) has no stable "
            "official URL: give its SOURCE. PH2 and UDIAT Dataset B cannot be downloaded (their "
            "licences forbid redistribution): obtain and extract them, then pass the folder to "
            "`medmtl preprocess --raw`."
        ),
    )
    p.add_argument("--dataset", required=True, choices=DATASETS, help="dataset to fetch")
    p.add_argument(
        "--source",
        help="http(s) base URL, file:// URL or local folder (default: the official release URL; "
        "required for busi)",
    )
    p.add_argument("--out", required=True, type=Path, help="destination folder")
    p.add_argument(
        "--parts",
        nargs="+",
        choices=PART_CHOICES,
        default=list(PART_CHOICES),
        help="isic2017 only: official parts to fetch (default: all; the offline mirror has "
        "training and validation only)",
    )
    p.add_argument(
        "--checksums",
        type=Path,
        help="sha256sum-format file to verify against and record into (default: by source, "
        "see above)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fetch and verify; return 0 (errors raise `UserError`)."""
    from medmtl.data import busi, download, isic2017
    from medmtl.errors import UserError

    if args.dataset == "busi":
        if not args.source:
            raise UserError(
                f"busi: no official download URL is recorded ({busi.ARCHIVE} is published on a "
                "university page and re-posted on Kaggle); pass --source with a folder, file:// "
                f"or http(s) URL holding {busi.ARCHIVE} (the offline mirror: "
                "../shared/data/mirror/busi); a copy other than the mirror needs --checksums"
            )
        source, kind, names = args.source, "mirror", [busi.ARCHIVE]
    else:
        source = args.source or isic2017.OFFICIAL_URL
        kind = download.source_kind(source, isic2017.OFFICIAL_URL)
        names = isic2017.archive_names(args.parts)
    checksum_file = args.checksums or download.default_checksum_file(args.dataset, kind)
    download.fetch(source, args.out, names, checksum_file)
    print(f"{len(names)} files in {args.out} match {checksum_file}")
    return 0
