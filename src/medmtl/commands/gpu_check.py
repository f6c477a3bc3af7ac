"""`medmtl gpu-check`: run first on a GPU machine (`make gpu-check`); exits 1 if a check fails."""

from __future__ import annotations

import argparse

from medmtl.errors import UserError

HELP = """Check that training runs right on a device before a long run: per registered model,
the device's outputs equal the CPU's for the same weights (eval, fp32), and training steps as the
pipeline takes them (augmentation, bf16 autocast on CUDA, multi-task loss, fused AdamW) give
finite losses and gradients and a falling loss. Prints the device, a row per model (difference,
losses, step time, CUDA peak memory) and exits 1 if any check fails, 2 if the device is absent.
`--device cpu` runs the same checks on the CPU (what the tests do on a machine without a GPU)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gpu-check", help="check training on a GPU (or --device cpu)", description=HELP
    )
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default: cuda)")
    p.add_argument("--models", nargs="*", help="registered names (default: all of them)")
    p.add_argument("--img-size", type=int, default=64)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=8)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from medmtl.models import list_models
    from medmtl.training.device_check import check_model, device_report

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(
            f"no CUDA device visible to torch {torch.__version__} (CUDA build: "
            f"{torch.version.cuda or 'none'}; CUDA_VISIBLE_DEVICES and the driver decide what is "
            "visible). Training would run on the CPU (train.device: auto). For a GPU, install "
            "the CUDA build of the pinned torch and run `make gpu-check` again."
        )
    print("\n".join(device_report(device)))
    print("| model | device vs CPU | loss first -> last | step s | peak MB | result |")
    print("|---|---:|---:|---:|---:|---|")
    failed = 0
    for name in args.models or list_models():
        c = check_model(
            name, device, img_size=args.img_size, width=args.width, batch=args.batch,
            steps=args.steps,
        )  # fmt: skip
        peak = "--" if c.peak_mb is None else f"{c.peak_mb:.0f}"
        result = "; ".join(c.problems) or "ok"
        failed += bool(c.problems)
        print(
            f"| {name} | {c.relative_difference:.1e} | {c.first_loss:.3f} -> {c.last_loss:.3f} "
            f"| {c.step_seconds:.3f} | {peak} | {result} |",
            flush=True,
        )
    print(f"{failed} model(s) failed" if failed else "all models passed")
    return 1 if failed else 0
