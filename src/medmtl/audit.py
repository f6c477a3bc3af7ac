"""`medmtl audit <tex>`: re-derive every cell of a generated table and check its lineage.

From `<table>.provenance.json` the audit re-reads every prediction file named there, checks
its sha256, re-computes the per-seed summaries, the paired tests and the cells exactly as
`medmtl table` did, and compares each with the cell written in the `.tex` (numbers, colours,
both significance marks). Each re-derived test must compare exactly the numbers its two cells
show (DESIGN.md, "Statistics", rule 1): its tested means equal the cells' means. It also
checks the stats and split files and any checkpoint still present at its recorded path against their
hashes, that every MLflow run still exists and is FINISHED, and it flags runs built from a
dirty work tree and checkpoints selected on the evaluated split (a leak: DESIGN.md,
"Profiles").

Findings are `ok`, `mismatch` or `missing` (the last two fail the audit), or `skipped`
(informational: a checkpoint no longer on disk; colours and marks when inputs are missing,
since ranks and Holm-adjusted tests need every model).

The external-validation table (provenance `"kind": "external"`) is audited the same way, row
by row: its cells are keyed (eval set, column) instead of (model, metric), so a finding's
`model` and `metric` hold the eval set and the column there (`--cell udiat_b,DSC/proposed`);
p values are re-derived with the Holm correction over the whole table, and the row of a set
that was not available must still say so.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medmtl import external_table, tables
from medmtl.errors import UserError
from medmtl.hashing import file_sha256
from medmtl.predictions import PredictionFile, check_consistent, read_prediction_file
from medmtl.provenance import external_runs, provenance_path, read_provenance, runs_by_model
from medmtl.stats import compute_comparisons, compute_stats_across

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


@dataclass(frozen=True)
class AuditReport:
    """All findings of one audit and the provenance document they were checked against."""

    tex: Path
    provenance: dict[str, Any]
    findings: list[Finding]


@dataclass(frozen=True)
class _Rederived:
    layout: tables.Layout
    cells: dict[tuple[str, str], tables.Cell]
    complete: bool  # every model's files loaded and consistent: colours and marks comparable
    findings: list[Finding]


def passed(findings: list[Finding]) -> bool:
    """True when no finding is a mismatch or missing."""
    return not any(f.status in FAILING for f in findings)


def _check_hash(path: Path, recorded: str, subject: str, what: str, model: str | None) -> Finding:
    if not path.is_file():
        return Finding(MISSING, subject, f"{what} missing at {path}", model=model)
    actual = file_sha256(path)
    if actual != recorded:
        message = f"{what} changed since the table was built (sha256)"
        return Finding(MISMATCH, subject, message, recorded[:16], actual[:16], model=model)
    return Finding(OK, subject, f"{what} sha256 matches", found=actual[:16], model=model)


def _load_run(run: dict[str, Any], base: Path, model: str) -> tuple[Finding, PredictionFile | None]:
    """Hash-check and read one prediction file; a changed file is still read to re-derive."""
    path = Path(os.path.normpath(base / run["prediction_file"]))
    subject = f"file {path}"
    finding = _check_hash(path, run["prediction_sha256"], subject, "prediction file", model)
    if finding.status == MISSING:
        return finding, None
    try:
        return finding, read_prediction_file(path)
    except UserError as err:
        return Finding(MISMATCH, subject, f"unreadable: {err}", model=model), None


def _run_status_finding(
    run: dict[str, Any], subject: str, run_status: RunStatus, tracking_uri: str | None
) -> Finding:
    uri = tracking_uri or run["tracking_uri"]
    status = run_status(uri, run["run_id"])
    name = f"MLflow run {run['run_id']} ({uri})"
    if status is None:
        return Finding(
            MISSING, subject, f"{name} does not exist, was deleted, or the store is gone"
        )
    if status != "FINISHED":
        return Finding(MISMATCH, subject, f"{name} is not finished", "FINISHED", status)
    return Finding(OK, subject, f"{name} FINISHED")


def _check_run(
    run: dict[str, Any], model: str, run_status: RunStatus, tracking_uri: str | None
) -> list[Finding]:
    """MLflow status, work-tree state, checkpoint selection split and checkpoint hash."""
    subject = f"run {model} seed{run['seed']}"
    findings = [_run_status_finding(run, subject, run_status, tracking_uri)]
    if run["git_dirty"]:
        message = f"built from a dirty work tree (commit {run['git_commit']})"
        findings.append(Finding(MISMATCH, subject, message, "clean", "dirty"))
    if run["selection_subset"] == run["subset"]:
        message = f"checkpoint selected on the {run['subset']} split (leak)"
        findings.append(Finding(MISMATCH, subject, message, "another split", run["subset"]))
    checkpoint = Path(run["checkpoint_path"])
    if checkpoint.is_file():
        findings.append(
            _check_hash(checkpoint, run["checkpoint_sha256"], subject, "checkpoint", model)
        )
    else:
        message = f"checkpoint not present at {checkpoint}; its hash was not checked"
        findings.append(Finding(SKIPPED, subject, message))
    return [replace(f, model=model) for f in findings]


def _rederive(document: dict[str, Any], loaded: dict[str, list[PredictionFile]]) -> _Rederived:
    """Cells from the loaded files as `medmtl table` (or `medmtl ablation-table`) derives
    them, with the layout and comparisons the provenance records."""
    files = [f for model_files in loaded.values() for f in model_files]
    layout = tables.Layout.from_json(document["layout"])
    findings = []
    complete = set(loaded) == set(layout.rows)
    if files:
        try:
            check_consistent(files)
        except UserError as err:
            findings.append(Finding(MISMATCH, "prediction files", str(err)))
            complete = False
    stats = None
    if complete:
        params = document["stats"]
        comparisons = [
            (model, ref, tuple(tested)) for model, ref, tested in document["comparisons"]
        ]
        stats = compute_comparisons(
            files, comparisons, document["alpha"], params["n_boot"], params["seed"]
        )
    else:
        message = "colours and significance marks not re-derived: inputs missing or inconsistent"
        findings.append(Finding(SKIPPED, "table", message))
    cells = tables.derive_cells(tables.seed_summaries(files), stats, layout) if files else []
    by_key = {(c.model, c.metric): c for c in cells}
    if stats is not None:
        findings += _check_tested_means(stats, lambda model, metric: by_key[model, metric])
    return _Rederived(layout, by_key, complete, findings)


def _check_tested_means(
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


def _cell_finding(
    record: dict[str, Any], status: str, message: str, expected: str = "", found: str = ""
) -> Finding:
    model, metric = record["model"], record["metric"]
    return Finding(status, f"cell {model},{metric}", message, expected, found, model, metric)


def _check_cell(
    record: dict[str, Any], rows: dict[str, list[str]], rederived: _Rederived
) -> Finding:
    """Compare one `.tex` cell with its re-derived value (numbers only when incomplete)."""
    columns = rederived.layout.metrics
    label = rederived.layout.rows.get(record["model"], record["model"])
    row = rows.get(label)
    if row is None:
        return _cell_finding(record, MISSING, f"row {label!r} not in the .tex")
    if len(row) != len(columns):
        return _cell_finding(record, MISMATCH, f"row {label!r} has {len(row)} cells")
    found = row[columns.index(record["metric"])]
    cell = rederived.cells.get((record["model"], record["metric"]))
    if cell is None:
        message = "cannot re-derive: prediction files missing"
        return _cell_finding(record, MISSING, message, found=tables.plain_cell(found))
    if rederived.complete:
        same = cell.rendered == found
    else:
        same = cell.number == tables.cell_number(found)
    if same:
        return _cell_finding(
            record, OK, "matches the re-derived value", found=tables.plain_cell(found)
        )
    message = "differs from the value re-derived from the prediction files (hand-edited .tex?)"
    return _cell_finding(
        record, MISMATCH, message, tables.plain_cell(cell.rendered), tables.plain_cell(found)
    )


def _check_recorded_file(document: dict[str, Any], key: str, base: Path) -> Finding:
    path = Path(os.path.normpath(base / document[key]["file"]))
    return _check_hash(path, document[key]["sha256"], f"file {path}", f"{key} file", None)


def audit_table(tex: Path, run_status: RunStatus, tracking_uri: str | None = None) -> AuditReport:
    """Audit one generated table against its provenance file.

    Args:
        tex: The table's `.tex`; its provenance is `<stem>.provenance.json` beside it.
        run_status: (tracking URI, MLflow run id) -> status ("FINISHED", ...) or None when
            the run is gone: `medmtl.tracking.run_status`.
        tracking_uri: Ask this MLflow store instead of the one each run recorded.

    Raises:
        UserError: the `.tex` or its provenance is missing or unreadable.
    """
    if not tex.is_file():
        raise UserError(f"{tex}: table not found")
    document = read_provenance(provenance_path(tex))
    try:
        rows = tables.parse_table(tex.read_text())
    except UserError as err:
        raise UserError(f"{tex}: {err}") from err
    base = provenance_path(tex).parent
    if document.get("kind") == "external":
        findings = _audit_external(document, rows, base, run_status, tracking_uri)
        return AuditReport(tex, document, findings)
    findings = [_check_recorded_file(document, key, base) for key in ("stats", "split")]
    loaded = {}
    for model, runs in runs_by_model(document).items():
        results = [_load_run(run, base, model) for run in runs]
        for run, (finding, _) in zip(runs, results, strict=True):
            findings += [finding, *_check_run(run, model, run_status, tracking_uri)]
        files = [f for _, f in results if f is not None]
        if len(files) == len(runs):
            loaded[model] = files
    rederived = _rederive(document, loaded)
    findings += rederived.findings
    findings += [_check_cell(record, rows, rederived) for record in document["cells"]]
    extra = sorted(set(rows) - set(rederived.layout.rows.values()))
    findings += [Finding(MISMATCH, f"row {label}", "row not in the provenance") for label in extra]
    return AuditReport(tex, document, findings)


def _audit_external(
    document: dict[str, Any],
    rows: dict[str, list[str]],
    base: Path,
    run_status: RunStatus,
    tracking_uri: str | None,
) -> list[Finding]:
    """Audit of the external-validation table: files and runs, then every row's cells."""
    findings = [_check_recorded_file(document, key, base) for key in ("stats", "status")]
    loaded = {}
    for eval_set, by_model in external_runs(document).items():
        files = []
        for model, runs in by_model.items():
            for run in runs:
                finding, loaded_file = _load_run(run, base, model)
                checked = [finding, *_check_run(run, model, run_status, tracking_uri)]
                findings += [
                    replace(f, subject=f"{eval_set}: {f.subject}", model=eval_set) for f in checked
                ]
                files += [loaded_file] if loaded_file else []
        if len(files) == sum(map(len, by_model.values())):
            loaded[eval_set] = files
    derived, complete, rederive_findings = _rederive_external(document, loaded)
    findings += rederive_findings
    for entry in document["sets"]:
        findings += _check_external_row(
            entry, rows.get(tables.escape_latex(entry["name"])), derived, complete
        )
    labels = {tables.escape_latex(entry["name"]) for entry in document["sets"]}
    findings += [
        Finding(MISMATCH, f"row {label}", "row not in the provenance")
        for label in sorted(set(rows) - labels)
    ]
    return findings


