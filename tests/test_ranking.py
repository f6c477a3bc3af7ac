"""Ranking stability: the bootstrap against exact enumeration on a tiny case, ranks and tau on
the full data, pairwise tests with Holm per metric, significance maps, files and command."""

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from medmtl.analysis import ranking, stats
from medmtl.cli import main
from medmtl.evaluation.predictions import PredictionFile, write_prediction_file

CLASSES = ["nevus", "melanoma", "seborrheic_keratosis"]
META = {
    "eval_set": "synthetic_test", "dataset": "synthetic", "class_names": CLASSES, "run_id": "r",
    "checkpoint_sha256": "k", "split_sha256": "s", "data_sha256": "d", "git_commit": "c",
    "git_dirty": False, "subset": "test", "selection_subset": "val", "checkpoint": "best.pt",
    "config_sha256": "c", "profile": "demo", "tracking_uri": "sqlite:///x.db",
    "nsd_tolerance": 2.0,
}  # fmt: skip


def _file(model: str, seed: int, dice: list[float], correct: list[bool]) -> PredictionFile:
    """A prediction file whose per-image DSC is `dice` (x100) and argmax right where `correct`."""
    n = len(dice)
    labels = np.arange(n) % 3
    predicted = np.where(correct, labels, (labels + 1) % 3)
    probs = np.full((n, 3), 0.1)
    probs[np.arange(n), predicted] = 0.8
    frame = pd.DataFrame(probs, columns=[f"prob_{c}" for c in CLASSES])
    frame.insert(0, "case_id", [f"c{i}" for i in range(n)])
    frame.insert(1, "label", labels)
    frame["pred_label"] = predicted
    tp = np.round(np.asarray(dice) * 10).astype(int)  # DSC = 2 tp / (2 tp + fn), 2 tp + fn = 2000
    for prefix in ("seg", "native"):
        frame[f"{prefix}_tp"], frame[f"{prefix}_fp"], frame[f"{prefix}_fn"] = tp, 0, 2000 - 2 * tp
    frame["nsd"], frame["hd95"] = 90.0, 2.0
    meta = META | {"model": model, "seed": seed}
    return PredictionFile(Path(f"{model}/seed{seed}.parquet"), f"{model}{seed}", frame, meta)


def _random_files(skills: dict[str, float], seeds=range(3), n: int = 40) -> list[PredictionFile]:
    files = []
    for number, (model, skill) in enumerate(skills.items()):
        for seed in seeds:
            rng = np.random.default_rng([number, seed])
            dice = np.clip(rng.normal(60 + 10 * skill, 8, n), 1, 99)
            files.append(_file(model, seed, list(dice), list(rng.uniform(size=n) < skill)))
    return files


def test_rank_distribution_matches_exact_enumeration_of_the_two_level_bootstrap():
    """2 models x 2 runs x 3 images: every equally likely resample (runs per model, images
    shared), P(model A ranks first) counted by brute force vs the bootstrap's frequency."""
    a = [[60.0, 70.0, 90.0], [40.0, 52.0, 71.0]]
    b = [[50.0, 61.0, 79.0], [58.0, 66.0, 88.0]]
    files = [_file("he2020", s, a[s], [True] * 3) for s in range(2)]
    files += [_file("tang2023", s, b[s], [True] * 3) for s in range(2)]
    first = []
    for ra in itertools.product(range(2), repeat=2):
        for rb in itertools.product(range(2), repeat=2):
            for images in itertools.product(range(3), repeat=3):
                mean_a = np.mean([a[r][i] for r in ra for i in images])
                mean_b = np.mean([b[r][i] for r in rb for i in images])
                first.append(1.0 if mean_a > mean_b else 0.5 if mean_a == mean_b else 0.0)
    ranks = ranking.rank_samples(files, n_boot=5000, seed=0)
    dsc = ranks[(ranks["metric"] == "DSC") & (ranks["model"] == "he2020")]
    # ties share rank 1.5: count them as half a first place
    observed = ((dsc["rank"] == 1) + 0.5 * (dsc["rank"] == 1.5)).mean()
    assert observed == pytest.approx(np.mean(first), abs=0.025)  # 3.5 sd of the estimate


