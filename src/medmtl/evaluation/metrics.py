"""Segmentation and classification metrics of the ResFormer paper, from per-case rows.

Paper-faithful metrics follow the paper (Sec. 4, "Segmentation/Classification evaluation
metrics") as the authors' evaluation computes them (notes/anchors.md, Sec. 1.1):

- JI, DSC: per-image Jaccard/Dice at the model's input size (threshold 0.5), averaged over
  images, x100. Images whose ground truth is empty have no Dice/JI (NaN) and are skipped,
  as the authors' `Evaluator` skips them (it returns None for an empty ground truth).
- Acc, Sen, Spe: micro averages over the C one-vs-rest columns (paper eqs. muAcc, muSen,
  muSpe), x100, where column i decides "class i" when softmax probability_i > 0.5. An image
  can thus be positive for no class; muAcc counts C binary decisions per image. With two
  classes the three micro averages are one number (an image is positive in exactly one
  column and the softmax puts at most one above 0.5), so Sen and Spe are then those of the
  second class, the positive one (e.g. malignant): the binary convention (our choice; the
  paper's ISIC 2017 has three classes).

Clean metrics (reported beside them, not in the paper): JI_native/DSC_native (the same
per-image means at native resolution), NSD and HD95 (boundary metrics at native resolution,
`medmtl.evaluation.boundary`: per-image means over every image, empty masks scored by its explicit
policy), Acc3 (ordinary C-class accuracy of the argmax prediction) and AUC_<class> (one-vs-rest
ROC AUC per class; ISIC 2017 Task 3 scores the melanoma and seborrheic keratosis AUCs). All
values are percentages, but HD95 (native pixels) and the regression metrics.

Regression (issue 14; Res-MTNet and MTI-Net print no metric definitions): per target, MAE,
RMSE, R^2 = 1 - SS_res / SS_tot (around the evaluated cases' mean) and Pearson's r of the
predicted against the true values, in the target's units (`MAE_<name>`, ...). The table's
columns summarise all targets in one unit, the training split's sd of each target (the scale
the models learn on, `models.inputs.TargetScale`): MAE and RMSE are the means over targets of
MAE_t / sd_t and RMSE_t / sd_t, R2 and r the means over targets of R^2_t and r_t. The per-case
value of MAE (`per_image`) is the mean over targets of |error| / sd, so its mean over cases is
the cell. Cases without targets (a lesion-geometry target of an image without a lesion) are
left out, as JI and DSC leave out an empty ground truth. A file of a run without a task has
none of that task's metrics.

numpy only: no torch, no sklearn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from medmtl.pipeline.external import UNMAPPED_LABEL  # counts in the segmentation metrics only

FAITHFUL_METRICS = ("JI", "DSC", "Acc", "Sen", "Spe")
CLEAN_METRICS = ("JI_native", "DSC_native", "NSD", "HD95", "Acc3")  # plus AUC_<class>
REGRESSION_METRICS = ("MAE", "RMSE", "R2", "r")  # plus <metric>_<target>, in its units
LOWER_IS_BETTER = frozenset({"MAE", "RMSE", "HD95"})
THRESHOLD = 0.5


def metric_definition(key: str) -> str:
    """'faithful' for the paper's Table 4 metrics, 'clean' for the others `summarize` returns."""
    return "faithful" if key in FAITHFUL_METRICS else "clean"


def pixel_counts(gt: np.ndarray, pred: np.ndarray) -> tuple[int, int, int]:
    """TP, FP, FN pixels of a predicted binary mask against the ground-truth mask.

    Example (the doctest-sized Dice of two 2x2 masks):
        >>> gt = np.array([[1, 1], [0, 0]], bool)
        >>> pred = np.array([[1, 0], [1, 0]], bool)
        >>> pixel_counts(gt, pred)
        (1, 1, 1)
        >>> float(dice(*pixel_counts(gt, pred)))
        0.5
    """
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    return int((gt & pred).sum()), int((~gt & pred).sum()), int((gt & ~pred).sum())


