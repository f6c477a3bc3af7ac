"""A generated table's `.tex` as a standalone HTML page, for the Snakemake report: the same
rows, cells, highlights (red/blue/bold), marks (dagger, double dagger), caption and header
comment, read from the `.tex` itself so the two can never disagree. Only the LaTeX the table
renderers `table_tex` and `external_table` write is understood."""

from __future__ import annotations

import html
import re
from pathlib import Path

from medmtl.errors import UserError

_SYMBOLS = (  # inside and outside math; a LaTeX ~ (a space) before the escaped one
    ("~", " "), (r"^\ddagger", "‡"), (r"^\dagger", "†"), (r"\pm", "±"), (r"\alpha", "α"),
    (r"\to", "→"), (r"\textasciitilde{}", "~"), (r"\textasciicircum{}", "^"),
    (r"\textbackslash{}", "\\"),
)  # fmt: skip
_ESCAPED = {r"\_": "_", r"\%": "%", r"\&amp;": "&amp;", r"\#": "#", r"\{": "{", r"\}": "}"}
_DOLLAR = "\x00"  # an escaped \$ while math dollars are dropped
_COLOUR = re.compile(r"\\textcolor\{(\w+)\}\{([^{}]*)\}")
_BOLD = re.compile(r"\\textbf\{([^{}]*)\}")
_MULTICOLUMN = re.compile(r"\\multicolumn\{(\d+)\}\{(\w)\}\{(.*)\}")
_CAPTION = re.compile(r"\\caption\[(.*?)\]\{(.*)\}")

STYLE = """body{font-family:sans-serif;font-size:14px;max-width:72em;margin:1em}
table{border-collapse:collapse;margin:1em 0}td,th{padding:3px 10px;text-align:center}
td:first-child{text-align:left}thead tr:last-child th{border-bottom:1px solid #000}
table{border-top:2px solid #000;border-bottom:2px solid #000}tbody+tbody{border-top:1px solid #000}
.red{color:#c00}.blue{color:#00c}figcaption{max-width:72em}pre{color:#555;font-size:12px}"""


def inline(tex: str) -> str:
    """One cell or caption of the renderers' LaTeX as HTML."""
    text = html.escape(tex.replace(r"\$", _DOLLAR), quote=False)
    for escaped, plain in _ESCAPED.items():
        text = text.replace(escaped, plain)
    for command, symbol in _SYMBOLS:
        text = text.replace(command, symbol)
    text = _COLOUR.sub(lambda m: f'<span class="{m[1]}">{m[2]}</span>', text)
    text = _BOLD.sub(r"<b>\1</b>", text)
    return text.replace("$", "").replace(_DOLLAR, "$").replace("  ", " ")


def _cells(line: str, tag: str) -> str:
    cells = []
    for field in re.split(r"(?<!\\)&", line.strip().removesuffix(r"\\")):
        span = _MULTICOLUMN.fullmatch(field.strip())
        colspan, body = (int(span[1]), span[3]) if span else (1, field.strip())
        attribute = f' colspan="{colspan}"' if colspan > 1 else ""
        attribute += ' style="text-align:left"' if span and span[2] == "l" else ""
        cells.append(f"<{tag}{attribute}>{inline(body)}</{tag}>")
    return "<tr>" + "".join(cells) + "</tr>"


def tex_to_html(tex: str) -> str:
    """The page of one generated table.

    Raises:
        UserError: the text is not a table the renderers write (no caption or no
            \\toprule ... \\bottomrule block).
    """
    caption = _CAPTION.search(tex)
    block = re.search(r"\\toprule\n(.*?)\\bottomrule", tex, re.S)
    if caption is None or block is None:
        raise UserError("no \\caption or no \\toprule ... \\bottomrule block: not a medmtl table")
    head, *groups = block[1].split("\\midrule\n")
    header_rows = [_cells(line, "th") for line in head.splitlines() if "&" in line]
    rows = [[_cells(line, "td") for line in g.splitlines() if "&" in line] for g in groups]
    bodies = ["<tbody>" + "".join(group) + "</tbody>" for group in rows]
    comment = "\n".join(line[2:] for line in tex.splitlines() if line.startswith("% "))
    title = inline(caption[1])
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>\n<figure><figcaption>{inline(caption[2])}"
        f"</figcaption>\n<table><thead>{''.join(header_rows)}</thead>{''.join(bodies)}</table>"
        f"</figure>\n<pre>{html.escape(comment)}</pre>\n</body></html>\n"
    )


def write_html(tex_path: Path) -> Path:
    """Write the page of the table at `tex_path` beside it (`.html`); return its path."""
    path = tex_path.with_suffix(".html")
    path.write_text(tex_to_html(tex_path.read_text()))
    return path
