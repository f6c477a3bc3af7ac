"""What every figure shares: the Agg backend, a deterministic PNG writer (same inputs, same
bytes, so a figure's sha256 can stand in provenance) and a footer naming the runs it draws."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.figure import Figure  # noqa: E402

from medmtl.evaluation.predictions import PredictionFile  # noqa: E402
from medmtl.model_names import DISPLAY_NAMES  # noqa: E402

DPI = 100
MIN_WIDTH = 7.0  # inches
COLOURS = plt.get_cmap("tab10").colors  # one per model, in table order


def label(model: str) -> str:
    """A model's label in figures: the paper's row label, else the run name."""
    return DISPLAY_NAMES.get(model, model)


def footer_text(files: Sequence[PredictionFile]) -> str:
    """One line naming the runs drawn: models, seeds, commit(s), data and split sha256."""
    meta = files[0].meta
    commits = ", ".join(sorted({f.meta["git_commit"][:10] for f in files}))
    seeds = ", ".join(str(s) for s in sorted({f.seed for f in files}))
    return (
        f"{len({f.model for f in files})} models x seeds {seeds} on {meta['eval_set']} | "
        f"commit {commits} | data {meta['data_sha256'][:12]} | split {meta['split_sha256'][:12]}"
    )


def save(fig: Figure, path: Path, footer: str) -> Path:
    """Write `fig` as PNG with `footer` at its foot; no timestamp or software tag, so equal
    inputs give equal bytes."""
    fig.text(0.005, 0.005, footer, fontsize=7, color="0.35", ha="left", va="bottom")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    os.replace(tmp, path)
    return path


def grid(n_panels: int, ncols: int, panel: tuple[float, float]) -> tuple[Figure, list]:
    """A figure of `n_panels` axes in rows of `ncols` (unused axes hidden), flat list."""
    ncols = max(1, min(ncols, n_panels))
    nrows = -(-n_panels // ncols)
    width = max(MIN_WIDTH, panel[0] * ncols)  # room for the footer
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, panel[1] * nrows + 0.3), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels]
