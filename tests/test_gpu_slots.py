"""One GPU per job, tested without a GPU: concurrent processes claim distinct device indices,
a job waits while all are held, and a SIGKILLed job's device is free again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from medmtl.training import gpu_slots

HOLDER = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from medmtl.training.gpu_slots import claim\n"
    "index, lock = claim(int(sys.argv[1]), Path(sys.argv[2]), poll_seconds=0.05,\n"
    "                    timeout=float(sys.argv[3]))\n"
    "print(index, flush=True)\n"
    "time.sleep(60)\n"
)


def _holder(count: int, directory: Path, timeout: float = 10.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(count), str(directory), str(timeout)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_concurrent_jobs_hold_distinct_devices_and_a_killed_one_frees_its_own(tmp_path):
    holders = [_holder(3, tmp_path) for _ in range(3)]
    try:
        indices = [int(h.stdout.readline()) for h in holders]
        assert sorted(indices) == [0, 1, 2]
        fourth = _holder(3, tmp_path, timeout=1.0)  # every device held: waits, then gives up
        assert fourth.wait(timeout=30) != 0
        assert "TimeoutError: all 3 GPUs held" in fourth.stderr.read()
        victim = holders[1]
        victim.send_signal(signal.SIGKILL)  # a killed training job
        victim.wait()
        fifth = _holder(3, tmp_path)
        holders.append(fifth)
        assert int(fifth.stdout.readline()) == indices[1]  # its device, free again
    finally:
        for h in holders:
            h.kill()
            h.wait()


def _fake_nvidia_smi(tmp_path: Path, gpus: int, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    lines = "\\n".join(f"GPU {i}: Fake GPU (UUID: GPU-{i})" for i in range(gpus))
    script = bin_dir / "nvidia-smi"
    script.write_text(f'#!/bin/sh\nprintf "{lines}\\n"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv(gpu_slots.LOCK_DIR_ENV, str(tmp_path / "locks"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_a_job_on_a_multi_gpu_machine_claims_and_exports_one_device(tmp_path, monkeypatch):
    _fake_nvidia_smi(tmp_path, 2, monkeypatch)
    assert gpu_slots.gpu_count() == 2
    first, lock = gpu_slots.claim_for_job("auto")
    assert (first, os.environ["CUDA_VISIBLE_DEVICES"]) == (0, "0")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    second, other = gpu_slots.claim_for_job("cuda")  # the first is still held
    assert (second, os.environ["CUDA_VISIBLE_DEVICES"]) == (1, "1")
    lock.close()
    other.close()


@pytest.mark.parametrize("device", ["cpu", "cuda:1"])
def test_no_claim_for_the_cpu_or_an_explicit_device(tmp_path, monkeypatch, device):
    _fake_nvidia_smi(tmp_path, 2, monkeypatch)
    assert gpu_slots.claim_for_job(device) == (None, None)
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_a_schedulers_choice_stands_and_one_gpu_needs_no_claim(tmp_path, monkeypatch):
    _fake_nvidia_smi(tmp_path, 2, monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # SLURM --gres=gpu:1
    assert gpu_slots.claim_for_job("auto") == (None, None)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    (tmp_path / "bin/nvidia-smi").write_text('#!/bin/sh\necho "GPU 0: Fake"\n')
    assert gpu_slots.claim_for_job("auto") == (None, None)
    assert not (tmp_path / "locks").exists()
