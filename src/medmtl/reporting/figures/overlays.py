"""Figure 3, in the style of the ResFormer paper's Fig. 6: test images with the ground-truth
contour and each model's predicted contour, for a fixed choice of cases (`select_cases`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medmtl.reporting.figures.common import grid, label


def select_cases(dsc: pd.DataFrame, reference: str, n_disagree: int = 2) -> dict[str, str]:
    """Case id -> why it is shown, from `dsc` (cases x models, seed-mean per-image DSC):

    the reference model's best, median and worst case (ground truth not empty; ties broken by
    case id), then the `n_disagree` other cases where the models disagree most (largest
    standard deviation of their DSC across models)."""
    scored = dsc.dropna().sort_index()
    order = scored[reference].sort_values(kind="stable", ascending=False)
    chosen = {
        order.index[0]: "best",
        order.index[len(order) // 2]: "median",
        order.index[-1]: "worst",
    }
    spread = scored.std(axis=1, ddof=0).drop(list(chosen))
    spread = spread.sort_values(ascending=False, kind="stable")
    for case in spread.index[:n_disagree]:
        chosen[case] = f"disagreement, sd {spread[case]:.1f}"
    return {
        case: f"{why}\nreference DSC {scored.loc[case, reference]:.1f}"
        for case, why in chosen.items()
    }


def _contour(ax, mask: np.ndarray, colour: str) -> None:
    """The mask's outline; padded by one background pixel, so a mask that fills the image is
    drawn as the image's border and an empty one draws nothing."""
    if mask.any():
        side = np.arange(-1, mask.shape[0] + 1)
        padded = np.pad(mask.astype(float), 1)
        ax.contour(side, side, padded, levels=[0.5], colors=colour, linewidths=1.0)


def overlays_figure(
    images: np.ndarray,
    truth: np.ndarray,
    predicted: Mapping[str, np.ndarray],
    titles: list[str],
) -> Figure:
    """Rows: cases (`images` uint8 (K, S, S, 3), `truth` bool (K, S, S), `titles`); columns:
    models (`predicted[model]` bool (K, S, S), the seed ensemble's mask). Green: ground
    truth; red: the model's prediction."""
    models = list(predicted)
    fig, axes = grid(len(images) * len(models), len(models), (2.2, 2.2))
    for k in range(len(images)):
        for j, model in enumerate(models):
            ax = axes[k * len(models) + j]
            ax.imshow(images[k], interpolation="nearest")
            for mask, colour in ((truth[k], "lime"), (predicted[model][k], "red")):
                _contour(ax, mask, colour)
            ax.set_xlim(-1.5, images.shape[2] + 0.5)
            ax.set_ylim(images.shape[1] + 0.5, -1.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_title(label(model), fontsize=8)
            if j == 0:
                ax.set_ylabel(titles[k], fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
