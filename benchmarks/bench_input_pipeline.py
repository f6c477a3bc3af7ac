"""Is training input-bound? Prints input-pipeline images/s beside model-step images/s.

The input side is what `medmtl.training.loop.run_epoch` does per batch: index the in-memory uint8
arrays, normalise, flip/rotate (one affine resample per batch). The model side is forward +
loss + backward + AdamW. Both on this machine's CPU with the threads a training job uses.

    python benchmarks/bench_input_pipeline.py [--size 64] [--width 8] [--model resunet]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from medmtl.models import create_model
from medmtl.models.inputs import Split, normalise
from medmtl.training.loop import augment
from medmtl.training.losses import MultiTaskLoss

AUGMENT = {"hflip": True, "vflip": True, "rotate_degrees": 25}


def images_per_second(step, batch: int, repeats: int) -> float:
    step()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return batch * repeats / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resunet")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n = 512
    data = Split.from_arrays(
        rng.integers(0, 256, (n, args.size, args.size, 3), dtype=np.uint8),
        rng.integers(0, 2, (n, args.size, args.size), dtype=np.uint8),
        rng.integers(0, 3, n),
    )
    gen = torch.Generator().manual_seed(0)

    def input_step() -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, n, (args.batch,), generator=gen)
        return augment(normalise(data.images[idx]), data.masks[idx], gen, **AUGMENT)

    model = create_model(args.model, width=args.width, img_size=args.size)
    loss_fn = MultiTaskLoss(0.25, 1.0, None)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images, masks = input_step()
    labels = data.labels[: args.batch]

    def model_step() -> None:
        loss = loss_fn(model(images), masks, labels)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    feed = images_per_second(input_step, args.batch, args.repeats * 5)
    train = images_per_second(model_step, args.batch, args.repeats)
    print(
        f"{args.model} {args.size}px width {args.width} batch {args.batch} threads {args.threads}"
    )
    print(f"  input pipeline : {feed:9.1f} images/s")
    print(f"  model step     : {train:9.1f} images/s")
    print(f"  input share of a step: {100 * train / feed:.1f}%")


if __name__ == "__main__":
    main()
