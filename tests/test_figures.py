"""The report's figures: each draws, is not blank, and gives the same bytes twice; the case
choice of the overlays and the figures' inputs follow their stated rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg

from medmtl.errors import UserError
from medmtl.evaluation.predictions import PredictionFile
from medmtl.hashing import file_sha256
from medmtl.reporting.figures import inputs
from medmtl.reporting.figures.classification import classification_figure
from medmtl.reporting.figures.common import footer_text, save
from medmtl.reporting.figures.curves import curves_figure
from medmtl.reporting.figures.distributions import distributions_figure
from medmtl.reporting.figures.external import external_figure
from medmtl.reporting.figures.overlays import overlays_figure, select_cases
from medmtl.reporting.figures.statistics import statistics_figure

MODELS = ["he2020", "resformer_sequential"]
CLASSES = ["nevus", "melanoma", "seborrheic_keratosis"]


def _history(seed: int) -> pd.DataFrame:
    epochs = np.arange(1, 6)
    return pd.DataFrame(
        {"epoch": epochs, "train_loss": 1 / epochs + 0.01 * seed, "val_loss": 1.1 / epochs + 0.02}
    )


def _dsc(rng: np.random.Generator, n: int = 12) -> pd.DataFrame:
    return pd.DataFrame(rng.uniform(40, 95, (n, 2)), index=[f"c{i:02d}" for i in range(n)],
                        columns=MODELS)  # fmt: skip


def _figures(tmp_path: Path) -> dict:
    """Every figure, drawn from fixed inputs."""
    rng = np.random.default_rng(0)
    dsc = _dsc(rng)
    images = rng.integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
    truth = np.zeros((2, 16, 16), bool)
    truth[:, 4:12, 4:12] = True
    full = np.ones((2, 16, 16), bool)  # a model that predicts everything: drawn as the border
    probs = rng.dirichlet(np.ones(3), 30)
    labels = np.arange(30) % 3
    pairs = pd.DataFrame({"metric": ["JI", "DSC"], "model": MODELS[:1] * 2,
                          "reference": MODELS[1:] * 2, "mean_model": [70.0, 80.0],
                          "mean_reference": [72.0, 79.0], "p_holm": [1e-5, 0.3],
                          "significant": [True, False],
                          "seed_significant": [False, False]})  # fmt: skip
    ranks = pd.DataFrame({"metric": ["JI"] * 4 + ["DSC"] * 4, "sample": [0, 0, 1, 1] * 2,
                          "model": MODELS * 4, "rank": [2, 1, 1.5, 1.5, 1, 2, 1, 2]})  # fmt: skip
    return {
        "curves": lambda: curves_figure(
            {m: [(_history(s), 4 + s) for s in (0, 1)] for m in MODELS}
        ),
        "per_image": lambda: distributions_figure({"DSC": dsc, "JI": dsc / 2}, MODELS[1]),
        "overlays": lambda: overlays_figure(images, truth, {"a": truth, "b": full}, ["x", "y"]),
        "classification": lambda: classification_figure(
            {m: probs for m in MODELS}, labels, CLASSES
        ),
        "statistics": lambda: statistics_figure(pairs, ranks, MODELS),
        "external": lambda: external_figure(
            {"udiat": {"he2020": {0: (80.0, 60.0), 1: (81.0, 58.0)}}}, ["ph2"]
        ),  # fmt: skip
    }


def _text_chunks(png: Path) -> dict[bytes, list[bytes]]:
    """The PNG's time and text chunks (type -> payloads), read chunk by chunk."""
    data, found = png.read_bytes(), {b"tIME": [], b"tEXt": []}
    at = 8  # after the signature
    while at < len(data):
        length, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        if kind in found:
            found[kind].append(data[at + 8 : at + 8 + length])
        at += 12 + length
    return found


@pytest.mark.parametrize("name", ["curves", "per_image", "overlays", "classification",
                                  "statistics", "external"])  # fmt: skip
