"""The per-training-run level of a paired comparison (DESIGN.md, "Statistics", rule 2).

Unit of inference: the training run; the test images are taken as fixed. The claim a reader
takes from a table, "method A beats method B", also needs the run-to-run spread, which the
per-image test (`medmtl.analysis.stats`) leaves out by averaging each model's seeds.

- p: exact permutation test over runs (`scipy.stats.permutation_test`, independent samples,
  statistic = difference of the means of the per-run summaries, i.e. of the two cells; all
  C(S_m + S_r, S_m) relabellings when they number at most `n_resamples`, else that many
  random ones). Chosen over a bootstrap p or a mixed model because with five runs per model
  neither has a trustworthy null distribution: a bootstrap over 5 top-level units
  underestimates their variance by (S-1)/S with a coarse, discrete tail, and MixedLM's Wald
  z-test assumes asymptotics that 10 runs do not give. The permutation test is exact under the
  null "the runs of both models are exchangeable", and its smallest attainable p is explicit,
  `permutation_floor` = 2 / C(S_m + S_r, S_m) (2/252 = 0.0079 for 5 vs 5 seeds): five seeds
  cannot reach alpha = 0.001, and the tables say so (`seed_level_note`) instead of marking.
- CI: two-level (hierarchical) percentile bootstrap of the difference of the cells: resample
  each model's runs with replacement, then the images with one index set for both models
  (paired); both sources of variance enter.
- Sign consistency: in how many of the S_m x S_r pairings of a model run with a reference run
  the difference of the two runs' summaries has the sign of the cells' difference.

`tests/test_stats.py` checks both levels on simulated data with a known seed effect.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps


def mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def permutation_floor(n_model: int, n_reference: int, n_resamples: int) -> float:
    """Smallest two-sided p the permutation test over runs can give (module docstring):
    2 / C(n_model + n_reference, n_model) when exact, 2 / (n_resamples + 1) when sampled."""
    relabellings = math.comb(n_model + n_reference, n_model)
    return min(1.0, 2 / (relabellings if relabellings <= n_resamples else n_resamples + 1))


def run_permutation_test(
    model_runs: np.ndarray, reference_runs: np.ndarray, n_resamples: int, seed: int
) -> float:
    """Two-sided p of the exact (or sampled) permutation test of mean(model) - mean(reference)
    over the per-run summaries; 1 when the runs cannot be told apart (all values equal), NaN
    (no test) when a model has a single run: it shows no run-to-run variation to test against."""
    pooled = np.concatenate([model_runs, reference_runs])
    if min(len(model_runs), len(reference_runs)) < 2:
        return float("nan")
    if np.all(pooled == pooled[0]):
        return 1.0
    result = sps.permutation_test(
        (model_runs, reference_runs),
        mean_difference,
        permutation_type="independent",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(min(1.0, result.pvalue))


def resampled_run_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, images): per image, the mean over a resample (with replacement) of the runs.

    Args:
        values: (runs, images) per-image values of one model.
    """
    picked = rng.integers(0, len(values), (n_boot, len(values)))
    weights = np.zeros((n_boot, len(values)))
    np.add.at(weights, (np.arange(n_boot)[:, None], picked), 1 / len(values))
    return weights @ values


def two_level_means(runs: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, models) two-level bootstrap draws of the cells: each model's runs with
    replacement, then images with one index set for all models (paired).

    Args:
        runs: Per model, its (runs, images) per-image values, the same images for all.
    """
    means = [resampled_run_means(values, n_boot, rng) for values in runs]
    images = rng.integers(0, runs[0].shape[1], (n_boot, runs[0].shape[1]))
    return np.stack([np.take_along_axis(m, images, axis=1).mean(axis=1) for m in means], axis=1)


def two_level_deltas(
    model: np.ndarray, reference: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """`n_boot` two-level bootstrap draws of the difference of the two cells (`two_level_means`).

    Args:
        model, reference: (runs, images) per-image values of the two models, same images.
    """
    means = two_level_means([model, reference], n_boot, rng)
    return means[:, 0] - means[:, 1]


def two_level_ci(
    model: np.ndarray, reference: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile CI of `two_level_deltas` (generator seeded with `seed`)."""
    deltas = two_level_deltas(model, reference, n_boot, np.random.default_rng(seed))
    low, high = np.quantile(deltas, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def sign_consistency(model_runs: np.ndarray, reference_runs: np.ndarray) -> tuple[int, int]:
    """(pairings whose run difference has the sign of the cells' difference, all pairings);
    a zero cell difference agrees with no pairing."""
    delta = np.sign(model_runs.mean() - reference_runs.mean())
    pairs = np.sign(model_runs[:, None] - reference_runs[None, :])
    return int((pairs == delta).sum()) if delta else 0, int(pairs.size)


def attainable_seed_p(frame: pd.DataFrame) -> float:
    """The smallest Holm-adjusted per-run p any comparison of the table could reach: the
    number of tests times the smallest floor (1 at most)."""
    floors = frame["p_seed_floor"].dropna()
    return float(min(1.0, len(frame) * floors.min())) if len(floors) else float("nan")


def seed_level_note(frame: pd.DataFrame, alpha: float) -> str:
    """One sentence for a caption when the runs are too few for the second mark at `alpha`,
    "" otherwise."""
    attainable = attainable_seed_p(frame)
    if not attainable >= alpha:
        return ""
    floor = frame["p_seed_floor"].min()
    seeds = sorted({int(s) for s in pd.concat([frame["seeds_model"], frame["seeds_reference"]])})
    counts = "--".join(map(str, (seeds[0], seeds[-1]))) if len(seeds) > 1 else str(seeds[0])
    return (
        f"With {counts} seeds per model the per-run test cannot give $p$ below {floor:.2g} "
        f"({attainable:.2g} after Holm over {len(frame)} tests), not below $\\alpha = {alpha:g}$: "
        "no cell can carry the second mark."
    )
