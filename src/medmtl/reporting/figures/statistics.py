"""Figure 5: the statistics files drawn: per tested metric, the pairwise significance map
(`results/stats/<set>_pairwise.parquet`: signed -log10 of the Holm-adjusted per-image p, marks
as in the tables) and the bootstrap rank distribution of each model (`<set>_ranks.parquet`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medmtl.reporting.figures.common import grid, label


def _significance(ax, pairs: pd.DataFrame, models: list[str], metric: str) -> None:
    index = {m: i for i, m in enumerate(models)}
    strength = np.zeros((len(models), len(models)))
    for r in pairs[pairs["metric"] == metric].itertuples():
        sign = 1.0 if r.mean_model > r.mean_reference else -1.0
        value = sign * -np.log10(max(r.p_holm, 1e-300))
        i, j = index[r.model], index[r.reference]
        strength[i, j], strength[j, i] = value, -value
        mark = ("†" if r.significant else "") + ("‡" if r.seed_significant else "")
        for a, b in ((i, j), (j, i)):
            ax.text(b, a, mark, ha="center", va="center", fontsize=8)
    limit = max(1.0, float(np.nanmax(np.abs(strength))))
    image = ax.imshow(strength, cmap="RdBu", vmin=-limit, vmax=limit)
    ticks = [label(m) for m in models]
    ax.set_xticks(range(len(models)), ticks, rotation=40, ha="right", fontsize=6)
    ax.set_yticks(range(len(models)), ticks, fontsize=6)
    ax.set_title(f"{metric}: row vs column, ±log10 Holm p", fontsize=8)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def _ranks(ax, ranks: pd.DataFrame, models: list[str], metric: str) -> None:
    of_metric = ranks[ranks["metric"] == metric]
    values = np.sort(of_metric["rank"].unique())  # ties share the mean rank: 1.5, ...
    by_model = of_metric.groupby("model")["rank"]
    shares = np.array([[(by_model.get_group(m) == r).mean() for r in values] for m in models])
    ax.imshow(shares, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    for (i, r), share in np.ndenumerate(shares):
        ax.text(r, i, f"{share:.2f}", ha="center", va="center", fontsize=6)
    ax.set_xticks(range(len(values)), [f"{r:g}" for r in values], fontsize=6)
    ax.set_yticks(range(len(models)), [label(m) for m in models], fontsize=6)
    ax.set_xlabel("rank (1 = best)", fontsize=7)
    ax.set_title(f"{metric}: share of bootstrap samples at each rank", fontsize=8)


def statistics_figure(pairs: pd.DataFrame, ranks: pd.DataFrame, models: list[str]) -> Figure:
    """Rows: tested metrics (in the files' order); columns: significance map, rank shares."""
    metrics = list(dict.fromkeys(pairs["metric"]))
    fig, axes = grid(2 * len(metrics), 2, (4.6, 3.6))
    for k, metric in enumerate(metrics):
        _significance(axes[2 * k], pairs, models, metric)
        _ranks(axes[2 * k + 1], ranks, models, metric)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
