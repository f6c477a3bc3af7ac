"""Ranking stability of the models of one eval set, as challengeR offers it (Wiesenfarth et al.
2021, "Methods and open-source toolkit for analyzing and visualizing challenge results", Sci.
Rep. 11:2369, sections "Bootstrapping" and "Significance maps").

- Ranks: per tested metric (`stats.tested_metrics` of the tasks all models have: JI, DSC, Acc
  for Table 4), the models ranked by their cell value (the mean over seeds of the per-seed
  summaries; higher is better, lower for an error such as MAE; rank 1 the best, ties share the
  mean rank) on the full data and on each of `n_boot` bootstrap samples. A sample resamples the
  test cases (one index set for every model, so the comparison stays paired) and each model's
  runs (with replacement): both the case and the training variation move the ranks. Written
  per sample and model, with Kendall's tau-b between the full-data ranking and the sample's
  (vectorised over the samples; `tests/test_ranking.py` checks it against
  `scipy.stats.kendalltau`, which takes milliseconds per call).
- Significance map: every pair of models compared as `stats.compute_comparisons` compares a
  model with the reference (both levels), Holm over the pairs of one metric (one family per
  metric, as challengeR's map is per task).

Cases where a metric is missing for any model (empty ground truth for JI/DSC) leave that
metric's ranking, so every model is ranked on the same cases.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from medmtl.analysis.run_level import two_level_means
from medmtl.analysis.stats import common_tasks, compute_comparisons, run_values, tested_metrics
from medmtl.analysis.stats_file import stats_markdown
from medmtl.annotated_parquet import write_annotated
from medmtl.evaluation.metrics import LOWER_IS_BETTER
from medmtl.evaluation.predictions import PredictionFile, group_by_model
from medmtl.markdown import markdown_table
from medmtl.model_names import model_order

RANK_COLUMNS = ("metric", "sample", "model", "rank", "mean", "full_rank", "kendall_tau")


def _ranks(means: np.ndarray, metric: str) -> np.ndarray:
    """Rank 1 for the best mean (the highest, the lowest of an error), ties sharing the mean
    rank, along the last axis."""
    return sps.rankdata(means if metric in LOWER_IS_BETTER else -means, method="average", axis=-1)


def ranked_metrics(files: list[PredictionFile]) -> tuple[str, ...]:
    """The tested metrics of the tasks every model has."""
    return tested_metrics(common_tasks(files))


def kendall_tau_b(reference: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of the ranking `reference` (models,) with each row of `samples`
    (n, models): (concordant - discordant pairs) / sqrt(pairs untied in each ranking); NaN
    where a ranking is all ties."""
    i, j = np.triu_indices(len(reference), 1)
    a = np.sign(reference[i] - reference[j])
    b = np.sign(samples[:, i] - samples[:, j])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (b * a).sum(axis=1) / np.sqrt(np.abs(a).sum() * np.abs(b).sum(axis=1))


