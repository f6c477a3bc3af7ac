"""Loading and validation of params.yaml, run by the Snakefile before any job and by the
stages that read the params files.

A typo (an unknown model, profile or dataset, a label map naming no class) fails in a second
with the key's name, not after an hour of training. Kept free of torch so that a no-op
`snakemake` stays fast: models are checked against the Hydra `model/` group, which a test keeps
equal to the registry.

Params files: `params.yaml`, then any experiment file given to Snakemake with `--configfile`
(e.g. `workflow/experiments/breast.yaml`), merged as Snakemake merges them (`load_params`), so
a stage reading the files sees the same values as the Snakefile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from medmtl.errors import UserError
from medmtl.pipeline.config_groups import group_options

if TYPE_CHECKING:
    from medmtl.pipeline.external import ExternalSet

DATASETS = ("synthetic", "isic2017", "busi", "dynamic")  # trainable; ph2, udiat_b: external


def _merge(base: dict, override: Mapping) -> dict:
    """`base` updated by `override`, nested mappings merged key by key, anything else
    replaced (lists too): the rule of Snakemake's `--configfile`."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_params(paths: Sequence[Path]) -> dict:
    """params.yaml and the experiment files after it, merged in order (module docstring).

    Raises:
        UserError: a file is missing, not YAML, or not a mapping.
    """
    params: dict = {}
    for path in paths:
        if not Path(path).is_file():
            raise UserError(f"{path}: params file not found")
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as err:
            raise UserError(f"{path}: not valid YAML ({err})") from err
        if not isinstance(loaded, Mapping):
            raise UserError(f"{path}: expected a mapping of keys to values")
        params = _merge(params, loaded)
    return params


def params_argument(configfiles: Sequence[Path], root: Path) -> str:
    """The `--params` value of the rules: params.yaml, then Snakemake's `--configfile` files
    (relative to the project `root` when inside it), in the order Snakemake merges them."""
    names = ["params.yaml"]
    for path in configfiles:
        path = Path(path).resolve()
        names.append(str(path.relative_to(root.resolve()) if path.is_relative_to(root) else path))
    return " ".join(names)


def check_no_overrides(config: Mapping, params_files: Sequence[str]) -> None:
    """Refuse values the params files do not hold (`snakemake --config KEY=VALUE`): the stages
    read the params files, so they would run with other values than the DAG was built from.

    Raises:
        UserError: naming the overridden keys and what to do instead.
    """
    expected = load_params([Path(name) for name in params_files])
    changed = sorted(key for key in {*config, *expected} if config.get(key) != expected.get(key))
    if changed:
        raise UserError(
            f"--config {', '.join(changed)}: the stages read {' + '.join(params_files)} only "
            "and would not see it; put the values in an experiment file and pass it with "
            "--configfile (see workflow/experiments/)"
        )


def _check_choice(key: str, value: object, options: list[str], where: str) -> None:
    if value not in options:
        raise UserError(f"{where}: {key}: {value!r} is not one of {', '.join(options)}")


def validate_params(params: Mapping, where: str = "params.yaml") -> None:
    """Raise `UserError` naming the first bad key of the params (`where`: the files read)."""
    for key in (
        "profile",
        "dataset",
        "models",
        "reference_model",
        "baseline_model",
        "seeds",
        "splits",
        "tracking",
        "train",
        "evaluate",
        "stats",
        "external",
        "ablations",
    ):
        if key not in params:
            raise UserError(f"{where}: required key {key!r} is missing")
    _check_choice("profile", params["profile"], group_options("profile"), where)
    datasets = [d for d in DATASETS if d in group_options("dataset")]
    _check_choice("dataset", params["dataset"], datasets, where)
    models = params["models"]
    if not isinstance(models, list) or not models:
        raise UserError(f"{where}: models: give a non-empty list of model names")
    for model in models:
        _check_choice("models", model, group_options("model"), where)
    _check_choice("reference_model", params["reference_model"], list(models), where)
    others = [m for m in models if m != params["reference_model"]]
    _check_choice("baseline_model", params["baseline_model"], others, where)
    seeds = params["seeds"]
    if (
        not seeds
        or not all(isinstance(s, int) and s >= 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise UserError(f"{where}: seeds: {seeds!r} must be distinct non-negative integers")
    _check_tracking_uri(params["tracking"], where)
    alpha = params["stats"].get("alpha")
    if not isinstance(alpha, float) or not 0 < alpha < 1:
        raise UserError(f"{where}: stats.alpha: {alpha!r} must be a number in (0, 1)")
    tolerance = params["evaluate"].get("nsd_tolerance")
    if not isinstance(tolerance, int | float) or isinstance(tolerance, bool) or tolerance < 0:
        raise UserError(f"{where}: evaluate.nsd_tolerance: {tolerance!r} must be a number >= 0")
    external_sets(params, where)
    _check_task_tables(params.get("task_tables", []), where)
    from medmtl.pipeline.ablation import validate_ablations

    validate_ablations(params, where)


RESERVED_TABLES = ("table4", "table8", "table9", "external")


def _check_task_tables(names: object, where: str) -> None:
    """task_tables: distinct file names (lower case, digits, _), none of the paper's tables."""
    if not isinstance(names, list) or len(set(map(str, names))) != len(names):
        raise UserError(f"{where}: task_tables: {names!r} must be a list of distinct names")
    for name in names:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)) or name in RESERVED_TABLES:
            raise UserError(
                f"{where}: task_tables: {name!r} must be lower-case letters, digits and _, "
                f"and none of {', '.join(RESERVED_TABLES)}"
            )


def _check_tracking_uri(tracking: object, where: str) -> None:
    """tracking.uri: an MLflow URI with no password or token (the DAGs write it into job
    commands, dvc.lock and Snakemake's metadata) and nothing a shell would read."""
    from medmtl.credentials import redact

    uri = tracking.get("uri") if isinstance(tracking, Mapping) else None
    if not isinstance(uri, str) or "://" not in uri:
        raise UserError(f"{where}: tracking.uri: {uri!r} must be an MLflow tracking URI")
    if redact(uri) != uri:
        raise UserError(
            f"{where}: tracking.uri: {redact(uri)!r} holds a password or token; give it in the "
            "environment instead (MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_URI)"
        )
    if any(c in uri for c in " \t'\"&;|<>$`()"):
        raise UserError(
            f"{where}: tracking.uri: {uri!r} has a character a shell would read; set it in "
            "MLFLOW_TRACKING_URI instead"
        )


def external_sets(params: Mapping, where: str = "params.yaml") -> list[ExternalSet]:
    """The validated `external` entries of the params (`pipeline.external.parse_external`)."""
    from medmtl.pipeline.external import parse_external

    return parse_external(params, where)


def external_inputs(params: Mapping) -> dict[str, list[str]]:
    """For the Snakefile's `external` rule: the names of the external sets on disk (a param:
    obtaining a set re-runs the rule) and the run.json of every run those sets name (inputs:
    a set that is not available costs no training). Sources are not inputs: they are outside
    the workflow, and `fetch` would claim a source under data/raw/."""
    available = [s for s in external_sets(params) if s.unavailable_reason() is None]
    models = sorted({model for s in available for model in s.models})
    runs = [
        f"results/runs/{params['dataset']}/{model}/seed{seed}/run.json"
        for model in models
        for seed in params["seeds"]
    ]
    return {"available": [s.name for s in available], "runs": runs}
