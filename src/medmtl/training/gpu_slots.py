"""One GPU per training job on a machine with several: a job claims the first free device
index by an exclusive `flock` on `<lock dir>/gpu<i>.lock` and exports it as
`CUDA_VISIBLE_DEVICES` before torch initialises CUDA, so the job sees one device, `cuda:0`.
The kernel releases the lock when the process ends, however it ends (SIGKILL included), so a
killed job never strands its device. Machine-local locks (default: the temp directory), since
`flock` over a network file system is not reliable. Where a scheduler already set
`CUDA_VISIBLE_DEVICES` (SLURM with `--gres=gpu:1`), its choice stands and nothing is claimed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOCK_DIR_ENV = "MEDMTL_GPU_LOCK_DIR"


def _nvidia_smi(*args: str) -> str | None:
    """What `nvidia-smi ARGS` prints, or None without the tool (it initialises no CUDA
    context, unlike torch)."""
    if shutil.which("nvidia-smi") is None:
        return None
    return subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=30).stdout


def gpu_count() -> int:
    """Visible NVIDIA GPUs, from `nvidia-smi -L`; 0 without the tool."""
    listing = _nvidia_smi("-L") or ""
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def lock_dir() -> Path:
    """Where the device locks live: `$MEDMTL_GPU_LOCK_DIR`, else `<tmp>/medmtl-gpus-<uid>`."""
    default = Path(tempfile.gettempdir()) / f"medmtl-gpus-{os.getuid()}"
    return Path(os.environ.get(LOCK_DIR_ENV, default))


def claim(count: int, directory: Path, poll_seconds: float = 5.0, timeout: float | None = None):
    """Hold the lock of the first free index in `range(count)` and return (index, open lock
    file: keep it open for the job's lifetime). With every index held, wait for one, saying
    so once; `timeout` (seconds, None = forever) ends the wait with TimeoutError."""
    directory.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    waiting = False
    while True:
        for index in range(count):
            handle = open(directory / f"gpu{index}.lock", "a+")  # noqa: SIM115 (held open)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return index, handle
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"all {count} GPUs held (locks in {directory})")
        if not waiting:
            print(f"all {count} GPUs are in use; waiting for one (locks in {directory})",
                  file=sys.stderr, flush=True)  # fmt: skip
            waiting = True
        time.sleep(poll_seconds)


def claim_for_job(device: str):
    """For a training job about to use `device` (`auto`, `cuda`, `cuda:N`, `cpu`): on a machine
    with more than one GPU and no scheduler's choice, claim one and export it; return (physical
    index or None, lock handle or None)."""
    if device not in ("auto", "cuda") or "CUDA_VISIBLE_DEVICES" in os.environ:
        return None, None
    count = gpu_count()
    if count < 2:
        return None, None
    index, handle = claim(count, lock_dir())
    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # CUDA's numbering = nvidia-smi's
    os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
    print(f"claimed GPU {index} of {count} (CUDA_VISIBLE_DEVICES={index})", flush=True)
    return index, handle


def driver_version() -> str | None:
    """The NVIDIA driver version `nvidia-smi` reports, or None without it."""
    printed = _nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
    return (printed or "").split("\n", 1)[0].strip() or None