def _ratio_on_nonempty_gt(num: np.ndarray, den: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """num / den where the ground truth is non-empty, NaN where it is empty (den > 0 there)."""
    out = np.full(np.shape(gt), np.nan)
    np.divide(num, den, out=out, where=gt > 0)
    return out


def dice(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Per-image Dice, paper Sec. 4: DSC = 2TP / (2TP + FP + FN); NaN for an empty ground truth.

    Args:
        tp, fp, fn: Pixel counts per image (arrays of equal shape, or scalars).

    Returns:
        Dice in [0, 1] per image; NaN where TP + FN == 0 (empty ground truth), the images
        the paper-faithful mean skips.
    """
    tp, fp, fn = (np.asarray(a, float) for a in (tp, fp, fn))
    return _ratio_on_nonempty_gt(2 * tp, 2 * tp + fp + fn, tp + fn)


def jaccard(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Per-image Jaccard index, paper Sec. 4: JI = TP / (TP + FP + FN); NaN for an empty GT.

    Args:
        tp, fp, fn: Pixel counts per image.

    Returns:
        JI in [0, 1] per image; NaN where TP + FN == 0, as `dice`.
    """
    tp, fp, fn = (np.asarray(a, float) for a in (tp, fp, fn))
    return _ratio_on_nonempty_gt(tp, tp + fp + fn, tp + fn)


def mean_percent(values: np.ndarray) -> float:
    """100 x the mean of the non-NaN values; NaN when there are none (no warning)."""
    values = np.asarray(values, float)
    kept = values[~np.isnan(values)]
    return float(100 * kept.mean()) if kept.size else float("nan")


def segmentation_summary(frame: pd.DataFrame, prefix: str) -> tuple[float, float]:
    """(JI, DSC) x100: mean over images of per-image values from `<prefix>_tp/_fp/_fn` columns.

    `prefix` "seg" gives the paper-faithful values (model input size), "native" the clean
    native-resolution ones; images with an empty ground truth are skipped in both.
    """
    counts = [frame[f"{prefix}_{c}"].to_numpy() for c in ("tp", "fp", "fn")]
    return mean_percent(jaccard(*counts)), mean_percent(dice(*counts))


def one_vs_rest_counts(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class one-vs-rest confusion counts with the per-class 0.5 threshold.

    Args:
        probs: (N, C) softmax probabilities.
        labels: (N,) true class indices.

    Returns:
        (C, 4) int array; row i = TP_i, FP_i, TN_i, FN_i of the decision probs[:, i] > 0.5
        against label == i (the terms of the paper's micro-average equations).
    """
    probs = np.asarray(probs, float)
    decided = probs > THRESHOLD
    truth = np.asarray(labels)[:, None] == np.arange(probs.shape[1])
    return np.stack(
        [
            (decided & truth).sum(0),
            (decided & ~truth).sum(0),
            (~decided & ~truth).sum(0),
            (~decided & truth).sum(0),
        ],
        axis=1,
    )


def micro_scores(counts: np.ndarray) -> dict[str, float]:
    """Micro-averaged Acc, Sen, Spe x100 from per-class counts (paper Sec. 4).

    muAcc = sum_i (TP_i + TN_i) / sum_i (TP_i + FP_i + TN_i + FN_i),
    muSen = sum_i TP_i / sum_i (TP_i + FN_i), muSpe = sum_i TN_i / sum_i (TN_i + FP_i).
    With two classes, Sen and Spe are the second (positive) class's: TP_1 / (TP_1 + FN_1)
    and TN_1 / (TN_1 + FP_1) (module docstring).

    Args:
        counts: (C, 4) array of TP, FP, TN, FN per class (`one_vs_rest_counts`).
    """
    counts = np.asarray(counts, dtype=float)
    tp, fp, tn, fn = counts.sum(0)
    acc = _percent(tp + tn, tp + fp + tn + fn)
    if len(counts) == 2:
        tp, fp, tn, fn = counts[1]  # the positive class's
    return {"Acc": acc, "Sen": _percent(tp, tp + fn), "Spe": _percent(tn, tn + fp)}


def positive_class(class_names: list[str]) -> str | None:
    """The class whose Sen and Spe a two-class file reports (`micro_scores`), else None."""
    return class_names[1] if len(class_names) == 2 else None


def _percent(num: float, den: float) -> float:
    return float(100 * num / den) if den > 0 else float("nan")


def accuracy(pred_label: np.ndarray, labels: np.ndarray) -> float:
    """Ordinary C-class accuracy x100 of the argmax prediction (clean Acc3)."""
    pred_label, labels = np.asarray(pred_label), np.asarray(labels)
    return _percent(float((pred_label == labels).sum()), float(labels.size))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, tied values sharing the mean of their ranks."""
    values = np.asarray(values, float)
    order = np.argsort(values, kind="mergesort")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC x100 via the Mann-Whitney U statistic: P(score_pos > score_neg) + P(tie) / 2.

    AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg), R_pos the sum of the positives'
    average ranks among all scores (ties share ranks, counting one half).

    Args:
        scores: (N,) score per case, higher = more likely positive.
        positive: (N,) bool, true class membership.

    Returns:
        AUC x100, NaN when there are no positives or no negatives.
    """
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = average_ranks(scores)[positive].sum()
    return float(100 * (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def regression_errors(predictions: pd.DataFrame, regression: Mapping) -> np.ndarray:
    """(N, R) predicted - true value of each target, in the targets' units; NaN rows for the
    cases without targets (no lesion).

    Args:
        regression: The run's `TargetScale` as json (prediction-file metadata `regression`).
    """
    names = regression["names"]
    predicted = predictions[[f"pred_{n}" for n in names]].to_numpy(float)
    return predicted - predictions[[f"target_{n}" for n in names]].to_numpy(float)


def r_squared(predicted: np.ndarray, truth: np.ndarray) -> float:
    """1 - SS_res / SS_tot, SS_tot around the mean of `truth`; NaN when `truth` is constant."""
    truth = np.asarray(truth, float)
    total = float(((truth - truth.mean()) ** 2).sum())
    residual = float(((np.asarray(predicted, float) - truth) ** 2).sum())
    return 1 - residual / total if total > 0 else float("nan")


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's correlation coefficient; NaN when either is constant."""
    dx, dy = np.asarray(x, float) - np.mean(x), np.asarray(y, float) - np.mean(y)
    scale = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    return float((dx * dy).sum() / scale) if scale > 0 else float("nan")


def regression_summary(predictions: pd.DataFrame, regression: Mapping) -> dict[str, float]:
    """Per target `MAE_<t>`, `RMSE_<t>`, `R2_<t>`, `r_<t>` (its units) and the summaries over
    targets `MAE`, `RMSE` (in training sd units), `R2`, `r` (module docstring), over the cases
    that have targets."""
    errors = regression_errors(predictions, regression)
    kept = ~np.isnan(errors).any(axis=1)
    errors = errors[kept]
    summary: dict[str, float] = {}
    for index, name in enumerate(regression["names"]):
        truth = predictions[f"target_{name}"].to_numpy(float)[kept]
        predicted = predictions[f"pred_{name}"].to_numpy(float)[kept]
        summary[f"MAE_{name}"] = float(np.abs(errors[:, index]).mean())
        summary[f"RMSE_{name}"] = float(np.sqrt((errors[:, index] ** 2).mean()))
        summary[f"R2_{name}"] = r_squared(predicted, truth)
        summary[f"r_{name}"] = pearson_r(predicted, truth)
    sd = np.asarray(regression["sd"], float)
    names = regression["names"]
    summary["MAE"] = float(np.mean([summary[f"MAE_{n}"] for n in names] / sd))
    summary["RMSE"] = float(np.mean([summary[f"RMSE_{n}"] for n in names] / sd))
    summary["R2"] = float(np.mean([summary[f"R2_{n}"] for n in names]))
    summary["r"] = float(np.mean([summary[f"r_{n}"] for n in names]))
    return summary


PER_IMAGE_METRICS = ("JI", "DSC", "Acc", "Acc3", "MAE")


def per_image(
    predictions: pd.DataFrame,
    class_names: list[str],
    metric: str,
    regression: Mapping | None = None,
) -> np.ndarray:
    """Per-image values of one run whose mean over the non-NaN images is exactly the run's
    `summarize(...)[metric]`: what a paired test of that table cell must compare.

    - JI, DSC: per-image Jaccard/Dice x100 at the model input size; NaN for an empty ground
      truth.
    - Acc: the share x100 of the image's C one-vs-rest decisions (0.5 threshold per class)
      that are right; every image makes C decisions, so the mean over images is muAcc (paper
      Sec. 4).
    - Acc3: 100 if the argmax class is right, else 0 (clean 3-class accuracy).
    - MAE: the mean over targets of |error| / training sd (`regression`: the file's metadata
      `regression`); the wilcoxon test of a regression cell compares these absolute errors.
      NaN for a case without targets.
    Acc and Acc3 are NaN for a case labelled `UNMAPPED_LABEL` (external sets).

    Raises:
        KeyError: `metric` is not in `PER_IMAGE_METRICS`.
    """
    if metric == "MAE":
        errors = np.abs(regression_errors(predictions, regression))
        return (errors / np.asarray(regression["sd"], float)).mean(axis=1)
    if metric in ("JI", "DSC"):
        counts = [predictions[f"seg_{c}"].to_numpy() for c in ("tp", "fp", "fn")]
        return 100 * (jaccard if metric == "JI" else dice)(*counts)
    labels = predictions["label"].to_numpy()
    if metric == "Acc":
        probs = predictions[[f"prob_{name}" for name in class_names]].to_numpy(float)
        truth = labels[:, None] == np.arange(len(class_names))
        correct = ((probs > THRESHOLD) == truth).mean(axis=1)
    elif metric == "Acc3":
        correct = (predictions["pred_label"].to_numpy() == labels).astype(float)
    else:
        raise KeyError(f"no per-image form of {metric!r}; known: {PER_IMAGE_METRICS}")
    return np.where(labels == UNMAPPED_LABEL, np.nan, 100 * correct)


def summarize(
    predictions: pd.DataFrame, class_names: list[str], regression: Mapping | None = None
) -> dict[str, float]:
    """All metrics of one prediction file (one model, one seed), as percentages (but HD95 and
    the regression metrics).

    Args:
        predictions: Prediction-file rows (docs/architecture.md, "Prediction file"); rows
            labelled `UNMAPPED_LABEL` count in the segmentation metrics only.
        class_names: Class names in index order; `prob_<name>` columns hold the softmax.
        regression: The file's metadata `regression` when the run regresses targets.

    Returns:
        Stable keys: faithful `JI, DSC, Acc, Sen, Spe`; clean `JI_native, DSC_native, NSD,
        HD95, Acc3` and `AUC_<class name>` per class; `regression_summary`'s keys. A run
        without segmentation (no `seg_tp` column) has no JI, DSC and boundary keys, one
        without regression no regression keys.
    """
    classified = predictions[predictions["label"] != UNMAPPED_LABEL]
    probs = classified[[f"prob_{name}" for name in class_names]].to_numpy(float)
    labels = classified["label"].to_numpy()
    summary: dict[str, float] = {}
    if "seg_tp" in predictions:
        ji, dsc = segmentation_summary(predictions, "seg")
        summary |= {"JI": ji, "DSC": dsc}
    summary |= micro_scores(one_vs_rest_counts(probs, labels))
    if "seg_tp" in predictions:
        ji_native, dsc_native = segmentation_summary(predictions, "native")
        summary |= {"JI_native": ji_native, "DSC_native": dsc_native}
        summary["NSD"] = float(predictions["nsd"].mean())
        summary["HD95"] = float(predictions["hd95"].mean())
    summary["Acc3"] = accuracy(classified["pred_label"].to_numpy(), labels)
    for index, name in enumerate(class_names):
        summary[f"AUC_{name}"] = roc_auc(probs[:, index], labels == index)
    if regression is not None:
        summary |= regression_summary(predictions, regression)
    return summary