def _rederive_external(
    document: dict[str, Any], loaded: dict[str, list[PredictionFile]]
) -> tuple[dict[str, external_table.ExternalRow], bool, list[Finding]]:
    """Rows from the loaded files as `medmtl external-table` derives them; p values only when
    every available set's files loaded and are consistent (Holm needs the whole table)."""
    available = [entry["name"] for entry in document["sets"] if entry["available"]]
    complete = set(loaded) == set(available)
    findings = []
    for name, files in loaded.items():
        try:
            check_consistent(files)
        except UserError as err:
            findings.append(Finding(MISMATCH, f"{name} prediction files", str(err), model=name))
            complete = False
    stats = None
    if complete:
        params = document["stats"]
        eval_sets = {name: loaded[name] for name in available}
        stats = compute_stats_across(
            eval_sets,
            document["reference"],
            document["alpha"],
            params["n_boot"],
            params["seed"],
            external_table.METRICS,
        )
    else:
        message = "p values not re-derived: inputs missing or inconsistent"
        findings.append(Finding(SKIPPED, "table", message))
    baseline, proposed = document["baseline"], document["reference"]
    derived = external_table.derive_rows(loaded, stats, baseline, proposed)
    roles = {baseline: "baseline", proposed: "proposed"}
    for name, row in derived.items() if stats is not None else ():
        findings += [
            replace(f, subject=f"{name}: {f.subject}", model=name)
            for f in _check_tested_means(
                stats[stats["eval_set"] == name],
                lambda model, metric, row=row: row.cells[f"{metric}/{roles[model]}"],
            )
        ]
    return derived, complete, findings


