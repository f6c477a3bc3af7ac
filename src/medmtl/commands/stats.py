"""`medmtl stats`: paired tests of every model against a reference, and ranking stability."""

from __future__ import annotations

import argparse
from pathlib import Path

from medmtl.commands import add_test_options

HELP = """Test every model against REFERENCE on the marked metrics of the tasks both have (JI,
DSC for segmentation, Acc for classification: Table 4's; MAE, the per-case absolute errors, for
regression) from the prediction files, at
two levels (per image: Wilcoxon on seed-mean per-image values; per training run: exact
permutation test of the per-run values, with a two-level bootstrap CI and seed-pair sign
consistency; Holm over the table at each level), written to OUT (+ .md). With --ranks and
--pairwise, also the ranking stability of all models: bootstrap rank distributions with
Kendall's tau (RANKS, + .md) and every pair of models tested as above, Holm per metric, with
significance maps (PAIRWISE, + .md)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `stats` subcommand."""
    parser = sub.add_parser(
        "stats", help="paired tests vs a reference model, ranking stability", description=HELP
    )
    add = parser.add_argument
    add("--predictions", type=Path, required=True, help="results/predictions/<eval_set>")
    add(
        "--params",
        type=Path,
        nargs="+",
        help="read only the models x seeds of these params files (params.yaml, experiment)",
    )
    add("--reference", required=True, help="registry name of the reference model")
    add_test_options(parser)
    add("--out", type=Path, required=True, help="results/stats/<eval_set>.parquet")
    add("--ranks", type=Path, help="results/stats/<eval_set>_ranks.parquet")
    add("--pairwise", type=Path, help="results/stats/<eval_set>_pairwise.parquet")
    add("--n-rank-boot", type=int, default=1000, help="bootstrap samples of the ranking")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compute the stats frame (and the ranking files) and write them with markdown beside."""
    from medmtl.analysis.ranking import pairwise_tests, rank_samples, write_ranking
    from medmtl.analysis.stats import compute_stats
    from medmtl.analysis.stats_file import stats_metadata, write_stats
    from medmtl.errors import UserError
    from medmtl.evaluation.predictions import load_eval_set
    from medmtl.pipeline.params import load_params

    if (args.ranks is None) != (args.pairwise is None):
        raise UserError("--ranks and --pairwise go together")
    params = load_params(args.params) if args.params else {}
    files = load_eval_set(args.predictions, params.get("models"), params.get("seeds"))
    meta = stats_metadata(files, args.reference, args.alpha, args.n_boot, args.seed)
    frame = compute_stats(files, args.reference, args.alpha, args.n_boot, args.seed)
    write_stats(frame, meta, args.out)
    written = [args.out, args.out.with_suffix(".md")]
    if args.ranks:
        ranks = rank_samples(files, args.n_rank_boot, args.seed)
        pairs = pairwise_tests(files, args.alpha, args.n_boot, args.seed)
        write_ranking(
            ranks, pairs, {**meta, "n_rank_boot": args.n_rank_boot}, (args.ranks, args.pairwise)
        )
        written += [args.ranks, args.pairwise]
    print(f"wrote {', '.join(map(str, written))} ({len(frame)} comparisons)")
    return 0
