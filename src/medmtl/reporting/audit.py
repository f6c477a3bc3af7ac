"""`medmtl audit <tex>`: re-derive every cell of a generated table and check its lineage.

From `<table>.provenance.json` the audit re-reads every prediction file named there, checks
its sha256, re-computes the per-seed summaries, the paired tests and the cells exactly as
`medmtl table` did, and compares each with the cell written in the `.tex` (numbers, colours,
both significance marks). Each re-derived test must compare exactly the numbers its two cells
show (DESIGN.md, "Statistics", rule 1): its tested means equal the cells' means. It also
checks the stats and split files and any checkpoint still present at its recorded path
against their hashes, that every MLflow run still exists and is FINISHED, and it flags runs
built from a dirty work tree and checkpoints selected on the evaluated split (a leak:
DESIGN.md, "Profiles"). The checks themselves are in `medmtl.reporting.audit_checks`.

Findings are `ok`, `mismatch` or `missing` (the last two fail the audit), or `skipped`
(informational: a checkpoint no longer on disk; colours and marks when inputs are missing,
since ranks and Holm-adjusted tests need every model).

The external-validation table (provenance `"kind": "external"`) is audited the same way by
`medmtl.reporting.audit_external`, row by row (`--cell udiat_b,DSC/proposed`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medmtl.analysis.stats import compute_comparisons
from medmtl.errors import UserError
from medmtl.evaluation.predictions import PredictionFile, check_consistent
from medmtl.reporting import table_tex, tables
from medmtl.reporting.audit_checks import (
    FAILING,
    MISMATCH,
    MISSING,
    OK,
    SKIPPED,
    Finding,
    RunStatus,
    check_recorded_file,
    check_run,
    check_tested_means,
    load_run,
    passed,
)
from medmtl.reporting.audit_external import audit_external
from medmtl.reporting.provenance import provenance_path, read_provenance, runs_by_model


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
        findings += check_tested_means(stats, lambda model, metric: by_key[model, metric])
    return _Rederived(layout, by_key, complete, findings)


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
        return _cell_finding(record, MISSING, message, found=table_tex.plain_cell(found))
    if rederived.complete:
        same = cell.rendered == found
    else:
        same = cell.number == table_tex.cell_number(found)
    if same:
        return _cell_finding(
            record, OK, "matches the re-derived value", found=table_tex.plain_cell(found)
        )
    message = "differs from the value re-derived from the prediction files (hand-edited .tex?)"
    return _cell_finding(
        record, MISMATCH, message, table_tex.plain_cell(cell.rendered), table_tex.plain_cell(found)
    )


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
        rows = table_tex.parse_table(tex.read_text())
    except UserError as err:
        raise UserError(f"{tex}: {err}") from err
    base = provenance_path(tex).parent
    if document.get("kind") == "external":
        findings = audit_external(document, rows, base, run_status, tracking_uri)
        return AuditReport(tex, document, findings)
    findings = [check_recorded_file(document, key, base) for key in ("stats", "split")]
    loaded = {}
    for model, runs in runs_by_model(document).items():
        results = [load_run(run, base, model) for run in runs]
        for run, (finding, _) in zip(runs, results, strict=True):
            findings += [finding, *check_run(run, model, run_status, tracking_uri)]
        files = [f for _, f in results if f is not None]
        if len(files) == len(runs):
            loaded[model] = files
    rederived = _rederive(document, loaded)
    findings += rederived.findings
    findings += [_check_cell(record, rows, rederived) for record in document["cells"]]
    extra = sorted(set(rows) - set(rederived.layout.rows.values()))
    findings += [Finding(MISMATCH, f"row {label}", "row not in the provenance") for label in extra]
    return AuditReport(tex, document, findings)


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
