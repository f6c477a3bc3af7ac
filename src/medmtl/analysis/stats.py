"""Paired significance tests of each model against a reference model, from prediction files.

Rule 1 (DESIGN.md, "Statistics"): a mark or p next to a number comes from a test of exactly
that number. A table cell is the mean over seeds of the per-seed summaries of
`metrics.summarize`, and each such summary is the mean over images of `metrics.per_image`
values. Every test below compares those values, so the tested means (`mean_model`,
`mean_reference`) are the cells' means; `medmtl audit` checks that they are.

Rule 2: the unit of inference is said, and training variance counts. Each comparison is
analysed at two levels, on the cases where the metric exists for both models (the same cases
for both: a comparison of models evaluated on different cases is refused):

- Per image (unit: test image; the trained networks are taken as fixed). Per case, each model
  is the mean over its seeds of the per-image values; paired, two-sided Wilcoxon signed-rank
  test of the differences model - reference (`scipy.stats.wilcoxon`, differences rounded to
  12 decimals so float noise makes no false ranks, `zero_method='wilcox'`, `method='auto'`;
  all-zero differences: statistic 0, p = 1, answered explicitly since scipy divides by zero).
  Effect size: matched-pairs rank-biserial correlation r = (R+ - R-) / (R+ + R-) over the
  non-zero differences (Kerby 2014). CI: BCa bootstrap 95% CI of the mean paired difference
  (`scipy.stats.bootstrap(..., paired=True, method='BCa')`; constant differences: [d, d]).
  This is the seed papers' protocol: "do these trained networks differ on these images".
- Per training run (unit: training run; the test images are taken as fixed): an exact
  permutation test over the runs, a two-level bootstrap CI and the seed-pair sign
  consistency (`medmtl.analysis.run_level`, which says why).

Multiplicity: Holm over all comparisons of one table, separately for the per-image and the
per-run p values (`multipletests(method='holm')`, passed explicitly: statsmodels defaults to
Holm-Sidak). `significant` = per-image p_holm < alpha (the dagger); `seed_significant` =
significant and per-run p_seed_holm < alpha too (the second mark). A table over several eval
sets (external validation) is one family: `compute_stats_across`. All values are in the
metric's units: points (percent) for JI, DSC, Acc; training-sd units for MAE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from medmtl.analysis.run_level import (
    mean_difference,
    permutation_floor,
    run_permutation_test,
    sign_consistency,
    two_level_ci,
)
from medmtl.errors import UserError
from medmtl.evaluation import metrics
from medmtl.evaluation.predictions import DEFAULT_TASKS, TASKS, PredictionFile, group_by_model
from medmtl.model_names import model_order

TESTED_BY_TASK = {"seg": ("JI", "DSC"), "cls": ("Acc",), "reg": ("MAE",)}  # the marked columns


def tested_metrics(tasks: Sequence[str]) -> tuple[str, ...]:
    """The tested (marked) metrics of runs with `tasks`, in table order: JI, DSC, Acc for
    segmentation and classification (Table 4's), MAE (per-case absolute errors) for regression."""
    return tuple(m for task in TASKS if task in tasks for m in TESTED_BY_TASK[task])


TESTED_METRICS = tested_metrics(DEFAULT_TASKS)  # Table 4's and the ablation tables' marks


def common_tasks(files: Sequence[PredictionFile]) -> tuple[str, ...]:
    """The tasks every one of `files` has."""
    return tuple(t for t in TASKS if all(t in f.tasks for f in files))


TEST = "wilcoxon"
SEED_TEST = "permutation_runs"
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
    "seed_test",
    "seeds_model",
    "seeds_reference",
    "p_seed",
    "p_seed_floor",
    "p_seed_holm",
    "seed_ci_low",
    "seed_ci_high",
    "sign_agree",
    "sign_pairs",
    "seed_significant",
)
_ADJUSTED = ("p_holm", "significant", "p_seed_holm", "seed_significant")


