"""How long does the statistics stage take on the demo? Prints whole-process wall times.

Runs `medmtl stats` exactly as the DAG's `stats` rule does (params.yaml's n_boot, n_rank_boot
and alpha; both test levels, the ranking bootstrap and the pairwise maps) on the demo's eval
set: the real `results/predictions/synthetic_test` after `make demo`, or, with `--fake`,
generated prediction files of the demo's shape (6 models x 5 seeds x 100 test cases).
Target (issue 9): under 30 s.

    python benchmarks/bench_stats.py [--predictions DIR | --fake] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from medmtl.evaluation.predictions import write_prediction_file

CLASSES = ["nevus", "melanoma", "seborrheic_keratosis"]


def fake_eval_set(directory: Path, models: list[str], seeds: list[int], n_cases: int) -> None:
    """Prediction files of the demo's shape, with model-dependent skill."""
    labels = np.random.default_rng(0).integers(0, 3, n_cases)
    gt = np.random.default_rng(1).integers(200, 2000, n_cases)
    for number, model in enumerate(models):
        for seed in seeds:
            rng = np.random.default_rng([number, seed])
            logits = rng.normal(size=(n_cases, 3))
            logits[np.arange(n_cases), labels] += 1 + 0.3 * number
            probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            tp = (gt * rng.uniform(0.5, 0.7 + 0.04 * number, n_cases)).astype(int)
            frame = pd.DataFrame(probs, columns=[f"prob_{c}" for c in CLASSES])
            frame.insert(0, "case_id", [f"case{i:04d}" for i in range(n_cases)])
            frame.insert(1, "label", labels)
            frame["pred_label"] = probs.argmax(axis=1)
            fp = rng.integers(0, 300, n_cases)
            for prefix in ("seg", "native"):
                frame[f"{prefix}_tp"], frame[f"{prefix}_fp"] = tp, fp
                frame[f"{prefix}_fn"] = gt - tp
            frame["nsd"], frame["hd95"] = 100 * tp / gt, rng.uniform(0, 20, n_cases)
            meta = {
                "model": model, "seed": seed, "eval_set": directory.name, "dataset": "synthetic",
                "class_names": CLASSES, "run_id": "r", "checkpoint_sha256": "k",
                "split_sha256": "s", "data_sha256": "d", "git_commit": "c", "git_dirty": False,
                "subset": "test", "selection_subset": "val", "checkpoint": "best.pt",
                "config_sha256": "c", "profile": "demo", "tracking_uri": "sqlite:///x.db",
                "nsd_tolerance": 2.0,
            }  # fmt: skip
            write_prediction_file(directory / model / f"seed{seed}.parquet", frame, meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--predictions", type=Path, default=Path("results/predictions/synthetic_test")
    )
    parser.add_argument("--fake", action="store_true", help="generate files of the demo's shape")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        predictions = args.predictions
        if args.fake:
            predictions = Path(tmp) / "synthetic_test"
            fake_eval_set(predictions, params["models"], params["seeds"], 100)
        stats = params["stats"]
        command = [
            sys.executable, "-m", "medmtl.cli", "stats", "--predictions", str(predictions),
            "--params", "params.yaml", "--reference", params["reference_model"],
            "--alpha", str(stats["alpha"]), "--n-boot", str(stats["n_boot"]),
            "--n-rank-boot", str(stats["n_rank_boot"]), "--out", f"{tmp}/s.parquet",
            "--ranks", f"{tmp}/r.parquet", "--pairwise", f"{tmp}/p.parquet",
        ]  # fmt: skip
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - started)
    print(
        f"medmtl stats on {predictions.name} ({'fake' if args.fake else 'real'} files), "
        f"whole process, {args.repeats} runs: min {min(times):.1f} s, "
        f"median {statistics.median(times):.1f} s, max {max(times):.1f} s (target < 30 s)"
    )


if __name__ == "__main__":
    main()
