"""`medmtl models`: list the registered models with their parameter counts.

Counts are taken at the paper's width (64) and 224 px and at the demo width (8) and 64 px,
for RGB input and, for a model with a regression head, 3 targets (the lesion-geometry targets);
the models are built on the `meta` device, so no weights are allocated and the listing is
instant.
"""

from __future__ import annotations

import argparse

PAPER = {"width": 64, "img_size": 224}
DEMO = {"width": 8, "img_size": 64}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `models` subcommand."""
    parser = sub.add_parser(
        "models",
        help="list registered models and their parameter counts",
        description=__doc__.splitlines()[0],
    )
    parser.set_defaults(func=run)


def parameter_count(name: str, width: int, img_size: int) -> int:
    """Number of parameters of model `name` built at `width` and `img_size` (no allocation)."""
    import torch

    from medmtl.models import create_model

    with torch.device("meta"):
        model = create_model(name, width=width, img_size=img_size, num_targets=3)
    return sum(p.numel() for p in model.parameters())


def summary(name: str) -> str:
    """First line of the docstring of the factory registered as `name`."""
    from medmtl.models import registry

    registry.list_models()  # imports every model module
    doc = registry.model_factory(name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def run(args: argparse.Namespace) -> int:
    """Print one markdown row per registered model."""
    from medmtl.models import list_models

    print(
        f"| model | params (width {PAPER['width']}, {PAPER['img_size']} px) "
        f"| params (width {DEMO['width']}, {DEMO['img_size']} px) | description |"
    )
    print("|---|---:|---:|---|")
    for name in list_models():
        paper = parameter_count(name, **PAPER) / 1e6
        demo = parameter_count(name, **DEMO) / 1e3
        print(f"| {name} | {paper:.2f} M | {demo:.1f} k | {summary(name)} |")
    return 0
