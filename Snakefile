# medmtl: download -> preprocess -> splits -> train (models x seeds) -> evaluate -> stats -> tables,
# external validation: train -> external (available external sets) -> external_table, and the
# ablations (paper Tables 8, 9): train_ablation -> evaluate_ablation -> ablation_table.
# Main job: snakemake --cores 8 results/tables/table4.tex   (knobs: params.yaml)
# An experiment: snakemake --configfile workflow/experiments/breast.yaml --cores 8 results/tables/external.tex
#   (Res-MTNet, MTI-Net: --configfile workflow/experiments/resmtnet.yaml ... results/tables/resmtnet.tex)
# Every rule calls one `medmtl` subcommand; `dvc.yaml` runs the same commands (tests prove it).

configfile: "params.yaml"
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/report.smk"


rule all:
    # Every table of the paper and the report's figures; an experiment with `task_tables`
    # (Res-MTNet, MTI-Net) builds those instead
    default_target: True
    input:
        [f"results/tables/{name}.tex" for name in config["task_tables"]] or [
            "results/tables/table4.tex",
            "results/tables/external.tex",
            "results/tables/table8.tex",
            "results/tables/table9.tex",
            "results/figures/provenance.html",
            "results/figures/run_curves.tsv",
        ],
