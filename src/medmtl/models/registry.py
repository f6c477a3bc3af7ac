"""Name -> model factory table, so configs name models and tests iterate over all of them.

Each model module registers small factory functions with `@register_model("name")`; the
factories take keyword arguments only and return an `nn.Module` whose forward returns an
`MTLOutput`. Model modules are imported lazily by `_import_all` so that registering a new
model needs only a new module listed in `MODEL_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import NamedTuple

from torch import Tensor, nn

MODEL_MODULES = (
    "medmtl.models.resunet",
    "medmtl.models.resformer",
    "medmtl.models.he2020",
    "medmtl.models.gende2022",
    "medmtl.models.hervella2022",
    "medmtl.models.tang2023",
    "medmtl.models.btinet",
    "medmtl.models.shared_encoder",
    "medmtl.models.res_mtnet",
    "medmtl.models.mtinet",
)

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


class MTLOutput(NamedTuple):
    """What every multi-task model returns: per-pixel and per-image logits, and standardised
    regression outputs; a task the model does not have (`MultiTaskModel.tasks`) is None."""

    seg_logits: Tensor | None  # (B, num_seg_classes, H, W)
    cls_logits: Tensor  # (B, num_classes)
    reg: Tensor | None = None  # (B, num_targets), in units of the training targets' sd


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a factory to the registry under `name` (names are unique)."""

    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return add


def _import_all() -> None:
    for module in MODEL_MODULES:
        importlib.import_module(module)


def list_models() -> list[str]:
    """Sorted names of all registered models."""
    _import_all()
    return sorted(_REGISTRY)


def model_factory(name: str) -> Callable[..., nn.Module]:
    """The factory registered as `name` (its docstring describes the model)."""
    _import_all()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the model registered as `name`; raise with the known names if it is unknown."""
    return model_factory(name)(**kwargs)
