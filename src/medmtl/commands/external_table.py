"""`medmtl external-table`: render the external-validation table with stats and provenance."""

from __future__ import annotations

import argparse
from pathlib import Path

from medmtl.commands import add_test_options

HELP = """Render results/tables/external.tex (+ .provenance.json) from the status file and the
prediction files `medmtl external` wrote: one row per configured external set (BI-RADS
consistency paper layout), baseline vs proposed Dice, JI, Acc (mean +- sd over seeds) and
Holm-adjusted p values of the paired per-image Wilcoxon tests of exactly these numbers, and a
double dagger where the per-run test holds too (Holm over the whole table). Sets that are not
available keep a row saying so. The tests are also written to STATS (+ .md)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `external-table` subcommand."""
    p = sub.add_parser(
        "external-table", help="render the external-validation table", description=HELP
    )
    add = p.add_argument
    add("--predictions", type=Path, required=True, help="results/predictions/external")
    add_test_options(p)
    add("--stats", type=Path, required=True, help="stats to write: results/stats/external.parquet")
    add("--out", type=Path, required=True, help="results/tables/external.tex")
    add("--label", default="tab:external", help="LaTeX label of the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load status and predictions, test, derive the rows once, write stats, table, provenance."""
    from medmtl.analysis.run_level import seed_level_note
    from medmtl.analysis.stats import compute_stats_across
    from medmtl.analysis.stats_file import stats_metadata, write_stats
    from medmtl.pipeline.external import STATUS_FILE, read_status
    from medmtl.reporting import external_table, provenance
    from medmtl.reporting.table_html import write_html

    status_path = args.predictions / STATUS_FILE
    status = read_status(status_path)
    eval_sets = external_table.load_external_sets(status, args.predictions)
    files = [f for set_files in eval_sets.values() for f in set_files]
    proposed = status["proposed"]
    frame = compute_stats_across(
        eval_sets, proposed, args.alpha, args.n_boot, args.seed, external_table.METRICS
    )
    meta = stats_metadata(files, proposed, args.alpha, args.n_boot, args.seed, "external")
    write_stats(frame, meta, args.stats)
    rows = external_table.derive_rows(eval_sets, frame, status["baseline"], proposed)
    prov_path = provenance.provenance_path(args.out)
    header = external_table.header_comment(status, files, prov_path.name, str(args.out))
    note = seed_level_note(frame, args.alpha)
    caption = external_table.caption(status, files, len(frame), args.alpha, note)
    table_rows = external_table.table_rows(status, rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(external_table.render_table(table_rows, caption, header, args.label))
    document = provenance.build_external_provenance(
        args.out, (status, status_path), eval_sets, rows, (frame, meta, args.stats)
    )
    provenance.write_provenance(prov_path, document)
    missing = [e["name"] for e in status["sets"] if not e["available"]]
    written = f"{args.out}, {write_html(args.out)}, {prov_path}, {args.stats}"
    print(f"wrote {written}; not available: {missing or 'none'}")
    return 0
