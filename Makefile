# The README's two commands: `make serve` and `make test`. Both create or reuse .venv,
# and both are idempotent: a second run reuses the venv, the data and the artifacts.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test install data train lint bench-train clean-artifacts

serve: install data train
	@echo "Artifacts are ready in artifacts/current."
	@echo "The GraphQL server is not part of this build yet: it arrives with the API issue."

test: install lint
	$(BIN)/pytest

install: $(STAMP)

# torch is installed first and pinned so pip takes the CPU wheel, never a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

data: install
	$(BIN)/recsys-gql data fetch

train: install
	$(BIN)/recsys-gql train --if-stale

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-train: install
	$(BIN)/python -m bench.train

clean-artifacts:
	rm -rf artifacts/2* artifacts/current
