"""External validation: label maps and config checks, unmapped classes in metrics and tests,
the `external` and `external-table` stages on fixtures (untrained runs, a PH2-layout set, a
missing set), the audit of external.tex, and end to end on the BUSI mirror: train, then
evaluate on a separately processed held-out BUSI part standing in for the external set."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_ph2 import _write_ph2  # the PH2 release layout, as its reader's tests write it
from test_pipeline import make_project, run

from medmtl.analysis import stats, stats_file
from medmtl.cli import main
from medmtl.data import busi, isic2017
from medmtl.errors import UserError
from medmtl.evaluation import metrics
from medmtl.evaluation.predictions import read_prediction_file, write_prediction_file
from medmtl.hashing import file_sha256
from medmtl.pipeline.external import UNMAPPED_LABEL, map_labels, parse_external, read_status
from medmtl.pipeline.params import load_params, params_argument, validate_params
from medmtl.reporting import audit

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BUSI_MIRROR = ROOT.parent / "shared/data/mirror/busi"
PH2_TO_ISIC = {"common_nevus": "nevus", "atypical_nevus": "nevus", "melanoma": "melanoma"}
MODELS = ["resunet", "resformer_sequential"]  # baseline, proposed


def _params(**changes) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    base = {"models": MODELS, "baseline_model": "resunet", "reference_model": MODELS[1]}
    ablations = {**params["ablations"], "models": MODELS[1:]}
    return {**params, **base, "ablations": ablations, **changes}


def _entry(**changes) -> dict:
    return {"name": "ph2", "dataset": "ph2", "source": "x", "label_map": PH2_TO_ISIC, **changes}


def test_label_map_maps_classes_and_counts_the_unpredictable_ones():
    names = ["common_nevus", "melanoma", "atypical_nevus", "atypical_nevus"]
    labels, unmapped = map_labels(names, PH2_TO_ISIC, isic2017.CLASS_NAMES)
    assert labels.tolist() == [0, 1, 0, 0] and unmapped == {}
    label_map = {**PH2_TO_ISIC, "atypical_nevus": None}
    labels, unmapped = map_labels(names, label_map, isic2017.CLASS_NAMES)
    assert labels.tolist() == [0, 1, UNMAPPED_LABEL, UNMAPPED_LABEL]
    assert unmapped == {"atypical_nevus": 2}
    with pytest.raises(UserError, match=r"no entry for the class\(es\) \['melanoma'\]"):
        map_labels(names, {"common_nevus": "nevus", "atypical_nevus": "nevus"}, ["nevus"])


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([_entry(label_map={"common_nevus": "nevus"})], r"missing \['atypical_nevus', 'melanoma'"),
        ([_entry(label_map={**PH2_TO_ISIC, "bcc": None})], r"unknown \['bcc'\]"),
        ([_entry(label_map={**PH2_TO_ISIC, "melanoma": "mel"})], "targets {'melanoma': 'mel'}"),
        ([_entry(dataset="ph3")], r"external\[0\].dataset: 'ph3' is not one of"),
        ([_entry(name="PH-2")], r"external\[0\].name: 'PH-2' must match"),
        ([_entry(), _entry()], r"external\[1\].name: 'ph2' is used twice"),
        ([_entry(models=["resunet"])], "must be among models .* and hold baseline_model"),
        ([_entry(source_dir="x")], r"unknown key\(s\) \['source_dir'\]"),
    ],
)
def test_bad_external_entries_name_the_key(entries, message):
    with pytest.raises(UserError, match=message):
        parse_external(_params(dataset="synthetic", external=entries))


def test_params_need_a_baseline_other_than_the_reference():
    validate_params(_params(external=[_entry()]))
    with pytest.raises(
        UserError, match="x.yaml: baseline_model: 'resformer_sequential' is not one of resunet"
    ):
        validate_params(_params(baseline_model="resformer_sequential"), "x.yaml")


def test_experiment_files_merge_like_snakemake_configfiles(tmp_path):
    (tmp_path / "a.yaml").write_text("dataset: synthetic\nstats: {alpha: 0.001, n_boot: 9}\n")
    (tmp_path / "b.yaml").write_text("dataset: busi\nstats: {n_boot: 5}\nseeds: [1]\n")
    merged = load_params([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert merged == {"dataset": "busi", "stats": {"alpha": 0.001, "n_boot": 5}, "seeds": [1]}
    assert params_argument([tmp_path / "b.yaml"], tmp_path) == "params.yaml b.yaml"
    assert params_argument([tmp_path / "b.yaml"], ROOT) == f"params.yaml {tmp_path / 'b.yaml'}"
    with pytest.raises(UserError, match="c.yaml: params file not found"):
        load_params([tmp_path / "c.yaml"])


def _prediction_frame(labels: list[int]) -> pd.DataFrame:
    n = len(labels)
    probs = np.tile([0.7, 0.2, 0.1], (n, 1))
    frame = pd.DataFrame(probs, columns=[f"prob_{c}" for c in isic2017.CLASS_NAMES])
    frame.insert(0, "case_id", [f"c{i}" for i in range(n)])
    frame.insert(1, "label", labels)
    frame["pred_label"] = 0
    for prefix in ("seg", "native"):
        frame[f"{prefix}_tp"], frame[f"{prefix}_fp"], frame[f"{prefix}_fn"] = 30, 10, 10
    frame["nsd"], frame["hd95"] = 80.0, 3.0
    return frame


def test_unmapped_cases_count_for_segmentation_only(tmp_path):
    frame = _prediction_frame([0, 1, UNMAPPED_LABEL, 0])
    summary = metrics.summarize(frame, list(isic2017.CLASS_NAMES))
    assert summary["Acc3"] == pytest.approx(200 / 3)  # 2 of the 3 mapped cases, not 2 of 4
    assert summary["DSC"] == pytest.approx(75.0)  # all four cases
    meta = {
        "model": MODELS[1], "seed": 0, "eval_set": "ph2", "dataset": "ph2", "run_id": "r",
        "class_names": list(isic2017.CLASS_NAMES), "checkpoint_sha256": "k", "split_sha256": "s",
        "data_sha256": "d", "git_commit": "c", "git_dirty": False, "subset": "all",
        "selection_subset": "val", "checkpoint": "best.pt", "config_sha256": "c",
        "profile": "tiny", "tracking_uri": "sqlite:///x.db", "nsd_tolerance": 2.0,
    }  # fmt: skip
    with pytest.raises(UserError, match=r"1 case\(s\) labelled -1 but metadata"):
        write_prediction_file(tmp_path / "p.parquet", frame, meta)
    meta["unmapped_labels"] = {"atypical_nevus": 1}
    write_prediction_file(tmp_path / "p.parquet", frame, meta)
    files = [read_prediction_file(tmp_path / "p.parquet")]
    acc3, dsc = stats.run_values(files, "Acc3")[0], stats.run_values(files, "DSC")[0]
    assert np.isnan(acc3["c2"]) and dsc["c2"] == pytest.approx(75.0)


def _fake_run(runs: Path, model: str, seed: int, uri: str) -> None:
    """A complete run directory with untrained weights, as `medmtl train` leaves one."""
    import torch

    from medmtl import tracking
    from medmtl.models.inputs import build_model
    from medmtl.pipeline.config import compose_config, config_sha256, config_yaml

    run_dir = runs / model / f"seed{seed}"
    run_dir.mkdir(parents=True)
    overrides = ["profile=tiny", "dataset=synthetic", f"model={model}", f"seed={seed}"]
    overrides += [f"out={run_dir}", "data_dir=-", "split_file=-", "device=cpu"]
    cfg = compose_config([*overrides, f"tracking.uri={uri}"])
    torch.manual_seed(seed)
    torch.save(build_model(cfg, 3).state_dict(), run_dir / "best.pt")
    (run_dir / "config.yaml").write_text(config_yaml(cfg))
    tags = {"medmtl.stage": "train", "medmtl.output": str(run_dir)}
    run_id = tracking.start_run(uri, "medmtl", f"{model}-seed{seed}", tags)
    tracking.finish_run(uri, run_id)
    record = {
        "model": model, "ablation": None, "seed": seed, "dataset": "synthetic", "profile": "tiny",
        "tracking_uri": uri, "checkpoint": "best.pt", "mlflow_run_id": run_id,
        "checkpoint_sha256": file_sha256(run_dir / "best.pt"), "split_sha256": "s" * 64,
        "data_sha256": "d" * 64, "config_sha256": config_sha256(cfg), "selection_subset": "val",
        "git_commit": "abc1234", "git_dirty": False, "class_names": list(isic2017.CLASS_NAMES),
        "tasks": ["seg", "cls"], "regression": None, "targets_note": None,
    }  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(record))


@pytest.fixture
def external_project(tmp_path, monkeypatch, tracking_uri) -> Path:
    """Untrained runs of two models x two seeds on `synthetic` (ISIC classes), a PH2-layout set
    whose atypical nevi the models cannot predict (label map: null), and a missing UDIAT set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("medmtl.hashing.git_state", lambda repo=None: ("abc1234", False))
    for model in MODELS:
        for seed in (0, 1):
            _fake_run(tmp_path / "runs", model, seed, tracking_uri)
    _write_ph2(tmp_path / "ph2_release")
    external = [
        _entry(source="ph2_release", label_map={**PH2_TO_ISIC, "atypical_nevus": None}),
        {"name": "udiat_b", "dataset": "udiat_b", "source": "nowhere/udiat_b",
         "label_map": {"benign": "nevus", "malignant": "melanoma"}},
    ]  # fmt: skip
    params = _params(profile="tiny", dataset="synthetic", seeds=[0, 1], external=external)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def _external() -> int:
    argv = ["external", "--params", "params.yaml", "--runs", "runs", "--processed", "ext"]
    return main([*argv, "--out", "predictions/external"])


