"""`medmtl figures`: the report's figures and provenance page from the pipeline's own files."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = """Draw the report's figures of one eval set as PNG (matplotlib, Agg; the same inputs
give the same bytes) into OUT: curves.png (loss per epoch, mean and min-max over seeds, the
selected epochs), per_image.png (per-image DSC and JI, paired differences against the
reference), overlays.png (best, median, worst case of the reference and the cases the models
disagree on most: ground-truth and predicted contours of each model's seed ensemble),
classification.png (confusion matrix and one-vs-rest ROC of each seed ensemble),
statistics.png (significance map and bootstrap ranks), external.png (internal vs external Dice,
paired by seed); and provenance.html (runs, hashes, figure sha256, `medmtl audit` of TABLE,
the run time of each rule upstream from the benchmark files Snakemake writes into BENCHMARKS;
`dvc repro` writes none, so after it the page shows those of the last Snakemake run, if any).
Each training run's own loss curves go to its MLflow run by `medmtl run-curves`."""

FIGURES = ("curves", "per_image", "overlays", "classification", "statistics", "external")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `figures` subcommand."""
    p = sub.add_parser("figures", help="draw the report's figures", description=HELP)
    add = p.add_argument
    add("--predictions", type=Path, required=True, help="results/predictions/<eval_set>")
    add("--params", type=Path, nargs="+", required=True, help="models, seeds, reference_model")
    add("--pairwise", type=Path, required=True, help="results/stats/<eval_set>_pairwise.parquet")
    add("--ranks", type=Path, required=True, help="results/stats/<eval_set>_ranks.parquet")
    add("--external", type=Path, required=True, help="results/predictions/external")
    add("--table", type=Path, required=True, help="results/tables/table4.tex, audited")
    add("--benchmarks", type=Path, required=True, help="results/benchmarks (Snakemake's)")
    add("--out", type=Path, required=True, help="folder of the figures: results/figures")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load every input, draw each figure, write the provenance page last."""
    from medmtl import tracking
    from medmtl.annotated_parquet import read_annotated
    from medmtl.errors import UserError
    from medmtl.evaluation.predictions import load_eval_set
    from medmtl.hashing import file_sha256
    from medmtl.pipeline.external import STATUS_FILE, read_status
    from medmtl.pipeline.params import load_params
    from medmtl.reporting import audit
    from medmtl.reporting.external_table import load_external_sets
    from medmtl.reporting.figures import inputs
    from medmtl.reporting.figures.classification import classification_figure
    from medmtl.reporting.figures.common import footer_text, save
    from medmtl.reporting.figures.curves import curves_figure
    from medmtl.reporting.figures.distributions import distributions_figure
    from medmtl.reporting.figures.external import external_figure
    from medmtl.reporting.figures.provenance_page import provenance_page
    from medmtl.reporting.figures.run_times import rule_times
    from medmtl.reporting.figures.statistics import statistics_figure

    params = load_params(args.params)
    files = load_eval_set(args.predictions, params["models"], params["seeds"])
    if any("seg" not in f.tasks for f in files):
        raise UserError(f"{args.predictions}: the figures are Table 4's; every run must segment")
    reference, footer = params["reference_model"], footer_text(files)
    per_image = {metric: inputs.seed_means(files, metric) for metric in ("DSC", "JI")}
    status = read_status(args.external / STATUS_FILE)
    external_sets = load_external_sets(status, args.external)
    absent = [entry["name"] for entry in status["sets"] if not entry["available"]]
    pairs, _ = read_annotated(args.pairwise, "pairwise tests", "run `medmtl stats`")
    ranks, _ = read_annotated(args.ranks, "bootstrap ranks", "run `medmtl stats`")
    drawn = {
        "curves": lambda: curves_figure(inputs.run_curves(files)),
        "per_image": lambda: distributions_figure(per_image, reference),
        "overlays": lambda: _overlays(files, per_image["DSC"], reference),
        "classification": lambda: classification_figure(
            *inputs.seed_ensembles(files), files[0].meta["class_names"]
        ),
        "statistics": lambda: statistics_figure(pairs, ranks, list(per_image["DSC"].columns)),
        "external": lambda: external_figure(inputs.external_pairs(files, external_sets), absent),
    }
    digests = {}
    for name in FIGURES:
        path = save(drawn[name](), args.out / f"{name}.png", footer)
        digests[path.name] = file_sha256(path)
        print(f"wrote {path}", flush=True)
    report = audit.audit_table(args.table, tracking.run_status, tracking.store_uri("") or None)
    page = provenance_page(
        files, digests, args.table, audit.format_report(args.table, report.findings),
        audit.passed(report.findings), rule_times(args.benchmarks),
    )  # fmt: skip
    (args.out / "provenance.html").write_text(page)
    print(f"wrote {args.out / 'provenance.html'}")
    return 0


def _overlays(files, dsc, reference):
    """The overlay figure: the chosen cases predicted again by every run, masks of each
    model's seed ensemble (mean foreground probability over the seeds > 0.5)."""
    import numpy as np

    from medmtl.commands.evaluate import load_best, read_run
    from medmtl.data.processed import load_processed
    from medmtl.errors import UserError
    from medmtl.evaluation.predict import probabilities
    from medmtl.evaluation.predictions import group_by_model
    from medmtl.models.inputs import Split
    from medmtl.reporting.figures.overlays import overlays_figure, select_cases

    chosen = select_cases(dsc, reference)
    ids = list(chosen)
    data, predicted = None, {}
    for model, runs in group_by_model(files).items():
        foreground = []
        for f in runs:
            record, cfg = read_run(Path(f.meta["run_dir"]))
            if data is None:
                data = load_processed(Path(cfg.data_dir))
                if data.sha256() != f.meta["data_sha256"]:
                    raise UserError(f"{data.directory}: not the data {f.path} was predicted on")
                batch = Split.from_arrays(*data.select(ids))
            net, device = load_best(Path(f.meta["run_dir"]), record, cfg, data)
            foreground.append(probabilities(net, batch.images, device)[1].numpy())
        predicted[model] = np.mean(foreground, axis=0) > 0.5
    ordered = {m: predicted[m] for m in dsc.columns}
    images = batch.images.permute(0, 2, 3, 1).numpy()
    truth = batch.masks.numpy().astype(bool)
    return overlays_figure(images, truth, ordered, [f"{i}\n{chosen[i]}" for i in ids])
