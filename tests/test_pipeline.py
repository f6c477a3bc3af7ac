"""End to end: the whole DAG on a tiny profile, through Snakemake and through DVC, on the
synthetic default and on the real ISIC 2017 mirror. CI runs these (they take a few minutes)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from pandas import testing as pd_testing
from test_dags import dvc_outputs

from medmtl import tracking

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODELS = ["resunet", "resformer_sequential"]
ABLATED = [f"resformer_sequential-{switch}" for switch in ("cls_only", "seg_only", "no_dfe")]
pytestmark = pytest.mark.slow


PYCACHE = shutil.ignore_patterns("__pycache__")
FAILED_LOG = re.compile(r"log: (\S+) \(check log file")  # how Snakemake names a failed job's log


def make_project(tmp_path: Path, **params) -> Path:
    """A git repository holding a copy of the workflow files, `params` merged into params.yaml
    (committed, so the runs record a clean work tree and the audit can pass)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Snakefile", "dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "workflow", project / "workflow")
    shutil.copytree(ROOT / "src/medmtl", project / "src/medmtl", ignore=PYCACHE)  # dvc.yaml deps
    config = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in params.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    (project / "params.yaml").write_text(yaml.safe_dump(config))
    run(project, "git", "init", "-q")
    commit(project, "project")
    return project


def commit(project: Path, message: str) -> None:
    run(project, "git", "add", ".")
    run(project, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


def run(project: Path, *cmd: str, env: dict[str, str] | None = None) -> str:
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        **(env or {}),
    }
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    said = done.stdout + done.stderr
    failed_logs = {log: (project / log).read_text()[-2000:] for log in FAILED_LOG.findall(said)
                   if (project / log).is_file()}  # fmt: skip
    assert done.returncode == 0, f"{cmd} failed:\n{said[-4000:]}\nfailed jobs' logs: {failed_logs}"
    return said