def _external_table() -> int:
    argv = ["external-table", "--predictions", "predictions/external", "--alpha", "0.05"]
    return main([*argv, "--n-boot", "100", "--stats", "stats/external.parquet", "--out", TEX])


TEX = "tables/external.tex"


def test_external_stage_writes_predictions_status_and_mlflow_runs(external_project, capsys):
    assert _external() == 0
    assert "external set udiat_b: NOT AVAILABLE: source nowhere/udiat_b" in capsys.readouterr().err
    status = read_status(Path("predictions/external/status.json"))
    assert [(s["name"], s["available"]) for s in status["sets"]] == [
        ("ph2", True),
        ("udiat_b", False),
    ]
    assert status["sets"][0]["unmapped_labels"] == {"atypical_nevus": 2}
    assert status["sets"][0]["n_cases"] == 5
    files = sorted(Path("predictions/external/ph2").glob("*/seed*.parquet"))
    assert [f.relative_to("predictions/external/ph2").as_posix() for f in files] == [
        "resformer_sequential/seed0.parquet", "resformer_sequential/seed1.parquet",
        "resunet/seed0.parquet", "resunet/seed1.parquet",
    ]  # fmt: skip
    prediction = read_prediction_file(files[0])
    assert prediction.meta["subset"] == "all" and prediction.meta["dataset"] == "ph2"
    assert prediction.meta["train_dataset"] == "synthetic"
    assert prediction.meta["label_map"]["atypical_nevus"] is None
    assert prediction.meta["unmapped_labels"] == {"atypical_nevus": 2}
    frame = prediction.frame.set_index("case_id")
    assert frame.loc["IMD010", "label"] == UNMAPPED_LABEL
    assert frame.loc["IMD010", "source_label"] == "atypical_nevus"
    assert frame.loc["IMD058", "label"] == isic2017.CLASS_NAMES.index("melanoma")
    from medmtl import tracking

    client = tracking.client(prediction.meta["tracking_uri"])
    evaluations = client.search_runs(
        [client.get_experiment_by_name("medmtl").experiment_id],
        "tags.`medmtl.stage` = 'evaluate:ph2'",
    )
    assert len(evaluations) == 4 and all(r.info.status == "FINISHED" for r in evaluations)


