"""Paired tests at both levels: hand-computed cases, agreement with scipy and brute force,
simulated data with a known seed effect, all-zero corners, Holm."""

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from medmtl.analysis import run_level, stats, stats_file
from medmtl.annotated_parquet import write_annotated
from medmtl.errors import UserError
from medmtl.evaluation.predictions import PredictionFile
from medmtl.reporting import tables

CLASSES = ["nevus", "melanoma", "seborrheic_keratosis"]


def _file(model: str, seed: int, labels, probs, tp, fp, fn) -> PredictionFile:
    frame = pd.DataFrame(np.asarray(probs, float), columns=[f"prob_{c}" for c in CLASSES])
    frame.insert(0, "case_id", [f"c{i:02d}" for i in range(len(labels))])
    frame.insert(1, "label", labels)
    frame["pred_label"] = frame[[f"prob_{c}" for c in CLASSES]].to_numpy().argmax(axis=1)
    for prefix in ("seg", "native"):
        frame[f"{prefix}_tp"], frame[f"{prefix}_fp"], frame[f"{prefix}_fn"] = tp, fp, fn
    frame["nsd"], frame["hd95"] = 90.0, 2.0
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


def test_rank_biserial_hand_computed():
    assert stats.rank_biserial(np.array([1.0, -2.0, 3.0, 0.0])) == pytest.approx((1 + 3 - 2) / 6)
    # 0/1 differences (paired correctness): (b - c) / (b + c)
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


def test_run_values_hold_one_column_per_seed_of_per_image_values():
    labels = [0, 1]
    files = [
        _file("m", 0, labels, [[0.9, 0.1, 0.0], [0.6, 0.4, 0.0]], [1, 0], [2, 0], [0, 0]),
        _file("m", 1, labels, [[0.9, 0.1, 0.0], [0.1, 0.9, 0.0]], [1, 0], [0, 0], [0, 0]),
    ]
    dsc = stats.run_values(files, "DSC")
    assert list(dsc.columns) == [0, 1] and list(dsc.index) == ["c00", "c01"]
    assert dsc.loc["c00"].tolist() == pytest.approx([50.0, 100.0])  # 2/4 and 2/2
    assert dsc.loc["c01"].isna().all()  # empty ground truth
    acc = stats.run_values(files, "Acc")  # share of the 3 one-vs-rest decisions that are right
    assert acc.loc["c01"].tolist() == pytest.approx([100 / 3, 100.0])


@pytest.mark.parametrize("metric", stats.TESTED_METRICS)
def test_tested_means_are_the_cells_means(metric):
    """Rule 1: the test compares exactly the numbers the table prints (seed mean of the
    per-seed summaries), whatever the metric."""
    files = _random_files("he2020", range(3), 0.4) + _random_files("tang2023", range(3), 0.7)
    for f in files:
        f.frame.loc[:3, ["seg_tp", "seg_fn"]] = 0  # empty ground truths leave JI/DSC
    row = stats.compute_stats(files, "he2020", 0.001, n_boot=50, tested=[metric]).iloc[0]
    cells = {
        c.model: c
        for c in tables.derive_cells(tables.seed_summaries(files), None)
        if c.metric == metric
    }
    assert row["mean_model"] == pytest.approx(cells["tang2023"].mean, abs=1e-9)
    assert row["mean_reference"] == pytest.approx(cells["he2020"].mean, abs=1e-9)


def test_permutation_test_equals_brute_force_enumeration_of_relabellings():
    rng = np.random.default_rng(4)
    a, b = rng.normal(1, 1, 5), rng.normal(0, 1, 4)
    pooled, observed = np.concatenate([a, b]), a.mean() - b.mean()
    null = [
        pooled[list(i)].mean() - np.delete(pooled, list(i)).mean()
        for i in itertools.combinations(range(9), 5)
    ]
    null = np.array(null)
    one_sided = min((null >= observed - 1e-12).mean(), (null <= observed + 1e-12).mean())
    assert run_level.run_permutation_test(a, b, 2000, 0) == pytest.approx(min(1, 2 * one_sided))
    assert run_level.run_permutation_test(a, a.copy(), 2000, 0) == 1.0


def test_permutation_floor_is_the_smallest_attainable_p():
    assert run_level.permutation_floor(5, 5, 2000) == pytest.approx(2 / 252)
    assert run_level.permutation_floor(8, 8, 100000) == pytest.approx(2 / 12870)
    assert run_level.permutation_floor(10, 10, 999) == pytest.approx(2 / 1000)  # sampled
    separated = run_level.run_permutation_test(np.arange(5.0) + 10, np.arange(5.0), 2000, 0)
    assert separated == pytest.approx(run_level.permutation_floor(5, 5, 2000))


