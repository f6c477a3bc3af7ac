"""Figure 2: per-image DSC and JI of each model (seed means, the values the daggers test) as
boxes with every image as a point, and each model's per-image DSC minus the reference's."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medmtl.reporting.figures.common import grid, label


def _boxes(ax, columns: Mapping[str, np.ndarray], title: str) -> None:
    names = list(columns)
    values = [v[~np.isnan(v)] for v in columns.values()]
    ax.boxplot(values, showfliers=False, widths=0.6)
    jitter = np.random.default_rng(0)  # fixed: the same figure every time
    for i, v in enumerate(values, start=1):
        ax.plot(i + jitter.uniform(-0.2, 0.2, len(v)), v, ".", color="0.3", ms=2, alpha=0.5)
    ax.set_xticks(range(1, len(names) + 1), [label(n) for n in names], rotation=30, ha="right")
    ax.set_title(title, fontsize=9)


def distributions_figure(per_image: Mapping[str, pd.DataFrame], reference: str) -> Figure:
    """`per_image[metric]`: cases x models (table order) of seed-mean values x100, for
    metric "DSC" and "JI"; the third panel pairs each model's DSC with the reference's."""
    dsc = per_image["DSC"]
    others = [m for m in dsc.columns if m != reference]
    fig, axes = grid(3, 3, (4.2, 3.4))
    _boxes(axes[0], {m: dsc[m].to_numpy() for m in dsc}, "per-image DSC (%)")
    _boxes(axes[1], {m: per_image["JI"][m].to_numpy() for m in dsc}, "per-image JI (%)")
    differences = {m: (dsc[m] - dsc[reference]).to_numpy() for m in others}
    _boxes(axes[2], differences, f"DSC minus {label(reference)} (paired by image)")
    axes[2].axhline(0, color="k", lw=0.8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
