"""The SLURM profile for real: a one-node SLURM cluster built from Debian's packages by
workflow/profiles/slurm/test-cluster.sh (`.ci/run` installs slurm-wlm and munge), the tiny DAG
submitted through Snakemake's SLURM executor, every job by sbatch; the table equals a local
run's and the MLflow store holds one run per training job."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_pipeline import MODELS, ROOT, finished_training_runs, make_project, run, tiny

pytestmark = pytest.mark.slow
CLUSTER = ROOT / "workflow/profiles/slurm/test-cluster.sh"


@pytest.fixture
def slurm(tmp_path: Path):
    """The cluster's SLURM_CONF, started for the test and stopped after it."""
    assert shutil.which("slurmctld") and shutil.which("munged"), (
        "slurm-wlm and munge are not installed (.ci/run installs them)"
    )
    state = tmp_path / "slurm"
    env = {**os.environ, "STATE": str(state)}
    done = subprocess.run(["bash", str(CLUSTER), "start"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    os.environ["SLURM_CONF"] = str(state / "slurm.conf")
    try:
        yield state / "slurm.conf"
    finally:
        del os.environ["SLURM_CONF"]
        subprocess.run(["bash", str(CLUSTER), "stop"], env=env, check=True)


def test_the_tiny_dag_through_slurm_equals_the_local_run(tmp_path: Path, slurm: Path) -> None:
    synthetic = {"n_train": 24, "n_val": 8, "n_test": 12, "size": 32}
    cpu = {"device": "cpu"}  # device auto would ask SLURM for a GPU (sbatch --gpus=1)
    local = make_project(tmp_path, **tiny(seeds=[0, 1], synthetic=synthetic, train=cpu))
    cluster = tmp_path / "cluster"
    shutil.copytree(local, cluster)  # the same commit: the tables' headers agree
    target = "results/tables/table4.tex"
    run(local, "snakemake", "--cores", "2", target)
    run(cluster, "snakemake", "--workflow-profile", "workflow/profiles/slurm", target,
        "--slurm-status-command", "squeue", "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
        "--default-resources", "mem_mb=2000", "runtime=30", "--latency-wait", "5")  # fmt: skip
    assert (cluster / target).read_text() == (local / target).read_text()
    jobs = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%k|%T"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    comments = (line.split("|")[0].removeprefix("rule_") for line in jobs)
    rules = sorted(comment.split("_wildcards_")[0] for comment in comments)
    benchmarks = sorted(  # every rule writes one benchmark file per job
        p.relative_to(cluster / "results/benchmarks").parts[0].removesuffix(".tsv")
        for p in (cluster / "results/benchmarks").rglob("*.tsv")
    )
    assert rules == benchmarks and "train" in rules, (rules, benchmarks)
    assert all(line.endswith("|COMPLETED") for line in jobs), jobs
    expected = sorted((m, str(s)) for m in MODELS for s in (0, 1))
    assert finished_training_runs(cluster) == expected
    assert "PASS" in run(cluster, "medmtl", "audit", target)
