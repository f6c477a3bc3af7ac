"""`medmtl train`: one (model, seed) training job, its files and its MLflow run."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

HELP = """Train one model with one seed on a processed dataset (paper protocol, section 4).
Takes Hydra overrides: out=, data_dir=, split_file= are required; model=, trainer=, profile=,
ablation= (cls_only, seg_only, no_dfe: paper Tables 8, 9), dataset=, seed=, device=, threads=
and any key (trainer.epochs=3) are optional. Writes best.pt
(lowest validation loss), last.pt (resume point), config.yaml, history.csv and, last, run.json
into `out`. Re-running a killed job resumes from last.pt; a finished job is not re-trained."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one (model, seed)", description=HELP)
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=he2020 seed=3")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medmtl.pipeline.config import compose_config

    train_job(compose_config(args.overrides))
    return 0


def train_job(cfg) -> dict:
    """Train as `cfg` says, resuming from `out/last.pt` when present; return run.json."""
    import pandas as pd
    import torch

    from medmtl import tracking
    from medmtl.credentials import redact
    from medmtl.data.processed import load_processed
    from medmtl.data.splits import load_splits
    from medmtl.errors import UserError
    from medmtl.models.inputs import Split, TargetScale, build_model, resolve_device
    from medmtl.pipeline.ablation import check_applies
    from medmtl.training.adversarial import Adversary
    from medmtl.training.birads import BiradsConsistency, malignant_index
    from medmtl.training.gpu_slots import claim_for_job
    from medmtl.training.loop import TrainState, fit, restore, seed_everything
    from medmtl.training.losses import MultiTaskLoss, inverse_frequency_weights

    check_applies(cfg.model.name, cfg.ablation_name)
    out = Path(cfg.out)
    if (out / "run.json").exists():
        print(f"{out}/run.json exists: training finished, nothing to do")
        return json.loads((out / "run.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    uri = tracking.store_uri(cfg.tracking.uri)  # connections only; every record is redacted
    cfg.tracking.uri = redact(uri)
    started = time.perf_counter()
    gpu_index, gpu_lock = claim_for_job(cfg.device)  # before torch initialises CUDA
    device = resolve_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed, device)

    data = load_processed(Path(cfg.data_dir))
    splits = load_splits(Path(cfg.split_file))
    model = build_model(
        cfg, len(data.class_names), in_channels=data.channels, num_targets=len(data.target_names)
    ).to(device)
    scale = None  # regression: targets standardised with the training split's mean and sd
    if "reg" in model.tasks:
        scale = TargetScale.fit(data.target_names, data.targets(splits["train"]))
    train, val = (
        Split.from_arrays(
            *data.select(splits[name]),
            None if scale is None else scale.standardise(data.targets(splits[name])),
        )
        for name in ("train", "val")
    )
    t = cfg.trainer
    weights = None
    if t.class_weights == "inverse_frequency":
        weights = inverse_frequency_weights(train.labels.numpy(), len(data.class_names))
    consistency = None
    if t.consistency_weight and "seg" not in model.tasks:
        raise UserError(f"trainer.consistency_weight: {cfg.model.name} has no mask to regularise")
    if t.consistency_weight:  # BI-RADS consistency term (arXiv:2511.15968), off by default
        index = malignant_index(data.class_names, t.malignant_class)
        consistency = BiradsConsistency(index, t.consistency_features)
    loss_fn = MultiTaskLoss(
        t.cls_weight, t.seg_weight, weights, consistency, t.consistency_weight,
        t.reg_weight, t.reg_loss,
    ).to(device)  # fmt: skip
    discriminator = model.make_discriminator()  # MTI-Net's task-driven discriminator, or None
    adversary = None
    if discriminator is not None:
        adversary = Adversary(
            discriminator.to(device), t.adversarial_weight, t.lr, tuple(t.betas), t.weight_decay
        )
    optimiser = torch.optim.AdamW(  # the loss's parameters: the consistency prior's w and b
        [*model.parameters(), *loss_fn.parameters()],
        lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay,
        fused=True,  # one kernel for all parameters (CPU and CUDA); same update, other rounding
    )  # fmt: skip
    gen = torch.Generator().manual_seed(cfg.seed)

    record = provenance_record(cfg, data, device, gpu_index)
    record |= {
        "tasks": list(model.tasks),
        "regression": None if scale is None else scale.to_json(),
        "targets_note": None if scale is None else data.targets_note,
    }
    if (out / "last.pt").exists():
        state = restore(out / "last.pt", model, loss_fn, optimiser, gen, adversary)
        if tracking.run_status(uri, state.mlflow_run_id) is None:  # another store, or deleted
            state.mlflow_run_id = open_mlflow_run(cfg, uri, record, data, splits["train"])
            print(f"{redact(uri)} has no run of {out}: opened {state.mlflow_run_id}", flush=True)
        tracking.resume_run(uri, state.mlflow_run_id)
        print(f"resuming {out} after epoch {state.epoch}", flush=True)
        if caught_up := tracking.log_history(uri, state.mlflow_run_id, state.history):
            print(f"logged epoch(s) {caught_up} to MLflow (checkpointed, not logged)", flush=True)
    else:
        state = TrainState(mlflow_run_id=open_mlflow_run(cfg, uri, record, data, splits["train"]))
    record["resumed_from_epoch"] = state.epoch  # 0: this attempt started from scratch
    (out / "config.yaml").write_text(record.pop("config_yaml"))
    run_id = state.mlflow_run_id
    state = fit(
        model, loss_fn, optimiser, train, val, epochs=t.epochs, batch_size=t.batch_size,
        eval_batch_size=t.eval_batch_size, gen=gen, device=device,
        augment_cfg=dict(t.augment), run_dir=out, state=state,
        on_epoch=lambda epoch, metrics: tracking.log_metrics(uri, run_id, metrics, epoch),
        adversary=adversary,
    )  # fmt: skip
    pd.DataFrame(state.history).to_csv(out / "history.csv", index=False)
    record = close_run(cfg, uri, out, record, state, time.perf_counter() - started)
    if gpu_lock is not None:
        gpu_lock.close()  # the kernel would release it at exit anyway
    return record


def provenance_record(cfg, data, device, gpu_index: int | None = None) -> dict:
    """What run.json says of the run's inputs: code, data, split, config, software, device
    (for a GPU: its name, physical index, CUDA and driver versions)."""
    import numpy as np
    import torch

    from medmtl.hashing import file_sha256, git_state
    from medmtl.pipeline.ablation import run_name
    from medmtl.pipeline.config import config_sha256, config_yaml

    commit, dirty = git_state()
    return {
        "model": run_name(cfg.model.name, cfg.ablation_name), "ablation": cfg.ablation_name,
        "seed": cfg.seed, "dataset": cfg.dataset.name,
        "profile": cfg.profile_name, "tracking_uri": cfg.tracking.uri,
        "git_commit": commit, "git_dirty": dirty, "data_sha256": data.sha256(),
        "split_sha256": file_sha256(Path(cfg.split_file)), "config_sha256": config_sha256(cfg),
        "config_yaml": config_yaml(cfg), "class_names": list(data.class_names),
        "device": str(device), "gpu": gpu_record(device, gpu_index),
        "threads": cfg.threads, "torch": torch.__version__,
        "numpy": np.__version__, "python": platform.python_version(),
    }  # fmt: skip


def gpu_record(device, gpu_index: int | None) -> dict | None:
    """The GPU a CUDA run used (None on the CPU): name, physical index (the claimed one, else
    the visible index), CUDA and driver versions."""
    import torch

    from medmtl.training.gpu_slots import driver_version

    if device.type != "cuda":
        return None
    return {
        "name": torch.cuda.get_device_name(device),
        "index": gpu_index if gpu_index is not None else (device.index or 0),
        "cuda": torch.version.cuda,
        "driver": driver_version(),
    }


def open_mlflow_run(cfg, uri: str, record: dict, data, train_ids: list[str]) -> str:
    """Start the MLflow run of this job in the store at `uri`: tags, flattened config, config
    file, training data."""
    import pandas as pd
    from omegaconf import OmegaConf

    from medmtl import tracking

    run_id = tracking.start_run(uri, cfg.tracking.experiment, f"{record['model']}-seed{cfg.seed}", {
        "medmtl.stage": "train", "medmtl.output": str(cfg.out),
        "medmtl.dataset": cfg.dataset.name, "medmtl.model": record["model"],
        "medmtl.ablation": str(cfg.ablation_name),
        "medmtl.seed": str(cfg.seed), "medmtl.profile": cfg.profile_name,
        "medmtl.tasks": ",".join(record["tasks"]),
        "mlflow.source.git.commit": record["git_commit"],
        "medmtl.git_dirty": str(record["git_dirty"]),
        **{f"medmtl.{k}": record[k] for k in ("data_sha256", "split_sha256", "config_sha256",
                                               "device")},
        **({"medmtl.gpu": json.dumps(record["gpu"])} if record["gpu"] else {}),
    })  # fmt: skip
    config = OmegaConf.to_container(cfg, resolve=True)
    tracking.log_params(uri, run_id, pd.json_normalize(config, sep=".").iloc[0].to_dict())
    tracking.log_text(uri, run_id, record["config_yaml"], "config.yaml")
    tracking.log_dataset(
        uri, run_id, data.manifest[data.manifest["case_id"].isin(train_ids)],
        name=f"{cfg.dataset.name}-train", source=str(cfg.data_dir),
        digest=record["data_sha256"], context="training",
    )  # fmt: skip
    return run_id


def close_run(cfg, uri: str, out: Path, record: dict, state, seconds: float) -> dict:
    """Write run.json (last, atomically: its presence means "finished") and finish the run in
    the store at `uri`."""
    from medmtl import tracking
    from medmtl.hashing import file_sha256

    record |= {
        "mlflow_run_id": state.mlflow_run_id, "checkpoint": "best.pt",
        "checkpoint_sha256": file_sha256(out / "best.pt"), "selection": cfg.trainer.selection,
        "selection_subset": "val", "best_epoch": state.best_epoch,
        "best_val_loss": state.best_val_loss, "epochs": state.epoch,
        "wall_seconds_last_attempt": round(seconds, 2),
    }  # fmt: skip
    run_id = state.mlflow_run_id
    best = {"best_val_loss": state.best_val_loss, "best_epoch": state.best_epoch}
    tracking.log_metrics(uri, run_id, best, state.epoch)
    tracking.log_text(uri, run_id, json.dumps(record, indent=2), "run.json")
    tracking.log_artifact(uri, run_id, str(out / "history.csv"))  # its figure: `medmtl figures`
    tracking.finish_run(uri, run_id)
    tmp = out / "run.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(out / "run.json")
    return record
