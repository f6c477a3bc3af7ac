FIGURES = ("curves", "per_image", "overlays", "classification", "statistics", "external")
CATEGORY = {  # the report's sections (snakemake --report results/report.html)
    "curves": "Training", "per_image": "Table 4", "overlays": "Table 4",
    "classification": "Table 4", "statistics": "Tests and ranks", "external": "External validation",
}


rule figures:
    # The report's figures and provenance page of {EVAL_SET} (medmtl.reporting.figures)
    input:
        predictions=predictions(EVAL_SET),
        stats=f"results/stats/{EVAL_SET}.parquet",
        external="results/predictions/external",
        table="results/tables/table4.tex",
    output:
        **{name: report(f"results/figures/{name}.png", caption=f"../report/{name}.rst",
                        category=CATEGORY[name]) for name in FIGURES},
        provenance=report("results/figures/provenance.html", caption="../report/provenance.rst",
                          category="Provenance"),
    params: code=stage_fingerprint("figures")
    log: "logs/figures.log"
    benchmark: "results/benchmarks/figures.tsv"
    shell: f"medmtl figures --predictions results/predictions/{EVAL_SET} --params {PARAMS} --pairwise results/stats/{EVAL_SET}_pairwise.parquet --ranks results/stats/{EVAL_SET}_ranks.parquet --external {{input.external}} --table {{input.table}} --benchmarks results/benchmarks --out results/figures > {{log}} 2>&1"


rule run_curves:
    # Each training run's own loss curves, logged to its MLflow run (Table 4's and the ablations')
    input: sorted({*predictions(EVAL_SET), *table_inputs(config, "table8"), *table_inputs(config, "table9")})
    output: "results/figures/run_curves.tsv"
    params: code=stage_fingerprint("run-curves")
    log: "logs/run_curves.log"
    benchmark: "results/benchmarks/run_curves.tsv"
    shell: f"medmtl run-curves --predictions results/predictions/{EVAL_SET} --ablations results/ablations/predictions/{EVAL_SET} --params {PARAMS} --out {{output}} > {{log}} 2>&1"
