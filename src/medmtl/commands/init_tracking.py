"""`medmtl init-tracking`: create the MLflow store and experiment once, before parallel jobs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = """Create the MLflow tracking store (default: SQLite mlflow.db in the working directory)
and the experiment, and write a small marker file naming them. Run once, upstream of all
training jobs: SQLite stores break when parallel jobs create them at the same time."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init-tracking", help="create the MLflow store and experiment", description=HELP
    )
    p.add_argument(
        "--uri",
        default="sqlite:///mlflow.db",
        help="MLflow tracking URI (params.yaml tracking.uri); MLFLOW_TRACKING_URI overrides it",
    )
    p.add_argument("--experiment", default="medmtl", help="experiment name")
    p.add_argument("--out", required=True, type=Path, help="marker json to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medmtl import tracking
    from medmtl.credentials import redact

    uri = tracking.store_uri(args.uri)
    experiment_id = tracking.init_store(uri, args.experiment)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "tracking_uri": redact(uri),
        "experiment": args.experiment,
        "experiment_id": experiment_id,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0
