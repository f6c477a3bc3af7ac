"""Metrics against hand-computed confusion matrices, brute-force AUC and the empty-GT corner."""

import doctest
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from medmtl.evaluation import metrics

CLASSES = ["nevus", "melanoma", "seborrheic_keratosis"]
# Six images, three classes. Per-class 0.5 threshold decisions, worked by hand:
#   class 0: TP 1 (img 0), FP 1 (img 3), FN 1 (img 1), TN 3
#   class 1: TP 1 (img 2), FP 1 (img 5), FN 1 (img 3), TN 3
#   class 2: TP 1 (img 4), FP 0,         FN 1 (img 5), TN 4
# Sums TP 3, FP 2, TN 10, FN 3 -> muAcc 13/18, muSen 3/6, muSpe 10/12.
# Argmax: images 3 and 5 wrong -> 3-class accuracy 4/6.
PROBS = np.array(
    [
        [0.70, 0.20, 0.10],
        [0.40, 0.35, 0.25],
        [0.10, 0.80, 0.10],
        [0.60, 0.30, 0.10],
        [0.20, 0.20, 0.60],
        [0.10, 0.55, 0.35],
    ]
)
LABELS = np.array([0, 0, 1, 1, 2, 2])


def test_doctests_pass():
    assert doctest.testmod(metrics).failed == 0


def test_one_vs_rest_counts_match_hand_computed_confusion_matrices():
    expected = np.array([[1, 1, 3, 1], [1, 1, 3, 1], [1, 0, 4, 1]])  # TP, FP, TN, FN per class
    np.testing.assert_array_equal(metrics.one_vs_rest_counts(PROBS, LABELS), expected)


def test_micro_scores_follow_the_paper_equations():
    scores = metrics.micro_scores(metrics.one_vs_rest_counts(PROBS, LABELS))
    assert scores["Acc"] == pytest.approx(100 * 13 / 18)
    assert scores["Sen"] == pytest.approx(100 * 3 / 6)
    assert scores["Spe"] == pytest.approx(100 * 10 / 12)


def test_two_classes_report_the_positive_class_sensitivity_and_specificity():
    """With two classes the micro averages are one number; Sen and Spe are then the second
    class's recall and the first class's recall, as scikit-learn computes them."""
    from sklearn import metrics as skm

    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6],
                      [0.1, 0.9]])  # fmt: skip
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    predicted = probs.argmax(1)
    scores = metrics.micro_scores(metrics.one_vs_rest_counts(probs, labels))
    assert scores["Acc"] == pytest.approx(100 * skm.accuracy_score(labels, predicted))
    assert scores["Sen"] == pytest.approx(100 * skm.recall_score(labels, predicted, pos_label=1))
    assert scores["Spe"] == pytest.approx(100 * skm.recall_score(labels, predicted, pos_label=0))
    assert len({scores["Acc"], scores["Sen"], scores["Spe"]}) == 3  # 5/7, 3/4, 2/3
    assert metrics.positive_class(["benign", "malignant"]) == "malignant"
    assert metrics.positive_class(["melanoma", "nevus", "seborrheic_keratosis"]) is None


def test_threshold_is_strict_and_an_image_may_be_positive_for_no_class():
    counts = metrics.one_vs_rest_counts(np.array([[0.5, 0.3, 0.2]]), np.array([0]))
    np.testing.assert_array_equal(counts[:, 0], [0, 0, 0])  # no TP: 0.5 is not > 0.5
    assert counts[0, 3] == 1  # FN for the true class


def test_dice_and_jaccard_of_small_masks():
    gt = np.array([[1, 1], [1, 0]], bool)
    pred = np.array([[1, 1], [0, 1]], bool)
    tp, fp, fn = metrics.pixel_counts(gt, pred)
    assert (tp, fp, fn) == (2, 1, 1)
    assert float(metrics.dice(tp, fp, fn)) == pytest.approx(4 / 6)
    assert float(metrics.jaccard(tp, fp, fn)) == pytest.approx(2 / 4)


def test_empty_ground_truth_gives_nan_whatever_the_prediction():
    assert math.isnan(float(metrics.dice(0, 5, 0)))
    assert math.isnan(float(metrics.jaccard(0, 0, 0)))
    assert float(metrics.dice(0, 5, 3)) == 0.0  # non-empty GT, missed: a real zero


