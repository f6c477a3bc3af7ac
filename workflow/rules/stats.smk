rule stats:
    # Paired tests of every model against {params.reference} on {wildcards.eval_set}
    input: lambda w: predictions(w.eval_set)
    output: "results/stats/{eval_set}.parquet"
    params:
        reference=config["reference_model"],
        alpha=config["stats"]["alpha"],
        n_boot=config["stats"]["n_boot"],
    log: "logs/stats/{eval_set}.log"
    shell: f"medmtl stats --predictions results/predictions/{{wildcards.eval_set}} --params {PARAMS} --reference {{params.reference}} --alpha {{params.alpha}} --n-boot {{params.n_boot}} --out {{output}} > {{log}} 2>&1"
