"""`medmtl evaluate`: per-case predictions of one trained run on one subset, plus an MLflow run.

`read_run`, `predict_run`, `prediction_metadata` and `write_and_log` are shared with
`medmtl external`, which predicts external sets the same way.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from omegaconf import DictConfig

    from medmtl.data.processed import ProcessedData

HELP = """Predict every case of one split subset with a trained run's best checkpoint and write
the per-case prediction file (results/predictions/<eval_set>/<model>/seed<k>.parquet):
class probabilities, predicted label, pixel TP/FP/FN at input and native size, and NSD and HD95
at native size (NSD within --nsd-tolerance native pixels). Its parquet
metadata names the run, checkpoint hash, data and split hashes and the code commit. The
evaluation is also logged to MLflow as a child of the training run."""


# run.json keys every prediction file carries over, and all the keys evaluation reads
COPIED_RUN_KEYS = (
    "model",
    "ablation",
    "seed",
    "dataset",
    "profile",
    "tracking_uri",
    "checkpoint_sha256",
    "split_sha256",
    "data_sha256",
    "config_sha256",
    "selection_subset",
    "git_commit",
)
RUN_KEYS = (
    *COPIED_RUN_KEYS, "class_names", "mlflow_run_id", "checkpoint", "git_dirty", "tasks",
    "regression", "targets_note",
)  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="predict one subset with one trained run", description=HELP)
    p.add_argument("--run", required=True, type=Path, help="training run directory (has run.json)")
    p.add_argument(
        "--subset",
        default="test",
        choices=("train", "val", "test"),
        help="which part of the split file to predict (default: test)",
    )
    p.add_argument(
        "--eval-set", required=True, help="name of the evaluation set, e.g. isic2017_test"
    )
    p.add_argument(
        "--nsd-tolerance",
        type=float,
        required=True,
        help="NSD tolerance in native pixels (params.yaml: evaluate.nsd_tolerance)",
    )
    p.add_argument("--out", required=True, type=Path, help="prediction parquet to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medmtl.data.processed import load_processed
    from medmtl.data.splits import load_splits

    record, cfg = read_run(args.run)
    data = load_processed(Path(cfg.data_dir))
    ids = load_splits(Path(cfg.split_file))[args.subset]
    frame = predict_run(args.run, record, cfg, data, ids, args.nsd_tolerance)
    meta = prediction_metadata(record, args.run, args.eval_set, args.subset)
    meta["nsd_tolerance"] = args.nsd_tolerance
    write_and_log(record, cfg.tracking.experiment, args.out, frame, meta)
    return 0


def read_run(run_dir: Path) -> tuple[dict, DictConfig]:
    """A finished training run's `run.json` record and resolved `config.yaml`.

    Raises:
        UserError: the run has no run.json (not trained, or not finished).
    """
    from omegaconf import OmegaConf

    from medmtl.errors import UserError

    record_file = run_dir / "run.json"
    if not record_file.exists():
        raise UserError(f"{record_file}: missing; train the run first (medmtl train)")
    record = json.loads(record_file.read_text())
    missing = [key for key in RUN_KEYS if key not in record]
    if missing:
        raise UserError(f"{record_file}: no {', '.join(missing)} (an older medmtl?); re-train")
    return record, OmegaConf.load(run_dir / "config.yaml")


def predict_run(
    run_dir: Path,
    record: dict,
    cfg: DictConfig,
    data: ProcessedData,
    ids: Sequence[str],
    nsd_tolerance: float,
    labels: np.ndarray | None = None,
) -> pd.DataFrame:
    """Prediction-file rows of cases `ids` of `data` by the run's best checkpoint, as is.

    Args:
        run_dir, record, cfg: The run (`read_run`).
        data: A processed dataset at the run's input size (the training data, or an external
            set preprocessed the same way).
        ids: Case ids to predict, in row order.
        nsd_tolerance: NSD tolerance, native pixels.
        labels: The `label` column; default: the manifest's (external sets: mapped labels).

    Raises:
        UserError: the arrays are not at the run's input size, the checkpoint's sha256
            differs from the one in run.json, or the data's regression targets are not the
            run's.
    """
    import numpy as np

    from medmtl.errors import UserError
    from medmtl.evaluation.predict import predict_cases
    from medmtl.models.inputs import Split, TargetScale

    model, device = load_best(run_dir, record, cfg, data)
    images, masks, manifest_labels = data.select(ids)
    labels = manifest_labels if labels is None else labels
    regression = None
    if record["regression"] is not None:
        scale = TargetScale.from_json(record["regression"])
        if data.target_names != scale.names:
            raise UserError(
                f"{data.directory}: regression targets {list(data.target_names)}, but "
                f"{run_dir} was trained on {list(scale.names)}"
            )
        regression = (scale, data.targets(ids))
    frame = predict_cases(
        model,
        Split.from_arrays(images, masks, labels),
        list(record["class_names"]),
        batch_size=cfg.trainer.eval_batch_size,
        device=device,
        native_mask=lambda i: data.native_mask(ids[i]),
        nsd_tolerance=nsd_tolerance,
        regression=regression,
    )
    frame.insert(0, "case_id", list(ids))
    frame.insert(1, "label", np.asarray(labels, dtype="int64"))
    return frame


def load_best(run_dir: Path, record: dict, cfg: DictConfig, data: ProcessedData):
    """The run's selected checkpoint in its model, on the run's device, to predict `data`.

    Raises:
        UserError: `data` is not at the run's input size, or the checkpoint's sha256 differs
            from the one in run.json.
    """
    import torch

    from medmtl.errors import UserError
    from medmtl.hashing import file_sha256
    from medmtl.models.inputs import build_model, resolve_device

    if data.size != cfg.dataset.img_size:
        raise UserError(
            f"{data.directory}: arrays are {data.size} px but {run_dir} was trained at "
            f"{cfg.dataset.img_size} px; preprocess at the training size"
        )
    device = resolve_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    checkpoint = run_dir / record["checkpoint"]
    if file_sha256(checkpoint) != record["checkpoint_sha256"]:
        raise UserError(f"{checkpoint}: sha256 differs from the one in {run_dir / 'run.json'}")
    targets = record["regression"]["names"] if record["regression"] else data.target_names
    model = build_model(
        cfg, len(record["class_names"]), in_channels=data.channels, num_targets=len(targets)
    ).to(device)
    model.load_state_dict(torch.load(checkpoint, map_location=device, weights_only=True))
    return model.eval(), device


def prediction_metadata(record: dict, run_dir: Path, eval_set: str, subset: str) -> dict:
    """The prediction file's provenance: the training run's record plus this evaluation."""
    from medmtl.hashing import git_state

    commit, dirty = git_state()
    regression = {key: record[key] for key in ("regression", "targets_note") if record[key]}
    return {
        **{key: record[key] for key in COPIED_RUN_KEYS}, "tasks": record["tasks"], **regression,
        "eval_set": eval_set, "subset": subset, "class_names": list(record["class_names"]),
        "run_id": record["mlflow_run_id"], "run_dir": str(run_dir),
        "checkpoint": str(run_dir / record["checkpoint"]),
        "git_dirty": record["git_dirty"] or dirty, "eval_git_commit": commit,
    }  # fmt: skip


def write_and_log(
    record: dict, experiment: str, out: Path, frame: pd.DataFrame, meta: dict
) -> None:
    """Write the prediction file `out` and log its evaluation to MLflow. The file appears only
    once its MLflow run is finished: a job that dies or loses the tracking store in between
    leaves nothing that looks evaluated."""
    from medmtl.evaluation.metrics import summarize
    from medmtl.evaluation.predictions import write_prediction_file

    pending = out.with_name(out.name + ".pending")
    try:
        write_prediction_file(pending, frame, meta)
        metrics = summarize(frame, record["class_names"], meta.get("regression"))
        log_evaluation(record, meta["eval_set"], out, pending, experiment, metrics)
        pending.replace(out)
    finally:
        pending.unlink(missing_ok=True)


def log_evaluation(
    record: dict, eval_set: str, out: Path, written: Path, experiment: str, metrics: dict
) -> None:
    """One MLflow run per evaluation, a child of the training run, holding its metrics; `out`
    names the job, `written` is the prediction file as written (its sha256 is tagged)."""
    from medmtl import tracking
    from medmtl.hashing import file_sha256, git_state

    uri = tracking.store_uri(record["tracking_uri"])
    name = f"{record['model']}-seed{record['seed']}-{eval_set}"
    run_id = tracking.start_run(uri, experiment, name, {
        "medmtl.stage": f"evaluate:{eval_set}", "medmtl.output": str(out),
        "medmtl.dataset": record["dataset"], "medmtl.model": record["model"],
        "medmtl.seed": str(record["seed"]), "medmtl.profile": record["profile"],
        "mlflow.parentRunId": record["mlflow_run_id"],
        "mlflow.source.git.commit": git_state()[0],
        "medmtl.predictions_sha256": file_sha256(written),
    })  # fmt: skip
    tracking.log_metrics(uri, run_id, metrics, 0)
    tracking.finish_run(uri, run_id)
