"""Does the fused AdamW (what training uses) make a demo training step faster than AdamW's
per-parameter loop? Prints the summed step time of the demo's six models with each, alternating
them in one run, and the ratio per round.

One step = forward, the multi-task loss, backward, AdamW update, batch 16 at the demo profile
(64 px, width 8), one torch thread, deterministic algorithms on (as in training).

    .venv/bin/python benchmarks/bench_optimiser.py [--rounds 3] [--steps 10]
"""

from __future__ import annotations

import argparse
import time

import torch

from medmtl.models import create_model
from medmtl.training.losses import MultiTaskLoss

DEMO_MODELS = ("he2020", "gende2022", "hervella2022", "tang2023", "resformer_sequential",
               "resformer_parallel")  # fmt: skip
SETTINGS = {"loop": False, "fused": True}  # AdamW(fused=...)


def step_seconds(name: str, setting: str, steps: int) -> float:
    """Mean step time over `steps` steps after two warm-up steps."""
    fused = SETTINGS[setting]
    torch.manual_seed(0)
    model = create_model(name, img_size=64, width=8)
    images = torch.randn(16, 3, 64, 64)
    masks, labels = torch.randint(0, 2, (16, 64, 64)), torch.randint(0, 3, (16,))
    loss_fn = MultiTaskLoss(0.25, 1.0, None, None, 0.0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, fused=fused or None)

    def step() -> None:
        loss = loss_fn(model(images), masks, labels)["loss"]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    ratios = []
    for r in range(args.rounds):
        sums = {s: sum(step_seconds(m, s, args.steps) for m in DEMO_MODELS) for s in SETTINGS}
        ratios.append(sums["loop"] / sums["fused"])
        print(f"round {r + 1}: loop {sums['loop'] * 1000:.0f} ms, fused "
              f"{sums['fused'] * 1000:.0f} ms per step (six models summed), "
              f"{ratios[-1]:.2f}x", flush=True)  # fmt: skip
    print(f"fused vs loop: {min(ratios):.2f}-{max(ratios):.2f}x faster over {args.rounds} rounds")


if __name__ == "__main__":
    main()
