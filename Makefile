# Every target installs what it needs: system packages (deps-system) and the virtualenv (.venv).

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_VERSION := 26.3
PG_BIN ?= $(or $(EXCHANGE_PG_BIN),/usr/lib/postgresql/15/bin)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps-system venv lint fmt test bench bench-engine bench-engine-service bench-api bench-ws up down status clean

# Debian packages: redis-server, PostgreSQL 15 and a Python that can make a venv. apt-get update
# runs once, and only when something is missing. The distro's own services are stopped after
# install so that ports 6379 and 5432 stay free for `make up`.
deps-system:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	test -x "$(PG_BIN)/postgres" || missing="$$missing postgresql-15"; \
	$(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "deps-system: installing$$missing"; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing || exit 1; \
	  $(SUDO) service redis-server stop >/dev/null 2>&1 || true; \
	  $(SUDO) service postgresql stop >/dev/null 2>&1 || true; \
	fi

$(STAMP): pyproject.toml constraints.txt | deps-system
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint deps-system
	$(BIN)/pytest

bench: bench-engine bench-engine-service bench-api bench-ws

bench-engine: $(STAMP)
	$(BIN)/python -m bench.engine

bench-engine-service: $(STAMP) deps-system
	$(BIN)/python -m bench.engine_service

bench-api: $(STAMP) deps-system
	$(BIN)/python -m bench.api

bench-ws: $(STAMP) deps-system
	$(BIN)/python -m bench.ws

# The local stack (scripts/localstack.py): Redis and PostgreSQL with data under .state/.
up: deps-system $(STAMP)
	$(PYTHON) scripts/localstack.py up

down:
	$(PYTHON) scripts/localstack.py down

status:
	$(PYTHON) scripts/localstack.py status

# Removes the virtualenv and caches; keeps .state/ (the local stack's data).
clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache build *.egg-info
	find . -path ./.state -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
