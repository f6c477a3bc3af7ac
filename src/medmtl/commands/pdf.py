"""`medmtl pdf`: compile generated tables into one PDF (needs pdflatex)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `pdf` subcommand."""
    p = sub.add_parser(
        "pdf",
        help="compile generated .tex tables into one PDF",
        description="Compile the given generated tables (results/tables/*.tex) into one PDF "
        "with pdflatex (booktabs, xcolor); fails with pdflatex's log if they do not compile.",
    )
    p.add_argument("tex", type=Path, nargs="+", help="results/tables/<name>.tex")
    p.add_argument("--out", type=Path, required=True, help="PDF to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medmtl.errors import UserError
    from medmtl.reporting.table_pdf import compile_tables

    missing = [str(p) for p in args.tex if not p.is_file()]
    if missing:
        raise UserError(f"{missing[0]}: not found")
    print(f"wrote {compile_tables([p.read_text() for p in args.tex], args.out)}")
    return 0
