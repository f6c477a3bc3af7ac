"""`medmtl ablation-table`: render Table 8 or 9 of the paper with its tests and provenance."""

from __future__ import annotations

import argparse
from pathlib import Path

from medmtl.commands import add_test_options

HELP = """Render an ablation table of the ResFormer paper (section 5.3) from prediction files:
table8 (classification only / segmentation only / both) or table9 (without / with DFE), one
block of rows per model of the params' `ablations.models`, mean +- sd over `seeds`. The full
rows are the Table 4 runs (PREDICTIONS), the ablated ones the ablation runs (ABLATIONS). Each
ablated run is tested against its model's full run on JI, DSC and Acc (per image and per
run, Holm over the table, `medmtl.analysis.stats`); the tests are also written to STATS (+ .md).
Writes OUT and <OUT stem>.provenance.json, which `medmtl audit OUT` re-derives."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `ablation-table` subcommand."""
    from medmtl.pipeline.ablation import TABLES

    p = sub.add_parser("ablation-table", help="render paper Table 8 or 9", description=HELP)
    add = p.add_argument
    add("--table", required=True, choices=sorted(TABLES), help="which ablation table")
    add("--predictions", type=Path, required=True, help="results/predictions/<eval_set>")
    add("--ablations", type=Path, required=True, help="results/ablations/predictions/<eval_set>")
    add("--params", type=Path, nargs="+", required=True, help="params.yaml [experiment file]")
    add("--split", type=Path, required=True, help="split file of the runs")
    add_test_options(p)
    add("--stats", type=Path, required=True, help="results/ablations/stats/<table>.parquet")
    add("--out", type=Path, required=True, help="results/tables/<table>.tex")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load and cross-check inputs, test, derive the cells once, write stats, table, provenance."""
    from medmtl.analysis.run_level import seed_level_note
    from medmtl.analysis.stats import compute_comparisons
    from medmtl.analysis.stats_file import stats_metadata, write_stats
    from medmtl.data.splits import load_run_split
    from medmtl.evaluation.predictions import check_consistent, load_eval_set
    from medmtl.pipeline.ablation import TABLES, run_name
    from medmtl.pipeline.params import load_params, validate_params
    from medmtl.reporting import ablation_table, provenance, table_tex, tables
    from medmtl.reporting.table_html import write_html

    params = load_params(args.params)
    validate_params(params, " + ".join(map(str, args.params)))
    table, models, seeds = TABLES[args.table], params["ablations"]["models"], params["seeds"]
    runs = [run_name(model, ablation) for model in models for ablation in table.ablations]
    files = load_eval_set(args.predictions, models, seeds) + load_eval_set(
        args.ablations, runs, seeds
    )
    check_consistent(files)
    meta = files[0].meta
    splits = load_run_split(args.split, meta["split_sha256"])
    comparisons = ablation_table.comparisons(table, models)
    frame = compute_comparisons(files, comparisons, args.alpha, args.n_boot, args.seed)
    reference = ablation_table.REFERENCE
    stats_meta = stats_metadata(files, reference, args.alpha, args.n_boot, args.seed)
    write_stats(frame, stats_meta, args.stats)
    layout = ablation_table.layout(table, models)
    cells = tables.derive_cells(tables.seed_summaries(files), frame, layout)
    prov_path = provenance.provenance_path(args.out)
    header = table_tex.header_comment(files, prov_path.name, str(args.out), "medmtl ablation-table")
    note = seed_level_note(frame, args.alpha)
    caption = ablation_table.caption(table, files, cells, args.alpha, splits["policy"], note)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    label = f"tab:{table.name}"
    args.out.write_text(table_tex.render_table(cells, caption, header, label, layout, table.title))
    inputs = ((frame, stats_meta, args.stats), (splits, args.split))
    provenance.write_provenance(
        prov_path,
        provenance.build_provenance(args.out, files, cells, *inputs, layout, comparisons),
    )
    written = f"{args.out}, {write_html(args.out)}, {prov_path}, {args.stats}"
    print(f"wrote {written} ({len(frame)} comparisons)")
    return 0
