"""Per-rule run times for the provenance panel, from the `benchmark:` files Snakemake writes
(one TSV per job under results/benchmarks/<rule>[/<wildcards>].tsv: wall-clock `s`,
`cpu_time` in s and `max_rss` in MB, a row per repeat; "NA" where Snakemake could not
measure). `dvc repro` writes none: after it, the files are those of the last Snakemake run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medmtl.errors import UserError

# The rules of Table 4's lineage and of the figures' other inputs, in DAG order: the jobs that
# have finished when the figures are drawn (the ablations may still be running beside them).
LINEAGE = ("fetch", "preprocess", "splits", "init_tracking", "train", "evaluate", "stats",
           "table4", "external", "external_table")  # fmt: skip
COLUMNS = ("s", "cpu_time", "max_rss")


def rule_times(benchmarks: Path) -> pd.DataFrame:
    """One row per rule of LINEAGE that has benchmark files: jobs, wall-clock sum and max (s),
    CPU time sum (s), peak RSS (MB); a last row `all` sums them (the jobs' wall-clock sum is not
    the DAG's elapsed time when jobs run in parallel).

    Raises:
        UserError: a benchmark file without Snakemake's columns, naming it.
    """
    rows = []
    for path in sorted(benchmarks.rglob("*.tsv")):
        rule = path.relative_to(benchmarks).parts[0].removesuffix(".tsv")
        if rule not in LINEAGE:
            continue
        frame = pd.read_csv(path, sep="\t")
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise UserError(f"{path}: not a Snakemake benchmark file (no column {missing[0]!r})")
        values = frame.loc[:, list(COLUMNS)].apply(pd.to_numeric, errors="coerce").mean()
        rows.append({"rule": rule, **values})
    jobs = pd.DataFrame(rows, columns=["rule", *COLUMNS])
    per_rule = jobs.groupby("rule", sort=False).agg(
        jobs=("s", "size"), wall_s=("s", "sum"), wall_max_s=("s", "max"),
        cpu_s=("cpu_time", "sum"), max_rss_mb=("max_rss", "max"),
    )  # fmt: skip
    per_rule = per_rule.loc[sorted(per_rule.index, key=LINEAGE.index)]
    if per_rule.empty:
        return per_rule
    total = per_rule.agg({"jobs": "sum", "wall_s": "sum", "wall_max_s": "max", "cpu_s": "sum",
                          "max_rss_mb": "max"})  # fmt: skip
    return pd.concat([per_rule, total.rename("all").to_frame().T])
