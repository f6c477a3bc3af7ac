"""How long does the report take on the demo? Prints whole-process wall times of its two steps.

The report is the `figures` rule (six figures and the provenance page, `medmtl figures`) and
`snakemake --report results/report.html` (the HTML that embeds the tables, figures and
captions). Run in a project where `snakemake --cores 8 all` has finished (after `make report`,
or `make demo` then `snakemake --cores 8 all`); each repeat re-runs the figures rule alone
(`--forcerun figures`, its inputs untouched) and then builds the report, and prints both and
their sum. Target (issue 12): under 60 s for the demo. The figures rule is not upstream of
Table 4 (`snakemake -n results/tables/table4.tex` lists no figures job; tests/test_dags.py),
so the main job does not wait for it.

    python benchmarks/bench_report.py [--project .] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path


def timed(command: list[str], project: Path) -> float:
    """Wall seconds of `command` run to completion in `project` (fails loudly)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=project, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    provenance = "results/figures/provenance.html"
    if not (args.project / provenance).is_file():
        raise SystemExit(f"{args.project}: no figures yet; run `snakemake --cores 8 all` first")
    figures = ["snakemake", "--cores", "2", "--forcerun", "figures", provenance]
    report = ["snakemake", "--report", "results/report.html"]
    rows = []
    for _ in range(args.repeats):
        rows.append((timed(figures, args.project), timed(report, args.project)))
    for name, values in (
        ("figures rule", [f for f, _ in rows]),
        ("snakemake --report", [r for _, r in rows]),
        ("report in all", [f + r for f, r in rows]),
    ):
        print(f"{name:>20}: median {statistics.median(values):6.1f} s "
              f"(min {min(values):.1f}, max {max(values):.1f}; {len(values)} runs)")  # fmt: skip


if __name__ == "__main__":
    main()