def test_two_level_bootstrap_matches_the_exact_bootstrap_distribution():
    """Brute force: every equally likely two-level resample of a tiny case (runs of each model,
    then images shared by both), against the vectorised draws' mean and variance."""
    model = np.array([[60.0, 70.0, 90.0], [40.0, 52.0, 71.0]])  # (runs, images)
    reference = np.array([[50.0, 61.0, 79.0], [58.0, 66.0, 88.0]])
    exact = []
    for ra in itertools.product(range(2), repeat=2):
        for rb in itertools.product(range(2), repeat=2):
            per_image = model[list(ra)].mean(0) - reference[list(rb)].mean(0)
            exact += [per_image[list(i)].mean() for i in itertools.product(range(3), repeat=3)]
    deltas = run_level.two_level_deltas(model, reference, 40000, np.random.default_rng(0))
    assert deltas.mean() == pytest.approx(np.mean(exact), abs=0.15)
    assert deltas.var() == pytest.approx(np.var(exact), rel=0.03)


def _simulated_runs(rng, delta, seed_sd, n_images=80, seeds=5, image_sd=10.0, noise_sd=1.0):
    """Per-image values of two models: a shared image difficulty, a run offset per training
    run (the seed effect, sd `seed_sd`), model effect `delta` and per-image noise."""
    difficulty = rng.normal(60, image_sd, n_images)
    index = [f"c{i:03d}" for i in range(n_images)]

    def runs(shift):
        offsets = rng.normal(0, seed_sd, seeds)
        noise = rng.normal(0, noise_sd, (seeds, n_images))
        return pd.DataFrame((difficulty + shift + offsets[:, None] + noise).T, index=index)

    return runs(delta), runs(0.0)


def test_seed_level_keeps_its_size_where_the_per_image_test_does_not():
    """Known seed effect, no model effect: the per-image test (networks fixed) rejects most
    of the time, the per-run permutation test at its nominal rate at most."""
    rng = np.random.default_rng(11)
    per_image, per_run = [], []
    for _ in range(150):
        model, reference = _simulated_runs(rng, delta=0.0, seed_sd=2.0)
        row = stats.compare(model, reference, "DSC", n_boot=300, seed=0)
        per_image.append(row["p"] < 0.05)
        per_run.append(row["p_seed"] < 0.05)
    assert np.mean(per_image) > 0.5
    assert np.mean(per_run) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 150)


def test_seed_level_detects_a_large_model_effect():
    rng = np.random.default_rng(12)
    rejected = [
        stats.compare(*_simulated_runs(rng, delta=6.0, seed_sd=2.0), "DSC", 300, 0)["p_seed"] < 0.05
        for _ in range(40)
    ]
    assert np.mean(rejected) > 0.8


def test_two_level_ci_covers_the_true_difference():
    """Coverage of the model effect with seed and image variation (5 and 8 runs): the two-level
    bootstrap over 5 runs is known to run a little short of 95% (module docstring)."""
    rng = np.random.default_rng(13)
    for seeds, bound in ((5, 0.8), (8, 0.85)):
        covered = []
        for _ in range(100):
            model, reference = _simulated_runs(rng, delta=3.0, seed_sd=2.0, seeds=seeds)
            row = stats.compare(model, reference, "DSC", n_boot=400, seed=0)
            covered.append(row["seed_ci_low"] <= 3.0 <= row["seed_ci_high"])
        assert np.mean(covered) >= bound


def _marks(model: pd.DataFrame, reference: pd.DataFrame, alpha: float) -> tuple[bool, bool]:
    row = stats.compare(model, reference, "DSC", n_boot=20000, seed=0)  # exact up to 8 vs 8
    frame = stats._adjust(
        pd.DataFrame([{"eval_set": "e", "model": "a", "reference": "b", **row}]), alpha
    )
    return bool(frame["significant"].iloc[0]), bool(frame["seed_significant"].iloc[0])


def test_seeds_disagreeing_in_sign_get_the_dagger_but_not_the_second_mark():
    rng = np.random.default_rng(14)
    model, reference = _simulated_runs(rng, delta=0.0, seed_sd=0.0, noise_sd=0.2)
    offsets = np.array([3.0, -2.0, 2.5, -1.5, 1.0])  # the runs disagree in sign
    model += offsets + 0.6
    row = stats.compare(model, reference, "DSC", n_boot=500, seed=0)
    assert row["p"] < 1e-6 and row["sign_agree"] < row["sign_pairs"]
    assert _marks(model, reference, alpha=0.001) == (True, False)


def test_a_large_consistent_effect_gets_both_marks_when_the_seeds_allow():
    rng = np.random.default_rng(15)
    model, reference = _simulated_runs(rng, delta=8.0, seed_sd=1.0, seeds=8)
    row = stats.compare(model, reference, "DSC", n_boot=20000, seed=0)
    assert row["sign_agree"] == row["sign_pairs"] == 64
    assert row["p_seed"] == pytest.approx(2 / 12870)  # the floor with 8 vs 8 runs
    assert _marks(model, reference, alpha=0.001) == (True, True)
    five = [frame.iloc[:, :5] for frame in (model, reference)]  # 2/252 > 0.001: cannot reach
    assert _marks(*five, alpha=0.001) == (True, False)


