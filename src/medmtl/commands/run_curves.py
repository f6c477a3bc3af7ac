"""`medmtl run-curves`: each training run's own loss curves, as an artifact of its MLflow run."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = """Draw each training run's own loss curves (train and validation loss per epoch, the
selected epoch marked; the report's curves figure for one run) and log them as `curves.png` to
the run's MLflow run, in the store its prediction file names (MLFLOW_TRACKING_URI overrides).
The runs are those of the params' `models` x `seeds` in PREDICTIONS (Table 4's) and of
`ablations.models` x `ablations.variants` x `seeds` in ABLATIONS. Drawn here, not by the
training job, so that editing a figure never retrains a model. Writes OUT, a TSV of run,
seed, MLflow run id and the sha256 of the PNG logged (the same inputs give the same bytes)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `run-curves` subcommand."""
    p = sub.add_parser("run-curves", help="log each training run's curves to MLflow",
                       description=HELP)  # fmt: skip
    add = p.add_argument
    add("--predictions", type=Path, required=True, help="results/predictions/<eval_set>")
    add("--ablations", type=Path, required=True, help="results/ablations/predictions/<eval_set>")
    add("--params", type=Path, nargs="+", required=True, help="params.yaml [experiment file]")
    add("--out", type=Path, required=True, help="results/figures/run_curves.tsv")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the runs' prediction files, draw and log each run's figure, write the list."""
    from medmtl.evaluation.predictions import load_eval_set
    from medmtl.pipeline.ablation import run_name
    from medmtl.pipeline.params import load_params

    params = load_params(args.params)
    ablations, seeds = params["ablations"], params["seeds"]
    ablated = [run_name(m, a) for m in ablations["models"] for a in ablations["variants"]]
    files = load_eval_set(args.predictions, params["models"], seeds) + load_eval_set(
        args.ablations, ablated, seeds
    )
    rows = attach_run_curves(files)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = ["run\tseed\tmlflow_run_id\tcurves_sha256", *("\t".join(map(str, r)) for r in rows)]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"logged curves.png to {len(rows)} MLflow runs; wrote {args.out}")
    return 0


def attach_run_curves(files) -> list[tuple[str, int, str, str]]:
    """Log each file's run's curves figure to its MLflow run; (run, seed, run id, sha256) each."""
    import tempfile

    from tqdm import tqdm

    from medmtl import tracking
    from medmtl.hashing import file_sha256
    from medmtl.reporting.figures.common import footer_text, save
    from medmtl.reporting.figures.curves import curves_figure
    from medmtl.reporting.figures.inputs import run_curves

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ordered = sorted(files, key=lambda f: (f.model, f.seed))
        for f in tqdm(ordered, desc="run curves", unit="run", disable=None):
            (curve,) = run_curves([f])[f.model]
            path = save(curves_figure({f.model: [curve]}), Path(tmp) / "curves.png",
                        footer_text([f]))  # fmt: skip
            tracking.log_artifact(tracking.store_uri(f.meta["tracking_uri"]), f.meta["run_id"],
                                  str(path))  # fmt: skip
            rows.append((f.model, f.seed, f.meta["run_id"], file_sha256(path)))
    return rows
