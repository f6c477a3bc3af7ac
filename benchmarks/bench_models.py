"""Training-step speed and peak memory of every registered model, on CPU and (if present) CUDA.

One step = forward, loss (pixel cross-entropy + class cross-entropy), backward and a fused AdamW
update (deterministic algorithms on, as in training), on random images; images/s = batch /
median step time after warm-up. The fastest step is printed too: on a shared machine it is the
figure least disturbed by other processes.
A fixed matmul probe, run in the same process right after each model, is printed beside it.
Each model runs in a fresh process so that its CPU peak (resident set size above the process's
size before the model was built) is its own; on CUDA the peak is
`torch.cuda.max_memory_allocated`.

    .venv/bin/python benchmarks/bench_models.py                       # 224 px, batch 8, width 64
    .venv/bin/python benchmarks/bench_models.py --img-size 64 --width 8 --steps 20   # demo size
    .venv/bin/python benchmarks/bench_models.py --models resformer_sequential \
        --option checkpoint_swin=true                                  # less memory
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class Case:
    model: str
    device: str
    img_size: int
    batch: int
    width: int
    steps: int
    warmup: int
    threads: int
    options: tuple[tuple[str, object], ...] = ()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_case(case: Case) -> dict[str, float | str]:
    """Build the model, time `steps` training steps, return the figures (runs in a child)."""
    import torch
    from torch.nn import functional as F

    from medmtl.models import create_model

    if case.threads:
        torch.set_num_threads(case.threads)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True, warn_only=True)  # as training
    device = torch.device(case.device)
    before = _rss_mb()
    model = create_model(
        case.model, img_size=case.img_size, width=case.width, num_targets=3, **dict(case.options)
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as training
    x = torch.randn(case.batch, 3, case.img_size, case.img_size, device=device)
    masks = torch.randint(0, 2, (case.batch, case.img_size, case.img_size), device=device)
    labels = torch.randint(0, 3, (case.batch,), device=device)
    targets = torch.randn(case.batch, 3, device=device)  # a regression head's, if any
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(case.warmup + case.steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = model(x)
        loss = F.cross_entropy(out.cls_logits, labels)
        if out.seg_logits is not None:
            loss = loss + F.cross_entropy(out.seg_logits, masks)
        if out.reg is not None:
            loss = loss + F.mse_loss(out.reg, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= case.warmup:
            times.append(time.perf_counter() - start)
    step = statistics.median(times)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = _rss_mb() - before
    params = sum(p.numel() for p in model.parameters())
    return {
        "model": case.model,
        "device": case.device,
        "params_m": params / 1e6,
        "step_s": step,
        "best_s": min(times),
        "img_s": case.batch / step,
        "peak_mb": peak,
    }


def matmul_probe(threads: int) -> float:
    """GFLOP/s of a fixed fp32 1024 x 1024 matmul (median of 20, on `threads` threads): how fast
    the machine is right now, printed beside each model so that a slow period shows."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    a = torch.randn(1024, 1024, generator=torch.Generator().manual_seed(0))
    times = []
    for _ in range(21):
        start = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - start)
    return 2 * 1024**3 / statistics.median(times[1:]) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="registry names (default: all)")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--devices", nargs="*", help="default: cpu, and cuda when available")
    parser.add_argument(
        "--option",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="model keyword options, YAML values (e.g. checkpoint_swin=true)",
    )
    args = parser.parse_args()
    options = tuple((k, yaml.safe_load(v)) for k, v in (o.split("=", 1) for o in args.option))

    import torch

    from medmtl.models import list_models

    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    models = args.models or list_models()
    print(
        f"img {args.img_size} px, batch {args.batch}, width {args.width}, "
        f"median of {args.steps} steps after {args.warmup} warm-up, torch {torch.__version__}, "
        f"{torch.get_num_threads() if not args.threads else args.threads} CPU threads, "
        f"options {dict(options) or 'none'}"
    )
    print(
        "| model | device | params (M) | s/step | best s/step | images/s | peak memory (MB) "
        "| matmul probe (GFLOP/s) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    spawn = multiprocessing.get_context("spawn")
    for device in devices:
        for name in models:
            case = Case(
                name,
                device,
                args.img_size,
                args.batch,
                args.width,
                args.steps,
                args.warmup,
                args.threads,
                options,
            )
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                r = pool.submit(run_case, case).result()
                probe = pool.submit(matmul_probe, args.threads).result()
            print(
                f"| {r['model']} | {r['device']} | {r['params_m']:.2f} | {r['step_s']:.3f} "
                f"| {r['best_s']:.3f} | {r['img_s']:.2f} | {r['peak_mb']:.0f} | {probe:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
