# The two commands: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make demo` installs only what running needs; `make test` adds the test and bench tools.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.PHONY: demo test check lint typecheck pytest bench services browser clean

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $(STAMP)

demo: $(RUN_STAMP)
	$(BIN)/sheetbatch demo

test: $(STAMP) services browser lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/ruff check src tests bench examples
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# Two processes or more (one per core): the suite waits on subprocesses and servers as much as it
# computes. --dist loadfile keeps a module's fixtures in one process.
PYTEST_WORKERS ?= auto

pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

services:
	bash scripts/ensure-services.sh

browser:
	bash scripts/ensure-browser.sh

bench: $(STAMP) services
	bash scripts/bench.sh

clean:
	rm -rf $(VENV) .sheetbatch .pytest_cache .mypy_cache .ruff_cache test-artifacts
