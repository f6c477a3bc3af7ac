rule fetch:
    # Fetch the raw archives of {wildcards.dataset} (download, or generate for synthetic)
    output: directory("data/raw/{dataset}")
    params: code=stage_fingerprint("fetch"), section=lambda w: config.get(w.dataset, {})
    log: "logs/fetch/{dataset}.log"
    benchmark: "results/benchmarks/fetch/{dataset}.tsv"
    shell: f"medmtl fetch --dataset {{wildcards.dataset}} --params {PARAMS} --out {{output}} > {{log}} 2>&1"


rule preprocess:
    # Validate and resize {wildcards.dataset} into fixed-size arrays
    input: "data/raw/{dataset}"
    output: directory("data/processed/{dataset}")
    params: code=stage_fingerprint("preprocess"), profile=config["profile"]
    log: "logs/preprocess/{dataset}.log"
    benchmark: "results/benchmarks/preprocess/{dataset}.tsv"
    shell: "medmtl preprocess --dataset {wildcards.dataset} --raw {input} --out {output} --profile {params.profile} > {log} 2>&1"


rule splits:
    # Write the {wildcards.dataset} split file (once)
    input: ancient("data/processed/{dataset}")
    output: "data/splits/{dataset}.json"
    params:
        code=stage_fingerprint("splits"),
        seed=config["splits"]["seed"],
        val_fraction=config["splits"]["val_fraction"],
        test_fraction=config["splits"]["test_fraction"],
    log: "logs/splits/{dataset}.log"
    benchmark: "results/benchmarks/splits/{dataset}.tsv"
    shell: "medmtl splits --processed {input} --out {output} --seed {params.seed} --val-fraction {params.val_fraction} --test-fraction {params.test_fraction} > {log} 2>&1"
