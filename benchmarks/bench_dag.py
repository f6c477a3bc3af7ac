"""Where does a DAG run's time go? Per-rule totals of Snakemake's `benchmark:` files.

Every rule writes `results/benchmarks/<rule>[/<wildcards>].tsv` (wall seconds `s`, `cpu_time`, peak
`max_rss` in MB) for each job it runs. This prints, per rule: jobs, summed wall and CPU seconds,
mean CPU per job, the largest peak memory, and the rule's share of all CPU seconds. On a machine
with fewer cores than concurrent jobs the wall seconds overlap; the CPU seconds add up.

    python benchmarks/bench_dag.py [--benchmarks results/benchmarks]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def rule_of(path: Path, root: Path) -> str:
    """The rule that wrote a benchmark file: ``<rule>.tsv`` or ``<rule>/<wildcards>.tsv``."""
    parts = path.relative_to(root).parts
    return path.stem if len(parts) == 1 else parts[0]


def summary(root: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t")
        rows.append({"rule": rule_of(path, root), **frame.iloc[-1][["s", "cpu_time", "max_rss"]]})
    if not rows:
        raise SystemExit(f"{root}: no benchmark files; run the DAG first (e.g. make demo)")
    jobs = pd.DataFrame(rows)
    table = jobs.groupby("rule").agg(
        jobs=("s", "size"), wall_s=("s", "sum"), cpu_s=("cpu_time", "sum"),
        max_rss_mb=("max_rss", "max"),
    )  # fmt: skip
    table["cpu_per_job_s"] = table["cpu_s"] / table["jobs"]
    table["cpu_share"] = table["cpu_s"] / table["cpu_s"].sum()
    return table.sort_values("cpu_s", ascending=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmarks", type=Path, default=Path("results/benchmarks"))
    table = summary(parser.parse_args().benchmarks)
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"total: {table['jobs'].sum()} jobs, {table['cpu_s'].sum():.0f} CPU seconds")


if __name__ == "__main__":
    main()
