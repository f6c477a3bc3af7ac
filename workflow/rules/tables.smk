rule table4:
    # Render Table 4 (segmentation + classification, mean +- sd over seeds)
    input:
        predictions=predictions(EVAL_SET),
        stats=f"results/stats/{EVAL_SET}.parquet",
        split=f"data/splits/{DATASET}.json",
    output:
        tex="results/tables/table4.tex",
        html=report("results/tables/table4.html", caption="../report/table4.rst", category="Table 4"),
        provenance="results/tables/table4.provenance.json",
        vs_paper="results/tables/table4_vs_paper.tex",
        vs_paper_md="results/tables/table4_vs_paper.md",
    params: code=stage_fingerprint("table"), profile=config["profile"], alpha=config["stats"]["alpha"]
    log: "logs/tables/table4.log"
    benchmark: "results/benchmarks/table4.tsv"
    shell: f"medmtl table --predictions results/predictions/{EVAL_SET} --params {PARAMS} --stats {{input.stats}} --split {{input.split}} --alpha {{params.alpha}} --profile {{params.profile}} --out {{output.tex}} --vs-paper {{output.vs_paper}} > {{log}} 2>&1"


rule external_table:
    # Render the external-validation table (baseline vs proposed per external set, BI-RADS layout)
    input: "results/predictions/external"
    output:
        tex="results/tables/external.tex",
        html=report("results/tables/external.html", caption="../report/external.rst",
                    category="External validation"),
        provenance="results/tables/external.provenance.json",
        stats="results/stats/external.parquet",
        stats_md="results/stats/external.md",
    params: code=stage_fingerprint("external-table"), alpha=config["stats"]["alpha"], n_boot=config["stats"]["n_boot"]
    log: "logs/tables/external.log"
    benchmark: "results/benchmarks/external_table.tsv"
    shell: "medmtl external-table --predictions {input} --alpha {params.alpha} --n-boot {params.n_boot} --stats {output.stats} --out {output.tex} > {log} 2>&1"


rule ablation_table:
    # Render {wildcards.table}, an ablation table of the paper (medmtl.pipeline.ablation), with its tests
    input:
        predictions=lambda w: table_inputs(config, w.table),
        split=f"data/splits/{DATASET}.json",
    output:
        tex="results/tables/{table}.tex",
        html=report("results/tables/{table}.html", caption="../report/ablation.rst",
                    category="Ablations"),
        provenance="results/tables/{table}.provenance.json",
        stats="results/ablations/stats/{table}.parquet",
        stats_md="results/ablations/stats/{table}.md",
    params: code=stage_fingerprint("ablation-table"), alpha=config["stats"]["alpha"], n_boot=config["stats"]["n_boot"]
    wildcard_constraints: table="table8|table9"
    log: "logs/tables/{table}.log"
    benchmark: "results/benchmarks/ablation_table/{table}.tsv"
    shell: f"medmtl ablation-table --table {{wildcards.table}} --predictions results/predictions/{EVAL_SET} --ablations results/ablations/predictions/{EVAL_SET} --params {PARAMS} --split {{input.split}} --alpha {{params.alpha}} --n-boot {{params.n_boot}} --stats {{output.stats}} --out {{output.tex}} > {{log}} 2>&1"


rule task_table:
    # An experiment's multi-task table {wildcards.name} (params `task_tables`): a column group per task of its runs
    input:
        predictions=predictions(EVAL_SET),
        stats=f"results/stats/{EVAL_SET}.parquet",
        split=f"data/splits/{DATASET}.json",
    output:
        tex="results/tables/{name}.tex",
        html=report("results/tables/{name}.html", caption="../report/task_table.rst", category="Multi-task"),
        provenance="results/tables/{name}.provenance.json",
    params: code=stage_fingerprint("table"), profile=config["profile"], alpha=config["stats"]["alpha"]
    wildcard_constraints: name="|".join(config["task_tables"]) or "(?!)"
    log: "logs/tables/{name}.log"
    benchmark: "results/benchmarks/task_table/{name}.tsv"
    shell: f"medmtl table --predictions results/predictions/{EVAL_SET} --params {PARAMS} --stats {{input.stats}} --split {{input.split}} --alpha {{params.alpha}} --profile {{params.profile}} --out {{output.tex}} --label tab:{{wildcards.name}} > {{log}} 2>&1"
