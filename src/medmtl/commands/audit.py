"""`medmtl audit`: re-derive every cell of a generated table and check its lineage."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `audit` subcommand."""
    parser = sub.add_parser("audit", help="re-derive a table's cells and check hashes and runs")
    parser.add_argument("tex", type=Path, help="results/tables/<name>.tex")
    parser.add_argument("--cell", metavar="MODEL,METRIC", help="print one cell's full lineage")
    parser.add_argument(
        "--tracking-uri",
        help="MLflow store to ask (default: MLFLOW_TRACKING_URI, else the one each run recorded)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the audit report (or one cell's lineage); 0 only when everything matches."""
    from medmtl import tracking
    from medmtl.errors import UserError
    from medmtl.reporting import audit

    uri = args.tracking_uri or tracking.store_uri("")  # "": each run's recorded store
    report = audit.audit_table(args.tex, tracking.run_status, uri or None)
    findings = report.findings
    if args.cell:
        model, sep, metric = (part.strip() for part in args.cell.partition(","))
        if not sep:
            raise UserError(f"--cell {args.cell!r}: expected MODEL,METRIC, e.g. he2020,JI")
        findings = audit.cell_findings(report, model, metric)
        print(audit.cell_lineage(report, model, metric))
    print(audit.format_report(args.tex, findings), end="")
    return 0 if audit.passed(findings) else 1
