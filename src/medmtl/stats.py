"""Paired significance tests of each model against a reference model, from prediction files.

Seed policy (the one way seeds enter every test): a model is represented per case by the
mean over its seeds.

- JI, DSC: per-image Jaccard/Dice (x100) at model input size, averaged over the model's seeds
  per case. Paired, two-sided Wilcoxon signed-rank test (`scipy.stats.wilcoxon` on the
  differences model - reference, rounded to 12 decimals so float noise makes no false ranks),
  on the cases both models have; cases with an empty ground truth have no Dice/JI and drop
  out. `zero_method='wilcox'`: zero differences are discarded before ranking (scipy's
  default); scipy picks the exact or the normal-approximation null distribution
  (`method='auto'`). When every difference is zero scipy divides by zero, so that case is
  answered explicitly: statistic 0, p = 1.
- Acc3 (marks the Acc column of Table 4): the seed ensemble per case (mean softmax over seeds,
  argmax = prediction), correctness = prediction == label (x100), exact McNemar test
  (`statsmodels.stats.contingency_tables.mcnemar(table, exact=True)`: binomial test on the
  discordant pairs; statistic = min(b, c)). Cases of a class the model cannot predict
  (`metrics.UNMAPPED_LABEL`, external sets) have no correctness and drop out.

Effect size, one definition for both tests: the matched-pairs rank-biserial correlation
r = (R+ - R-) / (R+ + R-) over the non-zero differences (Kerby 2014). For McNemar's 0/1
differences it equals (b - c) / (b + c) = (OR - 1) / (OR + 1), with b (c) the cases only the
model (only the reference) gets right and OR = b / c the discordant-pair odds ratio; it is
finite when c = 0. No non-zero difference gives r = 0.

Confidence interval: BCa bootstrap 95% CI of the paired mean difference model - reference
(`scipy.stats.bootstrap(..., paired=True, method='BCa')`), `n_boot` resamples, a generator
seeded with `seed` afresh for every comparison, so each CI is reproducible on its own.
Constant differences give the degenerate CI [d, d].

Multiplicity: Holm over all comparisons of one table (`multipletests(method='holm')`,
passed explicitly: statsmodels defaults to Holm-Sidak); significant = p_holm < alpha. A table
over several eval sets (external validation) is one family: `compute_stats_across`.
All means, differences and CIs are in percent (points).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from medmtl import metrics
from medmtl.annotated_parquet import read_annotated, write_annotated
from medmtl.errors import UserError
from medmtl.predictions import PredictionFile, group_by_model, prob_columns
from medmtl.tables import markdown_table, model_order

TESTED_METRICS = ("JI", "DSC", "Acc3")
TEST_OF = {"JI": "wilcoxon", "DSC": "wilcoxon", "Acc3": "mcnemar_exact"}
ZERO_METHOD = "wilcox"
COLUMNS = (
    "eval_set",
    "model",
    "reference",
    "metric",
    "test",
    "n",
    "statistic",
    "p",
    "p_holm",
    "effect_size",
    "ci_low",
    "ci_high",
    "mean_model",
    "mean_reference",
    "significant",
)


def case_scores(files: list[PredictionFile]) -> pd.DataFrame:
    """Per-case scores of one model under the seed policy (module docstring).

    Args:
        files: All seeds of one model (same cases, checked by `check_consistent`).

    Returns:
        Frame indexed by sorted case_id with columns JI, DSC (seed mean of per-image values
        x100, NaN for an empty ground truth) and Acc3 (100 if the seed ensemble is right,
        NaN for an unmapped label).
    """
    frames = [f.frame.set_index("case_id").sort_index() for f in files]
    prob_cols = prob_columns(files[0].meta["class_names"])
    probs = np.mean([fr[prob_cols].to_numpy(float) for fr in frames], axis=0)
    counts = [[fr[c].to_numpy() for c in ("seg_tp", "seg_fp", "seg_fn")] for fr in frames]
    labels = frames[0]["label"].to_numpy()
    correct = 100.0 * (probs.argmax(axis=1) == labels)
    return pd.DataFrame(
        {
            "JI": 100 * np.mean([metrics.jaccard(*c) for c in counts], axis=0),
            "DSC": 100 * np.mean([metrics.dice(*c) for c in counts], axis=0),
            "Acc3": np.where(labels == metrics.UNMAPPED_LABEL, np.nan, correct),
        },
        index=frames[0].index,
    )


def paired_differences(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x - y rounded to 12 decimals, so float noise creates no spurious ranks or ties."""
    return np.round(np.asarray(x, float) - np.asarray(y, float), 12)


