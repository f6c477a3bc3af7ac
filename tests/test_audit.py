"""`medmtl audit` on a small fake pipeline output: one test per tamper case."""

import argparse
import json
import re
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from medmtl.commands import audit as audit_cmd
from medmtl.commands import stats as stats_cmd
from medmtl.commands import table as table_cmd
from medmtl.errors import UserError
from medmtl.evaluation import metrics as audit_metrics
from medmtl.evaluation.predictions import write_prediction_file
from medmtl.hashing import file_sha256
from medmtl.reporting import audit, table_tex

CLASSES = ["nevus", "melanoma", "seborrheic_keratosis"]
SKILL = {"he2020": 0.3, "tang2023": 0.5, "resformer_parallel": 0.95}
SEEDS = (0, 1)
N_CASES = 24
EVAL_DIR = Path("results/predictions/isic2017_test")
TEX = Path("results/tables/table4.tex")
SPLIT = Path("data/splits/isic2017.json")


def _frame(model: str, seed: int) -> pd.DataFrame:
    labels = np.random.default_rng(0).integers(0, 3, N_CASES)
    rng = np.random.default_rng([list(SKILL).index(model), seed])
    skill = SKILL[model]
    logits = rng.normal(size=(N_CASES, 3))
    logits[np.arange(N_CASES), labels] += 4 * skill
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    gt = np.random.default_rng(1).integers(40, 90, N_CASES)
    gt[0] = 0  # one case without lesion
    tp = (gt * rng.uniform(0.5 * skill, skill, N_CASES)).astype(int)
    frame = pd.DataFrame(probs, columns=[f"prob_{c}" for c in CLASSES])
    frame.insert(0, "case_id", [f"ISIC_{i:07d}" for i in range(N_CASES)])
    frame.insert(1, "label", labels)
    frame["pred_label"] = probs.argmax(axis=1)
    fp = rng.integers(0, 15, N_CASES)
    frame["seg_tp"], frame["seg_fp"], frame["seg_fn"] = tp, fp, gt - tp
    frame["native_tp"], frame["native_fp"], frame["native_fn"] = 4 * tp, 4 * fp, 4 * (gt - tp)
    frame["nsd"], frame["hd95"] = 100 * tp / np.maximum(gt, 1), 10 * (1 - tp / np.maximum(gt, 1))
    return frame


def _meta(model: str, seed: int) -> dict:
    return {
        "model": model,
        "seed": seed,
        "eval_set": "isic2017_test",
        "dataset": "isic2017",
        "class_names": CLASSES,
        "run_id": f"run-{model}-{seed}",
        "checkpoint": f"results/runs/isic2017/{model}/seed{seed}/best.pt",
        "data_sha256": "d" * 64,
        "git_commit": "abc1234",
        "git_dirty": False,
        "subset": "test",
        "selection_subset": "val",
        "config_sha256": "c" * 64,
        "profile": "demo",
        "tracking_uri": "sqlite:///mlflow.db",
        "nsd_tolerance": 2.0,
    }