def _check_external_row(
    entry: dict[str, Any],
    found: list[str] | None,
    derived: dict[str, external_table.ExternalRow],
    complete: bool,
) -> list[Finding]:
    """Compare one row of the `.tex` with its re-derived cells (or its "not available")."""
    name = entry["name"]
    if found is None:
        return [Finding(MISSING, f"row {name}", "row not in the .tex", model=name)]
    if not entry["available"]:
        expected = external_table.MissingRow(name, entry["reason"]).rendered()
        status = OK if found == expected else MISMATCH
        message = f"not available: {entry['reason']}"
        return [Finding(status, f"row {name}", message, expected[0], found[0], model=name)]
    row = derived.get(name)
    if row is None:
        message = "cannot re-derive: prediction files missing"
        return [Finding(MISSING, f"row {name}", message, model=name)]
    if len(found) != len(external_table.COLUMNS):
        return [Finding(MISMATCH, f"row {name}", f"has {len(found)} cells", model=name)]
    findings = []
    for column, expected, cell in zip(external_table.COLUMNS, row.rendered(), found, strict=True):
        subject, shown = f"cell {name},{column}", tables.plain_cell(cell)
        if column.endswith("/p") and not complete:
            findings.append(
                Finding(SKIPPED, subject, "p value not re-derived", "", shown, name, column)
            )
        elif cell == expected:
            findings.append(
                Finding(OK, subject, "matches the re-derived value", "", shown, name, column)
            )
        else:
            message = (
                "differs from the value re-derived from the prediction files (hand-edited .tex?)"
            )
            findings.append(
                Finding(
                    MISMATCH, subject, message, tables.plain_cell(expected), shown, name, column
                )
            )
    return findings


