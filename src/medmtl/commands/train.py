"""`medmtl train`: one (model, seed) training job, its files and its MLflow run."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

HELP = """Train one model with one seed on a processed dataset (paper protocol, section 4).
Takes Hydra overrides: out=, data_dir=, split_file= are required; model=, trainer=, profile=,
dataset=, seed=, device=, threads= and any key (trainer.epochs=3) are optional. Writes best.pt
(lowest validation loss), last.pt (resume point), config.yaml, history.csv and run.json into
`out`. Re-running a killed job resumes from last.pt; a finished job is not re-trained."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one (model, seed)", description=HELP)
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=he2020 seed=3")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medmtl.config import compose_config

    cfg = compose_config(args.overrides)
    train_job(cfg)
    return 0


def train_job(cfg) -> dict:
    """Train as `cfg` says, resuming from `out/last.pt` when present; return run.json."""
    import numpy as np
    import pandas as pd
    import torch
    from omegaconf import OmegaConf

    from medmtl import tracking
    from medmtl.config import config_sha256, config_yaml
    from medmtl.data.preprocess import load_processed
    from medmtl.data.splits import load_splits
    from medmtl.hashing import file_sha256, git_state
    from medmtl.losses import MultiTaskLoss, inverse_frequency_weights
    from medmtl.models import create_model
    from medmtl.train import Split, TrainState, fit, resolve_device, restore, seed_everything

    out = Path(cfg.out)
    if (out / "run.json").exists():
        print(f"{out}/run.json exists: training finished, nothing to do")
        return json.loads((out / "run.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    device = resolve_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed, device)

    data = load_processed(Path(cfg.data_dir))
    splits = load_splits(Path(cfg.split_file))
    subsets = {name: data.select(splits[name]) for name in ("train", "val")}
    train, val = (Split.from_arrays(*subsets[name]) for name in ("train", "val"))
    class_names = list(data.class_names)
    model = create_model(
        cfg.model.name,
        num_classes=len(class_names),
        img_size=cfg.dataset.img_size,
        **{k: v for k, v in cfg.model.items() if k != "name"},
    ).to(device)
    t = cfg.trainer
    weights = (
        inverse_frequency_weights(train.labels.numpy(), len(class_names))
        if t.class_weights == "inverse_frequency"
        else None
    )
    loss_fn = MultiTaskLoss(t.cls_weight, t.seg_weight, weights).to(device)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay
    )
    gen = torch.Generator().manual_seed(cfg.seed)

    commit, dirty = git_state()
    data_sha = data.sha256()
    split_sha = file_sha256(Path(cfg.split_file))
    key = {
        "medmtl.stage": "train",
        "medmtl.dataset": cfg.dataset.name,
        "medmtl.model": cfg.model.name,
        "medmtl.seed": str(cfg.seed),
        "medmtl.profile": cfg.profile_name,
    }
    uri = cfg.tracking.uri
    state = TrainState()
    if (out / "last.pt").exists():
        state = restore(out / "last.pt", model, optimiser, gen)
        tracking.resume_run(uri, state.mlflow_run_id)
        print(f"resuming {out} after epoch {state.epoch}")
    else:
        state.mlflow_run_id = tracking.start_run(
            uri,
            cfg.tracking.experiment,
            f"{cfg.model.name}-seed{cfg.seed}",
            key | {"mlflow.source.git.commit": commit, "medmtl.git_dirty": str(dirty)},
        )
        run_id = state.mlflow_run_id
        flat = pd.json_normalize(OmegaConf.to_container(cfg, resolve=True), sep=".").iloc[0]
        tracking.log_params(uri, run_id, flat)
        tracking.set_tags(
            uri,
            run_id,
            {
                "medmtl.data_sha256": data_sha,
                "medmtl.split_sha256": split_sha,
                "medmtl.config_sha256": config_sha256(cfg),
                "medmtl.device": str(device),
            },
        )
        tracking.log_text(uri, run_id, config_yaml(cfg), "config.yaml")
        tracking.log_dataset(
            uri,
            run_id,
            data.manifest[data.manifest.case_id.isin(splits["train"])],
            name=f"{cfg.dataset.name}-train",
            source=str(cfg.data_dir),
            digest=data_sha,
            context="training",
        )
    (out / "config.yaml").write_text(config_yaml(cfg))
    run_id = state.mlflow_run_id
    state = fit(
        model,
        loss_fn,
        optimiser,
        train,
        val,
        epochs=t.epochs,
        batch_size=t.batch_size,
        eval_batch_size=t.eval_batch_size,
        gen=gen,
        device=device,
        augment_cfg=dict(t.augment),
        run_dir=out,
        state=state,
        on_epoch=lambda epoch, metrics: tracking.log_metrics(uri, run_id, metrics, epoch),
    )
    pd.DataFrame(state.history).to_csv(out / "history.csv", index=False)
    record = {
        "model": cfg.model.name,
        "seed": cfg.seed,
        "dataset": cfg.dataset.name,
        "profile": cfg.profile_name,
        "mlflow_run_id": run_id,
        "tracking_uri": uri,
        "git_commit": commit,
        "git_dirty": dirty,
        "data_sha256": data_sha,
        "split_sha256": split_sha,
        "config_sha256": config_sha256(cfg),
        "checkpoint": "best.pt",
        "checkpoint_sha256": file_sha256(out / "best.pt"),
        "selection": t.selection,
        "selection_subset": "val",
        "best_epoch": state.best_epoch,
        "best_val_loss": state.best_val_loss,
        "epochs": state.epoch,
        "device": str(device),
        "threads": cfg.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "class_names": class_names,
        "wall_seconds_last_attempt": round(time.perf_counter() - started, 2),
    }
    tracking.log_metrics(
        uri,
        run_id,
        {"best_val_loss": state.best_val_loss, "best_epoch": state.best_epoch},
        state.epoch,
    )
    tracking.log_text(uri, run_id, json.dumps(record, indent=2), "run.json")
    tracking.finish_run(uri, run_id)
    tmp = out / "run.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(out / "run.json")
    return record