def _run_command(module: types.ModuleType, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def _prediction_path(model: str, seed: int) -> Path:
    return EVAL_DIR / model / f"seed{seed}.parquet"


@pytest.fixture
def build(tmp_path, monkeypatch):
    """Write predictions and checkpoints, run `medmtl stats` and `medmtl table`; return the tex."""
    monkeypatch.chdir(tmp_path)

    def _build(overrides: dict | None = None) -> Path:
        SPLIT.parent.mkdir(parents=True)
        split = {"dataset": "isic2017", "policy": "Official ISIC 2017 parts.", "seed": 0}
        SPLIT.write_text(
            json.dumps(split | {"cases_sha256": "x", "train": [], "val": [], "test": []})
        )
        for model in SKILL:
            for seed in SEEDS:
                meta = _meta(model, seed) | (overrides or {}).get((model, seed), {})
                checkpoint = Path(meta["checkpoint"])
                checkpoint.parent.mkdir(parents=True)
                checkpoint.write_bytes(f"weights {model} {seed}".encode())
                meta["checkpoint_sha256"] = file_sha256(checkpoint)
                meta["split_sha256"] = file_sha256(SPLIT)
                write_prediction_file(_prediction_path(model, seed), _frame(model, seed), meta)
        stats_args = ["stats", "--predictions", str(EVAL_DIR), "--reference", "he2020"]
        stats_args += ["--alpha", "0.05", "--n-boot", "100", "--out", "results/stats/isic.parquet"]
        assert _run_command(stats_cmd, stats_args) == 0
        table_args = [
            "table",
            "--predictions",
            str(EVAL_DIR),
            "--stats",
            "results/stats/isic.parquet",
        ]
        table_args += ["--split", str(SPLIT), "--out", str(TEX), "--caption-profile", "demo"]
        assert _run_command(table_cmd, [*table_args, "--vs-paper", "results/tables/vs.tex"]) == 0
        return TEX

    return _build


def _finished(tracking_uri: str, run_id: str) -> str:
    return "FINISHED"


def _failing(report: audit.AuditReport) -> list[audit.Finding]:
    return [f for f in report.findings if f.status in audit.FAILING]


def _only_failure(report: audit.AuditReport) -> audit.Finding:
    failing = _failing(report)
    assert len(failing) == 1, [audit.format_finding(f) for f in failing]
    return failing[0]


def test_untouched_table_passes(build):
    report = audit.audit_table(build(), _finished)
    assert audit.passed(report.findings), audit.format_report(TEX, _failing(report))
    cell_findings = [f for f in report.findings if f.subject.startswith("cell ")]
    assert len(cell_findings) == 3 * 5 and all(f.status == audit.OK for f in cell_findings)
    assert sum("checkpoint sha256 matches" in f.message for f in report.findings) == 6
    assert "PASS: " in audit.format_report(TEX, report.findings)
    assert r"$^\dagger$" in TEX.read_text()  # the fixture yields marks to tamper with


def test_hand_edited_number_is_a_mismatch_with_expected_and_found(build):
    tex = build()
    row = next(line for line in tex.read_text().splitlines() if line.startswith("Tang et al."))
    first_cell = row.split(" & ")[1]
    number = re.search(r"\d+\.\d", first_cell).group()
    edited = first_cell.replace(number, f"{float(number) + 1:.1f}", 1)
    tex.write_text(tex.read_text().replace(row, row.replace(first_cell, edited, 1)))
    finding = _only_failure(audit.audit_table(tex, _finished))
    assert finding.subject == "cell tang2023,JI" and "hand-edited" in finding.message
    assert finding.expected == table_tex.plain_cell(first_cell)
    assert finding.found == table_tex.plain_cell(edited)


def test_removed_significance_mark_is_a_mismatch(build):
    tex = build()
    row = next(line for line in tex.read_text().splitlines() if line.startswith("ResFormer"))
    tex.write_text(tex.read_text().replace(row, row.replace(r"$^\dagger$", "", 1)))
    finding = _only_failure(audit.audit_table(tex, _finished))
    assert finding.subject.startswith("cell resformer_parallel,") and "†" in finding.expected


def test_forged_second_mark_is_a_mismatch(build):
    """Two seeds per model: the per-run test cannot reach alpha, so a double dagger is false."""
    tex = build()
    row = next(line for line in tex.read_text().splitlines() if line.startswith("ResFormer"))
    forged = row.replace(r"$^\dagger$", r"$^\dagger$$^\ddagger$", 1)
    tex.write_text(tex.read_text().replace(row, forged))
    finding = _only_failure(audit.audit_table(tex, _finished))
    assert finding.subject.startswith("cell resformer_parallel,") and "‡" in finding.found
    assert "cannot give $p$ below 0.33" in tex.read_text()  # the caption says why


def test_a_test_of_another_number_than_its_cell_is_a_mismatch(build, monkeypatch):
    """The original fault: the Acc mark came from 3-class accuracy, not from the micro
    one-vs-rest accuracy the cell shows. Re-derived that way, the audit names every Acc test."""
    tex = build()
    real = audit_metrics.per_image

    def acc_from_argmax(frame, class_names, metric, regression=None):
        return real(frame, class_names, "Acc3" if metric == "Acc" else metric, regression)

    monkeypatch.setattr(audit_metrics, "per_image", acc_from_argmax)
    failing = _failing(audit.audit_table(tex, _finished))
    tests = [f for f in failing if f.subject.startswith("test ")]
    assert {f.subject for f in tests} == {
        "test tang2023 vs he2020 on Acc",
        "test resformer_parallel vs he2020 on Acc",
    }
    assert all("other numbers than its cells show" in f.message for f in tests)


def test_extra_row_is_a_mismatch(build):
    tex = build()
    text = tex.read_text().replace(r"\bottomrule", "Fake & 1 & 2 & 3 & 4 & 5 \\\\\n\\bottomrule")
    tex.write_text(text)
    finding = _only_failure(audit.audit_table(tex, _finished))
    assert finding.subject == "row Fake" and "not in the provenance" in finding.message


def test_changed_prediction_file_is_detected(build):
    tex = build()
    path = _prediction_path("tang2023", 1)
    meta = json.loads(pq.read_schema(path).metadata[b"medmtl"])
    frame = _frame("tang2023", 1)
    frame["seg_fp"] += 30
    write_prediction_file(path, frame, meta)
    report = audit.audit_table(tex, _finished)
    changed = [f for f in _failing(report) if f.subject == f"file {path}"]
    assert changed and "changed since the table was built" in changed[0].message
    assert any(f.subject == "cell tang2023,JI" for f in _failing(report))


def test_missing_prediction_file_is_detected(build):
    tex = build()
    _prediction_path("resformer_parallel", 0).unlink()
    report = audit.audit_table(tex, _finished)
    failing = _failing(report)
    assert {f.status for f in failing} == {audit.MISSING}
    assert any("prediction file missing" in f.message for f in failing)
    assert {f.subject for f in failing if f.subject.startswith("cell ")} == {
        f"cell resformer_parallel,{m}" for m in audit.tables.TABLE_METRICS
    }
    assert any("marks not re-derived" in f.message for f in report.findings)


def test_deleted_or_unfinished_mlflow_run_is_detected(build):
    tex = build()
    statuses = {"run-tang2023-1": None, "run-he2020-0": "RUNNING"}
    report = audit.audit_table(tex, lambda uri, run_id: statuses.get(run_id, "FINISHED"))
    failing = {f.subject: f for f in _failing(report)}
    assert set(failing) == {"run tang2023 seed1", "run he2020 seed0"}
    assert failing["run tang2023 seed1"].status == audit.MISSING
    assert "does not exist, was deleted" in failing["run tang2023 seed1"].message
    assert failing["run he2020 seed0"].found == "RUNNING"


@pytest.fixture
def real_store(tmp_path):
    """A real MLflow SQLite store with one FINISHED run per (model, seed), as training leaves
    them, and the prediction-file overrides naming those runs."""
    from medmtl import tracking

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    tracking.init_store(uri, "medmtl")
    overrides = {}
    for model in SKILL:
        for seed in SEEDS:
            tags = {"medmtl.stage": "train", "medmtl.output": f"{model}/seed{seed}"}
            run_id = tracking.start_run(uri, "medmtl", f"{model}-seed{seed}", tags)
            tracking.finish_run(uri, run_id)
            overrides[model, seed] = {"run_id": run_id, "tracking_uri": uri}
    return uri, overrides


def _audit_command(tex: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = _run_command(audit_cmd, ["audit", str(tex)])
    return code, capsys.readouterr().out


def test_audit_asks_a_real_store_deleted_and_running_runs_fail(build, real_store, capsys):
    from medmtl import tracking

    uri, overrides = real_store
    tex = build(overrides)
    assert _audit_command(tex, capsys)[0] == 0
    deleted, running = overrides["tang2023", 1]["run_id"], overrides["he2020", 0]["run_id"]
    tracking.client(uri).delete_run(deleted)
    tracking.resume_run(uri, running)  # left RUNNING, as by a job that died
    code, out = _audit_command(tex, capsys)
    assert code == 1
    assert f"missing  run tang2023 seed1: MLflow run {deleted} ({uri}) does not exist" in out
    assert f"mismatch run he2020 seed0: MLflow run {running} ({uri}) is not finished" in out
    assert "[expected FINISHED, found RUNNING]" in out


def test_audit_with_the_store_gone_fails_naming_every_run_and_creates_no_store(
    build, real_store, capsys
):
    uri, overrides = real_store
    tex = build(overrides)
    store = Path(uri.removeprefix("sqlite:///"))
    store.unlink()
    code, out = _audit_command(tex, capsys)
    assert code == 1 and not store.exists()
    for run in overrides.values():
        assert (
            f"MLflow run {run['run_id']} ({uri}) does not exist, was deleted, or the store" in out
        )


def test_dirty_work_tree_is_detected(build):
    tex = build({("he2020", 1): {"git_dirty": True}})
    finding = _only_failure(audit.audit_table(tex, _finished))
    assert (
        finding.subject == "run he2020 seed1" and "built from a dirty work tree" in finding.message
    )
    assert "(dirty work tree: True)" in tex.read_text()


def test_checkpoint_selected_on_the_test_split_is_detected(build):
    tex = build({("resformer_parallel", 0): {"selection_subset": "test"}})
    finding = _only_failure(audit.audit_table(tex, _finished))
    assert "checkpoint selected on the test split (leak)" in finding.message


def test_checkpoint_changed_fails_and_checkpoint_absent_is_skipped(build):
    tex = build()
    Path(_meta("he2020", 0)["checkpoint"]).write_bytes(b"retrained")
    Path(_meta("he2020", 1)["checkpoint"]).unlink()
    report = audit.audit_table(tex, _finished)
    finding = _only_failure(report)
    assert finding.subject == "run he2020 seed0" and "checkpoint changed" in finding.message
    skipped = [f for f in report.findings if f.status == audit.SKIPPED]
    assert len(skipped) == 1 and "checkpoint not present" in skipped[0].message


def test_changed_stats_or_split_file_is_detected(build):
    tex = build()
    Path("results/stats/isic.parquet").write_bytes(b"garbage")
    finding = _only_failure(audit.audit_table(tex, _finished))
    assert finding.subject == "file results/stats/isic.parquet"
    assert "stats file changed" in finding.message
    SPLIT.unlink()
    assert "split file missing" in _failing(audit.audit_table(tex, _finished))[-1].message


def test_table_command_checks_split_profile_and_alpha(build):
    build()
    args = ["table", "--predictions", str(EVAL_DIR), "--stats", "results/stats/isic.parquet"]
    args += ["--out", "t.tex"]  # --split defaults to data/splits/<dataset>.json
    assert _run_command(table_cmd, [*args, "--profile", "demo", "--alpha", "0.05"]) == 0
    with pytest.raises(UserError, match="--profile paper: the runs used profile demo"):
        _run_command(table_cmd, [*args, "--caption-profile", "paper"])
    with pytest.raises(UserError, match="--alpha 0.001: .* used alpha 0.05"):
        _run_command(table_cmd, [*args, "--alpha", "0.001"])
    SPLIT.write_text(SPLIT.read_text() + " ")
    with pytest.raises(UserError, match="sha256 differs from the split_sha256"):
        _run_command(table_cmd, args)


@pytest.fixture
def fake_tracking(monkeypatch):
    """`medmtl.tracking.run_status` stand-in: every run FINISHED except in a 'gone' store."""
    from medmtl import tracking

    calls = []

    def run_status(tracking_uri: str, run_id: str) -> str | None:
        calls.append((tracking_uri, run_id))
        return None if run_id == "run-tang2023-0" and "gone" in tracking_uri else "FINISHED"

    monkeypatch.setattr(tracking, "run_status", run_status)
    return calls


def test_audit_command_exit_codes_and_report(build, fake_tracking, capsys):
    tex = build()
    capsys.readouterr()
    assert _run_command(audit_cmd, ["audit", str(tex), "--tracking-uri", "sqlite:///x.db"]) == 0
    assert ("sqlite:///x.db", "run-he2020-0") in fake_tracking
    assert "PASS: " in capsys.readouterr().out
    assert _run_command(audit_cmd, ["audit", str(tex)]) == 0
    assert ("sqlite:///mlflow.db", "run-he2020-0") in fake_tracking  # the URI the run recorded
    assert _run_command(audit_cmd, ["audit", str(tex), "--tracking-uri", "sqlite:///gone.db"]) == 1
    out = capsys.readouterr().out
    assert "missing  run tang2023 seed0: MLflow run run-tang2023-0 (sqlite:///gone.db) does" in out
    assert "FAIL: " in out


def test_audit_command_cell_lineage(build, fake_tracking, capsys):
    tex = build()
    capsys.readouterr()
    assert _run_command(audit_cmd, ["audit", str(tex), "--cell", "resformer_parallel,JI"]) == 0
    out = capsys.readouterr().out
    lineage = json.loads(out[: out.index("audit of")])
    assert lineage["definition"] == "faithful" and lineage["test"]["test"] == "wilcoxon"
    assert [run["run_id"] for run in lineage["runs"]] == [
        "run-resformer_parallel-0",
        "run-resformer_parallel-1",
    ]
    assert (
        lineage["runs"][0]["prediction_file"]
        == "../predictions/isic2017_test/resformer_parallel/seed0.parquet"
    )
    assert "cell resformer_parallel,JI" in out and "cell he2020" not in out
    with pytest.raises(UserError, match="no cell he2020,AUC"):
        _run_command(audit_cmd, ["audit", str(tex), "--cell", "he2020,AUC"])
    with pytest.raises(UserError, match="expected MODEL,METRIC"):
        _run_command(audit_cmd, ["audit", str(tex), "--cell", "he2020"])
