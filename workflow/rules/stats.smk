rule stats:
    # Paired tests of every model against {params.reference} on {wildcards.eval_set}
    input: lambda w: predictions(w.eval_set)
    output:
        stats="results/stats/{eval_set}.parquet",
        ranks="results/stats/{eval_set}_ranks.parquet",
        pairwise="results/stats/{eval_set}_pairwise.parquet",
    params:
        code=stage_fingerprint("stats"),
        reference=config["reference_model"],
        alpha=config["stats"]["alpha"],
        n_boot=config["stats"]["n_boot"],
        n_rank_boot=config["stats"]["n_rank_boot"],
    log: "logs/stats/{eval_set}.log"
    benchmark: "results/benchmarks/stats/{eval_set}.tsv"
    shell: f"medmtl stats --predictions results/predictions/{{wildcards.eval_set}} --params {PARAMS} --reference {{params.reference}} --alpha {{params.alpha}} --n-boot {{params.n_boot}} --n-rank-boot {{params.n_rank_boot}} --out {{output.stats}} --ranks {{output.ranks}} --pairwise {{output.pairwise}} > {{log}} 2>&1"