def test_each_figure_draws_something_and_the_same_bytes_twice(tmp_path: Path, name: str) -> None:
    draw = _figures(tmp_path)[name]
    first = save(draw(), tmp_path / "a.png", "footer")
    second = save(draw(), tmp_path / "b.png", "footer")
    assert first.read_bytes() == second.read_bytes()
    assert _text_chunks(first) == {b"tIME": [], b"tEXt": []}  # nothing that names a time
    pixels = mpimg.imread(first)[..., :3]
    assert pixels.std() > 0.05  # not a blank page
    assert not (tmp_path / "a.png.tmp").exists()


def test_the_external_figure_without_any_set_says_which_are_absent(tmp_path: Path) -> None:
    empty = save(external_figure({}, []), tmp_path / "empty.png", "")
    absent = save(external_figure({}, ["ph2"]), tmp_path / "absent.png", "")
    assert empty.read_bytes() != absent.read_bytes()  # the note is drawn


def test_overlay_cases_are_best_median_worst_of_the_reference_then_most_disagreed() -> None:
    dsc = pd.DataFrame(
        {"he2020": [50.0, 90.0, 70.0, 10.0, 60.0, np.nan],
         "resformer_sequential": [90.0, 80.0, 70.0, 60.0, 50.0, 99.0]},
        index=["a", "b", "c", "d", "e", "empty"],
    )  # fmt: skip
    chosen = select_cases(dsc, "resformer_sequential", n_disagree=2)
    assert list(chosen) == ["a", "c", "e", "d", "b"]  # "empty" has no ground truth
    assert chosen["a"].startswith("best") and chosen["c"].startswith("median")
    assert chosen["e"].startswith("worst") and chosen["d"].startswith("disagreement, sd 25.0")


def _file(tmp_path: Path, model: str, seed: int, tp: list[int]) -> PredictionFile:
    frame = pd.DataFrame({"case_id": ["x", "y"], "label": [0, 1], "seg_tp": tp, "seg_fp": [0, 0],
                          "seg_fn": [10, 10], "prob_nevus": [0.8, 0.2], "prob_melanoma": [0.1, 0.7],
                          "prob_seborrheic_keratosis": [0.1, 0.1]})  # fmt: skip
    run_dir = tmp_path / model / f"seed{seed}"
    run_dir.mkdir(parents=True)
    _history(seed).to_csv(run_dir / "history.csv", index=False)
    (run_dir / "run.json").write_text(json.dumps({"best_epoch": 3 + seed}))
    meta = {"model": model, "seed": seed, "class_names": CLASSES, "run_dir": str(run_dir)}
    return PredictionFile(run_dir / "p.parquet", "0", frame, meta)


def test_inputs_average_per_image_values_over_seeds_and_read_each_runs_curve(tmp_path) -> None:
    files = [_file(tmp_path, "he2020", 0, [10, 30]), _file(tmp_path, "he2020", 1, [30, 90])]
    dsc = inputs.seed_means(files, "DSC")
    # per image Dice 2TP / (2TP + FN): x: 20/30 and 60/70; y: 60/70 and 180/190
    assert dsc.loc["x", "he2020"] == pytest.approx(100 * (20 / 30 + 60 / 70) / 2)
    assert dsc.loc["y", "he2020"] == pytest.approx(100 * (60 / 70 + 180 / 190) / 2)
    ensembles, labels = inputs.seed_ensembles(files)
    assert ensembles["he2020"].shape == (2, 3) and list(labels) == [0, 1]
    flipped = files[1].frame.iloc[::-1].reset_index(drop=True)  # same cases, other row order
    flipped[["prob_nevus", "prob_melanoma"]] = [[0.3, 0.6], [0.9, 0.0]]  # y, x
    files[1] = PredictionFile(files[1].path, "1", flipped, files[1].meta)
    ensembles, _ = inputs.seed_ensembles(files)
    np.testing.assert_allclose(ensembles["he2020"][:, :2], [[0.85, 0.05], [0.25, 0.65]])  # x, y
    curves = inputs.run_curves(files)
    assert [best for _, best in curves["he2020"]] == [3, 4]