def test_seed_level_note_says_when_the_seeds_cannot_reach_alpha():
    frame = pd.DataFrame(
        {"p_seed_floor": [2 / 252] * 3, "seeds_model": [5] * 3, "seeds_reference": [5] * 3}
    )
    note = run_level.seed_level_note(frame, 0.001)
    assert "5 seeds" in note and "0.0079" in note and "0.024 after Holm over 3" in note
    assert run_level.seed_level_note(frame.assign(p_seed_floor=2 / 12870), 0.001) == ""


def test_comparing_models_evaluated_on_different_cases_is_refused():
    model, reference = _simulated_runs(np.random.default_rng(0), 1.0, 1.0)
    with pytest.raises(UserError, match="different cases"):
        stats.compare(model.iloc[1:], reference, "DSC", 50, 0)


def test_identical_models_are_not_significant():
    files = _random_files("he2020", [0, 1], 0.6)
    twin = [
        PredictionFile(f.path, f.sha256, f.frame, {**f.meta, "model": "tang2023"}) for f in files
    ]
    frame = stats.compute_stats(files + twin, "he2020", alpha=0.001, n_boot=100)
    assert frame["p"].tolist() == [1.0, 1.0, 1.0] and frame["p_seed"].tolist() == [1.0] * 3
    assert not frame["significant"].any() and not frame["seed_significant"].any()
    assert frame["effect_size"].tolist() == [0.0, 0.0, 0.0]
    assert (frame[["ci_low", "ci_high"]].to_numpy() == 0).all()


def test_compute_stats_table_of_comparisons():
    files = _random_files("he2020", [0, 1], 0.3) + _random_files("resformer_parallel", [0, 1], 0.9)
    files += _random_files("tang2023", [0, 1], 0.5)
    frame = stats.compute_stats(files, "he2020", alpha=0.05, n_boot=200, seed=3)
    assert list(frame.columns) == list(stats.COLUMNS)
    assert frame["model"].tolist() == ["tang2023"] * 3 + ["resformer_parallel"] * 3  # paper order
    assert frame["metric"].tolist() == ["JI", "DSC", "Acc"] * 2
    np.testing.assert_allclose(frame["p_seed_holm"], stats.holm(frame["p_seed"].to_numpy()))
    np.testing.assert_allclose(frame["p_holm"], stats.holm(frame["p"].to_numpy()))
    better = frame[(frame["model"] == "resformer_parallel") & (frame["metric"] == "DSC")].iloc[0]
    assert better["significant"] and better["ci_low"] > 0 and better["effect_size"] > 0
    assert frame.equals(stats.compute_stats(files, "he2020", alpha=0.05, n_boot=200, seed=3))


def test_empty_ground_truth_cases_drop_out_of_dice_tests_only():
    files = _random_files("he2020", [0], 0.5) + _random_files("tang2023", [0], 0.5)
    for f in files:
        f.frame.loc[:4, ["seg_tp", "seg_fn"]] = 0  # five cases without lesion
    frame = stats.compute_stats(files, "he2020", alpha=0.001, n_boot=50).set_index("metric")
    assert frame.loc["DSC", "n"] == 25 and frame.loc["Acc", "n"] == 30


def test_unknown_reference_is_a_user_error():
    with pytest.raises(UserError, match="reference model 'nope'"):
        stats.compute_stats(_random_files("he2020", [0], 0.5), "nope", alpha=0.001)


def test_stats_file_round_trip_and_markdown(tmp_path):
    files = _random_files("he2020", [0], 0.4) + _random_files("tang2023", [0], 0.8)
    frame = stats.compute_stats(files, "he2020", alpha=0.001, n_boot=50)
    meta = stats_file.stats_metadata(files, "he2020", 0.001, 50, 0)
    stats_file.write_stats(frame, meta, tmp_path / "isic_test.parquet")
    read_frame, read_meta = stats_file.read_stats(tmp_path / "isic_test.parquet")
    pd.testing.assert_frame_equal(read_frame, frame)
    assert read_meta == meta
    markdown = (tmp_path / "isic_test.md").read_text()
    assert "reference `he2020`" in markdown and "| tang2023 | DSC | 30 |" in markdown
    stats_file.check_stats_inputs(meta, files, tmp_path / "isic_test.parquet")
    with pytest.raises(UserError, match="re-run `medmtl stats`"):
        stats_file.check_stats_inputs(meta, files[:1], tmp_path / "isic_test.parquet")


def test_read_stats_rejects_other_files(tmp_path):
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(UserError, match="metadata 'medmtl' missing"):
        stats_file.read_stats(tmp_path / "x.parquet")
    write_annotated(tmp_path / "y.parquet", pd.DataFrame({"a": [1]}), {})
    with pytest.raises(UserError, match="not a medmtl stats file"):
        stats_file.read_stats(tmp_path / "y.parquet")
    with pytest.raises(UserError, match="not found"):
        stats_file.read_stats(tmp_path / "missing.parquet")


def test_second_mark_needs_the_per_image_test_too():
    row = {"eval_set": "e", "model": "a", "reference": "b", "p": 0.5, "p_seed": 1e-9}
    frame = stats._adjust(pd.DataFrame([row]).reindex(columns=stats.COLUMNS), alpha=0.001)
    assert not frame["significant"].iloc[0] and not frame["seed_significant"].iloc[0]
