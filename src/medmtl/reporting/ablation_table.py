"""Tables 8 and 9 of the ResFormer paper (section 5.3) on our data: layout, tests, caption.

Rows: for each model of `ablations.models`, one row per variant of the table
(`medmtl.pipeline.ablation.TABLES`), labelled "<model>: <variant>"; a model's rows form a group,
ruled off from the next. The paper has one block per OCT vendor of RETOUCH; we have one dataset,
so one block per model. Cells are Table 4's (`medmtl.reporting.tables`: mean +- sd over seeds of
the same per-seed summaries); a run trained for one task has no score for the other ("--", the
paper's "-"). Bold: the best rounded mean of a group, per column (the paper bolds the best).

Tests: every ablated run against the full run of its model (same seeds, same test cases) on
the tested columns it is scored on (JI, DSC, Acc), at both levels of `medmtl.analysis.stats` (per
image: the dagger; per run as well: the double dagger); the table is one Holm family.
"""

from __future__ import annotations

from medmtl.analysis.stats import TESTED_METRICS, Comparison
from medmtl.evaluation.predictions import PredictionFile
from medmtl.pipeline.ablation import SCORED, AblationTable, run_name
from medmtl.reporting.table_tex import marks_sentence
from medmtl.reporting.tables import Cell, Layout, display_name, escape_latex, seed_count

REFERENCE = "per row: the model's full run (column reference)"


def layout(table: AblationTable, models: list[str]) -> Layout:
    """Rows, groups and bold highlights of `table` over `models` (module docstring)."""
    rows, groups, scored = {}, [], {}
    for model in models:
        group = []
        for ablation, label in table.variants:
            run = run_name(model, ablation)
            rows[run] = f"{display_name(model)}: {label}"
            group.append(run)
            if ablation in SCORED:
                scored[run] = tuple(m for m in table.metrics if m in SCORED[ablation])
        groups.append(tuple(group))
    return Layout(rows, table.metrics, tuple(groups), ("bold",), scored)


def comparisons(table: AblationTable, models: list[str]) -> list[Comparison]:
    """Each ablated run against its model's full run, on what its columns can test."""
    return [
        (
            run_name(model, ablation),
            model,
            tuple(m for m in SCORED.get(ablation, table.metrics) if m in TESTED_METRICS),
        )
        for model in models
        for ablation in table.ablations
    ]


def caption(
    table: AblationTable,
    files: list[PredictionFile],
    cells: list[Cell],
    alpha: float,
    policy: str,
    seed_note: str,
) -> str:
    """Caption: setting (dataset, eval set, profile, seeds, split), variants, marks, tests;
    `seed_note` as in `table_tex.caption`."""
    meta = files[0].meta
    return (
        f"{table.title}, on {escape_latex(meta['dataset'])} (eval set "
        f"{escape_latex(meta['eval_set'])}, subset {escape_latex(meta['subset'])}; the paper: "
        f"RETOUCH), mean $\\pm$ sd over {seed_count(cells)} seeds; profile "
        f"{escape_latex(meta['profile'])}; split: {escape_latex(policy)} {table.note} Metrics as "
        "in Table 4. Bold: best of a model's rows. "
        + marks_sentence("the model's full run", alpha, seed_note, "JI, DSC, Acc as in Table 4")
    )
