"""`medmtl external`: predict every available external set with the trained runs, as they are."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from omegaconf import DictConfig

    from medmtl.data.processed import ProcessedData
    from medmtl.pipeline.external import ExternalSet

    Run = tuple[Path, dict, DictConfig]  # run directory, run.json record, resolved config

HELP = """External validation without fine-tuning (BI-RADS consistency paper, arXiv:2511.15968).
For each set of the params' `external` list whose source is on disk: read it with its
dataset's reader, preprocess it as the training data (same code, the runs' input size) into
PROCESSED/<name>, and predict every case with each run the set names (its `models` x the
params' seeds, from RUNS/<model>/seed<k>), labels mapped by its `label_map`. Writes
OUT/<name>/<model>/seed<k>.parquet (prediction files, subset "all"), one MLflow child run per
file, and last OUT/status.json: every configured set, available or why not. A set whose source
is absent is reported (stderr and status.json), not an error."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `external` subcommand."""
    p = sub.add_parser("external", help="predict the available external sets", description=HELP)
    add = p.add_argument
    add("--params", required=True, type=Path, nargs="+", help="params.yaml, then experiments")
    add("--runs", required=True, type=Path, help="runs of the training set: results/runs/<dataset>")
    add("--processed", required=True, type=Path, help="processed external sets: data/external")
    add("--out", required=True, type=Path, help="predictions: results/predictions/external")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate every configured set (or report it missing), then write the status file."""
    from medmtl.pipeline.external import STATUS_FILE, write_status
    from medmtl.pipeline.params import external_sets, load_params, validate_params

    params = load_params(args.params)
    where = " + ".join(map(str, args.params))
    validate_params(params, where)
    for folder in (args.out, args.processed):  # both outputs exist even when no set does
        folder.mkdir(parents=True, exist_ok=True)
    (args.out / STATUS_FILE).unlink(missing_ok=True)  # present again only when all is done
    sets = [evaluate_set(ext, params, args) for ext in external_sets(params, where)]
    status = {
        "train_dataset": params["dataset"],
        "runs": str(args.runs),
        "seeds": params["seeds"],
        "baseline": params["baseline_model"],
        "proposed": params["reference_model"],
        "sets": sets,
    }
    write_status(args.out / STATUS_FILE, status)
    available = [s["name"] for s in sets if s["available"]]
    print(f"wrote {args.out / STATUS_FILE}: evaluated {available or 'no set'}")
    return 0


def evaluate_set(ext: ExternalSet, params: dict, args: argparse.Namespace) -> dict[str, Any]:
    """Predict one external set with every run it names; return its status entry."""
    from medmtl.commands.evaluate import read_run
    from medmtl.pipeline.external import map_labels

    entry = {
        "name": ext.name,
        "dataset": ext.dataset,
        "source": str(ext.source),
        "label_map": ext.label_map,
        "models": list(ext.models),
    }
    reason = ext.unavailable_reason()
    if reason is not None:
        print(
            f"external set {ext.name}: NOT AVAILABLE: {reason}; obtain the {ext.dataset} "
            "release and set the set's source to its folder (README, External validation)",
            file=sys.stderr,
        )
        return {**entry, "available": False, "reason": reason}
    run_dirs = [args.runs / m / f"seed{k}" for m in ext.models for k in params["seeds"]]
    runs = [(run_dir, *read_run(run_dir)) for run_dir in run_dirs]
    data = preprocess_like_training(ext, args.processed / ext.name, runs, params["dataset"])
    class_names = runs[0][1]["class_names"]
    labels, unmapped = map_labels(list(data.manifest["label_name"]), ext.label_map, class_names)
    print(
        f"external set {ext.name}: {len(labels)} cases at {data.size} px; label map "
        f"{ext.label_map}; cases of classes the model cannot predict: {unmapped or 'none'}"
    )
    extra = {
        "eval_set": ext.name,
        "dataset": ext.dataset,
        "data_sha256": data.sha256(),
        "label_map": ext.label_map,
        "unmapped_labels": unmapped,
        "nsd_tolerance": params["evaluate"]["nsd_tolerance"],
    }
    for run in runs:
        predict_external(run, data, labels, extra, args.out / ext.name)
    return {
        **entry,
        "available": True,
        "reason": None,
        "processed": str(args.processed / ext.name),
        "data_sha256": extra["data_sha256"],
        "n_cases": len(labels),
        "unmapped_labels": unmapped,
    }


def preprocess_like_training(
    ext: ExternalSet, folder: Path, runs: list[Run], train_dataset: str
) -> ProcessedData:
    """Read the set's release and preprocess it at the runs' input size (the training data's
    preprocessing: same reader contract, resampling and array layout).

    Raises:
        UserError: a run was trained on another dataset or with other classes, or the runs
            disagree on the input size.
    """
    from medmtl.data.classes import DATASET_CLASSES
    from medmtl.data.preprocess import preprocess, read_dataset
    from medmtl.data.processed import load_processed
    from medmtl.errors import UserError

    expected = list(DATASET_CLASSES[train_dataset])
    for run_dir, record, _ in runs:
        if record["dataset"] != train_dataset or record["class_names"] != expected:
            raise UserError(
                f"{run_dir / 'run.json'}: trained on {record['dataset']} with classes "
                f"{record['class_names']}, but the params train on {train_dataset} {expected}"
            )
    sizes = sorted({cfg.dataset.img_size for _, _, cfg in runs})
    if len(sizes) != 1:
        raise UserError(f"{ext.name}: the runs were trained at different input sizes {sizes}")
    cases, class_names = read_dataset(ext.dataset, ext.source)
    preprocess(cases, folder, dataset=ext.dataset, class_names=class_names, size=sizes[0])
    return load_processed(folder)


def predict_external(
    run: Run, data: ProcessedData, labels: np.ndarray, extra: dict[str, Any], out_dir: Path
) -> None:
    """Predict every case of `data` with one run; write `out_dir/<model>/seed<k>.parquet`
    (metadata: `medmtl.evaluation.predictions` docstring, `extra` = the set's keys) and log the
    evaluation to MLflow as a child of the training run."""
    from medmtl.commands.evaluate import predict_run, prediction_metadata, write_and_log

    run_dir, record, cfg = run
    ids = list(data.manifest["case_id"])
    frame = predict_run(run_dir, record, cfg, data, ids, extra["nsd_tolerance"], labels)
    frame["source_label"] = data.manifest["label_name"].to_numpy()
    meta = prediction_metadata(record, run_dir, extra["eval_set"], "all")
    meta |= extra | {"train_dataset": record["dataset"], "train_data_sha256": record["data_sha256"]}
    out = out_dir / record["model"] / f"seed{record['seed']}.parquet"
    write_and_log(record, cfg.tracking.experiment, out, frame, meta)
    print(f"wrote {out}")
