"""`medmtl evaluate`: per-case predictions of one trained run on one subset, plus an MLflow run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = """Predict every case of one split subset with a trained run's best checkpoint and write
the per-case prediction file (results/predictions/<eval_set>/<model>/seed<k>.parquet):
class probabilities, predicted label, and pixel TP/FP/FN at input and native size. Its parquet
metadata names the run, checkpoint hash, data and split hashes and the code commit. The
evaluation is also logged to MLflow as a child of the training run."""


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
    p.add_argument("--out", required=True, type=Path, help="prediction parquet to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from omegaconf import OmegaConf

    from medmtl.commands.train import build_model
    from medmtl.data.preprocess import load_processed
    from medmtl.data.splits import load_splits
    from medmtl.errors import UserError
    from medmtl.evaluate import predict_cases
    from medmtl.hashing import file_sha256
    from medmtl.metrics import summarize
    from medmtl.predictions import write_prediction_file
    from medmtl.train import Split, resolve_device

    record_file = args.run / "run.json"
    if not record_file.exists():
        raise UserError(f"{record_file}: missing; train the run first (medmtl train)")
    record = json.loads(record_file.read_text())
    cfg = OmegaConf.load(args.run / "config.yaml")
    device = resolve_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    data = load_processed(Path(cfg.data_dir))
    ids = load_splits(Path(cfg.split_file))[args.subset]
    images, masks, labels = data.select(ids)
    class_names = list(data.class_names)
    model = build_model(cfg, len(class_names)).to(device)
    checkpoint = args.run / record["checkpoint"]
    if file_sha256(checkpoint) != record["checkpoint_sha256"]:
        raise UserError(f"{checkpoint}: sha256 differs from the one in {record_file}")
    model.load_state_dict(torch.load(checkpoint, map_location=device, weights_only=True))
    frame = predict_cases(
        model,
        Split.from_arrays(images, masks, labels),
        class_names,
        batch_size=cfg.trainer.eval_batch_size,
        device=device,
        native_mask=lambda i: data.native_mask(ids[i]),
    )
    frame.insert(0, "case_id", list(ids))
    frame.insert(1, "label", labels.astype("int64"))
    meta = prediction_metadata(record, args, class_names, checkpoint)
    write_prediction_file(args.out, frame, meta)
    log_evaluation(record, args, cfg.tracking.experiment, summarize(frame, class_names))
    return 0


def prediction_metadata(record: dict, args: argparse.Namespace, class_names, checkpoint) -> dict:
    """The prediction file's provenance: the training run's record plus this evaluation."""
    from medmtl.hashing import git_state

    commit, dirty = git_state()
    copied = (
        "model",
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
    return {
        **{key: record[key] for key in copied},
        "eval_set": args.eval_set, "subset": args.subset, "class_names": list(class_names),
        "run_id": record["mlflow_run_id"], "run_dir": str(args.run),
        "checkpoint": str(checkpoint), "git_dirty": record["git_dirty"] or dirty,
        "eval_git_commit": commit,
    }  # fmt: skip


def log_evaluation(record: dict, args: argparse.Namespace, experiment: str, metrics: dict) -> None:
    """One MLflow run per evaluation, a child of the training run, holding its metrics."""
    from medmtl import tracking
    from medmtl.hashing import file_sha256, git_state

    uri = record["tracking_uri"]
    name = f"{record['model']}-seed{record['seed']}-{args.eval_set}"
    run_id = tracking.start_run(uri, experiment, name, {
        "medmtl.stage": f"evaluate:{args.eval_set}", "medmtl.output": str(args.out),
        "medmtl.dataset": record["dataset"], "medmtl.model": record["model"],
        "medmtl.seed": str(record["seed"]), "medmtl.profile": record["profile"],
        "mlflow.parentRunId": record["mlflow_run_id"],
        "mlflow.source.git.commit": git_state()[0],
        "medmtl.predictions_sha256": file_sha256(args.out),
    })  # fmt: skip
    tracking.log_metrics(uri, run_id, metrics, 0)
    tracking.finish_run(uri, run_id)
