"""`medmtl splits`: write a processed dataset's train/val/test split file, once."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `splits` parser."""
    p = sub.add_parser(
        "splits",
        help="write the train/val/test split json of a processed dataset (once)",
        description=(
            "Make the split from the manifest: the official train/val/test parts when all "
            "three exist; with train/val only, the official validation part becomes test and a "
            "label-stratified random VAL_FRACTION of training becomes validation; with no "
            "official split (subset 'all', e.g. BUSI), label-stratified random TEST_FRACTION "
            "and VAL_FRACTION of all cases become test and validation (whole group_id groups "
            "at a time when the manifest has them). The file is written once: rerunning with "
            "the same result does nothing, a different result is an error (delete the file "
            "deliberately to regenerate)."
        ),
    )
    p.add_argument("--processed", required=True, type=Path, help="processed dataset folder")
    p.add_argument("--out", required=True, type=Path, help="split json file")
    p.add_argument("--seed", type=int, default=12345, help="seed of the draw (default: 12345)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share moved to validation: of training when there is no official test part, of "
        "all cases when there is no official split (default: 0.1)",
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.15,
        help="share of all cases drawn as test when there is no official split (default: 0.15)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Make and write the split; return 0."""
    from medmtl.data.processed import read_manifest
    from medmtl.data.splits import make_splits, write_splits

    manifest, metadata = read_manifest(args.processed)
    splits = make_splits(
        manifest,
        dataset=metadata["dataset"],
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
    )
    written = write_splits(splits, args.out)
    sizes = ", ".join(f"{k} {len(splits[k])}" for k in ("train", "val", "test"))
    print(f"{'wrote' if written else 'unchanged:'} {args.out} ({sizes})")
    print(splits["policy"])
    return 0
