# Feather. `make help` lists the targets; each installs what it needs first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 3000
export PORT

# Re-install when the pinned dependencies or the C extension change.
DEPS_STAMP := $(VENV)/.deps-$(shell cat setup.cfg setup.py feather_core/_resample.c package-lock.json 2>/dev/null | md5sum | cut -c1-12)

.DEFAULT_GOAL := help
.PHONY: help run test lint bench corpus-check fuzz loadtest audit system-deps deps node-deps browser-deps clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

system-deps: ## Install the Debian packages Feather needs when missing (libcairo2 for SVG; a C compiler and Python's headers for the resize extension)
	@missing=""; \
	ldconfig -p 2>/dev/null | grep -q 'libcairo.so.2' || missing="$$missing libcairo2"; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc"; \
	$(PYTHON) -c "import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
		|| missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
		echo "Installing$$missing"; \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

$(DEPS_STAMP): $(PY) setup.cfg setup.py feather_core/_resample.c
	$(PY) -m pip install -q -e '.[test,dev]'
	rm -f $(VENV)/.deps-* && touch $@

# The upload form's browser-side packages (onnxruntime-web), exactly as package-lock.json says.
NODE_STAMP := node_modules/.feather-$(shell cat package-lock.json 2>/dev/null | md5sum | cut -c1-12)

$(NODE_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -f node_modules/.feather-* && touch $@

node-deps: $(NODE_STAMP) ## Install the form's npm packages (onnxruntime-web) from package-lock.json

browser-deps: ## Install Debian's chromium (the form's browser tests drive it) when missing
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "Installing chromium"; \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium >/dev/null; \
	fi

deps: system-deps $(DEPS_STAMP) $(NODE_STAMP) ## Create the virtualenv and install pinned dependencies

run: deps ## Start the service on http://localhost:$(PORT) (several gunicorn workers)
	$(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

test: deps browser-deps ## Run the whole test suite
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: deps ## ruff and mypy --strict on feather_core
	$(VENV)/bin/ruff check app feather_core tests
	$(VENV)/bin/mypy

PEER := bench/sharp-peer
$(PEER)/node_modules/.package-lock.json: $(PEER)/package-lock.json
	cd $(PEER) && npm ci --no-audit --no-fund

bench: deps $(PEER)/node_modules/.package-lock.json ## Speed bench beside a sharp peer (BENCH_IMAGES=corpus dir, JPEG dir or list file; default: ../shared/corpus if present, else generated photos)
	$(PY) -m bench $(if $(BENCH_IMAGES),--images "$(BENCH_IMAGES)") $(BENCH_ARGS)

CORPUS ?= ../shared/corpus
corpus-check: deps ## Send every file of CORPUS (pillow-tests/, sharp-fixtures/; CORPUS_ARGS=--subdirs for all) to a real gunicorn, fail on 5xx; then compare decodes with libvips/pillow-heif and print the mismatches
	$(PY) tools/corpus_check.py $(CORPUS) $(CORPUS_ARGS)

FUZZ_SECONDS ?= 120
fuzz: deps ## Fuzz decode -> pipeline -> encode with atheris for FUZZ_SECONDS (crashes in fuzz/crashes/)
	$(PY) -m pip install -q -e '.[fuzz]'
	mkdir -p fuzz/corpus fuzz/crashes
	$(PY) fuzz/fuzz_compress.py fuzz/corpus -max_total_time=$(FUZZ_SECONDS) \
		-rss_limit_mb=2048 -timeout=30 -artifact_prefix=fuzz/crashes/

loadtest: deps ## Bounded load test on 127.0.0.1: 2 workers, photos + 10% hostile (LOAD_IMAGES=dir)
	$(PY) tools/loadtest.py $(if $(LOAD_IMAGES),--images $(LOAD_IMAGES)) $(LOAD_ARGS)

audit: deps ## pip-audit the pinned dependencies (non-fatal when the advisory service is unreachable)
	$(PY) tools/audit.py

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) var .pytest_cache
