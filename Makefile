# Quick start: `make demo` runs the recipe on synthesized demo data; `make test` runs the tests.
# Each target creates .venv (Python 3.11 preferred) and installs asctool into it first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_DIR ?= demo

.PHONY: demo test test-all bench install clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,birdnet]"
	touch $@

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash recipes/dcase2020_1a.sh --work-dir $(DEMO_DIR) --nj 2
	@sed -n '/<!-- demo seed spread: begin -->/,/<!-- demo seed spread: end -->/{/<!--/!p;}' docs/results.md

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
