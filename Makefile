# The few commands people type. Each bootstraps .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench check chat clean lock

$(STAMP): pyproject.toml requirements-dev.txt requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Parley needs Python 3.11 or newer (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot run

chat: $(STAMP)
	$(BIN)/python -m bot chat

check: $(STAMP)
	$(BIN)/python -m bot check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m tests.layers  # the import layers (tests/layers.py)

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

# Re-pin requirements*.txt from pyproject.toml (run after changing dependencies).
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/python -m pip install --quiet .
	.lockvenv/bin/python -m pip freeze --exclude parley > requirements.txt
	.lockvenv/bin/python -m pip install --quiet '.[dev]'
	(echo '-r requirements.txt'; .lockvenv/bin/python -m pip freeze --exclude parley | grep -vxFf requirements.txt) > requirements-dev.txt
	rm -rf .lockvenv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
