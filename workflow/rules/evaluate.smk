rule evaluate:
    # Predict the {wildcards.dataset} test set with {wildcards.model} seed {wildcards.seed}
    input: "results/runs/{dataset}/{model}/seed{seed}/run.json"
    output: "results/predictions/{dataset}_test/{model}/seed{seed}.parquet"
    params: run_dir=run_dir
    log: "logs/evaluate/{dataset}_test/{model}/seed{seed}.log"
    shell: "medmtl evaluate --run {params.run_dir} --subset test --eval-set {wildcards.dataset}_test --out {output} > {log} 2>&1"