def test_external_table_marks_missing_sets_and_passes_its_audit(external_project):
    assert _external() == 0 and _external_table() == 0
    tex = Path(TEX).read_text()
    assert r"\multicolumn{3}{c}{Dice}" in tex and "External set & $n$ & Baseline & Proposed" in tex
    row = next(line for line in tex.splitlines() if line.startswith("ph2 & 5 & "))
    assert len(row.split(" & ")) == 11
    missing = (
        r"udiat\_b & \multicolumn{10}{l}{not available: source nowhere/udiat\_b does not exist}"
    )
    assert missing in tex
    assert r"ph2: atypical\_nevus 2" in tex and r"Not available (row says why): udiat\_b" in tex
    assert "Holm-adjusted over the table's 3 comparisons" in tex
    stats_frame, _ = stats_file.read_stats(Path("stats/external.parquet"))
    assert set(stats_frame["eval_set"]) == {"ph2"} and set(stats_frame["model"]) == {"resunet"}
    acc = stats_frame.set_index("metric").loc["Acc3"]
    assert acc["n"] == 3  # the two atypical nevi leave the Acc test
    report = audit.audit_table(Path(TEX), lambda uri, run_id: "FINISHED")
    failing = [audit.format_finding(f) for f in report.findings if f.status in audit.FAILING]
    assert failing == []
    assert sum(f.subject.startswith("cell ph2,") for f in report.findings) == 10
    lineage = json.loads(audit.cell_lineage(report, "ph2", "DSC/p"))
    assert lineage["test"]["test"] == "wilcoxon" and len(lineage["runs"]) == 4

    if shutil.which("pdflatex"):  # the LaTeX compiles (CI installs pdflatex)
        Path("doc.tex").write_text(
            "\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
            f"{tex}\n\\end{{document}}\n"
        )
        done = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:]

    edited = tex.replace(row, row.replace(" & 5 & ", " & 6 & ", 1))
    Path(TEX).write_text(edited.replace("not available: source", "not available: sauce"))
    report = audit.audit_table(Path(TEX), lambda uri, run_id: "FINISHED")
    failing = {f.subject for f in report.findings if f.status in audit.FAILING}
    assert failing == {"cell ph2,n", "row udiat_b"}


