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

.PHONY: deps-system deps-chromium venv lint fmt test up down status clean
.PHONY: bench bench-engine bench-engine-service bench-api bench-ws
.PHONY: frontend frontend-unit frontend-serve frontend-screenshots

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

test: lint deps-system deps-chromium frontend frontend-unit
	$(BIN)/pytest

# ---- frontend/: Next.js static export (Node 20 from the machine, packages from package-lock.json)

FRONTEND_DEPS := frontend/node_modules/.installed
FRONTEND_STAMP := frontend/out/.built
FRONTEND_SOURCES := $(shell find frontend/src -type f 2>/dev/null) \
	$(addprefix frontend/,package.json package-lock.json next.config.mjs postcss.config.mjs tsconfig.json)

# Debian's Chromium for the browser tests: playwright-core drives it, since Playwright's own
# browser download cannot reach its servers from here.
deps-chromium:
	@test -x /usr/bin/chromium || { \
	  echo "deps-chromium: installing chromium"; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

$(FRONTEND_DEPS): frontend/package.json frontend/package-lock.json
	@command -v npm >/dev/null || { echo "frontend: Node 20 and npm are needed"; exit 1; }
	# npm install following the lock, not npm ci: the registry reachable here serves only this
	# platform's native packages (Next's swc, Tailwind's oxide), so the lock cannot list the
	# others and npm ci would refuse it. --no-save keeps package-lock.json as committed.
	cd frontend && npm install --no-save --no-audit --no-fund --loglevel=error
	touch $@

# Rebuilt only when a source, the packages or the build configuration changed. Next.js would
# try to add the other platforms' swc packages to the lock (see above): told not to.
$(FRONTEND_STAMP): $(FRONTEND_DEPS) $(FRONTEND_SOURCES)
	cd frontend && NEXT_TELEMETRY_DISABLED=1 NEXT_IGNORE_INCORRECT_LOCKFILE=1 npx next build
	touch $@

frontend: $(FRONTEND_STAMP)

# Type check and unit tests (order book diffs, decimal strings, order merging).
frontend-unit: $(FRONTEND_DEPS)
	cd frontend && npx tsc --noEmit && npx vitest run

# The trading page on http://127.0.0.1:3000, one origin in front of the api (127.0.0.1:8000) and
# ws (127.0.0.1:8090) as they run by default; FRONTEND_PORT, API_URL and WS_URL change that.
FRONTEND_PORT ?= 3000
API_URL ?= http://127.0.0.1:8000
WS_URL ?= http://127.0.0.1:8090
frontend-serve: frontend
	node frontend/serve.mjs --port $(FRONTEND_PORT) --api $(API_URL) --ws $(WS_URL)

# Runs the browser test and keeps its screenshots for the README.
frontend-screenshots: $(STAMP) deps-system deps-chromium frontend
	EXCHANGE_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/frontend -q

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
