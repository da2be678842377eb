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

.PHONY: deps-system venv pglite lint fmt test test-fast bench bench-engine bench-engine-service bench-dbproc \
	bench-ws bench-api bench-mm up down status clean envtest-bin bench-operator helm-bin images kind-e2e \
	deps-containers base-image images-local cluster-bin e2e-cluster e2e-cluster-locked
.PHONY: deps-chromium frontend frontend-unit frontend-serve frontend-screenshots screenshots-live

# Debian packages: redis-server, PostgreSQL 15, a Python that can make a venv, a C compiler and
# Python's headers (the install compiles the engine, setup.py), and openssl
# (the operator tests make a service-account key with it). apt-get update
# runs once, and only when something is missing. The distro's own services are stopped after
# install so that ports 6379 and 5432 stay free for `make up`.
deps-system:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	test -x "$(PG_BIN)/postgres" || missing="$$missing postgresql-15"; \
	$(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	$(PYTHON) -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(sysconfig.get_path("include") + "/Python.h"))' \
	  || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "deps-system: installing$$missing"; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing || exit 1; \
	  $(SUDO) service redis-server stop >/dev/null 2>&1 || true; \
	  $(SUDO) service postgresql stop >/dev/null 2>&1 || true; \
	fi

# The images and the test cluster (make base-image, images, e2e-cluster) where no Docker engine
# exists: buildah builds (runc, not crun: crun refuses this sandbox's hybrid cgroups), debootstrap
# makes the Debian base, containerd with its CRI plugin and the CNI plugins run the Pods.
# Kept out of deps-system so that `make test-fast` does not install a container runtime.
CONTAINER_PACKAGES := buildah runc containerd containernetworking-plugins debootstrap
deps-containers:
	@missing=""; for package in $(CONTAINER_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q 'ok installed' \
	    || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps-containers: installing$$missing"; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing || exit 1; \
	fi

# The install compiles the engine's hot modules (setup.py, the list in ledger/compiled.py), so a
# change to one of them reinstalls: tests and benchmarks then run it compiled. (Without that,
# ledger.compiled would run every compiled module from its source, and warn.)
COMPILED_SOURCES := $(addsuffix .py,$(shell grep -oE '^    "(engine|ledger)\.[a-z_]+",' \
	ledger/compiled.py | tr -d '", ' | tr . /))

$(STAMP): pyproject.toml constraints.txt setup.py $(COMPILED_SOURCES) | deps-system
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

venv: $(STAMP)

# PGlite with TimescaleDB for the Timescale-mode tests (tools/pglite), pinned by its lock file.
PGLITE := tools/pglite
PGLITE_STAMP := $(PGLITE)/node_modules/.installed

$(PGLITE_STAMP): $(PGLITE)/package.json $(PGLITE)/package-lock.json
	npm ci --prefix $(PGLITE) --no-audit --no-fund
	touch $@

pglite: $(PGLITE_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Every test, then the platform on a single-node cluster of this machine (e2e-cluster).
test: lint deps-system deps-chromium envtest-bin helm-bin $(PGLITE_STAMP) frontend frontend-unit
	$(BIN)/pytest
	$(MAKE) e2e-cluster CLUSTER_RESULTS=.state/cluster.json

# The inner loop: lint, then the tests that need neither Go (the envtest control plane, helm)
# nor Chromium, i.e. all but the `kube` and `browser` markers (tests/conftest.py sets them).
# The system test serves the built trading page, so Node builds it first.
test-fast: lint deps-system $(PGLITE_STAMP) frontend
	$(BIN)/pytest -m "not kube and not browser"

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

# The README's first picture: the trading page of a running `make up`, market makers quoting.
screenshots-live: $(STAMP) deps-system deps-chromium frontend
	BIN=$(BIN) scripts/screenshots-live.sh


bench: bench-engine bench-engine-service bench-dbproc bench-ws bench-api bench-operator

bench-engine: $(STAMP)
	$(BIN)/python -m bench.engine

bench-engine-service: $(STAMP) deps-system
	$(BIN)/python -m bench.engine_service

bench-dbproc: $(STAMP) deps-system
	$(BIN)/python -m bench.dbproc

# --- envtest: a real kube-apiserver, etcd and controller-manager for the operator's tests -----
# Built from source through the Go module proxy (tools/envtest/*/go.mod pins the versions) into
# a cache that outlives this clone, with Go's module and build caches beside it, so the slow
# cold build (see README) happens once per machine. A no-op when both binaries exist.
# tests/harness/kube.py finds them at the same path, or where EXCHANGE_ENVTEST_BIN says.
# tools/envtest/versions names the build (and its cache directory); change it with go.mod.
ENVTEST_VERSIONS := $(shell cat tools/envtest/versions)
ENVTEST_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/exchange/envtest
ENVTEST_BIN := $(ENVTEST_CACHE)/$(ENVTEST_VERSIONS)/bin
ENVTEST_GO := env CGO_ENABLED=0 GOMODCACHE=$(ENVTEST_CACHE)/gomod \
	GOCACHE=$(ENVTEST_CACHE)/gocache GOTOOLCHAIN=local go

envtest-bin: $(ENVTEST_BIN)/kube-apiserver $(ENVTEST_BIN)/kube-controller-manager $(ENVTEST_BIN)/etcd

$(ENVTEST_BIN)/kube-apiserver $(ENVTEST_BIN)/kube-controller-manager:
	cd tools/envtest/apiserver && \
	$(ENVTEST_GO) build -trimpath -ldflags=-s -o $@ k8s.io/kubernetes/cmd/$(notdir $@)

$(ENVTEST_BIN)/etcd:
	cd tools/envtest/etcd && $(ENVTEST_GO) build -trimpath -ldflags=-s -o $@ go.etcd.io/etcd/server/v3

# The node of the test cluster (make e2e-cluster): kubelet, kube-scheduler, kube-proxy and
# kubectl from the same k8s.io/kubernetes release (tools/envtest/node/go.mod: the control plane's
# module plus what these commands import), and the Pod sandbox's pause from its C source in that
# module (no registry serves registry.k8s.io/pause here).
CLUSTER_BIN := $(addprefix $(ENVTEST_BIN)/,kubelet kube-scheduler kube-proxy kubectl pause)
K8S_VERSION := $(shell awk '$$1 == "require" && $$2 == "k8s.io/kubernetes" {print $$3}' tools/envtest/node/go.mod)

cluster-bin: envtest-bin $(CLUSTER_BIN)

$(ENVTEST_BIN)/kubelet $(ENVTEST_BIN)/kube-scheduler $(ENVTEST_BIN)/kube-proxy $(ENVTEST_BIN)/kubectl:
	cd tools/envtest/node && \
	$(ENVTEST_GO) build -trimpath -ldflags=-s -o $@ k8s.io/kubernetes/cmd/$(notdir $@)

$(ENVTEST_BIN)/pause: | deps-system
	cd tools/envtest/node && $(ENVTEST_GO) mod download k8s.io/kubernetes
	cc -Os -static -Wall -Werror -DVERSION=$(K8S_VERSION) -o $@ \
	  $(ENVTEST_CACHE)/gomod/k8s.io/kubernetes@$(K8S_VERSION)/build/pause/linux/pause.c

# The operator on that control plane: apply-to-conditions latency, 50 Markets at once.
bench-operator: $(STAMP) deps-system envtest-bin
	$(BIN)/python -m bench.operator

# --- helm: the chart's tests lint, render and install charts/exchange with it ----------------
# Built from its Go module like the control plane (tools/helm/go.mod pins the version and every
# dependency), into the same cache and with the same Go caches. tests/helm finds it at the same
# path, or where EXCHANGE_HELM_BIN says.
HELM_VERSION := $(shell awk '$$1 == "require" && $$2 == "helm.sh/helm/v3" {print $$3}' tools/helm/go.mod)
HELM := $(ENVTEST_CACHE)/helm-$(HELM_VERSION)/bin/helm

helm-bin: $(HELM)

$(HELM):
	cd tools/helm && $(ENVTEST_GO) build -trimpath -ldflags=-s -o $@ helm.sh/helm/v3/cmd/helm

# --- images: docker, podman or buildah, whichever is here (scripts/images.sh) --------------
# With no public registry reachable (these machines), build from the Debian bases that
# `make base-image` makes with debootstrap: `make images-local`. IMAGES_REPORT=file.json records
# each image's size and build time.
IMAGE_REPOSITORY ?= exchange
IMAGE_TAG ?= $(shell awk '$$1 == "appVersion:" {gsub(/"/, "", $$2); print $$2}' charts/exchange/Chart.yaml)
IMAGE_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/exchange/images
LOCAL_BASE_IMAGE := localhost/exchange-base/bookworm:12
LOCAL_BUILD_IMAGE := localhost/exchange-base/bookworm-build:12
LOCAL_NGINX_IMAGE := localhost/exchange-base/nginx:12
# The local bases, and the trading page's export as `make frontend` builds it with this
# machine's Node (no Node image can be pulled here): images/README.md.
LOCAL_IMAGES := BASE_IMAGE=$(LOCAL_BASE_IMAGE) BUILD_IMAGE=$(LOCAL_BUILD_IMAGE) \
	NGINX_IMAGE=$(LOCAL_NGINX_IMAGE) FRONTEND_OUT=frontend/out

images:
	IMAGE_REPOSITORY=$(IMAGE_REPOSITORY) IMAGE_TAG=$(IMAGE_TAG) BUILD_IMAGE=$(BUILD_IMAGE) \
	  BASE_IMAGE=$(BASE_IMAGE) NODE_IMAGE=$(NODE_IMAGE) NGINX_IMAGE=$(NGINX_IMAGE) \
	  FRONTEND_OUT=$(FRONTEND_OUT) PAUSE_BINARY=$(PAUSE_BINARY) PAUSE_TAG=$(K8S_VERSION) \
	  IMAGES_REPORT=$(IMAGES_REPORT) scripts/images.sh

base-image: deps-containers
	BUILDER=$$(command -v docker >/dev/null && docker info >/dev/null 2>&1 && echo docker || \
	  { command -v podman >/dev/null && echo podman || echo buildah; }) \
	  IMAGE_CACHE=$(IMAGE_CACHE) BASE_IMAGE=$(LOCAL_BASE_IMAGE) BUILD_IMAGE=$(LOCAL_BUILD_IMAGE) \
	  NGINX_IMAGE=$(LOCAL_NGINX_IMAGE) scripts/base-image.sh

images-local: base-image frontend
	$(MAKE) images $(LOCAL_IMAGES)

# The platform on a single-node cluster of this machine, end to end (tests/cluster, the
# substitutes in docs/cluster.md): the images from the Debian base, the node from the pinned
# module, helm install, the trading page, a Market trading, its engine Pod killed and back, a
# market maker quoting, uninstall. Writes CLUSTER_RESULTS (`make test`: an untracked file). One
# run at a time on a machine: the node's bridge, address, DNS port, iptables chains and
# containerd root, and the images' names, are the machine's, so a second run waits for the lock.
CLUSTER_RESULTS ?= bench/results/cluster.json
CLUSTER_LOCK := $(dir $(IMAGE_CACHE))cluster.lock
e2e-cluster: deps-system deps-containers $(STAMP) cluster-bin helm-bin base-image frontend
	@mkdir -p .state $(dir $(CLUSTER_LOCK))
	flock $(CLUSTER_LOCK) $(MAKE) --no-print-directory e2e-cluster-locked

e2e-cluster-locked:
	$(MAKE) images $(LOCAL_IMAGES) \
	  PAUSE_BINARY=$(ENVTEST_BIN)/pause IMAGES_REPORT=$(CURDIR)/.state/images.json
	EXCHANGE_E2E_CLUSTER=1 EXCHANGE_IMAGES_REPORT=$(CURDIR)/.state/images.json \
	  EXCHANGE_CLUSTER_RESULTS=$(abspath $(CLUSTER_RESULTS)) \
	  EXCHANGE_IMAGE_TAG=$(IMAGE_TAG) EXCHANGE_PAUSE_TAG=$(K8S_VERSION) \
	  $(BIN)/pytest tests/cluster -p no:cacheprovider

# The chart on a kind cluster, end to end (scripts/kind-e2e.sh); needs Docker, kind and kubectl.
kind-e2e: images helm-bin $(STAMP)
	HELM=$(HELM) IMAGE_TAG=$(IMAGE_TAG) scripts/kind-e2e.sh

# WebSocket fan-out and the order path over HTTP, each against a stack of its own (bench-ws
# builds its Go load client, bench/wsload, with `go build`: standard library only).
bench-ws: $(STAMP) deps-system
	$(BIN)/python -m bench.ws
bench-api: $(STAMP) deps-system
	$(BIN)/python -m bench.api
# The market maker's book under the taker simulator, 10 minutes (bench/mm.py): not in `bench`.
bench-mm: $(STAMP) deps-system
	$(BIN)/python -m bench.mm

# The whole exchange on this machine (launcher/cli.py: `exchange up|down|status`): Redis and
# PostgreSQL as processes with data under .state/, every market of examples/markets.
up: deps-system $(STAMP) frontend
	$(BIN)/exchange up

down: $(STAMP)
	$(BIN)/exchange down

status: $(STAMP)
	$(BIN)/exchange status

# Removes the virtualenv and caches; keeps .state/ (the local stack's data).
clean:
	rm -rf $(VENV) $(PGLITE)/node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache build *.egg-info
	rm -f *__mypyc.*.so engine/*.so ledger/*.so ledger/compiled.json
	find . -path ./.state -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
