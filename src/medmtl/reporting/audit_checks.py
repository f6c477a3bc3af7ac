"""The checks an audit is made of (`medmtl.reporting.audit`): findings and their statuses, file
hashes, prediction files, MLflow runs and checkpoints, and whether a test compares exactly the
numbers its
cells show."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medmtl.credentials import redact
from medmtl.errors import UserError
from medmtl.evaluation.predictions import PredictionFile, read_prediction_file
from medmtl.hashing import file_sha256
from medmtl.reporting import tables

if TYPE_CHECKING:
    import pandas as pd

OK, MISMATCH, MISSING, SKIPPED = "ok", "mismatch", "missing", "skipped"
FAILING = (MISMATCH, MISSING)
# (tracking URI, MLflow run id) -> run status, None if gone: `medmtl.tracking.run_status`
RunStatus = Callable[[str, str], str | None]


@dataclass(frozen=True)
class Finding:
    """One checked item: status, subject, and expected vs found where they matter."""

    status: str
    subject: str
    message: str
    expected: str = ""
    found: str = ""
    model: str | None = None
    metric: str | None = None


def passed(findings: list[Finding]) -> bool:
    """True when no finding is a mismatch or missing."""
    return not any(f.status in FAILING for f in findings)


def check_hash(path: Path, recorded: str, subject: str, what: str, model: str | None) -> Finding:
    if not path.is_file():
        return Finding(MISSING, subject, f"{what} missing at {path}", model=model)
    actual = file_sha256(path)
    if actual != recorded:
        message = f"{what} changed since the table was built (sha256)"
        return Finding(MISMATCH, subject, message, recorded[:16], actual[:16], model=model)
    return Finding(OK, subject, f"{what} sha256 matches", found=actual[:16], model=model)


def load_run(run: dict[str, Any], base: Path, model: str) -> tuple[Finding, PredictionFile | None]:
    """Hash-check and read one prediction file; a changed file is still read to re-derive."""
    path = Path(os.path.normpath(base / run["prediction_file"]))
    subject = f"file {path}"
    finding = check_hash(path, run["prediction_sha256"], subject, "prediction file", model)
    if finding.status == MISSING:
        return finding, None
    try:
        return finding, read_prediction_file(path)
    except UserError as err:
        return Finding(MISMATCH, subject, f"unreadable: {err}", model=model), None


def run_status_finding(
    run: dict[str, Any], subject: str, run_status: RunStatus, tracking_uri: str | None
) -> Finding:
    uri = tracking_uri or run["tracking_uri"]
    status = run_status(uri, run["run_id"])
    name = f"MLflow run {run['run_id']} ({redact(uri)})"
    if status is None:
        return Finding(
            MISSING, subject, f"{name} does not exist, was deleted, or the store is gone"
        )
    if status != "FINISHED":
        return Finding(MISMATCH, subject, f"{name} is not finished", "FINISHED", status)
    return Finding(OK, subject, f"{name} FINISHED")


def check_run(
    run: dict[str, Any], model: str, run_status: RunStatus, tracking_uri: str | None
) -> list[Finding]:
    """MLflow status, work-tree state, checkpoint selection split and checkpoint hash."""
    subject = f"run {model} seed{run['seed']}"
    findings = [run_status_finding(run, subject, run_status, tracking_uri)]
    if run["git_dirty"]:
        message = f"built from a dirty work tree (commit {run['git_commit']})"
        findings.append(Finding(MISMATCH, subject, message, "clean", "dirty"))
    if run["selection_subset"] == run["subset"]:
        message = f"checkpoint selected on the {run['subset']} split (leak)"
        findings.append(Finding(MISMATCH, subject, message, "another split", run["subset"]))
    checkpoint = Path(run["checkpoint_path"])
    if checkpoint.is_file():
        findings.append(
            check_hash(checkpoint, run["checkpoint_sha256"], subject, "checkpoint", model)
        )
    else:
        message = f"checkpoint not present at {checkpoint}; its hash was not checked"
        findings.append(Finding(SKIPPED, subject, message))
    return [replace(f, model=model) for f in findings]


def check_tested_means(
    stats: pd.DataFrame, cell_of: Callable[[str, str], tables.Cell]
) -> list[Finding]:
    """Each test compares exactly the numbers of its two cells (DESIGN.md, "Statistics", rule
    1): its tested means equal the cells' means. `cell_of(model, metric)` gives a cell."""
    findings = []
    for row in stats.itertuples():
        if row.n == 0:
            continue
        shown = (cell_of(row.model, row.metric).mean, cell_of(row.reference, row.metric).mean)
        tested = (row.mean_model, row.mean_reference)
        subject = f"test {row.model} vs {row.reference} on {row.metric}"
        if all(abs(a - b) <= 1e-9 * max(1.0, abs(a)) for a, b in zip(shown, tested, strict=True)):
            findings.append(Finding(OK, subject, "tests the numbers its cells show"))
        else:
            message = "tests other numbers than its cells show"
            expected = ", ".join(f"{v:.6g}" for v in shown)
            found = ", ".join(f"{v:.6g}" for v in tested)
            findings.append(Finding(MISMATCH, subject, message, expected, found, row.model))
    return findings


def check_recorded_file(document: dict[str, Any], key: str, base: Path) -> Finding:
    path = Path(os.path.normpath(base / document[key]["file"]))
    return check_hash(path, document[key]["sha256"], f"file {path}", f"{key} file", None)
