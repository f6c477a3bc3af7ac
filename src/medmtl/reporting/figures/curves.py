"""Figure 1: training and validation loss per epoch of each model, mean over seeds with a
min-max band, and each seed's selected epoch (lowest validation loss, paper Sec. 4) marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medmtl.reporting.figures.common import grid, label

# One run: its history.csv rows (epoch, train_loss, val_loss, ...) and its selected epoch.
RunCurve = tuple[pd.DataFrame, int]


def curves_figure(runs: Mapping[str, Sequence[RunCurve]]) -> Figure:
    """One panel per model (table order): train and validation loss over the seeds."""
    fig, axes = grid(len(runs), 3, (4.0, 2.8))
    for ax, (model, curves) in zip(axes, runs.items(), strict=True):
        for column, colour in (("train_loss", "tab:blue"), ("val_loss", "tab:orange")):
            table = pd.concat(
                [h.set_index("epoch")[column].rename(i) for i, (h, _) in enumerate(curves)], axis=1
            )
            epochs = table.index.to_numpy()
            ax.plot(epochs, table.mean(axis=1), color=colour, label=column.replace("_", " "))
            ax.fill_between(epochs, table.min(axis=1), table.max(axis=1), color=colour, alpha=0.2)
        best = np.array([(b, h.set_index("epoch").loc[b, "val_loss"]) for h, b in curves])
        ax.plot(*best.T, "kv", markersize=5, label="selected epoch (per seed)")
        ax.set_title(f"{label(model)} ({len(curves)} seed{'s' * (len(curves) > 1)})", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
    axes[0].legend(fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
