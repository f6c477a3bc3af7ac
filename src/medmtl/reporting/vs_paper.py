"""Our Table 4 beside the paper's printed Table 4, as LaTeX and markdown."""

from __future__ import annotations

import math

from medmtl.markdown import markdown_table
from medmtl.model_names import DISPLAY_NAMES
from medmtl.reporting.tables import PLUS_MINUS, Cell, display_name, escape_latex

# Printed values of Table 4 of Bui et al., "Multi-scale Feature Enhancement in Multi-task
# Learning for Medical Image Analysis" (AIIM 2025, doi 10.1016/j.artmed.2025.103338), ISIC 2017,
# in percent; rows "Ours - Sequential/Parallel" are the ResFormer variants. (The paper's text
# credits 78.6 JI / 86.6 DSC to the parallel variant; its table gives them to the sequential.)
PAPER_TABLE4 = {
    "he2020": {"JI": 75.0, "DSC": 84.1, "Acc": 83.2, "Sen": 71.4, "Spe": 87.8},
    "gende2022": {"JI": 75.5, "DSC": 84.4, "Acc": 83.0, "Sen": 66.5, "Spe": 87.0},
    "hervella2022": {"JI": 70.6, "DSC": 80.3, "Acc": 79.3, "Sen": 59.3, "Spe": 89.3},
    "tang2023": {"JI": 73.7, "DSC": 82.4, "Acc": 83.1, "Sen": 74.0, "Spe": 87.7},
    "resformer_sequential": {"JI": 78.6, "DSC": 86.6, "Acc": 84.6, "Sen": 75.7, "Spe": 89.1},
    "resformer_parallel": {"JI": 78.4, "DSC": 86.5, "Acc": 83.6, "Sen": 74.3, "Spe": 88.3},
}


def _vs_paper_rows(cells: list[Cell], latex: bool) -> list[list[str]]:
    """Rows (method, metric, ours, paper, difference of the printed values)."""
    rows = []
    for c in cells:
        paper = PAPER_TABLE4.get(c.model, {}).get(c.metric)
        diff = "--"
        if paper is not None and not math.isnan(c.mean):
            diff = f"{round(c.mean, 1) - paper:+.1f}"  # of the printed values, as a reader checks
            diff = f"${diff}$" if latex else diff
        ours = c.number if latex else c.number.replace(PLUS_MINUS, " ± ")
        name = display_name(c.model) if latex else DISPLAY_NAMES.get(c.model, c.model)
        rows.append([name, c.metric, ours, "--" if paper is None else f"{paper:.1f}", diff])
    return rows


def setting_note(dataset: str, profile: str) -> str:
    """One sentence saying whether our setting is the paper's (ISIC 2017, paper profile)."""
    if (dataset, profile) == ("isic2017", "paper"):
        return "Ours: ISIC 2017 with the paper's protocol (profile paper)."
    return (
        f"Ours: {dataset}, profile {profile}; the paper: ISIC 2017 test set, 224 px, 100 epochs. "
        "The settings differ, so the differences describe the setting, not the reproduction."
    )


def render_vs_paper_tex(cells: list[Cell], header: str, label: str, note: str) -> str:
    """Our mean +- sd beside the paper's printed Table 4 value and the difference (LaTeX);
    `note` (from `setting_note`) ends the caption."""
    lines = [
        header.rstrip("\n"),
        "% paper values: medmtl.reporting.vs_paper.PAPER_TABLE4, the paper's printed Table 4",
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{Our Table 4 values (mean $\pm$ sd over seeds) beside the paper's printed "
        r"Table 4; $\Delta$ = ours $-$ paper, in points. " + escape_latex(note) + "}",
        rf"\label{{{label}}}",
        r"\begin{tabular}{llccc}",
        r"\toprule",
        r"Method & Metric & Ours & Paper & $\Delta$ \\",
    ]
    previous = None
    for row in _vs_paper_rows(cells, latex=True):
        if row[0] != previous:
            lines.append(r"\midrule")
        lines.append(("" if row[0] == previous else row[0]) + " & " + " & ".join(row[1:]) + r" \\")
        previous = row[0]
    return "\n".join([*lines, r"\bottomrule", r"\end{tabular}", r"\end{table}", ""])


def render_vs_paper_md(cells: list[Cell], note: str) -> str:
    """The same comparison as `render_vs_paper_tex`, as markdown."""
    header = ["Method", "Metric", "Ours (mean ± sd)", "Paper", "Δ (ours − paper)"]
    return f"# Table 4: ours vs the paper\n\n{note}\n\n" + markdown_table(
        header, _vs_paper_rows(cells, latex=False)
    )
