# The two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# test files run on this many workers (pytest-xdist), each file whole on one worker
TEST_WORKERS ?= 2

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@# documents are rendered to PDF by WeasyPrint, which needs Pango from the system
	@{ ldconfig -p | grep -q 'libpangoft2-1.0.so' && ldconfig -p | grep -q 'libharfbuzz-subset.so'; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core >/dev/null \
	    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core >/dev/null; }; \
	  else echo "PDF documents need Pango: sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core"; fi; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: install into .venv and serve the demo on the embedded SQLite store
run: $(STAMP)
	$(BIN)/threadline serve --demo

## test: lint, type-check the domain, run the whole suite
test: $(STAMP) lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

## lint: ruff (lint + format check) and strict mypy on every package
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p threadline

## bench: the library-save calibration, the ingest, channel, trigger, web-app, deals, documents, soak, reports and audit benchmarks (JSON lines)
bench: $(STAMP)
	$(BIN)/python bench/library_save.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/channels.py
	$(BIN)/python bench/triggers.py
	$(BIN)/python bench/ui.py
	$(BIN)/python bench/deals.py
	$(BIN)/python bench/documents.py
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/audit.py

clean:
	rm -rf $(VENV) var build *.egg-info
