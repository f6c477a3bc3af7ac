"""Provenance: streamed hashing, the cell records, strict JSON, and the prediction-file reader."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medmtl.analysis import stats, stats_file
from medmtl.errors import UserError
from medmtl.evaluation.predictions import (
    check_consistent,
    load_eval_set,
    read_prediction_file,
    write_prediction_file,
)
from medmtl.hashing import file_sha256
from medmtl.reporting import provenance, tables

CLASSES = ["nevus", "melanoma", "seborrheic_keratosis"]


def _frame(n: int = 6, shift: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(shift)
    probs = rng.dirichlet(np.ones(3), n)
    frame = pd.DataFrame(probs, columns=[f"prob_{c}" for c in CLASSES])
    frame.insert(0, "case_id", [f"c{i}" for i in range(n)])
    frame.insert(1, "label", np.arange(n) % 3)
    frame["pred_label"] = probs.argmax(axis=1)
    for prefix in ("seg", "native"):
        frame[f"{prefix}_tp"] = rng.integers(1, 50, n)
        frame[f"{prefix}_fp"] = rng.integers(0, 10, n)
        frame[f"{prefix}_fn"] = rng.integers(0, 10, n)
    frame["nsd"], frame["hd95"] = rng.uniform(50, 100, n), rng.uniform(0, 20, n)
    return frame


def _meta(model: str, seed: int) -> dict:
    return {
        "model": model,
        "seed": seed,
        "eval_set": "isic_test",
        "dataset": "isic2017",
        "class_names": CLASSES,
        "run_id": f"run-{model}-{seed}",
        "checkpoint_sha256": "k" * 64,
        "checkpoint": f"results/runs/{model}/seed{seed}/best.pt",
        "split_sha256": "s" * 64,
        "data_sha256": "d" * 64,
        "git_commit": "abc",
        "git_dirty": False,
        "subset": "test",
        "selection_subset": "val",
        "config_sha256": "c" * 64,
        "profile": "demo",
        "tracking_uri": "sqlite:///mlflow.db",
        "nsd_tolerance": 2.0,
    }


def _write_eval_set(root: Path) -> Path:
    directory = root / "results" / "predictions" / "isic_test"
    for i, model in enumerate(("he2020", "resformer_parallel")):
        for seed in (0, 1):
            path = directory / model / f"seed{seed}.parquet"
            write_prediction_file(path, _frame(shift=10 * i + seed), _meta(model, seed))
    return directory


def test_provenance_path_and_relative_paths(tmp_path):
    tex = tmp_path / "results" / "tables" / "table4.tex"
    assert provenance.provenance_path(tex) == tex.parent / "table4.provenance.json"
    assert provenance.relative_to(tmp_path / "results" / "x.parquet", tex.parent) == "../x.parquet"


def test_jsonable_turns_numpy_and_nan_into_strict_json_values():
    assert provenance.jsonable(np.float64(math.nan)) is None
    assert provenance.jsonable(np.int64(3)) == 3 and provenance.jsonable(np.bool_(True)) is True


def test_build_provenance_records_every_cell_with_runs_and_tests(tmp_path):
    files = load_eval_set(_write_eval_set(tmp_path))
    stats_path = tmp_path / "results" / "stats" / "isic_test.parquet"
    frame = stats.compute_stats(files, "he2020", alpha=0.5, n_boot=50)
    meta = stats_file.stats_metadata(files, "he2020", 0.5, 50, 0)
    stats_file.write_stats(frame, meta, stats_path)
    cells = tables.derive_cells(tables.seed_summaries(files), frame)
    tex = tmp_path / "results" / "tables" / "table4.tex"
    split_path = tmp_path / "data" / "splits" / "isic2017.json"
    split_path.parent.mkdir(parents=True)
    split_path.write_text('{"policy": "Official parts."}')
    split = ({"policy": "Official parts."}, split_path)
    layout = tables.table4_layout(["he2020", "resformer_parallel"])
    comparisons = stats.reference_comparisons(files, "he2020")
    document = provenance.build_provenance(
        tex, files, cells, (frame, meta, stats_path), split, layout, comparisons
    )
    assert document["rederive_command"] == f"medmtl audit {tex}"
    assert document["models"] == ["he2020", "resformer_parallel"]
    restored = tables.Layout.from_json(json.loads(json.dumps(document["layout"])))
    assert restored.to_json() == layout.to_json()
    assert document["comparisons"] == [["resformer_parallel", "he2020", ["JI", "DSC", "Acc"]]]
    assert document["stats"]["file"] == "../stats/isic_test.parquet"
    assert document["stats"]["sha256"] == file_sha256(stats_path)
    assert document["split"] == {
        "file": "../../data/splits/isic2017.json",
        "sha256": file_sha256(split_path),
        "policy": "Official parts.",
    }
    assert document["profile"] == "demo" and document["created"]
    assert len(document["cells"]) == 2 * len(tables.TABLE_METRICS)
    cell = next(
        c for c in document["cells"] if (c["model"], c["metric"]) == ("resformer_parallel", "Acc")
    )
    assert cell["definition"] == "faithful" and cell["data_sha256"] == "d" * 64
    assert cell["rendered"] == next(
        c.rendered for c in cells if (c.model, c.metric) == ("resformer_parallel", "Acc")
    )
    assert cell["test"]["metric"] == "Acc" and cell["test"]["test"] == "wilcoxon"
    assert cell["test"]["mean_model"] == pytest.approx(cell["value"]["mean"])  # its own number
    assert cell["test"]["seed_test"] == "permutation_runs" and "p_seed_holm" in cell["test"]
    run = cell["runs"][1]
    assert run["prediction_file"] == "../predictions/isic_test/resformer_parallel/seed1.parquet"
    assert run["prediction_sha256"] == files[3].sha256
    assert run["checkpoint_path"] == "results/runs/resformer_parallel/seed1/best.pt"
    assert run["tracking_uri"] == "sqlite:///mlflow.db"
    assert {"run_id", "git_commit", "git_dirty", "config_sha256", "selection_subset"} <= set(run)
    reference_cell = next(c for c in document["cells"] if c["model"] == "he2020")
    assert reference_cell["test"] is None
    sen = next(c for c in document["cells"] if c["metric"] == "Sen")
    assert sen["test"] is None  # Sen carries no significance mark
    path = provenance.provenance_path(tex)
    tex.parent.mkdir(parents=True)
    provenance.write_provenance(path, document)
    assert provenance.read_provenance(path) == json.loads(json.dumps(document))
    assert list(provenance.runs_by_model(document)) == ["he2020", "resformer_parallel"]


def test_read_provenance_errors(tmp_path):
    with pytest.raises(UserError, match="provenance file not found"):
        provenance.read_provenance(tmp_path / "x.provenance.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        provenance.read_provenance(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text('{"schema": 0}')
    with pytest.raises(UserError, match="schema 0"):
        provenance.read_provenance(tmp_path / "old.json")


def test_prediction_file_round_trip_and_hash(tmp_path):
    path = tmp_path / "he2020" / "seed0.parquet"
    write_prediction_file(path, _frame(), _meta("he2020", 0))
    loaded = read_prediction_file(path)
    pd.testing.assert_frame_equal(loaded.frame, _frame())
    assert loaded.meta == _meta("he2020", 0)
    assert loaded.sha256 == file_sha256(path)
    assert (loaded.model, loaded.seed) == ("he2020", 0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f, m: (f.drop(columns="seg_fn"), m), "column\\(s\\) missing: seg_fn"),
        (lambda f, m: (f.drop(columns="prob_melanoma"), m), "missing: prob_melanoma"),
        (
            lambda f, m: (f, {k: v for k, v in m.items() if k != "selection_subset"}),
            "selection_subset",
        ),
        (lambda f, m: (f.assign(label=5), m), "'label' outside"),
        (lambda f, m: (f.assign(case_id="same"), m), "duplicate case_id"),
        (lambda f, m: (f, {**m, "git_dirty": "no"}), "must be an int"),
    ],
)
def test_contract_violations_name_the_file(tmp_path, change, message):
    frame, meta = change(_frame(), _meta("he2020", 0))
    with pytest.raises(UserError, match=message) as err:
        write_prediction_file(tmp_path / "p.parquet", frame, meta)
    assert str(tmp_path / "p.parquet") in str(err.value)


def test_reader_rejects_missing_metadata_and_non_parquet(tmp_path):
    _frame().to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(UserError, match="plain.parquet: parquet metadata 'medmtl' missing"):
        read_prediction_file(tmp_path / "plain.parquet")
    (tmp_path / "junk.parquet").write_text("junk")
    with pytest.raises(UserError, match="junk.parquet: not a readable parquet file"):
        read_prediction_file(tmp_path / "junk.parquet")


def test_load_eval_set_checks_paths_against_metadata(tmp_path):
    directory = _write_eval_set(tmp_path)
    assert [(f.model, f.seed) for f in load_eval_set(directory)] == [
        ("he2020", 0),
        ("he2020", 1),
        ("resformer_parallel", 0),
        ("resformer_parallel", 1),
    ]
    (directory / "he2020" / "seed1.parquet").rename(directory / "he2020" / "seed7.parquet")
    with pytest.raises(UserError, match="disagrees with its path"):
        load_eval_set(directory)
    with pytest.raises(UserError, match="no <model>/seed<k>.parquet"):
        load_eval_set(tmp_path / "empty")


def test_check_consistent_rejects_mixed_data_and_conflicting_cases(tmp_path):
    files = load_eval_set(_write_eval_set(tmp_path))
    other = files[1].__class__(
        files[1].path, "x", files[1].frame, {**files[1].meta, "data_sha256": "e"}
    )
    with pytest.raises(UserError, match="data_sha256"):
        check_consistent([files[0], other])
    fewer = files[1].__class__(files[1].path, "x", files[1].frame.iloc[:3], files[1].meta)
    with pytest.raises(UserError, match="cases differ"):
        check_consistent([files[0], fewer])
    relabelled = files[2].frame.assign(label=(files[2].frame["label"] + 1) % 3)
    wrong = files[2].__class__(files[2].path, "x", relabelled, files[2].meta)
    with pytest.raises(UserError, match="different labels"):
        check_consistent([files[0], wrong])