def test_without_any_available_set_the_stages_still_give_an_audited_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = _entry(source="nowhere/ph2")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_params(external=[missing])))
    assert _external() == 0 and _external_table() == 0
    assert Path("ext").is_dir() and not list(Path("ext").iterdir())  # a declared output
    tex = Path(TEX).read_text()
    assert r"ph2 & \multicolumn{10}{l}{not available: source nowhere/ph2 does not exist}" in tex
    assert "Holm-adjusted over the table's 0 comparisons" in tex
    report = audit.audit_table(Path(TEX), lambda uri, run_id: "FINISHED")
    assert audit.passed(report.findings) and len(report.findings) == 3  # stats, status, row


def test_an_absent_external_set_plans_no_training():
    """The breast experiment on this machine (no UDIAT release): two jobs, no training."""
    assert not (ROOT / "data/raw/udiat_b").exists()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    experiment = "workflow/experiments/breast.yaml"
    done = subprocess.run(
        [BIN / "snakemake", "-n", "--forceall", "--configfile", experiment, "--cores", "1",
         "results/tables/external.tex"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", done.stdout, re.M))
    assert jobs == {"external": "1", "external_table": "1", "total": "2"}


def _held_out_release(split_file: Path, out: Path) -> list[str]:
    """A `Dataset_BUSI_with_GT.zip` holding only the split's test cases (images and masks,
    byte for byte from the mirror): held-out data processed separately, as an external set."""
    test_ids = json.loads(split_file.read_text())["test"]
    out.mkdir()
    member = re.compile(r"Dataset_BUSI_with_GT/[a-z]+/([a-z]+ \(\d+\))(?:_mask(?:_\d+)?)?\.png")
    with (
        zipfile.ZipFile(BUSI_MIRROR / busi.ARCHIVE) as mirror,
        zipfile.ZipFile(out / busi.ARCHIVE, "w") as held_out,
    ):
        for name in mirror.namelist():
            match = member.fullmatch(name)
            if match and match[1] in test_ids:
                held_out.writestr(name, mirror.read(name))
    return test_ids


@pytest.mark.slow
def test_busi_mirror_train_then_external_validation_table(tmp_path):
    assert BUSI_MIRROR.is_dir(), f"offline mirror missing: {BUSI_MIRROR}"
    project = make_project(
        tmp_path, profile="tiny", dataset="busi", models=MODELS, baseline_model="resunet",
        reference_model=MODELS[1], ablations={"models": MODELS[1:]}, seeds=[0],
        busi={"source": str(BUSI_MIRROR)}, external=[],
    )  # fmt: skip
    run(project, "snakemake", "--cores", "2", "data/splits/busi.json")
    test_ids = _held_out_release(project / "data/splits/busi.json", tmp_path / "held_out")
    identity = {c: c for c in busi.CLASS_NAMES}
    experiment = tmp_path / "held_out.yaml"  # outside the repository: the work tree stays clean
    experiment.write_text(yaml.safe_dump({"external": [
        {"name": "busi_held_out", "dataset": "busi", "source": str(tmp_path / "held_out"),
         "label_map": identity},
        {"name": "udiat_b", "dataset": "udiat_b", "source": str(tmp_path / "no_udiat"),
         "label_map": {"benign": "benign", "malignant": "malignant"}},
    ]}))  # fmt: skip
    target = ["--configfile", str(experiment), "--cores", "2", "results/tables/external.tex"]
    run(project, "snakemake", *target)

    held_out = pd.read_parquet(project / "data/external/busi_held_out/manifest.parquet")
    assert sorted(held_out["case_id"]) == sorted(test_ids)  # every held-out case, no other
    prediction = read_prediction_file(
        project / "results/predictions/external/busi_held_out/resformer_sequential/seed0.parquet"
    )
    assert len(prediction.frame) == len(test_ids) and prediction.meta["subset"] == "all"
    tex = (project / "results/tables/external.tex").read_text()
    assert f"busi\\_held\\_out & {len(test_ids)} & " in tex
    assert r"udiat\_b & \multicolumn{10}{l}{not available: source " in tex
    assert "PASS" in run(project, "medmtl", "audit", "results/tables/external.tex")
    assert "Nothing to be done" in run(project, "snakemake", *target)
