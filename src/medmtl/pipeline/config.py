"""Hydra composition of a stage's configuration, plus its stable hash.

The CLI passes Hydra override strings (`model=he2020 seed=3 out=...`); the result is a plain
`DictConfig` whose resolved form is saved beside every output and logged to MLflow.
"""

from __future__ import annotations

import hashlib

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from medmtl.errors import UserError
from medmtl.pipeline.config_groups import CONF_DIR


def compose_config(overrides: list[str]) -> DictConfig:
    """Compose `conf/config.yaml` with `overrides`; unknown groups/keys are a `UserError`."""
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides))
        OmegaConf.resolve(cfg)
        missing = sorted(OmegaConf.missing_keys(cfg))
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(f"configuration ({CONF_DIR}): {err}") from err
    if missing:
        raise UserError(f"configuration: missing required key(s) {', '.join(missing)}")
    return cfg


def config_yaml(cfg: DictConfig) -> str:
    """Resolved config as YAML text (keys sorted, so equal configs give equal text)."""
    return OmegaConf.to_yaml(cfg, resolve=True, sort_keys=True)


def config_sha256(cfg: DictConfig, ignore: tuple[str, ...] = ("out",)) -> str:
    """Hash of the resolved config without per-run paths: equal settings give equal hashes."""
    data = OmegaConf.to_container(cfg, resolve=True)
    for key in ignore:
        data.pop(key, None)
    text = OmegaConf.to_yaml(OmegaConf.create(data), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