def finished_training_runs(project: Path) -> list[tuple[str, str]]:
    client = tracking.client(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("medmtl")
    runs = client.search_runs([experiment.experiment_id], "tags.`medmtl.stage` = 'train'")
    assert all(r.info.status == "FINISHED" for r in runs)
    return sorted((r.data.tags["medmtl.model"], r.data.tags["medmtl.seed"]) for r in runs)


def tiny(**params) -> dict:
    models = {"models": MODELS, "reference_model": MODELS[1], "baseline_model": MODELS[0]}
    ablations = {"ablations": {"models": [MODELS[1]]}}
    return {"profile": "tiny", **models, **ablations, **params}


def _kill_during_training(project: Path, *cmd: str) -> None:
    """Start `cmd` in a session of its own and SIGKILL the scheduler and all its jobs once a
    training job has written its first checkpoint (a crash: power loss, OOM killer)."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    job = subprocess.Popen(
        cmd, cwd=project, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    results = project / "results"  # Table 4's runs and the ablations'
    while not any(results.glob("**/seed*/last.pt")) and time.monotonic() < deadline:
        assert job.poll() is None, "the DAG finished or failed before the kill"
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()


def _outputs(project: Path) -> dict[str, object]:
    """What both DAGs must produce alike: every table's .tex and the rows of every prediction
    file (their metadata name MLflow runs, which differ between two runs of a job)."""
    import pandas as pd

    tables = {p.name: p.read_text() for p in (project / "results/tables").glob("table4*.tex")}
    predictions = {
        str(p.relative_to(project)): pd.read_parquet(p)
        for p in sorted((project / "results/predictions").rglob("*.parquet"))
    }
    return {"tables": tables, "predictions": predictions}


def test_snakemake_after_a_crash_and_dvc_give_the_same_outputs(tmp_path: Path) -> None:
    """One project: Snakemake killed mid-training, unlocked, re-run (Table 4 and the ablation
    tables); then DVC from scratch (Table 4, run serially). The two Table 4s and every prediction
    file are the same, and every audit passes. Then a code edit: both DAGs rerun the stages that
    compute with the edited file, and no other training."""
    synthetic = {"n_train": 30, "n_val": 12, "n_test": 16, "size": 48}
    project = make_project(tmp_path, **tiny(seeds=[0, 1], synthetic=synthetic))
    run(project, "dvc", "init", "-q")
    commit(project, "dvc init")  # as a user would: the runs then record a clean work tree
    target = "results/tables/table4.tex"
    tables = [f"results/tables/{table}.tex" for table in ("table4", "table8", "table9")]
    targets = ["all"]  # Table 4, the ablation and external tables, the report's figures
    _kill_during_training(project, "snakemake", "--cores", "8", *targets)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    locked = subprocess.run(
        ["snakemake", "--cores", "8", *targets],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    # Locked; or, where a job was killed between writing its output and Snakemake recording
    # it, that output is listed as incomplete (checked first). The README says what to run.
    said = locked.stdout + locked.stderr
    assert locked.returncode != 0 and ("--unlock" in said or "--rerun-incomplete" in said), said
    run(project, "snakemake", "--unlock")
    run(project, "snakemake", "--cores", "8", "--rerun-incomplete", *targets)
    runs = sorted((m, str(s)) for m in MODELS + ABLATED for s in (0, 1))
    assert finished_training_runs(project) == runs  # one run per job: resumed, none lost
    assert "Nothing to be done" in run(project, "snakemake", "--cores", "8", *targets)
    for table in tables:  # every cell re-derives from the runs
        assert "PASS" in run(project, "medmtl", "audit", table)
    _check_report_in_chromium(project)
    _check_run_curves_and_run_times(project, runs)
    snakemake_outputs = _outputs(project)
    expected = sorted((m, str(s)) for m in MODELS for s in (0, 1))
    assert len(snakemake_outputs["predictions"]) == len(expected)

    for folder in ("data", "results"):  # DVC from scratch: nothing of Snakemake's is reused
        shutil.rmtree(project / folder)
    run(project, "dvc", "repro", "table4")
    assert finished_training_runs(project) == runs  # Table 4's jobs replaced, none added
    assert "up to date" in run(project, "dvc", "status", "--with-deps", "table4")
    assert "PASS" in run(project, "medmtl", "audit", target)
    dvc_made = _outputs(project)
    assert dvc_made["tables"] == snakemake_outputs["tables"]
    assert dvc_made["predictions"].keys() == snakemake_outputs["predictions"].keys()
    for path, frame in snakemake_outputs["predictions"].items():
        pd_testing.assert_frame_equal(dvc_made["predictions"][path], frame, check_exact=True)
    _check_dvc_remote_round_trip(project, target)

    # A code change reruns the stages of Table 4 that compute with it, the same in both DAGs
    # (Snakemake compares the params of the jobs it ran, DVC of the stages it ran: Table 4's).
    stage_of = {outs: name for name, outs in _dvc_stages(project).items()}
    assert _snakemake_plan(project, target, stage_of) == _dvc_plan(project, "table4") == set()
    for edited, stages in (
        ("models/he2020.py", {"train", "evaluate"}),
        ("reporting/table_tex.py", {"table4"}),
        ("evaluation/boundary.py", {"evaluate"}),
    ):
        source = project / "src/medmtl" / edited
        original = source.read_bytes()
        source.write_bytes(original + b"# an edit\n")
        dvc_plan = _dvc_plan(project, "table4")
        snakemake_plan = _snakemake_plan(project, target, stage_of)
        assert {n.split("@")[0] for n in dvc_plan} == stages, edited
        assert {n for n in snakemake_plan if n.startswith("train@")} == {
            n for n in dvc_plan if n.startswith("train@")
        }, edited
        assert dvc_plan <= snakemake_plan, edited  # Snakemake adds what depends on them
        source.write_bytes(original)
    assert _snakemake_plan(project, target, stage_of) == _dvc_plan(project, "table4") == set()


def _check_dvc_remote_round_trip(project: Path, target: str) -> None:
    """Share through a DVC remote (a folder here; S3 or SSH for users, README "Scaling out"):
    `dvc push`, then a fresh clone beside the project pulls data, runs (their checkpoints
    too) and tables back, DVC finds it up to date, and the audit passes there, checking the
    checkpoints' hashes, against the project's MLflow store (the shared store)."""
    run(project, "dvc", "remote", "add", "-d", "shared", str(project.parent / "dvc-remote"))
    commit(project, "dvc.lock and the remote")  # as a user shares a pipeline's state
    run(project, "dvc", "push", "--with-deps", "table4")  # what DVC built here (dvc.lock)
    clone = project.parent / "clone"
    run(project.parent, "git", "clone", "-q", str(project), str(clone))
    run(clone, "dvc", "pull", "--with-deps", "table4")
    assert "up to date" in run(clone, "dvc", "status", "--with-deps", "table4")
    assert (clone / target).read_text() == (project / target).read_text()
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    audit = run(clone, "medmtl", "audit", target, env=env)
    assert "PASS" in audit and "checkpoint not present" not in audit, audit
    assert audit.count("checkpoint sha256 matches") == len(MODELS) * 2, audit


REPORT_CATEGORIES = ("Table 4", "Ablations", "External validation", "Training",
                     "Tests and ranks", "Provenance")  # fmt: skip
FIGURES = {"curves.png", "per_image.png", "overlays.png", "classification.png",
           "statistics.png", "external.png"}  # fmt: skip
CHROMIUM_FLAGS = (  # headless as root on a closed network (../.library/env/machines/python.md)
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0",
)  # fmt: skip


def _check_report_in_chromium(project: Path) -> None:
    """Build `snakemake --report` and look at it as a person would, in headless Chromium: the
    page runs without a script error, its menu holds every category, each figure is embedded
    and not blank, and a screenshot is not blank (kept in $MEDMTL_ARTIFACTS when set)."""
    import base64
    import io

    from matplotlib import image

    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (.ci/run installs Debian's chromium package)"
    report = project / "results/report.html"
    run(project, "snakemake", "--report", str(report))
    url, profile = report.as_uri(), project.parent / "chromium-profile"  # outside the work tree
    shot = project / "results/report.png"
    for extra in (["--dump-dom"], [f"--screenshot={shot}", "--window-size=1400,1000"]):
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        errors = [line for line in done.stderr.splitlines() if "Uncaught" in line]
        assert not errors, errors
        if extra == ["--dump-dom"]:
            missing = [c for c in REPORT_CATEGORIES if f">{c}<" not in done.stdout]
            assert not missing, f"report menu lacks {missing}"
    embedded = re.findall(r"data:image/png;[^,\"]*?filename=([^;\",]+);base64,([A-Za-z0-9+/=]+)",
                          report.read_text())  # fmt: skip
    assert {name for name, _ in embedded} == FIGURES
    for name, data in embedded:
        assert image.imread(io.BytesIO(base64.b64decode(data)))[..., :3].std() > 0.02, name
    assert image.imread(shot)[..., :3].std() > 0.02, "blank screenshot"
    if artifacts := os.environ.get("MEDMTL_ARTIFACTS"):
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "report.png")
        shutil.copy(report, Path(artifacts) / "report.html")


def _check_run_curves_and_run_times(project: Path, runs: list[tuple[str, str]]) -> None:
    """Every training run, Table 4's and the ablations', holds its own curves.png in MLflow;
    the provenance page lists the upstream rules' run times; the .zip report holds the page
    and every figure."""
    import zipfile

    import pandas as pd

    client = tracking.client(f"sqlite:///{project / 'mlflow.db'}")
    listed = pd.read_csv(project / "results/figures/run_curves.tsv", sep="\t")
    assert sorted(zip(listed["run"], listed["seed"].astype(str), strict=True)) == runs
    for run_id in listed["mlflow_run_id"]:
        assert "curves.png" in [a.path for a in client.list_artifacts(run_id)], run_id
    page = (project / "results/figures/provenance.html").read_text()
    timed = re.findall(r"<tr><td>(\w+)</td><td>(\d+)</td>", page.split('id="run-times"')[1])
    assert dict(timed)["train"] == str(len(MODELS) * 2) and "train_ablation" not in dict(timed)
    archive = project / "results/report.zip"
    run(project, "snakemake", "--report", str(archive))
    names = {Path(n).name for n in zipfile.ZipFile(archive).namelist()}
    assert {"report.html", "provenance.html"} | FIGURES <= names, names


def _dvc_stages(project: Path) -> dict[str, frozenset[str]]:
    """Stage name (``train@resunet-0``) -> its outputs, as Snakemake declares them."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        return {s.name: dvc_outputs(s) for s in repo.index.stages}


def _dvc_plan(project: Path, stage: str) -> set[str]:
    """The stages `dvc repro --dry <stage>` would run: those whose own dependencies changed."""
    dry = run(project, "dvc", "repro", "--dry", stage)
    return set(re.findall(r"^Running stage '([^']+)'", dry, re.M))


def _snakemake_plan(project: Path, target: str, stage_of: dict[frozenset[str], str]) -> set[str]:
    """The jobs a dry run for `target` would run, named by `stage_of` their outputs (the DVC
    stage with the same outputs)."""
    dry = run(project, "snakemake", "-n", "--cores", "8", target)
    jobs = re.findall(r"^    output: (.*)$", dry, re.M)
    return {stage_of[frozenset(job.split(", "))] for job in jobs}


def test_snakemake_runs_table4_on_the_isic2017_mirror(tmp_path: Path, isic2017_mirror_dir) -> None:
    isic = {"source": str(isic2017_mirror_dir), "parts": ["training", "validation"]}
    project = make_project(tmp_path, **tiny(seeds=[0, 1], dataset="isic2017", isic2017=isic))
    run(project, "snakemake", "--cores", "8", "results/tables/table4.tex")
    table = (project / "results/tables/table4.tex").read_text()
    assert "isic2017" in table and "test = official validation" in table  # caption: split policy
    predictions = project / "results/predictions/isic2017_test/resunet/seed0.parquet"
    import pandas as pd

    assert len(pd.read_parquet(predictions)) == 150  # the official validation part is the test


def test_unknown_model_in_params_fails_before_any_job(tmp_path: Path) -> None:
    project = make_project(tmp_path, models=["resunet", "no_such_model"])
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["snakemake", "-n", "--cores", "1"], cwd=project, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "models: 'no_such_model' is not one of" in done.stdout + done.stderr
