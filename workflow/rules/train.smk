rule init_tracking:
    # Create the MLflow store and experiment before any parallel job
    output: "results/tracking.json"
    params: code=stage_fingerprint("init-tracking"), uri=config["tracking"]["uri"]
    log: "logs/init_tracking.log"
    benchmark: "results/benchmarks/init_tracking.tsv"
    shell: "medmtl init-tracking --uri {params.uri} --out {output} > {log} 2>&1"


rule train:
    # Train {wildcards.model} seed {wildcards.seed} on {wildcards.dataset}
    input:
        data="data/processed/{dataset}",
        split="data/splits/{dataset}.json",
        tracking="results/tracking.json",
    # Only run.json (written last, atomically) is declared: the checkpoints beside it must
    # survive a killed job, which Snakemake would otherwise delete before re-running. DVC
    # also lists best.pt, persisted (never deleted before a rerun), so `dvc push` shares it.
    output: "results/runs/{dataset}/{model}/seed{seed}/run.json"
    params:
        code=stage_fingerprint("train"),
        run_dir=lambda w, output: os.path.dirname(output[0]),
        ablation=lambda w: w.get("ablation", "none"),
        profile=config["profile"],
        device=config["train"]["device"],
        tracking_uri=config["tracking"]["uri"],
    threads: config["train"]["threads"]
    resources:
        gpu=lambda w: 0 if config["train"]["device"] == "cpu" else 1,
    log: "logs/train/{dataset}/{model}/seed{seed}.log"
    benchmark: "results/benchmarks/train/{dataset}/{model}/seed{seed}.tsv"
    shell: "medmtl train profile={params.profile} dataset={wildcards.dataset} model={wildcards.model} ablation={params.ablation} seed={wildcards.seed} data_dir={input.data} split_file={input.split} out={params.run_dir} threads={threads} device={params.device} tracking.uri={params.tracking_uri} > {log} 2>&1"


# Paper Tables 8 and 9: the same job with one switch of conf/ablation/ on (medmtl.pipeline.ablation)
use rule train as train_ablation with:
    output: "results/ablations/runs/{dataset}/{model}-{ablation}/seed{seed}/run.json"
    log: "logs/train/ablations/{dataset}/{model}-{ablation}/seed{seed}.log"
    benchmark: "results/benchmarks/train_ablation/{dataset}/{model}-{ablation}/seed{seed}.tsv"
