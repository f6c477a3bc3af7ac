"""Snakemake and DVC run the same DAG: same stages, same commands, same outputs."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


Job = tuple[str, str, frozenset]  # (rule or stage name, command, outputs)
EXPERIMENTS = sorted((ROOT / "workflow/experiments").glob("*.yaml"))


def _snakemake_dry_run(root: Path, target: str) -> str:
    return subprocess.run(
        [BIN / "snakemake", "-n", "-p", "--forceall", "--cores", "1", target],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    ).stdout


def snakemake_dag(root: Path = ROOT, target: str = "all") -> dict[Job, frozenset[str]]:
    """Every job of a forced dry run (default: rule `all`, every table, as `dvc repro` builds
    every stage): (rule, command without its log redirection, outputs) -> input paths."""
    jobs = {}
    for block in _snakemake_dry_run(root, target).split("\n\n"):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        cmd = re.search(r"^Shell command: (.*)$", block, re.M)
        if rule and cmd and cmd.group(1) != "None":  # rule `all` runs nothing
            outputs = re.search(r"^    output: (.*)$", block, re.M).group(1).split(", ")
            inputs = re.search(r"^    input: (.*)$", block, re.M)
            command = re.sub(r" > \S+ 2>&1$", "", cmd.group(1))
            job = (rule.group(1), command, frozenset(outputs))
            jobs[job] = frozenset(inputs.group(1).split(", ") if inputs else ())
    return jobs


@functools.cache
def snakemake_jobs(target: str = "all") -> set[Job]:
    """The jobs of `snakemake_dag` in the repository itself."""
    return set(snakemake_dag(ROOT, target))


def dvc_outputs(stage) -> frozenset[str]:
    """A DVC stage's outputs as Snakemake declares them: without the training stages'
    persisted `best.pt`, which only DVC lists (so that `dvc push` shares the trained models;
    Snakemake deletes a job's declared outputs before re-running it, and a resume needs it)."""
    return frozenset(
        str(o.def_path) for o in stage.outs if not str(o.def_path).endswith("/best.pt")
    )


def dvc_dag(root: Path = ROOT) -> dict[Job, frozenset[str]]:
    """Every stage of dvc.yaml: (stage name, command, outputs as `dvc_outputs`) -> dependency
    paths (params and the code dependencies left out: they are not edges between stages)."""
    from dvc.repo import Repo

    os.environ["DVC_NO_ANALYTICS"] = "1"
    with Repo(str(root)) as repo:
        return {
            (stage.name.split("@")[0], stage.cmd, dvc_outputs(stage)): frozenset(
                str(d.def_path) for d in stage.deps if not hasattr(d, "params")
            )
            for stage in repo.index.stages
        }


def dvc_jobs() -> set[Job]:
    return set(dvc_dag())


def _covers(output: str, path: str) -> bool:
    """Whether a job writing `output` (a file or folder) produces `path` or part of it."""
    return output == path or path.startswith(output + "/") or output.startswith(path + "/")


def edges(dag: dict[Job, frozenset[str]]) -> set[tuple[tuple[str, str], tuple[str, str]]]:
    """(job, upstream job) pairs, jobs named by (rule, command): a job depends on every job
    that writes one of its inputs or a file inside one of its input folders."""
    return {
        ((job[0], job[1]), (other[0], other[1]))
        for job, inputs in dag.items()
        for other in dag
        if other != job and any(_covers(o, i) for o in other[2] for i in inputs)
    }


def test_snakemake_and_dvc_have_the_same_jobs() -> None:
    snake, dvc = snakemake_jobs(), dvc_jobs()
    assert len(snake) > 5
    assert snake - dvc == set(), "jobs only Snakemake runs"
    assert dvc - snake == set(), "jobs only DVC runs"


def _project(tmp_path: Path, experiment: Path | None) -> Path:
    """The workflow files in a folder of their own, params.yaml merged with `experiment` (DVC
    reads params.yaml only; Snakemake reads the same merged values)."""
    from medmtl.pipeline.params import load_params

    for name in ("Snakefile", "dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "workflow", tmp_path / "workflow")
    shutil.copytree(ROOT / ".dvc", tmp_path / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    shutil.copytree(  # the code deps
        ROOT / "src/medmtl", tmp_path / "src/medmtl", ignore=shutil.ignore_patterns("__pycache__")
    )
    files = [ROOT / "params.yaml", *([experiment] if experiment else [])]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(load_params(files)))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


# Where DVC's dependencies are a superset of Snakemake's (DVC re-runs more, never less):
# `external` reads the runs of the compared models when a set is available, none otherwise (no
# training for a set that is not there), but DVC cannot depend on a path that may not exist, so
# its stage depends on the whole runs folder (README, "External validation"); a matrix stage
# cannot list dependencies per item, so each `ablation_table` depends on every ablation run,
# where Snakemake's table 9 waits only for the runs it shows.
SUPERSET_IN_DVC = {"external", "ablation_table"}


@pytest.mark.parametrize(
    "experiment", [None, *EXPERIMENTS], ids=lambda p: p.name if p else "params.yaml"
)
def test_snakemake_and_dvc_have_the_same_edges(tmp_path: Path, experiment: Path | None) -> None:
    project = _project(tmp_path, experiment)
    snake, dvc = snakemake_dag(project), dvc_dag(project)
    tables = yaml.safe_load((project / "params.yaml").read_text())["task_tables"]
    if tables:  # rule `all` builds the experiment's tables: compare the stages they need
        dvc = _upstream(dvc, {job for job in dvc if job[0] == "task_table"})
        assert len({job for job in dvc if job[0] == "task_table"}) == len(tables)
    assert set(snake) == set(dvc), "jobs differ"
    snake_edges, dvc_edges = edges(snake), edges(dvc)
    assert len(snake_edges) > len(snake)
    exact = {e for e in snake_edges | dvc_edges if e[0][0] not in SUPERSET_IN_DVC}
    assert snake_edges & exact == dvc_edges & exact
    superset = snake_edges - exact
    assert superset <= dvc_edges


def test_dvc_shares_every_training_runs_checkpoint_and_keeps_it_for_a_resume() -> None:
    """Each training stage, and no other, lists its best.pt: cached (dvc push shares it) and
    persisted (not deleted when the stage reruns, so a killed job resumes)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        for stage in repo.index.stages:
            kept = [o for o in stage.outs if str(o.def_path).endswith("/best.pt")]
            training = stage.cmd.startswith("medmtl train ")
            assert len(kept) == training and all(o.persist and o.use_cache for o in kept), stage


def test_the_report_adds_no_job_to_the_main_job() -> None:
    """The report's rules (figures, run curves) run only when asked for: Table 4, the main
    job, waits for none of them (issue 12: the report adds nothing to its time)."""
    main_job = {rule for rule, _, _ in snakemake_jobs("results/tables/table4.tex")}
    assert {"train", "evaluate", "stats", "table4"} <= main_job
    assert not main_job & {"figures", "run_curves"}
    assert {"figures", "run_curves"} <= {rule for rule, _, _ in snakemake_jobs()}


def _upstream(dag: dict[Job, frozenset[str]], targets: set[Job]) -> dict[Job, frozenset[str]]:
    """The part of `dag` that `targets` need: them and every job upstream of them."""
    needed, frontier = set(targets), set(targets)
    while frontier:
        frontier = {
            other
            for job in frontier
            for other in dag
            if other not in needed and any(_covers(o, i) for o in other[2] for i in dag[job])
        }
        needed |= frontier
    return {job: inputs for job, inputs in dag.items() if job in needed}


def test_slurm_profile_times_every_training_rule_and_forces_no_gpu() -> None:
    """GPUs come from the rules' `gpu` resource (sbatch --gpus=1 unless train.device is cpu),
    never from a hard-coded --gres, which a CPU-only cluster refuses."""
    text = (ROOT / "workflow/profiles/slurm/config.yaml").read_text()
    training = {rule for rule, cmd, _ in snakemake_jobs() if cmd.startswith("medmtl train ")}
    assert training == {"train", "train_ablation"}
    assert all(yaml.safe_load(text)["set-resources"][r]["runtime"] > 120 for r in training)
    assert "gres" not in text


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


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_every_rule_reruns_when_the_code_of_its_command_changes(rule_file: Path) -> None:
    """Each rule passes the fingerprint of the command it runs as its param `code`."""
    for rule in re.split(r"^(?=rule \w+:)", rule_file.read_text(), flags=re.M)[1:]:
        command = re.search(r'shell: f?"medmtl ([a-z-]+)', rule).group(1)
        assert re.findall(r'code=stage_fingerprint\("([a-z-]+)"\)', rule) == [command], rule[:40]


def test_every_dvc_stage_depends_on_exactly_the_code_it_computes_with() -> None:
    """A stage's deps under src/ are `stage_paths` of its command (the Snakefile fingerprints
    the same files), so a code change reruns the same stages in both DAGs."""
    from dvc.repo import Repo

    from medmtl.pipeline.stage_code import stage_paths

    with Repo(str(ROOT)) as repo:
        stages = list(repo.index.stages)
    assert len(stages) > 10
    for stage in stages:
        code = sorted(str(d.def_path) for d in stage.deps if str(d.def_path).startswith("src/"))
        expected = stage_paths(stage.cmd.split()[1], ROOT)
        listing = "".join(f"\n      - {path}" for path in expected)
        assert code == expected, f"dvc.yaml, stage {stage.name}: its code deps should be{listing}"
