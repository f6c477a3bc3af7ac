"""Figure 6: external validation, each model's Dice on the internal test set beside its Dice on
every available external set, one line per seed (the same trained network on both sides)."""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure

from medmtl.reporting.figures.common import COLOURS, grid, label

# (internal DSC, external DSC) of one run: a model's seed on both sides.
Pair = tuple[float, float]


def external_figure(
    pairs: Mapping[str, Mapping[str, Mapping[int, Pair]]], absent: list[str]
) -> Figure:
    """`pairs[set][model][seed]`; `absent`: configured sets whose source is not on disk, named
    in a panel of their own so the figure never looks complete when it is not."""
    fig, axes = grid(max(1, len(pairs)), 3, (4.0, 3.0))
    for ax, (name, by_model) in zip(axes, pairs.items(), strict=False):
        for j, (model, by_seed) in enumerate(by_model.items()):
            for seed, (internal, external) in sorted(by_seed.items()):
                ax.plot([0, 1], [internal, external], "-o", color=COLOURS[j], ms=3, lw=1,
                        label=label(model) if seed == min(by_seed) else None)  # fmt: skip
        ax.set_xticks([0, 1], ["internal test", name])
        ax.set_xlim(-0.3, 1.3)
        ax.set_ylabel("DSC (%)")
        ax.set_title(f"{name}: Dice, paired by seed", fontsize=9)
        ax.legend(fontsize=7)
    if not pairs:
        axes[0].axis("off")
    if absent:
        note = "not available (no source on disk): " + ", ".join(absent)
        y = -0.25 if pairs else 0.5
        axes[0].text(0.5, y, note, transform=axes[0].transAxes, ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