def run_values(files: list[PredictionFile], metric: str) -> pd.DataFrame:
    """Per-image values of one model's runs: one column per seed, indexed by sorted case_id.

    Args:
        files: All seeds of one model (same cases, checked by `check_consistent`).
        metric: One of `metrics.PER_IMAGE_METRICS`.
    """
    return pd.DataFrame(
        {
            f.seed: pd.Series(
                metrics.per_image(f.frame, f.meta["class_names"], metric, f.meta.get("regression")),
                index=f.frame["case_id"].to_numpy(),
            )
            for f in files
        }
    ).sort_index()


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
        mean_difference,
        paired=True,
        vectorized=True,
        n_resamples=n_boot,
        confidence_level=level,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def compare(
    model: pd.DataFrame, reference: pd.DataFrame, metric: str, n_boot: int, seed: int
) -> dict[str, Any]:
    """Both levels of one comparison (all but the Holm columns).

    Args:
        model, reference: `run_values` of the two models on one metric.

    Raises:
        UserError: the two models were evaluated on different cases.
    """
    if not model.index.equals(reference.index):
        raise UserError(f"cannot compare {metric} on different cases: the cells' means differ")
    kept = model.notna().all(axis=1) & reference.notna().all(axis=1)
    xs, ys = model[kept].to_numpy(float).T, reference[kept].to_numpy(float).T  # (runs, images)
    x, y = xs.mean(axis=0), ys.mean(axis=0)
    row: dict[str, Any] = {"metric": metric, "test": TEST, "n": int(kept.sum())}
    row |= {"seed_test": SEED_TEST, "seeds_model": len(xs), "seeds_reference": len(ys)}
    row["p_seed_floor"] = permutation_floor(len(xs), len(ys), n_boot)
    if not kept.any():
        nan = float("nan")
        keys = ("statistic", "p", "effect_size", "ci_low", "ci_high", "mean_model")
        keys += ("mean_reference", "p_seed", "seed_ci_low", "seed_ci_high")
        return row | dict.fromkeys(keys, nan) | {"sign_agree": 0, "sign_pairs": 0}
    row["statistic"], row["p"] = wilcoxon_test(x, y)
    row["effect_size"] = rank_biserial(paired_differences(x, y))
    row["ci_low"], row["ci_high"] = paired_mean_ci(x, y, n_boot, seed)
    row["mean_model"], row["mean_reference"] = float(x.mean()), float(y.mean())
    model_runs, reference_runs = xs.mean(axis=1), ys.mean(axis=1)
    row["p_seed"] = run_permutation_test(model_runs, reference_runs, n_boot, seed)
    row["seed_ci_low"], row["seed_ci_high"] = two_level_ci(xs, ys, n_boot, seed)
    row["sign_agree"], row["sign_pairs"] = sign_consistency(model_runs, reference_runs)
    return row


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p values; NaN entries (no paired cases) stay NaN and do not count."""
    p = np.asarray(p, float)
    adjusted = np.full_like(p, np.nan)
    finite = ~np.isnan(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method="holm")[1]
    return adjusted


Comparison = tuple[str, str, tuple[str, ...]]  # (model, reference, tested metrics)


def reference_comparisons(
    files: list[PredictionFile], reference: str, tested: Sequence[str] | None = None
) -> list[Comparison]:
    """Every model of `files` but `reference` against it on `tested` (default: the
    `tested_metrics` of the tasks both models have), in table order.

    Raises:
        UserError: `reference` has no prediction files.
    """
    groups = group_by_model(files)
    models = model_order(groups)
    if reference not in models:
        raise UserError(f"reference model {reference!r} not among {', '.join(sorted(models))}")
    return [
        (
            model,
            reference,
            tuple(tested or tested_metrics(common_tasks(groups[model] + groups[reference]))),
        )
        for model in models
        if model != reference
    ]


def compute_stats(
    files: list[PredictionFile],
    reference: str,
    alpha: float,
    n_boot: int = 2000,
    seed: int = 0,
    tested: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Compare every model with `reference` on the `tested` metrics (both levels).

    Args:
        files: Prediction files of one eval set (`predictions.load_eval_set`).
        reference: Registry name of the reference model.
        alpha: Significance threshold applied to the Holm-adjusted p values.
        n_boot: Bootstrap resamples per CI (and the cap on permutations).
        seed: Seed of the bootstrap and permutation generators, afresh per comparison.
        tested: Metrics among `metrics.PER_IMAGE_METRICS`; default: each comparison's
            `tested_metrics` (JI, DSC, Acc for Table 4's runs).

    Returns:
        One row per (model, metric) with the columns `COLUMNS`, models in table order.

    Raises:
        UserError: `reference` has no prediction files.
    """
    comparisons = reference_comparisons(files, reference, tested)
    return compute_comparisons(files, comparisons, alpha, n_boot, seed)


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
        comparisons: (model, reference, metrics among `metrics.PER_IMAGE_METRICS`).
        alpha, n_boot, seed: As `compute_stats`.

    Raises:
        UserError: a comparison names a model without prediction files.
    """
    groups = group_by_model(files)
    named = {m for model, reference, _ in comparisons for m in (model, reference)}
    absent = sorted(named - set(groups))
    if absent:
        raise UserError(f"no prediction files for {', '.join(absent)} among {sorted(groups)}")
    needed = {(m, metric) for pair in comparisons for metric in pair[2] for m in pair[:2]}
    values = {(m, metric): run_values(groups[m], metric) for m, metric in needed}
    eval_set = files[0].meta["eval_set"]
    rows = [
        {
            "eval_set": eval_set,
            "model": model,
            "reference": reference,
            **compare(values[model, m], values[reference, m], m, n_boot, seed),
        }
        for model, reference, tested in comparisons
        for m in tested
    ]
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in _ADJUSTED])
    return _adjust(frame, alpha)


def _adjust(frame: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Holm over all rows of `frame` (one family per level) and the two significance flags."""
    frame = frame.copy()
    frame["p_holm"] = holm(frame["p"].to_numpy(float))
    frame["significant"] = frame["p_holm"] < alpha
    frame["p_seed_holm"] = holm(frame["p_seed"].to_numpy(float))
    frame["seed_significant"] = frame["significant"] & (frame["p_seed_holm"] < alpha)
    return frame[list(COLUMNS)]


def compute_stats_across(
    eval_sets: Mapping[str, list[PredictionFile]],
    reference: str,
    alpha: float,
    n_boot: int = 2000,
    seed: int = 0,
    tested: Sequence[str] | None = None,
) -> pd.DataFrame:
    """`compute_stats` on each eval set, Holm over all the comparisons together: the
    comparisons of one table with one row per eval set (external validation).

    Args:
        eval_sets: Eval set name -> its prediction files, in table row order.
        reference, alpha, n_boot, seed, tested: As `compute_stats`.
    """
    frames = [compute_stats(f, reference, alpha, n_boot, seed, tested) for f in eval_sets.values()]
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return _adjust(pd.concat(frames, ignore_index=True), alpha)
