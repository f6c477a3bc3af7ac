"""Figure 4: per model, the confusion matrix of the seed ensemble (class probabilities averaged
over the seeds, argmax) and its one-vs-rest ROC curves, one per class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import auc, confusion_matrix, roc_curve

from medmtl.reporting.figures.common import COLOURS, grid, label


def classification_figure(
    ensembles: Mapping[str, np.ndarray], labels: np.ndarray, class_names: Sequence[str]
) -> Figure:
    """`ensembles[model]`: (N, C) seed-mean probabilities of the N cases, `labels` (N,) their
    classes; row 1 confusion matrices, row 2 ROC curves, one column per model."""
    models = list(ensembles)
    fig, axes = grid(2 * len(models), len(models), (2.8, 2.8))
    classes = range(len(class_names))
    for j, model in enumerate(models):
        probs = ensembles[model]
        matrix = confusion_matrix(labels, probs.argmax(axis=1), labels=list(classes))
        ax = axes[j]
        ax.imshow(matrix, cmap="Blues")
        for (row, col), count in np.ndenumerate(matrix):
            colour = "white" if count > matrix.max() / 2 else "black"
            ax.text(col, row, str(count), ha="center", va="center", fontsize=8, color=colour)
        ax.set_xticks(classes, class_names, rotation=30, ha="right", fontsize=6)
        ax.set_yticks(classes, class_names, fontsize=6)
        ax.set_title(label(model), fontsize=8)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
        ax = axes[len(models) + j]
        for c in classes:
            positive = labels == c
            if positive.all() or not positive.any():
                continue  # one-vs-rest needs both sides
            fpr, tpr, _ = roc_curve(positive, probs[:, c])
            ax.plot(fpr, tpr, color=COLOURS[c], label=f"{class_names[c]} {100 * auc(fpr, tpr):.1f}")
        ax.plot([0, 1], [0, 1], ":", color="0.5")
        ax.set_xlabel("1 - specificity", fontsize=7)
        ax.set_ylabel("sensitivity", fontsize=7)
        ax.legend(fontsize=6, title="AUC (%)", title_fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
