# `make test` works on a fresh clone: it creates .venv, installs omnisync with its dev extras
# and runs the whole suite. CI runs exactly this through .ci/run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast lint typecheck format demo bench bench-watch clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# Everything but the real Medusa/Vendure servers, for a quick loop while working.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not real_shop"

lint: $(STAMP)
	$(BIN)/ruff check omnisync connectors tests bench
	$(BIN)/ruff format --check omnisync connectors tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format omnisync connectors tests bench
	$(BIN)/ruff check --fix omnisync connectors tests bench

# The benchmark suite (bench/run.py): about 6 minutes; ratios against a DuckDB baseline.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench

# The watch benchmark (bench/watch.py): event → write latency of `omnisync watch` against three
# WooCommerce emulators, ratios against an `omnisync sync` of the same change; about 4 minutes.
bench-watch: $(STAMP)
	$(BIN)/python -m bench.watch

demo: $(STAMP)
	$(BIN)/omnisync check -c config.example.yaml

clean:
	rm -rf $(VENV) .omnisync .pytest_cache .mypy_cache .ruff_cache
