"""The ablation studies of the ResFormer paper (section 5.3, Tables 8 and 9): run names, where
their files live, and which switch applies to which model.

An ablation run is a Table 4 run with one switch of the Hydra group `conf/ablation/` on:

- `cls_only`: classification only, lambda_2 = 0 in the loss of section 3.3 (Table 8);
- `seg_only`: segmentation only, lambda_1 = 0 (Table 8);
- `no_dfe`: ResFormer without the DFE module of section 3.2 (Table 9).

Its name is `<model>-<ablation>` (a run without ablation keeps the model's name): the folder of
its run and prediction files and the `model` of its records. Ablation files live under
`results/ablations/`, apart from Table 4's, so that Table 4's stages never depend on them. The
full-model rows of the ablation tables ("Both" in Table 8, "w/ DFE" in Table 9) are the Table
4 runs of the same models and seeds: they are not trained twice.

Kept free of torch and pandas: the Snakefile imports it through `medmtl.pipeline.params`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml

from medmtl.errors import UserError
from medmtl.pipeline.config_groups import CONF_DIR, group_options

# Metrics an ablated run is scored on, when not all: a head trained with zero weight learnt
# nothing, so its scores are not reported ("-" in the paper's Table 8).
SCORED = {"cls_only": ("Acc", "Sen", "Spe"), "seg_only": ("JI", "DSC")}


@dataclass(frozen=True)
class AblationTable:
    """One ablation table of the paper, on our data: per model, one row per variant.

    Attributes:
        name: The table's file stem, e.g. "table8".
        title: Short caption.
        variants: (ablation, row label) per row of a model; ablation None is the full model.
        metrics: The columns.
        note: What the variants are, for the caption (LaTeX).
    """

    name: str
    title: str
    variants: tuple[tuple[str | None, str], ...]
    metrics: tuple[str, ...]
    note: str

    @property
    def ablations(self) -> list[str]:
        """The switches whose runs the table needs."""
        return [ablation for ablation, _ in self.variants if ablation is not None]


TABLES = {
    "table8": AblationTable(
        "table8",
        "Effectiveness of multi-task learning (paper Table 8)",
        (("cls_only", "Cls. only"), ("seg_only", "Seg. only"), (None, "Both")),
        ("JI", "DSC", "Acc", "Sen", "Spe"),
        "Cls.~only: trained with the Dice term off ($\\lambda_2 = 0$, paper Sec.~3.3); "
        "Seg.~only: with the classification term off ($\\lambda_1 = 0$); Both: the Table 4 "
        "run. --: no score, the head of the other task was not trained.",
    ),
    "table9": AblationTable(
        "table9",
        "Effectiveness of the DFE module in segmentation (paper Table 9)",
        (("no_dfe", "w/o DFE"), (None, "w/ DFE")),
        ("JI", "DSC"),
        "w/o DFE: the skips reach the decoder without the DFE module (paper Sec.~3.2); "
        "w/ DFE: the Table 4 run.",
    ),
}


def run_name(model: str, ablation: str | None) -> str:
    """`<model>-<ablation>`, or the model's name for a run without ablation."""
    return model if ablation is None else f"{model}-{ablation}"


def check_applies(model: str, ablation: str | None, where: str = "ablation") -> None:
    """Raise `UserError` unless every model key the switch sets is an option of `model`
    (e.g. `no_dfe` sets `use_dfe`, which only ResFormer has).

    Raises:
        UserError: unknown ablation, or a model key the model does not have.
    """
    if ablation is None:
        return
    options = [name for name in group_options("ablation") if name != "none"]
    if ablation not in options:
        raise UserError(f"{where}: {ablation!r} is not one of {', '.join(options)}")
    switch = yaml.safe_load((CONF_DIR / "ablation" / f"{ablation}.yaml").read_text())
    model_options = yaml.safe_load((CONF_DIR / "model" / f"{model}.yaml").read_text())
    foreign = sorted(set(switch.get("model", {})) - set(model_options))
    if foreign:
        raise UserError(
            f"{where}: {ablation} sets model option(s) {', '.join(foreign)}, which {model} "
            "does not have"
        )


def validate_ablations(params: Mapping, where: str) -> None:
    """Check the `ablations` section of the params (see params.yaml).

    Raises:
        UserError: naming the first bad entry.
    """
    section = params["ablations"]
    models: Sequence[str] = section.get("models") or []
    variants: Sequence[str] = section.get("variants") or []
    needed = sorted({a for table in TABLES.values() for a in table.ablations})
    if sorted(variants) != needed:
        raise UserError(
            f"{where}: ablations.variants: {variants!r}; Tables 8 and 9 need exactly {needed}"
        )
    for model in models:  # none: an experiment without ablation tables
        if model not in params["models"]:
            raise UserError(
                f"{where}: ablations.models: {model!r} is not in `models` (its Table 4 runs "
                "are the full-model rows)"
            )
        for ablation in variants:
            check_applies(model, ablation, f"{where}: ablations")


def table_inputs(params: Mapping, table: str) -> list[str]:
    """The prediction files `table` is built from: the Table 4 runs of `ablations.models` and
    their ablation runs the table needs, every seed (for the Snakefile)."""
    eval_set = f"{params['dataset']}_test"
    models, seeds = params["ablations"]["models"], params["seeds"]
    full = [f"results/predictions/{eval_set}/{m}/seed{s}.parquet" for m in models for s in seeds]
    ablated = [
        f"results/ablations/predictions/{eval_set}/{run_name(m, a)}/seed{s}.parquet"
        for m in models
        for a in TABLES[table].ablations
        for s in seeds
    ]
    return full + ablated