def rank_biserial(differences: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of paired differences (module docstring)."""
    d = np.asarray(differences, float)
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    ranks = metrics.average_ranks(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def wilcoxon_test(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two-sided paired Wilcoxon signed-rank test of x - y: (statistic, p).

    All-zero differences are answered explicitly as (0, 1): scipy would divide by zero.
    """
    d = paired_differences(x, y)
    if not d.any():
        return 0.0, 1.0
    result = sps.wilcoxon(d, zero_method=ZERO_METHOD, alternative="two-sided", method="auto")
    return float(result.statistic), float(result.pvalue)


def mcnemar_test(x_correct: np.ndarray, y_correct: np.ndarray) -> tuple[float, float]:
    """Exact McNemar test of paired correctness: (statistic = min(b, c), p).

    Args:
        x_correct, y_correct: Per-case correctness of the two models (truthy = correct).
    """
    x, y = np.asarray(x_correct, bool), np.asarray(y_correct, bool)
    table = [[int((x & y).sum()), int((x & ~y).sum())], [int((~x & y).sum()), int((~x & ~y).sum())]]
    result = mcnemar(table, exact=True)
    return float(result.statistic), float(result.pvalue)


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def paired_mean_ci(
    x: np.ndarray, y: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """BCa bootstrap CI of mean(x - y), resampling cases (pairs); [d, d] for constant d."""
    d = paired_differences(x, y)
    if d.size == 0:
        return float("nan"), float("nan")
    if np.all(d == d[0]):
        return float(d[0]), float(d[0])
    result = sps.bootstrap(
        (np.asarray(x, float), np.asarray(y, float)),
        _mean_difference,
        paired=True,
        vectorized=True,
        n_resamples=n_boot,
        confidence_level=level,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def compare(x: pd.Series, y: pd.Series, metric: str, n_boot: int, seed: int) -> dict[str, Any]:
    """One paired comparison on the cases where both scores exist (all but the Holm columns)."""
    paired = pd.concat([x, y], axis=1, join="inner").dropna().to_numpy(float)
    xv, yv = paired[:, 0], paired[:, 1]
    test = TEST_OF[metric]
    if len(xv) == 0:
        statistic, p = float("nan"), float("nan")
    elif test == "wilcoxon":
        statistic, p = wilcoxon_test(xv, yv)
    else:
        statistic, p = mcnemar_test(xv > 0, yv > 0)
    ci_low, ci_high = paired_mean_ci(xv, yv, n_boot, seed)
    return {
        "metric": metric,
        "test": test,
        "n": len(xv),
        "statistic": statistic,
        "p": p,
        "effect_size": rank_biserial(paired_differences(xv, yv)) if len(xv) else float("nan"),
        "ci_low": ci_low,
        "ci_high": ci_high,
        "mean_model": float(xv.mean()) if len(xv) else float("nan"),
        "mean_reference": float(yv.mean()) if len(yv) else float("nan"),
    }


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p values; NaN entries (no paired cases) stay NaN and do not count."""
    p = np.asarray(p, float)
    adjusted = np.full_like(p, np.nan)
    finite = ~np.isnan(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method="holm")[1]
    return adjusted


def compute_stats(
    files: list[PredictionFile], reference: str, alpha: float, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Compare every model with `reference` on JI, DSC (Wilcoxon) and Acc3 (McNemar).

    Args:
        files: Prediction files of one eval set (`predictions.load_eval_set`).
        reference: Registry name of the reference model.
        alpha: Significance threshold applied to the Holm-adjusted p values.
        n_boot: Bootstrap resamples per CI.
        seed: Seed of the bootstrap generator.

    Returns:
        One row per (model, metric) with the columns `COLUMNS`, models in table order.

    Raises:
        UserError: `reference` has no prediction files.
    """
    return compute_comparisons(files, reference_comparisons(files, reference), alpha, n_boot, seed)


Comparison = tuple[str, str, tuple[str, ...]]  # (model, reference, tested metrics)


def reference_comparisons(files: list[PredictionFile], reference: str) -> list[Comparison]:
    """Every model of `files` but `reference` against it on `TESTED_METRICS`, in table order.

    Raises:
        UserError: `reference` has no prediction files.
    """
    models = model_order(group_by_model(files))
    if reference not in models:
        raise UserError(f"reference model {reference!r} not among {', '.join(sorted(models))}")
    return [(model, reference, TESTED_METRICS) for model in models if model != reference]


def compute_comparisons(
    files: list[PredictionFile],
    comparisons: list[Comparison],
    alpha: float,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Run the given paired comparisons, Holm over all of them (one table, one family).

    Args:
        files: Prediction files of one eval set, holding every model the comparisons name.
        comparisons: (model, reference, metrics among `TESTED_METRICS`), one row per metric.
        alpha, n_boot, seed: As `compute_stats`.

    Raises:
        UserError: a comparison names a model without prediction files.
    """
    groups = group_by_model(files)
    named = {m for model, reference, _ in comparisons for m in (model, reference)}
    absent = sorted(named - set(groups))
    if absent:
        raise UserError(f"no prediction files for {', '.join(absent)} among {sorted(groups)}")
    scores = {model: case_scores(groups[model]) for model in named}
    eval_set = files[0].meta["eval_set"]
    rows = [
        {
            "eval_set": eval_set,
            "model": model,
            "reference": reference,
            **compare(scores[model][m], scores[reference][m], m, n_boot, seed),
        }
        for model, reference, tested in comparisons
        for m in tested
    ]
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("p_holm", "significant")])
    return _adjust(frame, alpha)


def _adjust(frame: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Holm over all rows of `frame` (one family) and the significance flag."""
    frame = frame.copy()
    frame["p_holm"] = holm(frame["p"].to_numpy(float))
    frame["significant"] = frame["p_holm"] < alpha
    return frame[list(COLUMNS)]


def compute_stats_across(
    eval_sets: Mapping[str, list[PredictionFile]],
    reference: str,
    alpha: float,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """`compute_stats` on each eval set, Holm over all the comparisons together: the
    comparisons of one table with one row per eval set (external validation).

    Args:
        eval_sets: Eval set name -> its prediction files, in table row order.
        reference, alpha, n_boot, seed: As `compute_stats`.
    """
    frames = [compute_stats(f, reference, alpha, n_boot, seed) for f in eval_sets.values()]
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return _adjust(pd.concat(frames, ignore_index=True), alpha)


def stats_metadata(
    files: list[PredictionFile],
    reference: str,
    alpha: float,
    n_boot: int,
    seed: int,
    eval_set: str | None = None,
) -> dict[str, Any]:
    """Parameters and inputs of a stats run, stored with its parquet output; `eval_set`
    names a table over several eval sets (default: the files' one)."""
    return {
        "eval_set": eval_set or files[0].meta["eval_set"],
        "reference": reference,
        "alpha": alpha,
        "n_boot": n_boot,
        "seed": seed,
        "zero_method": ZERO_METHOD,
        "inputs": [{"path": str(f.path), "sha256": f.sha256} for f in files],
    }


def write_stats(frame: pd.DataFrame, meta: dict[str, Any], path: Path) -> None:
    """Write the stats frame as parquet (metadata `medmtl` = `meta`) and `.md` beside it."""
    write_annotated(path, frame, meta)
    path.with_suffix(".md").write_text(stats_markdown(frame, meta))


def read_stats(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a stats parquet written by `write_stats`: (frame, metadata).

    Raises:
        UserError: the file is missing, unreadable, or lacks columns or metadata.
    """
    frame, meta = read_annotated(path, "stats file")
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise UserError(f"{path}: not a medmtl stats file (columns {missing} missing)")
    return frame, meta


def check_stats_inputs(meta: dict[str, Any], files: list[PredictionFile], stats_path: Path) -> None:
    """Raise `UserError` unless the stats were computed from exactly these prediction files."""
    recorded = sorted(entry["sha256"] for entry in meta["inputs"])
    if recorded != sorted(f.sha256 for f in files):
        raise UserError(
            f"{stats_path}: computed from other prediction files than the ones given; "
            "re-run `medmtl stats`"
        )


_MARKDOWN_HEADER = "model|metric|test|n|mean model|mean ref|diff CI|effect|p|p Holm|sig.|eval set"
_MARKDOWN_HEADER = _MARKDOWN_HEADER.split("|")


def _fmt(value: float, spec: str) -> str:
    return "nan" if pd.isna(value) else format(value, spec)


def stats_markdown(frame: pd.DataFrame, meta: dict[str, Any]) -> str:
    """Human-readable markdown of a stats frame, with the policy and parameters above it."""
    header = (
        f"# Paired tests, eval set `{meta['eval_set']}`, reference `{meta['reference']}`\n\n"
        f"Holm over {len(frame)} comparisons, alpha = {meta['alpha']}; JI/DSC: Wilcoxon "
        f"signed-rank (zero_method={meta['zero_method']}) on seed-mean per-image values; "
        "Acc3: exact McNemar on seed-ensemble correctness; effect = matched-pairs "
        f"rank-biserial; CI: BCa bootstrap ({meta['n_boot']} resamples, seed {meta['seed']}) "
        "of the mean difference, in points.\n\n"
    )
    rows = [
        [
            r.model,
            r.metric,
            r.test,
            str(r.n),
            _fmt(r.mean_model, ".2f"),
            _fmt(r.mean_reference, ".2f"),
            f"[{_fmt(r.ci_low, '.2f')}, {_fmt(r.ci_high, '.2f')}]",
            _fmt(r.effect_size, ".3f"),
            _fmt(r.p, ".3g"),
            _fmt(r.p_holm, ".3g"),
            "yes" if r.significant else "no",
            r.eval_set,
        ]
        for r in frame.itertuples()
    ]
    return header + markdown_table(_MARKDOWN_HEADER, rows)