def _cell_key(record: dict[str, Any]) -> tuple[str, str]:
    """How `--cell` names a cell: (model, metric) in Table 4, (eval set, column) in the
    external-validation table."""
    if "column" in record:
        return record["eval_set"], record["column"]
    return record["model"], record["metric"]


def cell_findings(report: AuditReport, model: str, metric: str) -> list[Finding]:
    """Findings bearing on one cell: its own, its model's runs and files, table-wide ones.
    In the external-validation table `model` is the eval set and `metric` the column.

    Raises:
        UserError: the table has no such cell.
    """
    cells = {_cell_key(c) for c in report.provenance["cells"]}
    if (model, metric) not in cells:
        known = ", ".join(f"{m},{k}" for m, k in sorted(cells))
        raise UserError(f"{report.tex}: no cell {model},{metric}; cells: {known}")
    return [f for f in report.findings if f.model in (None, model) and f.metric in (None, metric)]


def cell_lineage(report: AuditReport, model: str, metric: str) -> str:
    """One cell's full provenance record (runs, hashes, test) as indented JSON."""
    cell_findings(report, model, metric)  # validates the cell name
    record = next(c for c in report.provenance["cells"] if _cell_key(c) == (model, metric))
    return json.dumps(record, indent=2, sort_keys=True)


def format_finding(finding: Finding) -> str:
    """`status  subject: message [expected ..., found ...]`."""
    line = f"{finding.status:<8} {finding.subject}: {finding.message}"
    if finding.status in FAILING and (finding.expected or finding.found):
        return f"{line} [expected {finding.expected or '-'}, found {finding.found or '-'}]"
    return f"{line} [{finding.found}]" if finding.found else line


def format_report(tex: Path, findings: list[Finding]) -> str:
    """Per-item report with a count per status and the verdict."""
    counts = Counter(f.status for f in findings)
    verdict = "PASS" if passed(findings) else "FAIL"
    summary = ", ".join(f"{counts[s]} {s}" for s in (OK, MISMATCH, MISSING, SKIPPED))
    return (
        "\n".join([f"audit of {tex}", *map(format_finding, findings), f"{verdict}: {summary}"])
        + "\n"
    )