def test_segmentation_summary_skips_empty_ground_truth_images():
    frame = pd.DataFrame({"seg_tp": [3, 1, 0], "seg_fp": [1, 0, 2], "seg_fn": [0, 1, 0]})
    ji, dsc = metrics.segmentation_summary(frame, "seg")
    assert ji == pytest.approx(100 * (3 / 4 + 1 / 2) / 2)
    assert dsc == pytest.approx(100 * (6 / 7 + 2 / 3) / 2)


def test_segmentation_summary_of_only_empty_ground_truth_is_nan():
    frame = pd.DataFrame({"seg_tp": [0, 0], "seg_fp": [1, 0], "seg_fn": [0, 0]})
    assert all(math.isnan(v) for v in metrics.segmentation_summary(frame, "seg"))


def _brute_force_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    pairs = list(itertools.product(scores[positive], scores[~positive]))
    return 100 * sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)


def test_auc_hand_computed():
    # positives 0.7, 0.4 against negatives 0.1, 0.6, 0.2, 0.1: 4 + 3 of 8 pairs ordered right
    assert metrics.roc_auc(PROBS[:, 0], LABELS == 0) == pytest.approx(100 * 7 / 8)


@pytest.mark.parametrize("seed", range(5))
def test_auc_equals_brute_force_pair_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=40) / 5  # few distinct values: many ties
    positive = rng.random(40) < 0.3
    assert metrics.roc_auc(scores, positive) == pytest.approx(_brute_force_auc(scores, positive))


def test_auc_is_nan_when_a_class_is_absent():
    assert math.isnan(metrics.roc_auc(np.array([0.1, 0.9]), np.array([False, False])))
    assert math.isnan(metrics.roc_auc(np.array([0.1, 0.9]), np.array([True, True])))


def test_average_ranks_share_ties():
    np.testing.assert_array_equal(
        metrics.average_ranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1, 3.5, 2]
    )


def _frame() -> pd.DataFrame:
    frame = pd.DataFrame(PROBS, columns=[f"prob_{c}" for c in CLASSES])
    frame["label"] = LABELS
    frame["pred_label"] = PROBS.argmax(axis=1)
    for prefix in ("seg", "native"):
        frame[f"{prefix}_tp"] = [3, 1, 0, 2, 2, 2]
        frame[f"{prefix}_fp"] = [1, 0, 2, 0, 0, 0]
        frame[f"{prefix}_fn"] = [0, 1, 0, 0, 0, 0]
    frame["native_tp"] *= 10  # native counts differ: a separate, clean definition
    frame["nsd"] = [100.0, 50.0, 0.0, 100.0, 100.0, 100.0]  # image 2: empty truth, prediction
    frame["hd95"] = [0.0, 1.0, 4.2, 0.0, 0.0, 0.0]  # 4.2: the worst value of its policy
    return frame


def test_summarize_returns_stable_keys_and_values():
    summary = metrics.summarize(_frame(), CLASSES)
    expected_keys = {"JI", "DSC", "Acc", "Sen", "Spe", "JI_native", "DSC_native", "Acc3"}
    expected_keys |= {"NSD", "HD95"}
    assert set(summary) == expected_keys | {f"AUC_{c}" for c in CLASSES}
    assert summary["Acc"] == pytest.approx(100 * 13 / 18)
    assert summary["Acc3"] == pytest.approx(100 * 4 / 6)
    assert summary["AUC_nevus"] == pytest.approx(100 * 7 / 8)
    assert summary["JI"] == pytest.approx(100 * (3 / 4 + 1 / 2 + 1 + 1 + 1) / 5)
    assert summary["JI_native"] == pytest.approx(100 * (30 / 31 + 10 / 11 + 1 + 1 + 1) / 5)
    # boundary metrics: every image counts, the empty-truth one too (never left out)
    assert summary["NSD"] == pytest.approx(450 / 6) and summary["HD95"] == pytest.approx(5.2 / 6)


