"""The external-validation table `results/tables/external.tex`: formats, computes no metric.

Layout of the BI-RADS consistency paper's external validation (arXiv:2511.15968, abstract:
"Dice coefficient=0.81 vs 0.59 ... p<0.001" per external dataset): one row per external set,
and for Dice, JI and Acc the baseline and the proposed model side by side with the p value of
their paired test. Values are mean +- sd over seeds of the per-seed summaries
(`metrics.summarize`: Dice/JI per-image at the model input size, Acc = accuracy of the argmax
class, `Acc3`, over the cases whose class the model can predict). p: Holm-adjusted over all
comparisons of the table (`stats.compute_stats_across`), the per-image paired Wilcoxon test of
exactly these numbers (per-image values averaged over seeds); a double dagger after it where
the per-run test holds too. A configured set that is not available keeps its row, spanning the
columns with "not available: <reason>", and the caption names it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from medmtl.errors import UserError
from medmtl.evaluation.predictions import PredictionFile, load_eval_set
from medmtl.reporting import tables

METRICS = ("DSC", "JI", "Acc3")  # summary keys, also the tested metrics of `stats`
HEADERS = {"DSC": "Dice", "JI": "JI", "Acc3": "Acc"}
ROLES = ("baseline", "proposed")
COLUMNS = ("n", *(f"{m}/{part}" for m in METRICS for part in (*ROLES, "p")))


def format_p(p: float) -> str:
    """A p value as printed: three decimals, `$<$0.001` below 0.001, `--` for none."""
    if math.isnan(p):
        return "--"
    return "$<$0.001" if p < 0.001 else f"{p:.3f}"


@dataclass(frozen=True)
class ExternalRow:
    """The row of one available external set: case count, cells and Holm-adjusted p."""

    eval_set: str
    n_cases: int
    cells: dict[str, tables.Cell]  # "<metric>/<role>" -> mean +- sd over seeds
    p_holm: dict[str, float]  # metric -> p (NaN: no test, e.g. not re-derived)
    seed_significant: dict[str, bool]  # metric -> the per-run test holds too

    def rendered(self) -> list[str]:
        """The row's cells as written in the `.tex`, in `COLUMNS` order."""
        values = [str(self.n_cases)]
        for metric in METRICS:
            values += [self.cells[f"{metric}/{role}"].number for role in ROLES]
            seed_mark = tables.SEED_MARK if self.seed_significant[metric] else ""
            values.append(format_p(self.p_holm[metric]) + seed_mark)
        return values


@dataclass(frozen=True)
class MissingRow:
    """The row of a configured external set that is not available."""

    eval_set: str
    reason: str

    def rendered(self) -> list[str]:
        """One cell spanning the value columns."""
        text = tables.escape_latex(f"not available: {self.reason}")
        return [rf"\multicolumn{{{len(COLUMNS)}}}{{l}}{{{text}}}"]


def load_external_sets(
    status: Mapping[str, Any], directory: Path
) -> dict[str, list[PredictionFile]]:
    """The baseline and proposed files of every available set of a status file, by set.

    Raises:
        UserError: files missing or inconsistent, or made from other data than the status
            file records.
    """
    models = [status["baseline"], status["proposed"]]
    eval_sets = {}
    for entry in status["sets"]:
        if not entry["available"]:
            continue
        files = load_eval_set(directory / entry["name"], models, status["seeds"])
        stale = [f.path for f in files if f.meta["data_sha256"] != entry["data_sha256"]]
        if stale:
            raise UserError(f"{stale[0]}: made from other data than the status file records")
        eval_sets[entry["name"]] = files
    return eval_sets


def derive_rows(
    eval_sets: Mapping[str, list[PredictionFile]],
    stats: pd.DataFrame | None,
    baseline: str,
    proposed: str,
) -> dict[str, ExternalRow]:
    """Rows of the available sets from their prediction files and the table's stats.

    Args:
        eval_sets: Set name -> its baseline and proposed files (`load_external_sets`).
        stats: `stats.compute_stats_across` of these files with reference `proposed`; None
            leaves every p as NaN.
        baseline, proposed: Registry names of the two models.
    """
    rows = {}
    for name, files in eval_sets.items():
        summaries = tables.seed_summaries(files)
        cells = {}
        for metric in METRICS:
            for role, model in zip(ROLES, (baseline, proposed), strict=True):
                runs = summaries[model]
                mean, sd = tables.mean_sd([seed[metric] for seed in runs])
                cells[f"{metric}/{role}"] = tables.Cell(
                    model, metric, mean, sd, len(runs), colour=None, significant=False
                )
        tests = {metric: _test(stats, name, baseline, metric) for metric in METRICS}
        p_holm = {metric: float(test["p_holm"]) for metric, test in tests.items()}
        seed = {metric: bool(test["seed_significant"]) for metric, test in tests.items()}
        rows[name] = ExternalRow(name, len(files[0].frame), cells, p_holm, seed)
    return rows


_NO_TEST = {"p_holm": float("nan"), "seed_significant": False}


def _test(stats: pd.DataFrame | None, eval_set: str, model: str, metric: str) -> Mapping:
    """The stats row of one comparison, or `_NO_TEST`."""
    if stats is None:
        return _NO_TEST
    hit = stats[
        (stats["eval_set"] == eval_set) & (stats["model"] == model) & (stats["metric"] == metric)
    ]
    return hit.iloc[0] if len(hit) else _NO_TEST


