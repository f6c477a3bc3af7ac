"""Figure 7, the provenance panel: one HTML page naming what the figures and tables were made
from (runs, commit, data and split sha256, seeds), each figure's sha256, and the verdict of
`medmtl audit` on Table 4, with the commands that re-derive them, and the run time of each
rule upstream (from Snakemake's benchmark files, `run_times.rule_times`)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from medmtl.evaluation.predictions import PredictionFile


def provenance_page(
    files: Sequence[PredictionFile],
    figures: Mapping[str, str],
    table: Path,
    audit_text: str,
    passed: bool,
    times: pd.DataFrame,
) -> str:
    """The page: `figures` maps file name -> sha256; `audit_text` is the audit's report;
    `times` the per-rule run times (`run_times.rule_times`; empty when none were recorded)."""
    meta = files[0].meta
    runs = "".join(
        f"<tr><td>{html.escape(f.model)}</td><td>{f.seed}</td><td>{html.escape(f.meta['run_id'])}"
        f"</td><td>{f.meta['git_commit'][:12]}</td><td>{html.escape(str(f.path))}</td></tr>"
        for f in sorted(files, key=lambda f: (f.model, f.seed))
    )
    figure_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td><code>{digest}</code></td></tr>"
        for name, digest in figures.items()
    )
    verdict = "PASS" if passed else "FAIL"
    if times.empty:
        timing = "<p>No Snakemake benchmark files (<code>dvc repro</code> writes none).</p>"
    else:
        timing = (
            "<table><tr><th>rule</th><th>jobs</th><th>wall-clock s (sum)</th>"
            "<th>wall-clock s (longest job)</th><th>CPU s (sum)</th><th>peak RSS MB</th></tr>"
            + "".join(
                f"<tr><td>{html.escape(rule)}</td><td>{int(r.jobs)}</td><td>{r.wall_s:.1f}</td>"
                f"<td>{r.wall_max_s:.1f}</td><td>{r.cpu_s:.1f}</td><td>{r.max_rss_mb:.0f}</td></tr>"
                for rule, r in times.iterrows()
            )
            + "</table>"
        )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Provenance</title>
<style>body{{font-family:sans-serif;font-size:13px}}td,th{{padding:2px 8px;text-align:left}}
pre{{background:#f4f4f4;padding:6px}}</style></head><body>
<h2>Provenance</h2>
<p>Eval set <b>{html.escape(meta["eval_set"])}</b> of dataset {html.escape(meta["dataset"])},
profile {html.escape(meta["profile"])}; processed data sha256 <code>{meta["data_sha256"]}</code>;
split file sha256 <code>{meta["split_sha256"]}</code>.</p>
<h3 id="audit">medmtl audit {html.escape(str(table))}: {verdict}</h3>
<pre>{html.escape(audit_text)}</pre>
<p>Re-derive: <code>medmtl audit {html.escape(str(table))}</code>; one cell's lineage:
<code>medmtl audit {html.escape(str(table))} --cell "MODEL,METRIC"</code>.</p>
<h3>Figures (sha256 of the PNG; the same inputs give the same bytes)</h3>
<table><tr><th>file</th><th>sha256</th></tr>{figure_rows}</table>
<h3>Runs drawn ({len(files)})</h3>
<table><tr><th>model</th><th>seed</th><th>MLflow run</th><th>commit</th><th>prediction file</th>
</tr>{runs}</table>
<h3 id="run-times">Run times per rule, from the benchmark files of the last Snakemake run of each
(jobs in parallel overlap, so the sums exceed the elapsed time)</h3>
{timing}
</body></html>
"""
