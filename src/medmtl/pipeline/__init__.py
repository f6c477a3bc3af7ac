"""The pipeline's definitions, read before any job runs: params.yaml loading and checks, the
Hydra config groups and their composition, the ablation runs (paper Tables 8, 9) and the
external validation sets. The Snakefile imports `params` and `ablation`, so nothing here
imports torch, pandas or Hydra at module level (`config` imports Hydra: the train stage only)."""
