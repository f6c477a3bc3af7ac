"""`medmtl gpu-check`: the checks a GPU user runs first, exercised on the CPU (no GPU here).

The command runs the same code on any device, so each check is proven here by a fault it must
catch on the CPU: weights that did not reach the device, and non-finite values."""

from __future__ import annotations

import copy

import pytest
import torch

from medmtl.cli import main
from medmtl.training import device_check

SMALL = ["--img-size", "32", "--width", "4", "--batch", "4", "--steps", "4"]


def test_cpu_run_passes_and_prints_a_row_per_model(capsys):
    assert (
        main(["gpu-check", "--device", "cpu", "--models", "he2020", "resformer_sequential", *SMALL])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith(f"torch {torch.__version__}")
    rows = [
        line
        for line in out.splitlines()
        if line.startswith(("| he2020 ", "| resformer_sequential "))
    ]
    assert len(rows) == 2 and all(row.endswith("| ok |") for row in rows)
    assert "all models passed" in out


def test_no_cuda_device_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["gpu-check", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device visible" in err and "train.device: auto" in err


class _Reinitialise:
    """Stands in for `copy` in the check: the "copy" for the device gets fresh weights."""

    @staticmethod
    def deepcopy(model: torch.nn.Module) -> torch.nn.Module:
        clone = copy.deepcopy(model)
        torch.manual_seed(1)
        for module in clone.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        return clone


def test_weights_that_do_not_reach_the_device_fail(monkeypatch, capsys):
    monkeypatch.setattr(device_check, "copy", _Reinitialise)
    assert main(["gpu-check", "--device", "cpu", "--models", "gende2022", *SMALL]) == 1
    out = capsys.readouterr().out
    assert "outputs differ from the CPU's" in out and "1 model(s) failed" in out


@pytest.mark.parametrize("where", ["normalise", "loss"])
def test_non_finite_values_fail(where, monkeypatch):
    if where == "normalise":  # NaN inputs: outputs and losses are NaN
        monkeypatch.setattr(device_check, "normalise", lambda x: x.float() * float("nan"))
    else:  # a loss that overflows in training only

        class Overflowing(device_check.MultiTaskLoss):
            def forward(self, *args):
                losses = super().forward(*args)
                return {**losses, "loss": losses["loss"] * float("inf")}

        monkeypatch.setattr(device_check, "MultiTaskLoss", Overflowing)
    check = device_check.check_model(
        "gende2022", torch.device("cpu"), img_size=32, width=4, batch=4, steps=4
    )
    assert check.problems
    assert any("non-finite" in p for p in check.problems)


def _gpu_check_script(*args: str, **env: str):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks/gpu_check.py"
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          env={**os.environ, **env})  # fmt: skip


def test_the_readiness_script_says_there_is_no_gpu_and_exits_0():
    done = _gpu_check_script(CUDA_VISIBLE_DEVICES="")  # no device visible, GPU machine or not
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("no CUDA device visible") and "images/s" not in done.stdout


def test_the_readiness_script_trains_one_epoch_and_evaluates_it_on_the_cpu():
    """The path a GPU user runs, on the CPU at a tiny size: the pipeline's training job for one
    epoch, its figures, and the evaluation compared with itself (so: no difference)."""
    done = _gpu_check_script("--device", "cpu", "--images", "8", "dataset.img_size=32",
                             "model.width=4")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()[-3:]
    assert lines[0] == (
        "resformer_sequential, paper profile (32 px, width 4), one epoch of 8 images on cpu:"
    )
    assert "images/s, peak GPU memory -- MB, bf16 autocast off" in lines[1]
    assert lines[2].endswith("differ by at most 0.00e+00; 0 mask pixel(s) flip")
