"""`medmtl download`: fetch a dataset's released files and verify their sha256 sums."""

from __future__ import annotations

import argparse
from pathlib import Path

PART_CHOICES = ("training", "validation", "test")


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
            "with the recorded sum are skipped."
        ),
    )
    p.add_argument("--dataset", required=True, choices=["isic2017"], help="dataset to fetch")
    p.add_argument(
        "--source",
        help="http(s) base URL, file:// URL or local folder (default: the official release URL)",
    )
    p.add_argument("--out", required=True, type=Path, help="destination folder")
    p.add_argument(
        "--parts",
        nargs="+",
        choices=PART_CHOICES,
        default=list(PART_CHOICES),
        help="official parts to fetch (default: all; the offline mirror has training and "
        "validation only)",
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
    from medmtl.data import download, isic2017

    source = args.source or isic2017.OFFICIAL_URL
    kind = download.source_kind(source, isic2017.OFFICIAL_URL)
    checksum_file = args.checksums or download.default_checksum_file(args.dataset, kind)
    names = isic2017.archive_names(args.parts)
    download.fetch(source, args.out, names, checksum_file)
    print(f"{len(names)} files in {args.out} match {checksum_file}")
    return 0
