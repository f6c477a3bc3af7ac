"""Paired tests: hand-computed cases, agreement with scipy/statsmodels, all-zero corners, Holm."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar

from medmtl import stats
from medmtl.annotated_parquet import write_annotated
from medmtl.errors import UserError
from medmtl.predictions import PredictionFile

CLASSES = ["nevus", "melanoma", "seborrheic_keratosis"]


def _file(model: str, seed: int, labels, probs, tp, fp, fn) -> PredictionFile:
    frame = pd.DataFrame(np.asarray(probs, float), columns=[f"prob_{c}" for c in CLASSES])
    frame.insert(0, "case_id", [f"c{i:02d}" for i in range(len(labels))])
    frame.insert(1, "label", labels)
    frame["pred_label"] = frame[[f"prob_{c}" for c in CLASSES]].to_numpy().argmax(axis=1)
    for prefix in ("seg", "native"):
        frame[f"{prefix}_tp"], frame[f"{prefix}_fp"], frame[f"{prefix}_fn"] = tp, fp, fn
    meta = {"model": model, "seed": seed, "eval_set": "isic_test", "class_names": CLASSES}
    return PredictionFile(Path(f"{model}/seed{seed}.parquet"), f"sha-{model}-{seed}", frame, meta)


def _random_files(model: str, seeds, skill: float, n: int = 30) -> list[PredictionFile]:
    labels = np.random.default_rng(0).integers(0, 3, n)  # same cases and labels for every model
    files = []
    for seed in seeds:
        rng = np.random.default_rng([seed, len(model)])
        logits = rng.normal(size=(n, 3))
        logits[np.arange(n), labels] += 3 * skill
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        gt = rng.integers(50, 100, n)
        tp = (gt * rng.uniform(0.5 * skill, skill, n)).astype(int)
        files.append(_file(model, seed, labels, probs, tp, rng.integers(0, 20, n), gt - tp))
    return files


def test_wilcoxon_hand_computed_exact_p():
    # five positive differences: exact two-sided p = 2 / 2**5, statistic min(R+, R-) = 0
    assert stats.wilcoxon_test(np.arange(1, 6) + 10.0, np.full(5, 10.0)) == (0.0, 2 / 32)


@pytest.mark.parametrize("seed", range(3))
def test_wilcoxon_equals_scipy_on_the_same_vectors(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(size=60), rng.uniform(size=60)
    expected = sps.wilcoxon(x - y, zero_method="wilcox")
    assert stats.wilcoxon_test(x, y) == pytest.approx((expected.statistic, expected.pvalue))


def test_wilcoxon_identical_inputs_give_p_one_without_scipy_warning():
    x = np.array([0.2, 0.5, 0.9])
    with np.errstate(all="raise"):
        assert stats.wilcoxon_test(x, x.copy()) == (0.0, 1.0)


def test_mcnemar_hand_computed_and_equal_to_statsmodels():
    x = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)  # model right on 6
    y = np.array([1, 0, 0, 0, 0, 0, 0, 1], bool)  # b = 5 (only model right), c = 1
    statistic, p = stats.mcnemar_test(x, y)
    reference = mcnemar([[1, 5], [1, 1]], exact=True)
    assert (statistic, p) == (reference.statistic, reference.pvalue)
    assert p == pytest.approx(2 * (1 + 6) / 2**6)  # two-sided binomial, k <= 1 of 6
    assert stats.mcnemar_test(x, x) == (0.0, 1.0)  # no discordant pairs


def test_rank_biserial_hand_computed():
    assert stats.rank_biserial(np.array([1.0, -2.0, 3.0, 0.0])) == pytest.approx((1 + 3 - 2) / 6)
    # McNemar-style 0/1 differences: (b - c) / (b + c)
    assert stats.rank_biserial(np.array([1, 1, 1, -1, 0])) == pytest.approx(0.5)
    assert stats.rank_biserial(np.zeros(4)) == 0.0


def test_holm_equals_hand_computation_and_keeps_nan():
    p = np.array([0.01, 0.04, 0.03, np.nan])
    np.testing.assert_allclose(stats.holm(p), [0.03, 0.06, 0.06, np.nan])


def test_bootstrap_ci_is_seeded_and_brackets_the_mean_difference():
    rng = np.random.default_rng(1)
    x, y = rng.normal(1, 1, 50), rng.normal(0, 1, 50)
    ci = stats.paired_mean_ci(x, y, n_boot=500, seed=7)
    assert ci == stats.paired_mean_ci(x, y, n_boot=500, seed=7)
    assert ci[0] < np.mean(x - y) < ci[1]
    assert stats.paired_mean_ci(x, x + 2, n_boot=500, seed=7) == (-2.0, -2.0)  # constant


def test_case_scores_average_dice_over_seeds_and_ensemble_probabilities():
    labels = [0, 1]
    files = [
        _file("m", 0, labels, [[0.9, 0.1, 0.0], [0.6, 0.4, 0.0]], [1, 0], [2, 0], [0, 0]),
        _file("m", 1, labels, [[0.9, 0.1, 0.0], [0.1, 0.9, 0.0]], [1, 0], [0, 0], [0, 0]),
    ]
    scores = stats.case_scores(files)
    assert scores.loc["c00", "DSC"] == pytest.approx(100 * (0.5 + 1.0) / 2)  # 2/4 and 2/2
    assert np.isnan(scores.loc["c01", "DSC"])  # empty ground truth
    # case c01: seed 0 says class 0, seed 1 class 1; the ensemble (0.35, 0.65) is right
    assert scores["Acc3"].tolist() == [100.0, 100.0]


def test_identical_models_are_not_significant():
    files = _random_files("he2020", [0, 1], 0.6)
    twin = [
        PredictionFile(f.path, f.sha256, f.frame, {**f.meta, "model": "tang2023"}) for f in files
    ]
    frame = stats.compute_stats(files + twin, "he2020", alpha=0.001, n_boot=100)
    assert frame["p"].tolist() == [1.0, 1.0, 1.0]
    assert not frame["significant"].any()
    assert frame["effect_size"].tolist() == [0.0, 0.0, 0.0]
    assert (frame[["ci_low", "ci_high"]].to_numpy() == 0).all()


def test_compute_stats_table_of_comparisons():
    files = _random_files("he2020", [0, 1], 0.3) + _random_files("resformer_parallel", [0, 1], 0.9)
    files += _random_files("tang2023", [0, 1], 0.5)
    frame = stats.compute_stats(files, "he2020", alpha=0.05, n_boot=200, seed=3)
    assert list(frame.columns) == list(stats.COLUMNS)
    assert frame["model"].tolist() == ["tang2023"] * 3 + ["resformer_parallel"] * 3  # paper order
    assert frame["test"].tolist() == ["wilcoxon", "wilcoxon", "mcnemar_exact"] * 2
    np.testing.assert_allclose(frame["p_holm"], stats.holm(frame["p"].to_numpy()))
    better = frame[(frame["model"] == "resformer_parallel") & (frame["metric"] == "DSC")].iloc[0]
    assert better["significant"] and better["ci_low"] > 0 and better["effect_size"] > 0
    assert frame.equals(stats.compute_stats(files, "he2020", alpha=0.05, n_boot=200, seed=3))


def test_empty_ground_truth_cases_drop_out_of_dice_tests_only():
    files = _random_files("he2020", [0], 0.5) + _random_files("tang2023", [0], 0.5)
    for f in files:
        f.frame.loc[:4, ["seg_tp", "seg_fn"]] = 0  # five cases without lesion
    frame = stats.compute_stats(files, "he2020", alpha=0.001, n_boot=50).set_index("metric")
    assert frame.loc["DSC", "n"] == 25 and frame.loc["Acc3", "n"] == 30


def test_unknown_reference_is_a_user_error():
    with pytest.raises(UserError, match="reference model 'nope'"):
        stats.compute_stats(_random_files("he2020", [0], 0.5), "nope", alpha=0.001)


def test_stats_file_round_trip_and_markdown(tmp_path):
    files = _random_files("he2020", [0], 0.4) + _random_files("tang2023", [0], 0.8)
    frame = stats.compute_stats(files, "he2020", alpha=0.001, n_boot=50)
    meta = stats.stats_metadata(files, "he2020", 0.001, 50, 0)
    stats.write_stats(frame, meta, tmp_path / "isic_test.parquet")
    read_frame, read_meta = stats.read_stats(tmp_path / "isic_test.parquet")
    pd.testing.assert_frame_equal(read_frame, frame)
    assert read_meta == meta
    markdown = (tmp_path / "isic_test.md").read_text()
    assert "reference `he2020`" in markdown and "| tang2023 | DSC | wilcoxon | 30 |" in markdown
    stats.check_stats_inputs(meta, files, tmp_path / "isic_test.parquet")
    with pytest.raises(UserError, match="re-run `medmtl stats`"):
        stats.check_stats_inputs(meta, files[:1], tmp_path / "isic_test.parquet")


def test_read_stats_rejects_other_files(tmp_path):
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(UserError, match="metadata 'medmtl' missing"):
        stats.read_stats(tmp_path / "x.parquet")
    write_annotated(tmp_path / "y.parquet", pd.DataFrame({"a": [1]}), {})
    with pytest.raises(UserError, match="not a medmtl stats file"):
        stats.read_stats(tmp_path / "y.parquet")
    with pytest.raises(UserError, match="not found"):
        stats.read_stats(tmp_path / "missing.parquet")
