# Config validation and the few path helpers the rules share; logic lives in the medmtl package.
from medmtl.workflow import validate_params

validate_params(config)

wildcard_constraints:
    dataset="[a-z0-9]+",
    model="[a-z0-9_]+",
    seed="[0-9]+",

DATASET = config["dataset"]
EVAL_SET = f"{DATASET}_test"


def run_dir(w):
    return f"results/runs/{w.dataset}/{w.model}/seed{w.seed}"


def predictions(eval_set):
    return expand(
        f"results/predictions/{eval_set}/{{model}}/seed{{seed}}.parquet",
        model=config["models"], seed=config["seeds"],
    )