def rank_samples(files: list[PredictionFile], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Full-data and bootstrap ranks of every model on every tested metric (module docstring).

    Returns:
        One row per (metric, sample, model) with the columns `RANK_COLUMNS`.
    """
    groups = group_by_model(files)
    models = model_order(groups)
    frames = []
    for number, metric in enumerate(ranked_metrics(files)):
        values = [run_values(groups[m], metric) for m in models]
        kept = np.logical_and.reduce([v.notna().all(axis=1).to_numpy() for v in values])
        runs = [v.to_numpy(float)[kept].T for v in values]
        full = _ranks(np.array([r.mean() for r in runs]), metric)
        means = two_level_means(runs, n_boot, np.random.default_rng([seed, number]))
        ranks = _ranks(means, metric)
        columns = {
            "metric": metric,
            "sample": np.repeat(np.arange(n_boot), len(models)),
            "model": np.tile(models, n_boot),
            "rank": ranks.ravel(),
            "mean": means.ravel(),
            "full_rank": np.tile(full, n_boot),
            "kendall_tau": np.repeat(kendall_tau_b(full, ranks), len(models)),
        }
        frames.append(pd.DataFrame(columns, columns=list(RANK_COLUMNS)))
    return pd.concat(frames, ignore_index=True)


def pairwise_tests(
    files: list[PredictionFile], alpha: float, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Every pair of models (first in table order as `model`), both levels of
    `stats.compare`, Holm over the pairs of each metric."""
    models = model_order(group_by_model(files))
    frames = [
        compute_comparisons(
            files, [(a, b, (metric,)) for a, b in combinations(models, 2)], alpha, n_boot, seed
        )
        for metric in ranked_metrics(files)
    ]
    return pd.concat(frames, ignore_index=True)


def ranks_markdown(ranks: pd.DataFrame, meta: dict[str, Any]) -> str:
    """Per metric: each model's full-data rank, mean rank, 95% rank interval and how often it
    ranks first, and the spread of Kendall's tau."""
    parts = [
        f"# Ranking stability, eval set `{meta['eval_set']}`\n\n"
        f"{meta['n_rank_boot']} bootstrap samples (cases, shared by all models, and each model's "
        f"runs, with replacement; seed {meta['seed']}). Rank 1 = best.\n"
    ]
    for metric, by_metric in ranks.groupby("metric", sort=False):
        taus = by_metric.drop_duplicates("sample")["kendall_tau"]
        low, median, high = np.nanquantile(taus, [0.025, 0.5, 0.975])
        rows = []
        for model, r in by_metric.groupby("model", sort=False):
            lo, hi = np.quantile(r["rank"], [0.025, 0.975])
            rows.append(
                [
                    model,
                    f"{r['full_rank'].iloc[0]:g}",
                    f"{r['rank'].mean():.2f}",
                    f"[{lo:g}, {hi:g}]",
                    f"{(r['rank'] == 1).mean():.3f}",
                ]
            )
        header = ["model", "rank (full data)", "mean rank", "95% interval", "P(rank 1)"]
        parts.append(
            f"\n## {metric}\n\nKendall's tau (full vs bootstrap ranking): median {median:.3f}, "
            f"95% interval [{low:.3f}, {high:.3f}]\n\n" + markdown_table(header, rows)
        )
    return "".join(parts)


def significance_map(pairs: pd.DataFrame, metric: str) -> str:
    """Models x models matrix of one metric: `+` the row model is better (per-image Holm p <
    alpha), `-` worse, `.` not significant; a second `+`/`-` when the per-run test holds too."""
    rows_of = pairs[pairs["metric"] == metric]
    models = list(dict.fromkeys([*rows_of["model"], *rows_of["reference"]]))
    cell = {}
    for r in rows_of.itertuples():
        higher = r.mean_model > r.mean_reference
        sign = "+" if higher != (metric in LOWER_IS_BETTER) else "-"
        mark = (sign * (2 if r.seed_significant else 1)) if r.significant else "."
        cell[r.model, r.reference] = mark
        cell[r.reference, r.model] = mark.translate(str.maketrans("+-", "-+"))
    body = [[a, *(cell.get((a, b), "") for b in models)] for a in models]
    return markdown_table(["", *models], body)


def write_ranking(
    ranks: pd.DataFrame, pairs: pd.DataFrame, meta: dict[str, Any], paths: tuple[Path, Path]
) -> None:
    """Write the ranks and pairwise-test parquet files (metadata `meta`), each with its `.md`."""
    ranks_path, pairs_path = paths
    write_annotated(ranks_path, ranks, meta)
    ranks_path.with_suffix(".md").write_text(ranks_markdown(ranks, meta))
    write_annotated(pairs_path, pairs, meta)
    maps = "".join(
        f"\n## {metric}\n\n" + significance_map(pairs, metric)
        for metric in dict.fromkeys(pairs["metric"])
    )
    pairs_path.with_suffix(".md").write_text(
        stats_markdown(pairs, {**meta, "reference": "every other model"})
        + "\n# Significance maps (row vs column; Holm per metric)\n\n"
        "`+`/`-`: the row model is better/worse at per-image Holm p < alpha; `++`/`--`: the "
        "per-run test holds too; `.`: neither.\n" + maps
    )
