# The two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: install into .venv and serve the demo on the embedded SQLite store
run: $(STAMP)
	$(BIN)/threadline serve --demo

## test: lint, type-check the domain, run the whole suite
test: $(STAMP) lint
	$(BIN)/pytest

## lint: ruff (lint + format check) and strict mypy on every package
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p threadline

## bench: the library-save calibration, the ingest, channel, trigger, web-app, deals and soak benchmarks (JSON lines)
bench: $(STAMP)
	$(BIN)/python bench/library_save.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/channels.py
	$(BIN)/python bench/triggers.py
	$(BIN)/python bench/ui.py
	$(BIN)/python bench/deals.py
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) var build *.egg-info
