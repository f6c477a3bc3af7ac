"""sha256 of files and of the state of the code (git commit, dirty flag): provenance atoms."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Streamed sha256 of one file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_sha256(paths: Iterable[Path]) -> str:
    """One sha256 over several files: the hash of `name  sha256` lines, in the order given."""
    lines = "".join(f"{Path(p).name}  {file_sha256(Path(p))}\n" for p in paths)
    return hashlib.sha256(lines.encode()).hexdigest()


def git_state(repo: Path | None = None) -> tuple[str, bool]:
    """(commit, dirty) of the work tree containing `repo` (default: cwd); ("unknown", True)
    outside git, so an untraceable result is never reported as clean. `dvc.lock` is left out:
    `dvc repro` rewrites it between stages of the very run being recorded."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--", ".", ":!dvc.lock"))
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True
    return commit, dirty
