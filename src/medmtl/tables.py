"""LaTeX (and markdown) rendering of Table 4: formats summaries, computes no metric.

Layout as the paper's Table 4 (Sec. 5.1): `Method | JI DSC | Acc Sen Spe` under the headers
Segmentation / Classification; booktabs rules; best value per column in red and second best
in blue (xcolor), ranked on the rendered (rounded) means, ties sharing a colour. A `Layout`
says which rows, columns, groups and highlights a table has: the ablation tables (Tables 8
and 9, `medmtl.ablation`) are drawn by the same code with their own layout. Each cell is
mean +- sd over seeds, sd the sample standard deviation (ddof=1) of the per-seed summaries
`metrics.summarize` returns (a single seed shows the mean only). A mark comes from a test of
the number in its cell (`stats.py`, same metric, same seeds): a dagger where the per-image
paired test is significant at the Holm-adjusted threshold, a double dagger after it where the
per-run test holds too. Columns without a test (Sen, Spe) carry no mark.
`parse_table` reads the rendered cells back for `medmtl audit`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medmtl import metrics
from medmtl.errors import UserError
from medmtl.predictions import PredictionFile, group_by_model

# Registry name -> row label, in the row order of the paper's Table 4.
DISPLAY_NAMES = {
    "he2020": "He et al.",
    "gende2022": "Gende et al.",
    "hervella2022": "Hervella et al.",
    "tang2023": "Tang et al.",
    "resformer_sequential": "ResFormer - Sequential",
    "resformer_parallel": "ResFormer - Parallel",
    "resunet": "Residual U-Net",
}
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
TABLE_METRICS = ("JI", "DSC", "Acc", "Sen", "Spe")
MARK = r"$^\dagger$"  # per-image paired test significant
SEED_MARK = r"$^\ddagger$"  # ... and the per-run test too
PLUS_MINUS = r" $\pm$ "
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def escape_latex(text: str) -> str:
    """Escape LaTeX special characters so `text` prints verbatim."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def display_name(model: str) -> str:
    """LaTeX row label of a registry name; unknown names verbatim, escaped."""
    return escape_latex(DISPLAY_NAMES.get(model, model))


def model_order(models: Iterable[str]) -> list[str]:
    """Models in the paper's row order, unknown names after them, alphabetically."""
    known = list(DISPLAY_NAMES)
    return sorted(models, key=lambda m: (known.index(m) if m in known else len(known), m))


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table, cells taken verbatim."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def seed_summaries(files: list[PredictionFile]) -> dict[str, list[dict[str, float]]]:
    """`metrics.summarize` of every file, per model in table order, seeds ascending."""
    groups = group_by_model(files)
    return {
        model: [metrics.summarize(f.frame, f.meta["class_names"]) for f in groups[model]]
        for model in model_order(groups)
    }


