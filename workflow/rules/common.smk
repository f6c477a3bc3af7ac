# Config validation and the few path helpers the rules share; logic lives in the medmtl package.
import os
from pathlib import Path

from medmtl.pipeline.ablation import table_inputs
from medmtl.pipeline.params import check_no_overrides, external_inputs, params_argument, validate_params
from medmtl.pipeline.stage_code import stage_fingerprint  # rule param `code`: reruns on a code change

# params.yaml, then any --configfile (an experiment): the stages read them merged, as here.
PARAMS = params_argument(workflow.overwrite_configfiles, Path.cwd())
check_no_overrides(config, PARAMS.split())
validate_params(config, PARAMS.replace(" ", " + "))

wildcard_constraints:
    dataset="[a-z0-9]+",
    eval_set="[a-z0-9_]+",
    model="[a-z0-9_]+",
    ablation="[a-z0-9_]+",
    seed="[0-9]+",

DATASET = config["dataset"]
EVAL_SET = f"{DATASET}_test"


def predictions(eval_set):
    return expand(
        f"results/predictions/{eval_set}/{{model}}/seed{{seed}}.parquet",
        model=config["models"], seed=config["seeds"],
    )
