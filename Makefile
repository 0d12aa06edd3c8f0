# The README's two commands: `make serve` and `make test`. Both create or reuse .venv,
# and both are idempotent: a second run reuses the venv, the data and the artifacts.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test install web test-web data train db encoder schema settings-doc lint bench-train bench-train-25m bench-engine bench-serve bench-search bench-embed clean-artifacts docker-check docker-image-check docker-check-clean

serve: install web data train db encoder
	$(BIN)/recsys-gql serve

test: install web lint test-web
	$(BIN)/pytest

GRAPHIQL := recsys_gql/graphiql
GRAPHIQL_STAMP := $(GRAPHIQL)/node_modules/.installed

install: $(STAMP) $(GRAPHIQL_STAMP)

# GraphiQL's JavaScript, served by the app itself (never a CDN); versions pinned by the lockfile.
$(GRAPHIQL_STAMP): $(GRAPHIQL)/package-lock.json
	npm ci --prefix $(GRAPHIQL)
	@touch $(GRAPHIQL_STAMP)

# The people's page (recsys_gql/web): Node packages from the lockfile, then codegen + tsc + Vite
# into recsys_gql/web/dist, rebuilt when a source, the lockfile or schema.graphql changes.
WEB := recsys_gql/web
WEB_STAMP := $(WEB)/node_modules/.installed
WEB_DIST := $(WEB)/dist/index.html
WEB_SOURCES := $(shell find $(WEB)/src -type f -not -path '$(WEB)/src/gql/*' 2>/dev/null) \
	$(wildcard $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json $(WEB)/codegen.json) \
	schema.graphql

web: $(WEB_DIST)

$(WEB_STAMP): $(WEB)/package-lock.json
	npm ci --prefix $(WEB)
	@touch $(WEB_STAMP)

$(WEB_DIST): $(WEB_STAMP) $(WEB_SOURCES)
	npm run build --prefix $(WEB)
	@touch $(WEB_DIST)

test-web: $(WEB_STAMP)
	npm test --prefix $(WEB)

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

db: install
	$(BIN)/recsys-gql db init

# The ONNX query encoder searches run on, exported once per machine before serving: a server
# process that has to export it holds the GIL for seconds (docs/docker.md, "Found at run time").
encoder: install
	$(BIN)/recsys-gql encoder export

schema: install
	$(BIN)/recsys-gql export-schema

# docs/configuration.md from recsys_gql/settings.py (a test fails when it drifts).
settings-doc: install
	$(BIN)/python -m recsys_gql.settings_doc

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-train: install
	$(BIN)/python -m bench.train

# Training at scale on the synthetic 25m preset (about 20-30 minutes on 2 shared cores).
bench-train-25m: install
	$(BIN)/python -m bench.scale_train

bench-engine: install train
	$(BIN)/python -m bench.engine

bench-serve: install train
	$(BIN)/python -m bench.serve --repeat 3

# Query encoders on the labelled search set (bench/search_set.jsonl): recall@10, MRR, speed.
bench-search: install data train
	$(BIN)/python -m bench.search_quality

bench-embed: install data
	$(BIN)/python -m bench.embed

# The image built and the compose stack run for real (docs/docker.md). Needs a Docker engine
# (started here, and stopped after, when dockerd is installed but not running), debootstrap for
# the stand-in base images, and RECSYS_GQL_DATA_SOURCE (a local MovieLens copy the containers
# read; nothing is downloaded). Removes the containers, volumes and image it created; keeps
# the stand-in bases (docker-check-clean removes them). Writes bench/results/docker_check.json.
docker-check: install
	PYTHONPATH=docker $(BIN)/python -m dockercheck

# The image alone: bases, build, and the image's own checks, without the compose stack.
docker-image-check: install
	PYTHONPATH=docker $(BIN)/python -m dockercheck --image-only

docker-check-clean: install
	PYTHONPATH=docker $(BIN)/python -m dockercheck --remove-bases

clean-artifacts:
	rm -rf artifacts/2* artifacts/current
