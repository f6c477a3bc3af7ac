"""GPU readiness: what a user with a GPU runs first (`make gpu-check`). Prints figures.

On a CUDA machine: (1) `medmtl gpu-check`, per registered model, the device's outputs against
the CPU's and a few pipeline training steps; (2) one epoch of the paper profile (224 px, full
width, batch 8) for `resformer_sequential`, trained by the pipeline's own training job on a
generated dataset, then its test cases evaluated by the pipeline's own evaluation, once on the
GPU and once on the CPU in fp32 from the same checkpoint. It prints training images/s (the
epoch, validation pass included), peak GPU memory, whether bf16 autocast was on, and the
largest difference between the two evaluations (class probabilities; mask pixels that flip).
Exits 1 if a check fails. On a machine without CUDA it says so and exits 0.

`--device cpu` with a small size runs the same path on the CPU (tests/test_gpu_check.py):

    python benchmarks/gpu_check.py [--device cuda:N] [--images 64] [OVERRIDE ...]
    python benchmarks/gpu_check.py --device cpu --images 8 dataset.img_size=32 model.width=4
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from medmtl.cli import main as medmtl


def paper_epoch(device: torch.device, images: int, overrides: list[str], tmp: Path) -> dict:
    """Train one epoch as the pipeline does and evaluate the checkpoint on `device` and on the
    CPU; return the figures."""
    from medmtl import tracking
    from medmtl.commands.evaluate import predict_run, read_run
    from medmtl.commands.train import train_job
    from medmtl.data.processed import load_processed
    from medmtl.data.splits import load_splits
    from medmtl.data.synthetic import write_synthetic
    from medmtl.pipeline.config import compose_config

    store = f"sqlite:///{tmp / 'mlflow.db'}"
    tracking.init_store(store, "medmtl")
    cfg = compose_config([
        "profile=paper", "model=resformer_sequential", "dataset=synthetic", "trainer.epochs=1",
        f"device={device}", f"threads={torch.get_num_threads()}", f"data_dir={tmp / 'data'}",
        f"split_file={tmp / 'split.json'}", f"out={tmp / 'run'}", f"tracking.uri={store}",
        *overrides,
    ])  # fmt: skip
    size = cfg.dataset.img_size
    write_synthetic(tmp / "raw", seed=0, n_train=images, n_val=8, n_test=8, size=size + size // 8)
    for step in (
        ["preprocess", "--dataset", "synthetic", "--raw", str(tmp / "raw"), "--out",
         str(tmp / "data"), "--size", str(size)],
        ["splits", "--processed", str(tmp / "data"), "--out", str(tmp / "split.json")],
    ):  # fmt: skip
        if medmtl(step) != 0:
            raise SystemExit(f"medmtl {step[0]} failed")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train_job(cfg)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    record, run_cfg = read_run(tmp / "run")
    epoch_seconds = float(pd.read_csv(tmp / "run/history.csv")["epoch_seconds"].iloc[0])
    data = load_processed(tmp / "data")
    ids = load_splits(tmp / "split.json")["test"]
    frames = {}
    for where in (str(device), "cpu"):
        run_cfg.device = where
        frames[where] = predict_run(tmp / "run", record, run_cfg, data, ids, nsd_tolerance=2.0)
    here, cpu = frames[str(device)], frames["cpu"]
    probs = [c for c in cpu.columns if c.startswith("prob_")]
    return {
        "images_per_s": images / epoch_seconds,
        "peak_mb": peak,
        "bf16": device.type == "cuda",  # training.loop.autocast: bf16 on CUDA, off on the CPU
        "prob_difference": float((here[probs] - cpu[probs]).abs().max().max()),
        "flipped_pixels": int(
            (here["seg_tp"] - cpu["seg_tp"]).abs().sum()
            + (here["seg_fp"] - cpu["seg_fp"]).abs().sum()
        ),  # fmt: skip
        "size": size,
        "width": run_cfg.model.width,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default: cuda)")
    parser.add_argument("--images", type=int, default=64, help="training images (default 64)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the paper profile")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"no CUDA device visible to torch {torch.__version__} (CUDA build: "
              f"{torch.version.cuda or 'none'}): nothing to check here; training runs on the "
              "CPU (train.device: auto)")  # fmt: skip
        return 0
    failed = False
    if device.type == "cuda":  # (1) every model, small: outputs against the CPU's, steps
        checks = subprocess.run([Path(sys.executable).parent / "medmtl", "gpu-check",
                                 "--device", str(device)])  # fmt: skip
        failed = checks.returncode != 0
    with tempfile.TemporaryDirectory(prefix="medmtl-gpu-check-") as tmp:
        figures = paper_epoch(device, args.images, args.overrides, Path(tmp))
    peak = "--" if figures["peak_mb"] is None else f"{figures['peak_mb']:.0f}"
    print(f"resformer_sequential, paper profile ({figures['size']} px, width "
          f"{figures['width']}), one epoch of {args.images} images on {device}:")  # fmt: skip
    print(f"  training: {figures['images_per_s']:.2f} images/s, peak GPU memory {peak} MB, "
          f"bf16 autocast {'on' if figures['bf16'] else 'off'}")  # fmt: skip
    print(f"  evaluation on {device} vs CPU fp32, same checkpoint: class probabilities differ by "
          f"at most {figures['prob_difference']:.2e}; {figures['flipped_pixels']} mask pixel(s) "
          "flip")  # fmt: skip
    # TF32 convolutions on recent GPUs keep the difference near 1e-3 (medmtl.training.device_check)
    if not figures["prob_difference"] <= 1e-2:
        print("  FAILED: the GPU's evaluation differs from the CPU's beyond 1e-2")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
