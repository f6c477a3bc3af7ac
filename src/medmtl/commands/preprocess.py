"""`medmtl preprocess`: read a dataset's raw files and write the processed arrays."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `preprocess` parser."""
    p = sub.add_parser(
        "preprocess",
        help="read raw archives and write manifest.parquet + fixed-size arrays",
        description=(
            "Read a dataset straight from its official archives, validate it, and write "
            "manifest.parquet, images.npy (N,S,S,3 uint8, bilinear), masks.npy (N,S,S uint8 "
            "0/1, nearest) and native_masks.npz (native-resolution bool masks) into OUT, "
            "replacing OUT atomically."
        ),
    )
    p.add_argument(
        "--dataset",
        required=True,
        help="dataset reader: isic2017, or synthetic (the output of `medmtl synthesize`)",
    )
    p.add_argument("--raw", required=True, type=Path, help="folder with the raw files")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--size", type=int, help="side S of the square arrays in px")
    size.add_argument(
        "--profile",
        help="take S from a profile's dataset.img_size (e.g. demo: 64, paper: 224)",
    )
    p.set_defaults(func=run)


def profile_image_size(profile: str, dataset: str) -> int:
    """The input size a profile trains `dataset` at (Hydra `dataset.img_size`)."""
    from medmtl.pipeline.config import compose_config

    overrides = [f"profile={profile}", f"dataset={dataset}", "out=-", "data_dir=-", "split_file=-"]
    return int(compose_config(overrides).dataset.img_size)


def run(args: argparse.Namespace) -> int:
    """Preprocess; return 0."""
    from medmtl.data.preprocess import preprocess, read_dataset

    size = args.size or profile_image_size(args.profile, args.dataset)
    cases, class_names = read_dataset(args.dataset, args.raw)
    preprocess(cases, args.out, dataset=args.dataset, class_names=class_names, size=size)
    print(f"wrote {args.out}")
    return 0
