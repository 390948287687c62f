# monitor_pipeline — the two commands of the README are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.local/dagster_home
# dg compares the active virtual environment with the project's .venv
export VIRTUAL_ENV := $(CURDIR)/$(VENV)

.PHONY: install demo test bench dev sandbox validate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet 'dagster-dg-cli==1.13.*'   # dg check defs, dg dev (see pyproject.toml)
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

## Run the customer sync (and the export) against the embedded default: local folder + App4Sales sandbox.
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/monitor-pipeline demo

## The whole test suite (what .ci/run calls).
test: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dg check defs
	$(BIN)/pytest

## Benchmarks: normalization ratios, the end-to-end sync, the sync over a slow throttling App4Sales (WAN) and the
## `dagster job execute` CLI on a persistent instance (minutes; not part of `make test`).
bench: install
	$(BIN)/python -m benchmarks.bench_normalize
	$(BIN)/python -m benchmarks.bench_sync
	$(BIN)/python -m benchmarks.bench_wan
	$(BIN)/python -m benchmarks.bench_cli
	$(BIN)/python -m benchmarks.bench_export_latency

## The Dagster UI with the embedded default running (sandbox + local folder).
dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/monitor-pipeline dev

## Just the App4Sales sandbox, in the foreground.
sandbox: install
	$(BIN)/monitor-pipeline sandbox serve

validate: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dg check defs

clean:
	rm -rf .local bench_data
