"""`medmtl table`: render Table 4 (`.tex` + `.provenance.json`) from predictions and stats, or
an experiment's multi-task table when its runs have other tasks (`reporting.task_table`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `table` subcommand."""
    parser = sub.add_parser(
        "table",
        help="render Table 4 (or an experiment's multi-task table) with its provenance file",
        description="Render the main table of an eval set from its prediction files and "
        "stats: Table 4 (JI DSC | Acc Sen Spe) when every run segments and classifies; "
        "otherwise a column group per task any run has (segmentation, classification, "
        "regression: MAE RMSE R2 r), '--' where a model lacks the task.",
    )
    add = parser.add_argument
    add("--predictions", type=Path, required=True, help="results/predictions/<eval_set>")
    add("--params", type=Path, nargs="+", help="read only the models x seeds these list")
    add("--stats", type=Path, required=True, help="results/stats/<eval_set>.parquet")
    add("--split", type=Path, help="split file of the runs (default data/splits/<dataset>.json)")
    add("--out", type=Path, required=True, help="results/tables/<name>.tex")
    add("--vs-paper", type=Path, help="Table 4: also write ours-vs-paper .tex (and .md beside)")
    add("--caption-profile", "--profile", dest="profile", help="check: the runs' profile")
    add("--alpha", type=float, help="check: the alpha the stats file was computed with")
    add("--label", default="tab:table4", help="LaTeX label of the table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load and cross-check inputs, derive the cells once, write table, provenance, comparison."""
    from medmtl.analysis.run_level import seed_level_note
    from medmtl.analysis.stats import reference_comparisons
    from medmtl.analysis.stats_file import check_stats_inputs, read_stats
    from medmtl.data.splits import load_run_split
    from medmtl.errors import UserError
    from medmtl.evaluation.predictions import group_by_model, load_eval_set
    from medmtl.pipeline.params import load_params
    from medmtl.reporting import provenance, table_tex, tables, task_table, vs_paper
    from medmtl.reporting.table_html import write_html

    params = load_params(args.params) if args.params else {}
    files = load_eval_set(args.predictions, params.get("models"), params.get("seeds"))
    meta = files[0].meta
    frame, stats_meta = read_stats(args.stats)
    check_stats_inputs(stats_meta, files, args.stats)
    split_path = args.split or Path("data/splits") / f"{meta['dataset']}.json"
    splits = load_run_split(split_path, meta["split_sha256"])
    if args.profile not in (None, meta["profile"]):
        raise UserError(f"--profile {args.profile}: the runs used profile {meta['profile']}")
    if args.alpha not in (None, stats_meta["alpha"]):
        raise UserError(f"--alpha {args.alpha}: {args.stats} used alpha {stats_meta['alpha']}")
    layout = tables.task_layout(files)
    table4 = layout == tables.table4_layout(group_by_model(files))
    if args.vs_paper and not table4:
        raise UserError("--vs-paper: the runs are not Table 4's (segmentation + classification)")
    cells = tables.derive_cells(tables.seed_summaries(files), frame, layout)
    prov_path = provenance.provenance_path(args.out)
    header = table_tex.header_comment(files, prov_path.name, str(args.out))
    reference, alpha = stats_meta["reference"], stats_meta["alpha"]
    note = seed_level_note(frame, alpha)
    captioned = table_tex if table4 else task_table
    caption = captioned.caption(files, cells, reference, alpha, splits["policy"], note)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    title = {} if table4 else {"title": task_table.TITLE}
    args.out.write_text(table_tex.render_table(cells, caption, header, args.label, layout, **title))
    inputs = ((frame, stats_meta, args.stats), (splits, split_path))
    comparisons = reference_comparisons(files, reference)
    provenance.write_provenance(
        prov_path,
        provenance.build_provenance(args.out, files, cells, *inputs, layout, comparisons),
    )
    written = [args.out, write_html(args.out), prov_path]
    if args.vs_paper:
        note = vs_paper.setting_note(meta["dataset"], meta["profile"])
        vs_tex = vs_paper.render_vs_paper_tex(cells, header, f"{args.label}_vs_paper", note)
        args.vs_paper.parent.mkdir(parents=True, exist_ok=True)
        args.vs_paper.write_text(vs_tex)
        args.vs_paper.with_suffix(".md").write_text(vs_paper.render_vs_paper_md(cells, note))
        written += [args.vs_paper, args.vs_paper.with_suffix(".md")]
    print("wrote " + ", ".join(map(str, written)))
    return 0
