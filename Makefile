# Set-up is part of every target: a fresh machine needs only python3.11 and make.
VENV   ?= .venv
BIN    := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: setup demo report test test-slurm gpu-check lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock.txt
	python3.11 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock.txt -e '.[dev]'
	touch $@

demo: setup  ## the main job on the embedded synthetic default (profile demo)
	snakemake --cores 8 results/tables/table4.tex

report: setup  ## every table and figure, then the self-contained HTML report (+ PDF of the tables)
	snakemake --cores 8 all
	snakemake --report results/report.html
	if command -v pdflatex >/dev/null; then medmtl pdf results/tables/*.tex --out results/tables/tables.pdf; fi

test: setup  ## the whole test suite, as CI runs it (two workers, a test file each at a time)
	ruff check src tests benchmarks
	pytest -n 2 --dist loadfile --durations=15

test-slurm: setup  ## the tiny DAG through a one-node SLURM cluster (root; slurm-wlm, munge); part of `make test`
	pytest tests/test_slurm.py

gpu-check: setup  ## on a GPU machine, first: every model on cuda, then one paper-profile epoch (benchmarks/gpu_check.py)
	python benchmarks/gpu_check.py

bench: setup  ## speed figures (benchmarks/*.py print them)
	python benchmarks/bench_input_pipeline.py
	python benchmarks/bench_models.py
	python benchmarks/bench_data.py
	python benchmarks/bench_stats.py --fake

clean:  ## remove pipeline outputs (not the venv)
	rm -rf data/raw/* data/processed/* data/splits/* results/* logs .snakemake mlflow.db mlruns