# Two regression targets over the six images, training sds 2 and 0.5. Errors (pred - true):
#   a: +1, -1, +2, 0, -2, 0  -> MAE 1, RMSE sqrt(10/6), in sds: 0.5, sqrt(10/6)/2
#   b: 0.5, 0.5, 0, 0, -0.5, 0 -> MAE 0.25, RMSE sqrt(0.75/6), in sds: 0.5, sqrt(0.75/6)/0.5
REGRESSION = {"names": ["a", "b"], "mean": [10.0, 1.0], "sd": [2.0, 0.5]}
TRUE_A, TRUE_B = np.array([8.0, 9, 10, 11, 12, 13]), np.array([0.5, 1, 1.5, 1, 0.5, 2])
PRED_A = TRUE_A + [1, -1, 2, 0, -2, 0]
PRED_B = TRUE_B + [0.5, 0.5, 0, 0, -0.5, 0]


def _regression_frame() -> pd.DataFrame:
    return _frame().assign(target_a=TRUE_A, pred_a=PRED_A, target_b=TRUE_B, pred_b=PRED_B)


def test_regression_metrics_by_hand_and_against_scipy_and_sklearn():
    from scipy import stats
    from sklearn import metrics as skm

    summary = metrics.summarize(_regression_frame(), CLASSES, REGRESSION)
    assert summary["MAE_a"] == pytest.approx(1.0) and summary["MAE_b"] == pytest.approx(0.25)
    assert summary["RMSE_a"] == pytest.approx(math.sqrt(10 / 6))
    assert summary["MAE"] == pytest.approx((1 / 2 + 0.25 / 0.5) / 2)  # in training sds
    assert summary["RMSE"] == pytest.approx((math.sqrt(10 / 6) / 2 + math.sqrt(0.75 / 6) / 0.5) / 2)
    # R^2 of a by hand: SS_res 10, SS_tot of 8..13 around 10.5 = 17.5
    assert summary["R2_a"] == pytest.approx(1 - 10 / 17.5)
    for name, truth, predicted in (("a", TRUE_A, PRED_A), ("b", TRUE_B, PRED_B)):
        assert summary[f"MAE_{name}"] == pytest.approx(skm.mean_absolute_error(truth, predicted))
        assert summary[f"R2_{name}"] == pytest.approx(skm.r2_score(truth, predicted))
        assert summary[f"r_{name}"] == pytest.approx(stats.pearsonr(predicted, truth).statistic)
    assert summary["R2"] == pytest.approx((summary["R2_a"] + summary["R2_b"]) / 2)
    assert summary["r"] == pytest.approx((summary["r_a"] + summary["r_b"]) / 2)
    assert math.isnan(metrics.pearson_r([1.0, 2.0], [3.0, 3.0]))
    assert math.isnan(metrics.r_squared([1.0, 2.0], [3.0, 3.0]))


def test_a_task_the_run_lacks_has_no_metrics():
    no_segmentation = _frame().drop(columns=["seg_tp", "seg_fp", "seg_fn", "native_tp",
                                             "native_fp", "native_fn", "nsd", "hd95"])  # fmt: skip
    summary = metrics.summarize(no_segmentation, CLASSES)
    assert not {"JI", "DSC", "NSD", "HD95", "MAE"} & summary.keys() and "Acc" in summary


@pytest.mark.parametrize("metric", metrics.PER_IMAGE_METRICS)
def test_per_image_values_average_to_the_summary(metric):
    """The per-image form of each tested metric has the run's summary as its mean."""
    frame = _regression_frame()
    values = metrics.per_image(frame, CLASSES, metric, REGRESSION)
    summary = metrics.summarize(frame, CLASSES, REGRESSION)
    assert np.nanmean(values) == pytest.approx(summary[metric])
    if metric == "MAE":  # image 0: |+1| / 2 and |0.5| / 0.5, averaged
        assert values[0] == pytest.approx((0.5 + 1.0) / 2)
    if metric == "Acc":  # image 1: probs (0.40, 0.35, 0.25), label 0: 2 of 3 decisions right
        assert values[1] == pytest.approx(200 / 3)


def test_per_image_of_an_untested_metric_is_refused():
    with pytest.raises(KeyError, match="no per-image form"):
        metrics.per_image(_frame(), CLASSES, "Sen")


def test_metric_definitions():
    assert [metrics.metric_definition(k) for k in ("JI", "Spe", "DSC_native", "AUC_melanoma")] == [
        "faithful",
        "faithful",
        "clean",
        "clean",
    ]
