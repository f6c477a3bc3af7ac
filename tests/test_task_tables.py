"""The Res-MTNet and MTI-Net experiments end to end on the tiny profile (issue 14): each
experiment's table through one DAG, compiled by pdflatex and passed by `medmtl audit`;
MTI-Net's through Snakemake with its experiment file, Res-MTNet's through DVC with the
experiment's keys in params.yaml (as `dvc exp run -S` sets them). tests/test_dags.py proves the
two DAGs run the same jobs for both experiment files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_pipeline import ROOT, commit, make_project, run

pytestmark = pytest.mark.slow
TINY = {"profile": "tiny", "seeds": [0, 1]}


def _check_table(project: Path, name: str, rows: list[str], pdflatex_compile) -> str:
    tex = (project / f"results/tables/{name}.tex").read_text()
    assert "PASS" in run(project, "medmtl", "audit", f"results/tables/{name}.tex")
    assert pdflatex_compile(tex) == ""
    body = tex.split("\\midrule\n", 1)[1]
    assert [line.split(" & ")[0] for line in body.splitlines()[: len(rows)]] == rows
    return tex


def test_the_mtinet_experiment_through_snakemake(tmp_path: Path, pdflatex_compile) -> None:
    dynamic = {"n_train": 24, "n_val": 8, "n_test": 12, "phases": 4, "size": 32}
    project = make_project(tmp_path, **TINY, dynamic=dynamic)
    target = "results/tables/mtinet.tex"
    run(project, "snakemake", "--configfile", "workflow/experiments/mtinet.yaml", "--cores",
        "8", target)  # fmt: skip
    rows = ["Shared encoder + seg. head", "MTI-Net w/o MdIEF", "MTI-Net w/o TDD", "MTI-Net"]
    tex = _check_table(project, "mtinet", rows, pdflatex_compile)
    assert "Segmentation" in tex and "Classification" in tex and "Regression" in tex
    assert "wash\\_in\\_amplitude, wash\\_in\\_time, delayed\\_slope" in tex  # the caption
    layout = json.loads((project / "results/tables/mtinet.provenance.json").read_text())["layout"]
    assert layout["scored"] == {}  # every model has every task (a "--" is an undefined r)


def test_the_resmtnet_experiment_through_dvc(tmp_path: Path, pdflatex_compile) -> None:
    experiment = yaml.safe_load((ROOT / "workflow/experiments/resmtnet.yaml").read_text())
    synthetic = {"n_train": 24, "n_val": 8, "n_test": 12, "size": 32}
    project = make_project(tmp_path, **TINY, synthetic=synthetic, **experiment)
    run(project, "dvc", "init", "-q")
    commit(project, "dvc init")
    run(project, "dvc", "repro", "task_table")
    tex = _check_table(project, "resmtnet", ["Shared encoder", "Res-MTNet"], pdflatex_compile)
    assert "Segmentation" not in tex and "area\\_fraction" in tex  # no mask task, geometry
    assert "up to date" in run(project, "dvc", "status", "--with-deps", "task_table")
