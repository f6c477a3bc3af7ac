"""Validation of params.yaml, run by the Snakefile before any job and by `medmtl fetch`.

A typo (an unknown model, profile or dataset) fails in a second with the key's name, not after
an hour of training. Kept free of torch so that a no-op `snakemake` stays fast: models are
checked against the Hydra `model/` group, which a test keeps equal to the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from medmtl.errors import UserError

CONF_DIR = Path(__file__).parent / "conf"
DATASETS = ("synthetic", "isic2017", "busi")  # trainable; ph2 and udiat_b are external sets


def group_options(group: str) -> list[str]:
    """Names available in one Hydra config group (`conf/<group>/*.yaml`)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _check_choice(key: str, value: object, options: list[str]) -> None:
    if value not in options:
        raise UserError(f"params.yaml: {key}: {value!r} is not one of {', '.join(options)}")


def validate_params(params: Mapping) -> None:
    """Raise `UserError` naming the first bad key of params.yaml."""
    for key in (
        "profile",
        "dataset",
        "models",
        "reference_model",
        "seeds",
        "splits",
        "train",
        "stats",
    ):
        if key not in params:
            raise UserError(f"params.yaml: required key {key!r} is missing")
    _check_choice("profile", params["profile"], group_options("profile"))
    _check_choice(
        "dataset", params["dataset"], [d for d in DATASETS if d in group_options("dataset")]
    )
    models = params["models"]
    if not isinstance(models, list) or not models:
        raise UserError("params.yaml: models: give a non-empty list of model names")
    for model in models:
        _check_choice("models", model, group_options("model"))
    _check_choice("reference_model", params["reference_model"], list(models))
    seeds = params["seeds"]
    if (
        not seeds
        or not all(isinstance(s, int) and s >= 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise UserError(f"params.yaml: seeds: {seeds!r} must be distinct non-negative integers")
    alpha = params["stats"].get("alpha")
    if not isinstance(alpha, float) or not 0 < alpha < 1:
        raise UserError(f"params.yaml: stats.alpha: {alpha!r} must be a number in (0, 1)")