def test_full_data_ranks_and_kendall_tau():
    files = _random_files({"he2020": 0.2, "tang2023": 0.5, "resformer_sequential": 0.9})
    ranks = ranking.rank_samples(files, n_boot=200, seed=1)
    assert list(ranks.columns) == list(ranking.RANK_COLUMNS)
    assert len(ranks) == 3 * 200 * 3  # metrics x samples x models
    for metric in stats.TESTED_METRICS:
        rows = ranks[ranks["metric"] == metric]
        cells = {
            m: stats.run_values([f for f in files if f.model == m], metric).mean().mean()
            for m in ("he2020", "tang2023", "resformer_sequential")
        }
        by_sorting = {m: r + 1 for r, m in enumerate(sorted(cells, key=cells.get, reverse=True))}
        assert rows.groupby("model")["full_rank"].first().to_dict() == by_sorting
        sample = rows[rows["sample"] == 7].set_index("model")
        expected = sps.kendalltau(sample["full_rank"], sample["rank"]).statistic
        assert sample["kendall_tau"].iloc[0] == pytest.approx(expected)


def test_kendall_tau_b_equals_scipy_with_and_without_ties():
    reference = np.array([1.0, 2.5, 2.5, 4.0, 5.0])
    samples = np.array([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1], [2, 1, 3, 3, 5], [1, 1, 1, 1, 1]], float)
    expected = [sps.kendalltau(reference, s).statistic for s in samples]
    np.testing.assert_allclose(ranking.kendall_tau_b(reference, samples), expected)


def test_pairwise_tests_every_pair_with_holm_per_metric():
    files = _random_files({"he2020": 0.2, "tang2023": 0.5, "resformer_sequential": 0.9})
    pairs = ranking.pairwise_tests(files, alpha=0.05, n_boot=100)
    assert len(pairs) == 3 * 3  # 3 pairs x 3 metrics
    for _, rows in pairs.groupby("metric"):
        np.testing.assert_allclose(rows["p_holm"], stats.holm(rows["p"].to_numpy()))
    one = pairs[(pairs["metric"] == "DSC") & (pairs["model"] == "he2020")]
    alone = stats.compute_comparisons(files, [("he2020", "tang2023", ("DSC",))], 0.05, 100)
    assert one.iloc[0]["p"] == alone.iloc[0]["p"]


def test_significance_map_symbols():
    pairs = pd.DataFrame(
        {
            "metric": ["DSC"] * 3,
            "model": ["a", "a", "b"],
            "reference": ["b", "c", "c"],
            "mean_model": [70.0, 50.0, 60.0],
            "mean_reference": [60.0, 55.0, 60.0],
            "significant": [True, True, False],
            "seed_significant": [True, False, False],
        }
    )
    lines = ranking.significance_map(pairs, "DSC").splitlines()
    assert lines[2] == "| a |  | ++ | - |"
    assert lines[3] == "| b | -- |  | . |"
    assert lines[4] == "| c | + | . |  |"


def test_stats_command_writes_ranking_files(tmp_path):
    directory = tmp_path / "synthetic_test"
    for f in _random_files({"he2020": 0.2, "tang2023": 0.8}, seeds=range(2), n=20):
        write_prediction_file(directory / f.model / f"seed{f.seed}.parquet", f.frame, f.meta)
    out = tmp_path / "stats"
    argv = ["stats", "--predictions", str(directory), "--reference", "tang2023"]
    argv += ["--n-boot", "50", "--n-rank-boot", "30", "--out", str(out / "s.parquet")]
    argv += ["--ranks", str(out / "r.parquet"), "--pairwise", str(out / "p.parquet")]
    assert main(argv) == 0
    assert len(pd.read_parquet(out / "r.parquet")) == 3 * 30 * 2
    assert "Kendall's tau" in (out / "r.md").read_text()
    assert "Significance maps" in (out / "p.md").read_text()
    assert main([*argv[:-4]]) == 0  # the ranking is optional
    assert main([*argv[:-2]]) == 2  # --ranks without --pairwise is refused
