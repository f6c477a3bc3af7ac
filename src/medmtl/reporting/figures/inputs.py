"""The figures' inputs, from the files the pipeline already wrote: prediction files (per-image
values, class probabilities), each run's `history.csv` and `run.json` (curves, selected epoch),
and the external sets' prediction files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from medmtl.errors import UserError
from medmtl.evaluation import metrics
from medmtl.evaluation.predictions import PredictionFile, group_by_model, prob_columns
from medmtl.model_names import model_order
from medmtl.reporting.figures.curves import RunCurve


def run_curves(files: list[PredictionFile]) -> dict[str, list[RunCurve]]:
    """Per model (table order): each seed's history and selected epoch, read from the run
    folder its prediction file names."""
    groups = group_by_model(files)
    curves = {}
    for model in model_order(groups):
        curves[model] = []
        for f in groups[model]:
            run_dir = Path(f.meta["run_dir"])
            history, record = run_dir / "history.csv", run_dir / "run.json"
            if not history.is_file() or not record.is_file():
                raise UserError(f"{run_dir}: no history.csv or run.json; re-run its training")
            best = json.loads(record.read_text())["best_epoch"]
            curves[model].append((pd.read_csv(history), int(best)))
    return curves


def seed_means(files: list[PredictionFile], metric: str) -> pd.DataFrame:
    """Cases x models (table order): the per-image `metric` x100 averaged over each model's
    seeds, the values the tables' per-image tests compare."""
    groups = group_by_model(files)
    columns = {}
    for model in model_order(groups):
        runs = [
            pd.Series(metrics.per_image(f.frame, f.meta["class_names"], metric), f.frame["case_id"])
            for f in groups[model]
        ]
        columns[model] = pd.concat(runs, axis=1).mean(axis=1)
    return pd.DataFrame(columns)


def seed_ensembles(files: list[PredictionFile]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per model: the (N, C) class probabilities averaged over its seeds, rows in the first
    file's case order (aligned by case id); the (N,) labels."""
    groups = group_by_model(files)
    first = files[0].frame.set_index("case_id")
    columns = prob_columns(files[0].meta["class_names"])

    def probs(f: PredictionFile) -> np.ndarray:
        return f.frame.set_index("case_id").loc[first.index, columns].to_numpy(float)

    ensembles = {
        model: np.mean([probs(f) for f in groups[model]], axis=0) for model in model_order(groups)
    }
    return ensembles, first["label"].to_numpy()


def external_pairs(
    internal: list[PredictionFile], eval_sets: Mapping[str, list[PredictionFile]]
) -> dict[str, dict[str, dict[int, tuple[float, float]]]]:
    """set -> model (table order) -> seed -> (internal DSC, external DSC) of each run
    predicted on both sides; DSC as the tables' cell of one run."""

    def dsc(f: PredictionFile) -> float:
        return metrics.segmentation_summary(f.frame, "seg")[1]

    internal_dsc = {(f.model, f.seed): dsc(f) for f in internal}
    pairs: dict[str, dict[str, dict[int, tuple[float, float]]]] = {}
    for name, files in eval_sets.items():
        groups = group_by_model(files)
        for model in model_order(groups):
            for f in groups[model]:
                if (model, f.seed) in internal_dsc:
                    runs = pairs.setdefault(name, {}).setdefault(model, {})
                    runs[f.seed] = (internal_dsc[model, f.seed], dsc(f))
    return pairs
