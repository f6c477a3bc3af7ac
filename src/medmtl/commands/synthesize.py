"""`medmtl synthesize`: write a synthetic dataset in the ISIC 2017 archive layout, or synthetic
multi-phase studies in the dynamic layout."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `synthesize` parser."""
    p = sub.add_parser(
        "synthesize",
        help="write a synthetic dataset (ISIC 2017 layout, or dynamic multi-phase studies)",
        description=(
            "synthetic: write the nine ISIC 2017 files (Training, Validation and Test_v2 data "
            "zips, Part 1 mask zips, Part 3 label csvs) of a synthetic three-class dataset "
            "(nevus, melanoma, seborrheic keratosis; ISIC-like proportions, every class in "
            "every part). dynamic: write subjects with PHASES co-registered 16-bit phases, a "
            "lesion mask and the enhancement-curve parameters as regression targets, in the "
            "layout of medmtl.data.dynamic (medmtl.data.synthetic_dynamic says how). The same "
            "seed gives byte-identical files."
        ),
    )
    p.add_argument("--out", required=True, type=Path, help="destination folder")
    p.add_argument(
        "--dataset", choices=("synthetic", "dynamic"), default="synthetic", help="which kind"
    )
    p.add_argument("--phases", type=int, default=6, help="dynamic: phases per study (default 6)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--n-train", type=int, default=200, help="training cases (default: 200)")
    p.add_argument("--n-val", type=int, default=50, help="validation cases (default: 50)")
    p.add_argument("--n-test", type=int, default=100, help="test cases (default: 100)")
    p.add_argument(
        "--size",
        type=int,
        default=128,
        help="image width in px; heights are SIZE or 3/4 SIZE (default: 128)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the synthetic files; return 0."""
    from medmtl.data.synthetic import write_synthetic
    from medmtl.data.synthetic_dynamic import write_dynamic

    if args.dataset == "dynamic":
        write_dynamic(
            args.out, seed=args.seed, n_train=args.n_train, n_val=args.n_val,
            n_test=args.n_test, phases=args.phases, size=args.size,
        )  # fmt: skip
        print(f"wrote synthetic dynamic studies to {args.out}")
        return 0
    write_synthetic(
        args.out,
        seed=args.seed,
        n_train=args.n_train,
        n_val=args.n_val,
        n_test=args.n_test,
        size=args.size,
    )
    print(f"wrote synthetic ISIC 2017 layout to {args.out}")
    return 0
