# Two commands do all set-up on a fresh Debian machine with Python 3.11:
#   make run    builds .venv if needed, then runs the workflow on the embedded default
#   make test   builds .venv if needed, then runs the test suite
#   make paper  builds .venv if needed, then the paper's tables and figures (results/paper/; hours on a CPU)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CORES ?= 2

.PHONY: run test paper lint clean-results

$(INSTALLED): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "aslseg needs Python >= 3.11 (Snakemake 9)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-cache-dir -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-cache-dir --no-deps --no-build-isolation -e .
	touch $@

run: $(INSTALLED)
	$(BIN)/snakemake --cores $(CORES)
	@$(BIN)/python -c 'import pandas as pd; t = pd.read_csv("results/summary.csv"); \
	print("\nresults/summary.csv (test set, means over test volumes):"); \
	print(t[["experiment", "round", "seed", "dice", "jaccard", "hd95_mm", "asd_mm", "lesion_sensitivity", \
	"lesion_precision", "false_lesions", "fp_volume_ml_tumor_free", "dice_predicted_liver", "liver_dice"]].to_string(index=False))'

test: $(INSTALLED)
	$(BIN)/python -m pytest

paper: $(INSTALLED)
	$(BIN)/snakemake --cores $(CORES) paper

lint: $(INSTALLED)
	$(BIN)/snakemake --lint

clean-results:
	rm -rf results .snakemake