def test_external_pairs_join_each_run_with_itself(tmp_path: Path) -> None:
    internal = [_file(tmp_path / "in", "he2020", s, [10, 30]) for s in (0, 1)]
    external = [_file(tmp_path / "ex", "he2020", 0, [30, 30])]  # seed 1 not predicted there
    pairs = inputs.external_pairs(internal, {"udiat": external})
    assert list(pairs["udiat"]["he2020"]) == [0]
    internal_dsc, external_dsc = pairs["udiat"]["he2020"][0]
    assert internal_dsc == pytest.approx(100 * (20 / 30 + 60 / 70) / 2)
    assert external_dsc == pytest.approx(100 * 60 / 70)


def test_each_training_run_gets_its_own_curves_in_mlflow(tmp_path: Path, tracking_uri) -> None:
    from medmtl import tracking
    from medmtl.commands.run_curves import attach_run_curves

    files = []
    for seed in (0, 1):
        tags = {"medmtl.stage": "train", "medmtl.output": f"run{seed}"}
        run_id = tracking.start_run(tracking_uri, "medmtl", f"he2020-seed{seed}", tags)
        f = _file(tmp_path, "he2020", seed, [10, 30])
        hashes = {"git_commit": "c" * 40, "data_sha256": "d" * 64, "split_sha256": "e" * 64}
        meta = {**f.meta, **hashes, "run_id": run_id, "tracking_uri": tracking_uri,
                "eval_set": "s_test"}  # fmt: skip
        files.append(PredictionFile(f.path, f.sha256, f.frame, meta))
    rows = attach_run_curves(files[::-1])
    client = tracking.client(tracking_uri)
    assert [(run, seed, run_id) for run, seed, run_id, _ in rows] == [
        ("he2020", f.seed, f.meta["run_id"]) for f in files
    ]
    for f, (*_, digest) in zip(files, rows, strict=True):  # each figure: its own run's curve
        assert [a.path for a in client.list_artifacts(f.meta["run_id"])] == ["curves.png"]
        local = client.download_artifacts(f.meta["run_id"], "curves.png", str(tmp_path))
        own = curves_figure({"he2020": [(_history(f.seed), 3 + f.seed)]})
        expected = save(own, tmp_path / "expected.png", footer_text([f]))
        assert Path(local).read_bytes() == expected.read_bytes(), f.seed
        assert digest == file_sha256(expected)


def _benchmark(path: Path, rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["s\th:m:s\tmax_rss\tmax_vms\tcpu_time"]
    lines += [f"{s}\t0:00:01\t{rss}\t1\t{cpu}" for s, rss, cpu in rows]
    path.write_text("\n".join(lines) + "\n")


def test_rule_times_sum_each_upstream_rule_and_leave_out_the_others(tmp_path: Path) -> None:
    from medmtl.reporting.figures.run_times import rule_times

    bench = tmp_path / "benchmarks"
    _benchmark(bench / "train/isic/a/seed0.tsv", [(10.0, 500.0, 9.0)])
    _benchmark(bench / "train/isic/a/seed1.tsv", [(20.0, 700.0, "NA")])  # not measured
    _benchmark(bench / "table4.tsv", [(1.0, 100.0, 0.5), (3.0, 120.0, 1.5)])  # two repeats
    _benchmark(bench / "train_ablation/isic/a-cls_only/seed0.tsv", [(99.0, 9e3, 99.0)])
    _benchmark(bench / "figures.tsv", [(99.0, 9e3, 99.0)])  # an older draw of the page itself
    times = rule_times(bench)
    assert list(times.index) == ["train", "table4", "all"]  # DAG order, then the sum
    assert times.loc["train"].tolist() == [2, 30.0, 20.0, 9.0, 700.0]
    assert times.loc["table4"].tolist() == [1, 2.0, 2.0, 1.0, 110.0]  # repeats averaged
    assert times.loc["all"].tolist() == [3, 32.0, 20.0, 10.0, 700.0]
    (bench / "stats").mkdir()
    (bench / "stats/x.tsv").write_text("seconds\n1\n")
    with pytest.raises(UserError, match=r"stats/x.tsv: not a Snakemake benchmark file"):
        rule_times(bench)
