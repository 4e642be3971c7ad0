# `make serve` runs the webhook locally; `make test` sets up and runs every check.
VENV := .venv
HOST ?= 127.0.0.1
PORT ?= 8080
BIN := $(VENV)/bin
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
XDS_VENV := .venv-xds

.PHONY: setup serve test lint bench system-packages test-kernel

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --editable .
	touch $@

# checkov has its own environment: its dependencies conflict with python-hcl2's.
$(CHECKOV_VENV)/.installed: Makefile
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $@

# The tests' xDS control plane has its own environment: see requirements-xds.txt.
$(XDS_VENV)/.installed: requirements-xds.txt
	python3 -m venv $(XDS_VENV)
	$(XDS_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-xds.txt
	touch $@

system-packages:
	scripts/install-system-packages

# A kernel for the tests that boot a virtual machine (not installed on this machine).
test-kernel:
	scripts/fetch-test-kernel .cache/test-kernel

# The deployed function's app and server; prints the URL once it listens (PORT=0: any free port).
serve: setup
	$(BIN)/injector serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup system-packages test-kernel $(CHECKOV_VENV)/.installed $(XDS_VENV)/.installed lint
	$(BIN)/pytest

bench: setup system-packages
	$(BIN)/python -m benchmarks
