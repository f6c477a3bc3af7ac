"""`medmtl stats`: paired tests of every model against a reference, from prediction files."""

from __future__ import annotations

import argparse
from pathlib import Path

from medmtl.commands import add_test_options


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `stats` subcommand."""
    parser = sub.add_parser("stats", help="paired Wilcoxon/McNemar tests vs a reference model")
    parser.add_argument(
        "--predictions", type=Path, required=True, help="results/predictions/<eval_set>"
    )
    parser.add_argument(
        "--params",
        type=Path,
        nargs="+",
        help="read only the models x seeds of these params files (params.yaml, experiment)",
    )
    parser.add_argument("--reference", required=True, help="registry name of the reference model")
    add_test_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="results/stats/<eval_set>.parquet")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compute the stats frame and write it as parquet plus markdown beside it."""
    from medmtl.predictions import load_eval_set
    from medmtl.stats import compute_stats, stats_metadata, write_stats
    from medmtl.workflow import load_params

    params = load_params(args.params) if args.params else {}
    files = load_eval_set(args.predictions, params.get("models"), params.get("seeds"))
    frame = compute_stats(files, args.reference, args.alpha, args.n_boot, args.seed)
    write_stats(
        frame, stats_metadata(files, args.reference, args.alpha, args.n_boot, args.seed), args.out
    )
    print(f"wrote {args.out} and {args.out.with_suffix('.md')} ({len(frame)} comparisons)")
    return 0
