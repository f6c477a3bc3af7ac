"""The cells of a results table (Table 4, the ablation tables): formats summaries, computes no
metric; `medmtl.reporting.table_tex` writes them as LaTeX and reads them back,
`medmtl.reporting.vs_paper` sets them beside the paper's printed values.

Layout as the paper's Table 4 (Sec. 5.1): `Method | JI DSC | Acc Sen Spe` under the headers
Segmentation / Classification; booktabs rules; best value per column in red and second best
in blue (xcolor), ranked on the rendered (rounded) means, ties sharing a colour. A `Layout`
says which rows, columns, groups and highlights a table has: the ablation tables (Tables 8
and 9, `medmtl.pipeline.ablation`) are drawn by the same code with their own layout. Each cell is
mean +- sd over seeds, sd the sample standard deviation (ddof=1) of the per-seed summaries
`metrics.summarize` returns (a single seed shows the mean only). A mark comes from a test of
the number in its cell (`stats.py`, same metric, same seeds): a dagger where the per-image
paired test is significant at the Holm-adjusted threshold, a double dagger after it where the
per-run test holds too. Columns without a test (Sen, Spe) carry no mark.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medmtl.evaluation import metrics
from medmtl.evaluation.predictions import PredictionFile, group_by_model
from medmtl.model_names import DISPLAY_NAMES, model_order

TABLE_METRICS = ("JI", "DSC", "Acc", "Sen", "Spe")
TASK_METRICS = {
    "seg": ("JI", "DSC"),
    "cls": ("Acc", "Sen", "Spe"),
    "reg": metrics.REGRESSION_METRICS,
}
DECIMALS = {"MAE": 2, "RMSE": 2, "R2": 2, "r": 2}  # regression: sd units, fractions; else 1
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


def seed_summaries(files: list[PredictionFile]) -> dict[str, list[dict[str, float]]]:
    """`metrics.summarize` of every file, per model in table order, seeds ascending."""
    groups = group_by_model(files)
    return {
        model: [
            metrics.summarize(f.frame, f.meta["class_names"], f.meta.get("regression"))
            for f in groups[model]
        ]
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


def task_layout(files: list[PredictionFile]) -> Layout:
    """The main table of an eval set: Table 4 (`table4_layout`) when every run segments and
    classifies and nothing else; otherwise a column group per task any run has (segmentation
    JI, DSC; classification Acc, Sen, Spe; regression MAE, RMSE, R2, r), and "--" where a
    model lacks the task (never a number it did not predict)."""
    groups = group_by_model(files)
    tasks = {model: model_files[0].tasks for model, model_files in groups.items()}
    if all(t == ("seg", "cls") for t in tasks.values()):
        return table4_layout(groups)
    present = [t for t in ("seg", "cls", "reg") if any(t in ts for ts in tasks.values())]
    columns = tuple(m for t in present for m in TASK_METRICS[t])
    scored = {
        model: tuple(m for t in model_tasks for m in TASK_METRICS[t])
        for model, model_tasks in tasks.items()
    }
    rows = {model: display_name(model) for model in model_order(groups)}
    return Layout(rows, columns, scored={m: s for m, s in scored.items() if s != columns})


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
        """Mean +- sd as LaTeX, one decimal as the paper (`DECIMALS` for the regression
        metrics); '--' for a NaN mean."""
        if math.isnan(self.mean):
            return "--"
        places = DECIMALS.get(self.metric, 1)
        sd = "" if math.isnan(self.sd) else f"{PLUS_MINUS}{self.sd:.{places}f}"
        return f"{self.mean:.{places}f}{sd}"

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


def _colours(means: Mapping[str, float], palette: Sequence[str], metric: str) -> dict[str, str]:
    """`palette[0]` for the best mean as rendered, `palette[1]` for the second best, ...
    (higher is better, lower for an error: `metrics.LOWER_IS_BETTER`; ties share)."""
    places = DECIMALS.get(metric, 1)
    rounded = {m: round(v, places) for m, v in means.items() if not math.isnan(v)}
    ranked = sorted(set(rounded.values()), reverse=metric not in metrics.LOWER_IS_BETTER)
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
            metric,
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
