rule evaluate:
    # Predict the {wildcards.dataset} test set with {wildcards.model} seed {wildcards.seed}
    input: "results/runs/{dataset}/{model}/seed{seed}/run.json"
    output: "results/predictions/{dataset}_test/{model}/seed{seed}.parquet"
    params:
        code=stage_fingerprint("evaluate"),
        run_dir=lambda w, input: os.path.dirname(input[0]),
        nsd_tolerance=config["evaluate"]["nsd_tolerance"],
    log: "logs/evaluate/{dataset}_test/{model}/seed{seed}.log"
    benchmark: "results/benchmarks/evaluate/{dataset}_test/{model}/seed{seed}.tsv"
    shell: "medmtl evaluate --run {params.run_dir} --subset test --eval-set {wildcards.dataset}_test --nsd-tolerance {params.nsd_tolerance} --out {output} > {log} 2>&1"


use rule evaluate as evaluate_ablation with:
    input: "results/ablations/runs/{dataset}/{model}-{ablation}/seed{seed}/run.json"
    output: "results/ablations/predictions/{dataset}_test/{model}-{ablation}/seed{seed}.parquet"
    log: "logs/evaluate/ablations/{dataset}_test/{model}-{ablation}/seed{seed}.log"
    benchmark: "results/benchmarks/evaluate_ablation/{dataset}_test/{model}-{ablation}/seed{seed}.tsv"


EXTERNAL = external_inputs(config)


rule external:
    # Predict every available external set with the trained runs, no fine-tuning (params: external)
    input: EXTERNAL["runs"]
    output:
        processed=directory("data/external"),
        predictions=directory("results/predictions/external"),
    params:  # re-run when these change, e.g. a release is placed at its source
        code=stage_fingerprint("external"),
        available=EXTERNAL["available"],
        sets=config["external"],
        compared=[config["baseline_model"], config["reference_model"]],
        seeds=config["seeds"],
        nsd_tolerance=config["evaluate"]["nsd_tolerance"],
    log: "logs/external.log"
    benchmark: "results/benchmarks/external.tsv"
    shell: f"medmtl external --params {PARAMS} --runs results/runs/{DATASET} --processed {{output.processed}} --out {{output.predictions}} > {{log}} 2>&1"
