# auth-service: the two commands of the quick start are `make run` and `make test`.
# Everything a fresh clone needs is installed from here into .venv.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help run test lint typecheck unit install install-dev clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "auth-service needs Python 3.11 or newer (set PYTHON=python3.x)")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet --editable .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet --editable '.[dev]'
	@touch $@ $(VENV)/.run-installed

install: $(VENV)/.run-installed ## install the service into .venv
install-dev: $(VENV)/.dev-installed ## install the service and the dev tools into .venv

run: install ## migrate the embedded SQLite database and serve on http://127.0.0.1:8000
	$(BIN)/auth-service migrate
	$(BIN)/auth-service serve

lint: install-dev ## ruff, and the layers of docs/architecture.md (import-linter)
	$(BIN)/ruff check src tests bench scripts examples
	$(BIN)/ruff format --check src tests bench scripts examples
	$(BIN)/lint-imports

typecheck: install-dev ## mypy, strict on src/
	$(BIN)/mypy

unit: install-dev ## the test suite only: two halves at once (scripts/test-suite.sh), or PYTEST_ARGS
ifeq ($(strip $(PYTEST_ARGS)),)
	PYTHON=$(BIN)/python bash scripts/test-suite.sh
else
	$(BIN)/python -m pytest $(PYTEST_ARGS)
endif

test: lint typecheck unit ## lint, type check and every test

clean: ## remove the virtualenv and caches (keeps ./var)
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# Issue-specific targets (deployment, monitoring, benchmarks, ...) live in mk/*.mk.
-include mk/*.mk