@dataclass(frozen=True)
class Layout:
    """Rows, columns and highlights of a results table (Table 4 by default).

    Attributes:
        rows: Model (run name) -> LaTeX row label, in row order; labels are unique.
        metrics: The columns, in `TABLE_METRICS` order.
        groups: Models ranked against each other for the highlights and ruled off from the
            next group; default: all rows, one group.
        palette: Highlight of the best, second best, ... rounded mean of a group, per column:
            xcolor names, or "bold".
        scored: Metrics a model is scored on, when not all (others print "--"): a model
            trained for one task has no score for the other.
    """

    rows: dict[str, str]
    metrics: tuple[str, ...] = TABLE_METRICS
    groups: tuple[tuple[str, ...], ...] = ()
    palette: tuple[str, ...] = ("red", "blue")
    scored: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def ranked_groups(self) -> tuple[tuple[str, ...], ...]:
        """The groups, or one group of every row."""
        return self.groups or (tuple(self.rows),)

    def to_json(self) -> dict:
        """The layout as JSON-ready values (stored in the table's provenance)."""
        return {
            "rows": self.rows,
            "metrics": list(self.metrics),
            "groups": [list(g) for g in self.ranked_groups()],
            "palette": list(self.palette),
            "scored": {model: list(m) for model, m in self.scored.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Layout:
        """Inverse of `to_json`."""
        return cls(
            rows=dict(data["rows"]),
            metrics=tuple(data["metrics"]),
            groups=tuple(tuple(g) for g in data["groups"]),
            palette=tuple(data["palette"]),
            scored={model: tuple(m) for model, m in data["scored"].items()},
        )


def table4_layout(models: Iterable[str]) -> Layout:
    """Table 4: every model a row in the paper's order, all metrics, red/blue over all rows."""
    return Layout(rows={model: display_name(model) for model in model_order(models)})


def highlight(colour: str, text: str) -> str:
    """`text` in an xcolor colour, or in bold for "bold"."""
    return rf"\textbf{{{text}}}" if colour == "bold" else rf"\textcolor{{{colour}}}{{{text}}}"


@dataclass(frozen=True)
class Cell:
    """One rendered number of the table: a model's metric over its seeds, with its marks."""

    model: str
    metric: str
    mean: float
    sd: float
    n_seeds: int
    colour: str | None
    significant: bool
    seed_significant: bool = False

    @property
    def number(self) -> str:
        """Mean +- sd as LaTeX, one decimal as the paper; '--' for a NaN mean."""
        if math.isnan(self.mean):
            return "--"
        sd = "" if math.isnan(self.sd) else f"{PLUS_MINUS}{self.sd:.1f}"
        return f"{self.mean:.1f}{sd}"

    @property
    def rendered(self) -> str:
        """The cell exactly as written in the `.tex`."""
        body = highlight(self.colour, self.number) if self.colour else self.number
        return (
            body + (MARK if self.significant else "") + (SEED_MARK if self.seed_significant else "")
        )


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample sd (ddof=1; NaN for one value) of the per-seed values."""
    array = np.asarray(values, float)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else float("nan")


def _colours(means: Mapping[str, float], palette: Sequence[str]) -> dict[str, str]:
    """`palette[0]` for the best rounded mean, `palette[1]` for the second best, ... (higher
    is better; ties share)."""
    rounded = {m: round(v, 1) for m, v in means.items() if not math.isnan(v)}
    ranked = sorted(set(rounded.values()), reverse=True)
    by_value = dict(zip(ranked, palette, strict=False))
    return {m: by_value[v] for m, v in rounded.items() if v in by_value}


def _marked(stats: pd.DataFrame | None, flag: str) -> set[tuple[str, str]]:
    """(model, metric) of the stats rows whose `flag` column is true."""
    if stats is None:
        return set()
    hits = stats[stats[flag].astype(bool)]
    return set(zip(hits["model"], hits["metric"], strict=True))


def derive_cells(
    summaries: Mapping[str, list[dict[str, float]]],
    stats: pd.DataFrame | None,
    layout: Layout | None = None,
) -> list[Cell]:
    """Table cells (row-major, in the layout's column order) from per-seed summaries and tests.

    Args:
        summaries: Per model, one `metrics.summarize` dict per seed (`seed_summaries`).
        stats: The stats frame of this eval set (`stats.compute_stats`); None leaves every
            cell unmarked.
        layout: Rows, columns and highlights; default `table4_layout` of the summaries' models.
    """
    layout = layout or table4_layout(summaries)
    marked, seed_marked = _marked(stats, "significant"), _marked(stats, "seed_significant")
    rows = [
        model for model in layout.rows if model in summaries
    ]  # all, unless an audit lacks files
    values = {
        (model, metric): (
            mean_sd([seed[metric] for seed in summaries[model]])
            if metric in layout.scored.get(model, layout.metrics)
            else (math.nan, math.nan)
        )
        for model in rows
        for metric in layout.metrics
    }
    colours = {
        (model, metric): colour
        for group in layout.ranked_groups()
        for metric in layout.metrics
        for model, colour in _colours(
            {model: values[model, metric][0] for model in group if model in summaries},
            layout.palette,
        ).items()
    }
    return [
        Cell(
            model,
            metric,
            *values[model, metric],
            n_seeds=len(summaries[model]),
            colour=colours.get((model, metric)),
            significant=(model, metric) in marked,
            seed_significant=(model, metric) in seed_marked,
        )
        for model in rows
        for metric in layout.metrics
    ]


def seed_count(cells: list[Cell]) -> str:
    """How many seeds the cells average: "5", or a range "3--5" when rows differ."""
    counts = sorted({c.n_seeds for c in cells})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}--{counts[-1]}"


RECIPE = (
    "Every method was trained with the same recipe, ResFormer's (paper Sec.~4: AdamW, lr 0.003, "
    "0.25 weighted cross-entropy + 1.0 Dice, random initialisation; size, width and epochs of "
    "the profile), not with each baseline paper's own, which may favour the ResFormer rows."
)


def marks_sentence(against: str, alpha: float, seed_note: str, tested: str) -> str:
    """What the two marks mean (each unit of inference in one sentence) and, from
    `run_level.seed_level_note`, when the runs are too few for the second."""
    return (
        f"{MARK}: differs from {against} at Holm-adjusted $p < {alpha:g}$ in a paired Wilcoxon "
        f"signed-rank test over test images ({tested}; per-image values averaged over seeds), "
        "which takes the trained networks as fixed. "
        f"{SEED_MARK}: the difference also exceeds run-to-run training variation, by an exact "
        "permutation test over the training runs of the per-run values (Holm-adjusted $p < "
        f"{alpha:g}$), which takes the test images as fixed. "
        + (f"{seed_note} " if seed_note else "")
    ).rstrip()


def caption(
    files: list[PredictionFile],
    cells: list[Cell],
    reference: str,
    alpha: float,
    policy: str,
    seed_note: str,
) -> str:
    """Caption naming dataset, split policy, profile, seeds, the common training recipe, alpha
    and the marks' meaning.

    Args:
        files: The prediction files (dataset, eval set, subset, profile come from them).
        cells: The table's cells (for the number of seeds).
        reference: Registry name of the reference model of the tests.
        alpha: Threshold on the Holm-adjusted p values.
        policy: The split file's one-sentence policy.
        seed_note: `run_level.seed_level_note` of the table's tests ("" when the runs suffice).
    """
    meta = files[0].meta
    return (
        f"Segmentation and classification performance on {escape_latex(meta['dataset'])} "
        f"(eval set {escape_latex(meta['eval_set'])}, subset {escape_latex(meta['subset'])}), "
        f"mean $\\pm$ sd over {seed_count(cells)} seeds; profile "
        f"{escape_latex(meta['profile'])}; split: {escape_latex(policy)} {RECIPE} "
        "JI, DSC: per-image mean at the model input size over images with non-empty ground "
        "truth; Acc, Sen, Spe: micro-averaged one-vs-rest with a 0.5 threshold per class "
        "(paper Sec.~4). Best in \\textcolor{red}{red}, second best in \\textcolor{blue}{blue}. "
        + marks_sentence(
            display_name(reference),
            alpha,
            seed_note,
            "JI, DSC: per-image values; Acc: per-image share of right one-vs-rest decisions; "
            "Sen, Spe untested",
        )
    )


def header_comment(
    files: list[PredictionFile], provenance_name: str, tex_name: str, command: str = "medmtl table"
) -> str:
    """Comment block opening a generated `.tex`: commit(s), data hash, provenance file."""
    commits = sorted({f.meta["git_commit"] for f in files})
    dirty = any(f.meta["git_dirty"] for f in files)
    return (
        f"% Generated by `{command}`; do not edit by hand.\n"
        f"% git commit(s) of the runs: {', '.join(commits)} (dirty work tree: {dirty})\n"
        f"% processed data sha256: {files[0].meta['data_sha256']}\n"
        f"% split file sha256: {files[0].meta['split_sha256']}\n"
        f"% provenance: {provenance_name}\n"
        f"% re-derive every cell: medmtl audit {tex_name}\n"
    )


SEGMENTATION_METRICS = ("JI", "DSC")


def _column_heads(metrics: Sequence[str]) -> list[str]:
    """The two header lines over `metrics`: task spans (Segmentation, Classification), then
    the metric names."""
    spans, rules, column = [], [], 2
    for task, members in (
        ("Segmentation", [m for m in metrics if m in SEGMENTATION_METRICS]),
        ("Classification", [m for m in metrics if m not in SEGMENTATION_METRICS]),
    ):
        if members:
            spans.append(rf"\multicolumn{{{len(members)}}}{{c}}{{{task}}}")
            rules.append(rf"\cmidrule(lr){{{column}-{column + len(members) - 1}}}")
            column += len(members)
    return [
        "Method & " + " & ".join(spans) + r" \\",
        "".join(rules),
        " & " + " & ".join(metrics) + r" \\",
    ]


def render_table(
    cells: list[Cell],
    caption_text: str,
    header: str,
    label: str,
    layout: Layout | None = None,
    title: str = "Segmentation and classification performance",
) -> str:
    """The table's `.tex` (needs booktabs and xcolor): Table 4 by default; `title` is the
    short caption (list of tables)."""
    layout = layout or table4_layout(dict.fromkeys(c.model for c in cells))
    rendered = {(c.model, c.metric): c.rendered for c in cells}
    rows = []
    for number, group in enumerate(layout.ranked_groups()):
        rows += [r"\midrule"] if number else []
        for model in group:
            values = [rendered[model, metric] for metric in layout.metrics]
            rows.append(f"{layout.rows[model]} & " + " & ".join(values) + r" \\")
    return "\n".join(
        [
            header.rstrip("\n"),
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption[{title}]{{{caption_text}}}",
            rf"\label{{{label}}}",
            rf"\begin{{tabular}}{{l{'c' * len(layout.metrics)}}}",
            r"\toprule",
            *_column_heads(layout.metrics),
            r"\midrule",
            *rows,
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{table}",
            "",
        ]
    )


def parse_table(tex: str) -> dict[str, list[str]]:
    """Row label -> cell strings of a table written by `render_table`.

    Raises:
        UserError: the text has no `\\midrule ... \\bottomrule` body.
    """
    body = re.search(r"\\midrule\n(.*?)\\bottomrule", tex, re.S)
    if body is None:
        raise UserError("no \\midrule ... \\bottomrule block: not a medmtl table")
    rows = {}
    for line in body.group(1).splitlines():
        if " & " not in line:  # a rule between groups
            continue
        fields = [f.strip() for f in line.strip().removesuffix(r"\\").split(" & ")]
        rows[fields[0]] = fields[1:]
    return rows


_HIGHLIGHTED = re.compile(r"\\(?:textcolor\{(\w+)\}|text(bf))\{(.*)\}")


def _unmarked(rendered: str) -> str:
    return rendered.replace(MARK, "").replace(SEED_MARK, "")


def cell_number(rendered: str) -> str:
    """The number part of a rendered cell, without highlight and marks."""
    highlighted = _HIGHLIGHTED.fullmatch(_unmarked(rendered))
    return highlighted.group(3) if highlighted else _unmarked(rendered)


def plain_cell(rendered: str) -> str:
    """A rendered cell in plain text for reports, e.g. '78.6 ± 0.4 †‡ [red]'."""
    highlighted = _HIGHLIGHTED.fullmatch(_unmarked(rendered))
    text = cell_number(rendered).replace(PLUS_MINUS, " ± ")
    marks = ("†" if MARK in rendered else "") + ("‡" if SEED_MARK in rendered else "")
    colour = highlighted and ("bold" if highlighted.group(2) else highlighted.group(1))
    return text + (f" {marks}" if marks else "") + (f" [{colour}]" if colour else "")


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
        "% paper values: medmtl.tables.PAPER_TABLE4, the paper's printed Table 4",
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
