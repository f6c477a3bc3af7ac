"""Generated `.tex` tables compiled into one PDF with pdflatex (booktabs, xcolor): what a
paper's table pages look like, and the proof that the LaTeX compiles."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from medmtl.errors import UserError

PREAMBLE = (r"\documentclass{article}", r"\usepackage{booktabs}", r"\usepackage{xcolor}")


def compile_tables(bodies: Sequence[str], out: Path) -> Path:
    """Write `out` (PDF): one article holding every table body, in order.

    Raises:
        UserError: pdflatex is not installed, or fails (with the end of its log).
    """
    if shutil.which("pdflatex") is None:
        raise UserError("pdflatex not found: install TeX Live (Debian: texlive-latex-recommended)")
    document = "\n".join([*PREAMBLE, r"\begin{document}", *bodies, r"\end{document}", ""])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "tables.tex").write_text(document)
        result = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "tables.tex"],
            cwd=tmp, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        pdf = Path(tmp) / "tables.pdf"
        if result.returncode != 0 or not pdf.is_file():
            raise UserError(f"pdflatex failed on {out.name}:\n{result.stdout[-2000:]}")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(pdf, out)
    return out
