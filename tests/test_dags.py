"""Snakemake and DVC run the same DAG: same stages, same commands, same outputs."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@functools.cache
def snakemake_jobs(target: str = "all") -> set[tuple[str, str, frozenset]]:
    """(rule, command without its log redirection, outputs) of every job of a forced dry run
    (default: rule `all`, every table, as `dvc repro` builds every stage)."""
    out = subprocess.run(
        [BIN / "snakemake", "-n", "-p", "--forceall", "--cores", "1", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    ).stdout
    jobs = set()
    for block in out.split("\n\n"):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        cmd = re.search(r"^Shell command: (.*)$", block, re.M)
        if rule and cmd and cmd.group(1) != "None":  # rule `all` runs nothing
            outputs = re.search(r"^    output: (.*)$", block, re.M).group(1).split(", ")
            command = re.sub(r" > \S+ 2>&1$", "", cmd.group(1))
            jobs.add((rule.group(1), command, frozenset(outputs)))
    return jobs


def dvc_jobs() -> set[tuple[str, str, frozenset]]:
    from dvc.repo import Repo

    os.environ["DVC_NO_ANALYTICS"] = "1"
    with Repo(str(ROOT)) as repo:
        return {
            (stage.name.split("@")[0], stage.cmd, frozenset(str(o.def_path) for o in stage.outs))
            for stage in repo.index.stages
        }


def test_snakemake_and_dvc_have_the_same_jobs() -> None:
    snake, dvc = snakemake_jobs(), dvc_jobs()
    assert len(snake) > 5
    assert snake - dvc == set(), "jobs only Snakemake runs"
    assert dvc - snake == set(), "jobs only DVC runs"


def test_slurm_profile_gives_every_training_rule_a_gpu() -> None:
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    training = {rule for rule, cmd, _ in snakemake_jobs() if cmd.startswith("medmtl train ")}
    assert training == {"train", "train_ablation"}
    assert all("gpu:1" in profile["set-resources"][rule]["slurm_extra"] for rule in training)


def test_config_overrides_are_refused_before_any_job() -> None:
    done = subprocess.run(
        [BIN / "snakemake", "-n", "--cores", "1", "--config", "seeds=[0]"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    )
    assert done.returncode != 0
    assert "--config seeds: the stages read params.yaml only" in done.stdout + done.stderr


RULE_FILES = sorted(p for p in (ROOT / "workflow/rules").glob("*.smk") if p.name != "common.smk")


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_rules_stay_thin(rule_file: Path) -> None:
    """Every rule runs exactly one `medmtl` subcommand (style guide: thin rules)."""
    text = rule_file.read_text()
    commands = re.findall(r'shell: f?"(.*)"', text)
    assert len(commands) == len(re.findall(r"^rule \w+:", text, re.M)) > 0
    assert all(c.startswith("medmtl ") and "&&" not in c and ";" not in c for c in commands)
