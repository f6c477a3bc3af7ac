"""Stats files: `results/stats/<eval_set>.parquet` (one row per comparison, `stats.COLUMNS`,
with the parameters and inputs as metadata) and the human-readable `.md` beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from medmtl.analysis.stats import COLUMNS, ZERO_METHOD
from medmtl.annotated_parquet import read_annotated, write_annotated
from medmtl.errors import UserError
from medmtl.evaluation.predictions import PredictionFile
from medmtl.markdown import markdown_table


def stats_metadata(
    files: list[PredictionFile],
    reference: str,
    alpha: float,
    n_boot: int,
    seed: int,
    eval_set: str | None = None,
) -> dict[str, Any]:
    """Parameters and inputs of a stats run, stored with its parquet output; `eval_set`
    names a table over several eval sets (default: the files' one)."""
    return {
        "eval_set": eval_set or files[0].meta["eval_set"],
        "reference": reference,
        "alpha": alpha,
        "n_boot": n_boot,
        "seed": seed,
        "zero_method": ZERO_METHOD,
        "inputs": [{"path": str(f.path), "sha256": f.sha256} for f in files],
    }


def write_stats(frame: pd.DataFrame, meta: dict[str, Any], path: Path) -> None:
    """Write the stats frame as parquet (metadata `medmtl` = `meta`) and `.md` beside it."""
    write_annotated(path, frame, meta)
    path.with_suffix(".md").write_text(stats_markdown(frame, meta))


def read_stats(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a stats parquet written by `write_stats`: (frame, metadata).

    Raises:
        UserError: the file is missing, unreadable, or lacks columns or metadata.
    """
    frame, meta = read_annotated(path, "stats file")
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise UserError(f"{path}: not a medmtl stats file (columns {missing} missing)")
    return frame, meta


def check_stats_inputs(meta: dict[str, Any], files: list[PredictionFile], stats_path: Path) -> None:
    """Raise `UserError` unless the stats were computed from exactly these prediction files."""
    recorded = sorted(entry["sha256"] for entry in meta["inputs"])
    if recorded != sorted(f.sha256 for f in files):
        raise UserError(
            f"{stats_path}: computed from other prediction files than the ones given; "
            "re-run `medmtl stats`"
        )


_MARKDOWN_HEADER = (
    "model|metric|n|mean model|mean ref|per image: diff CI|effect|p|p Holm|sig.|"
    "per run: seeds|diff CI|signs|p|p floor|p Holm|sig.|eval set"
).split("|")


def _fmt(value: float, spec: str) -> str:
    return "nan" if pd.isna(value) else format(value, spec)


def stats_markdown(frame: pd.DataFrame, meta: dict[str, Any]) -> str:
    """Human-readable markdown of a stats frame, with the policy and parameters above it."""
    header = (
        f"# Paired tests, eval set `{meta['eval_set']}`, reference `{meta['reference']}`\n\n"
        f"alpha = {meta['alpha']}, Holm over the {len(frame)} comparisons at each level.\n\n"
        "- Per image (unit: test image, the trained networks fixed): Wilcoxon signed-rank "
        f"(zero_method={meta['zero_method']}) on per-image values averaged over seeds; effect "
        "= matched-pairs rank-biserial; CI: BCa bootstrap of the mean difference. "
        "sig. = the table's dagger.\n"
        "- Per run (unit: training run, the test images fixed): exact permutation test of the "
        "per-run summaries (the cells' difference); p floor = the smallest p the seeds allow; "
        "CI: two-level bootstrap (runs, then images, paired); signs = seed pairings whose "
        "difference has the cells' sign. sig. = the second mark (both levels).\n\n"
        f"Bootstrap: {meta['n_boot']} resamples, seed {meta['seed']}; differences in the "
        "metric's units (points; MAE: training sds).\n\n"
    )
    rows = [
        [
            r.model,
            r.metric,
            str(r.n),
            _fmt(r.mean_model, ".2f"),
            _fmt(r.mean_reference, ".2f"),
            f"[{_fmt(r.ci_low, '.2f')}, {_fmt(r.ci_high, '.2f')}]",
            _fmt(r.effect_size, ".3f"),
            _fmt(r.p, ".3g"),
            _fmt(r.p_holm, ".3g"),
            "yes" if r.significant else "no",
            f"{r.seeds_model} vs {r.seeds_reference}",
            f"[{_fmt(r.seed_ci_low, '.2f')}, {_fmt(r.seed_ci_high, '.2f')}]",
            f"{r.sign_agree}/{r.sign_pairs}",
            _fmt(r.p_seed, ".3g"),
            _fmt(r.p_seed_floor, ".3g"),
            _fmt(r.p_seed_holm, ".3g"),
            "yes" if r.seed_significant else "no",
            r.eval_set,
        ]
        for r in frame.itertuples()
    ]
    return header + markdown_table(_MARKDOWN_HEADER, rows)