def table_rows(
    status: Mapping[str, Any], rows: Mapping[str, ExternalRow]
) -> list[ExternalRow | MissingRow]:
    """All configured sets in configuration order: available rows and missing ones."""
    return [
        rows[entry["name"]] if entry["available"] else MissingRow(entry["name"], entry["reason"])
        for entry in status["sets"]
    ]


def _label_maps(status: Mapping[str, Any]) -> str:
    esc = tables.escape_latex
    maps = [
        f"{esc(entry['name'])}: "
        + ", ".join(f"{esc(c)} $\\to$ {esc(t or '(none)')}" for c, t in entry["label_map"].items())
        for entry in status["sets"]
    ]
    return "; ".join(maps) or "none"


def _unmapped(status: Mapping[str, Any]) -> str:
    counts = [
        f"{entry['name']}: " + ", ".join(f"{c} {n}" for c, n in entry["unmapped_labels"].items())
        for entry in status["sets"]
        if entry["available"] and entry["unmapped_labels"]
    ]
    return tables.escape_latex("; ".join(counts) or "none")


def caption(
    status: Mapping[str, Any],
    files: Sequence[PredictionFile],
    n_tests: int,
    alpha: float,
    seed_note: str,
) -> str:
    """Caption: protocol, models, training set, metrics, tests, label maps, unmapped cases
    and the sets that are not available; `seed_note` as in `table_tex.caption`."""
    names = {role: tables.display_name(status[role]) for role in ROLES}
    seeds = f"{len(status['seeds'])} seed{'s' if len(status['seeds']) > 1 else ''}"
    profile = tables.escape_latex(files[0].meta["profile"]) if files else "--"
    missing = [e["name"] for e in status["sets"] if not e["available"]]
    return (
        f"External validation without fine-tuning: baseline {names['baseline']} vs proposed "
        f"{names['proposed']}, trained on {tables.escape_latex(status['train_dataset'])} "
        f"(profile {profile}, {seeds}), evaluated on every case of each external set "
        "preprocessed as the training data; mean $\\pm$ sd over seeds. Dice, JI: per-image "
        "mean at the model input size over images with non-empty ground truth; Acc: accuracy "
        "of the argmax class. $p$: Holm-adjusted over the table's "
        f"{n_tests} comparisons, paired Wilcoxon signed-rank over test images of the printed "
        "quantities (per-image Dice, JI and argmax correctness, averaged over seeds), which "
        f"takes the trained networks as fixed; $\\alpha = {alpha:g}$. {tables.SEED_MARK}: the "
        "difference also exceeds run-to-run training variation (exact permutation test over "
        f"the training runs, Holm-adjusted $p < {alpha:g}$). "
        + (f"{seed_note} " if seed_note else "")
        + "Label maps (external class $\\to$ training class): "
        f"{_label_maps(status)}. Cases of classes the model cannot predict (in Dice and JI, "
        f"not in Acc and its test): {_unmapped(status)}. Not available (row says why): "
        f"{tables.escape_latex(', '.join(missing) or 'none')}."
    )


def header_comment(
    status: Mapping[str, Any], files: Sequence[PredictionFile], provenance_name: str, tex: str
) -> str:
    """Comment block opening the `.tex`: commits, data hashes, provenance file."""
    commits = sorted({f.meta["git_commit"] for f in files}) or ["--"]
    dirty = any(f.meta["git_dirty"] for f in files)
    data = ", ".join(
        f"{e['name']} {e['data_sha256'] if e['available'] else 'not available'}"
        for e in status["sets"]
    )
    splits = sorted({f.meta["split_sha256"] for f in files}) or ["--"]
    return (
        "% Generated by `medmtl external-table`; do not edit by hand.\n"
        f"% git commit(s) of the runs: {', '.join(commits)} (dirty work tree: {dirty})\n"
        f"% training split sha256: {', '.join(splits)}\n"
        f"% external data sha256: {data or 'no external set configured'}\n"
        f"% provenance: {provenance_name}\n"
        f"% re-derive every cell: medmtl audit {tex}\n"
    )


def render_table(
    rows: Sequence[ExternalRow | MissingRow], caption_text: str, header: str, label: str
) -> str:
    """The external-validation `.tex` (needs booktabs)."""
    groups = " & ".join(rf"\multicolumn{{3}}{{c}}{{{HEADERS[m]}}}" for m in METRICS)
    rules = "".join(rf"\cmidrule(lr){{{3 + 3 * i}-{5 + 3 * i}}}" for i in range(len(METRICS)))
    columns = " & ".join(["Baseline", "Proposed", "$p$"] * len(METRICS))
    body = [
        f"{tables.escape_latex(row.eval_set)} & " + " & ".join(row.rendered()) + r" \\"
        for row in rows
    ]
    return "\n".join(
        [
            header.rstrip("\n"),
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption[External validation]{{{caption_text}}}",
            rf"\label{{{label}}}",
            r"\begin{tabular}{lr" + "ccc" * len(METRICS) + "}",
            r"\toprule",
            rf" & & {groups} \\",
            rules,
            rf"External set & $n$ & {columns} \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{table}",
            "",
        ]
    )
