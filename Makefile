# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# `make run` installs only what a run uses; `make test` adds every extra (text, llm, postgres, flows, serve, cluster,
# openvino), the test tools and the model servers' environments (only the serving tests start those servers).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# KServe's model server, for the tests of the `http` teacher, lives in its own environment.
SERVER_VENV ?= .venv-server
SERVER_STAMP := $(SERVER_VENV)/.installed
# MLServer 1.7, for the served-parity test of the student's bundle: its pins differ from KServe's too.
MLSERVER_VENV ?= .venv-mlserver
MLSERVER_STAMP := $(MLSERVER_VENV)/.installed
# A CUDA GPU is present when nvidia-smi lists one: then CUDA builds of torch and ONNX Runtime, else CPU ones.
HAVE_CUDA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
ORT_EXTRA := $(if $(HAVE_CUDA),gpu,cpu)
ORT_OTHER := $(if $(HAVE_CUDA),onnxruntime,onnxruntime-gpu)

# Nothing phones home.
export GX_ANALYTICS_ENABLED := False
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export TQDM_MININTERVAL := 2
# MkDocs Material's banner about MkDocs 2.0, printed on every build: off.
export NO_MKDOCS_2_WARNING := 1

.PHONY: install install-test browser run test lint docs exps plots bench clean-outputs

install: $(STAMP)

install-test: $(STAMP) $(TEST_STAMP) $(SERVER_STAMP) $(MLSERVER_STAMP) browser

# Chromium, for the test that opens the offline reports in a real headless browser (tests/test_reports.py):
# Debian's package where none is installed and apt-get may install it (root); otherwise one line, and that
# test skips saying why. Nothing else depends on it.
BROWSER_FOUND = command -v chromium || command -v chromium-browser || command -v google-chrome
APT_CHROMIUM = DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
browser:
	@if ($(BROWSER_FOUND)) >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  ($(APT_CHROMIUM) || (apt-get update -q && $(APT_CHROMIUM))) >/dev/null 2>&1 \
	    || echo "make browser: apt-get could not install chromium: the headless-browser test will skip"; \
	else echo "make browser: no chromium, and installing it needs root and apt-get: the headless-browser test will skip"; fi

# torch: where CUDA is absent, install the CPU build 2.13.0 first (pip takes it from this machine's
# disk); the project's range admits it, so pip does not then pull a multi-GB CUDA build.
# ONNX Runtime: one package of the two, never both (the other, if an older set-up left it, is removed).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if [ -z "$(HAVE_CUDA)" ]; then $(PY) -m pip install -q torch==2.13.0; fi
	$(PY) -m pip uninstall -q -y $(ORT_OTHER) 2>/dev/null || true
	$(PY) -m pip install -q -e '.[$(ORT_EXTRA)]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[$(ORT_EXTRA),text,llm,postgres,flows,serve,cluster,openvino,dev]'
	$(VENV)/bin/opt_in_out --opt_out >/dev/null  # OpenVINO's telemetry consent: no
	touch $(TEST_STAMP)

$(SERVER_STAMP): serving/requirements.txt
	test -x $(SERVER_VENV)/bin/python || $(PYTHON) -m venv $(SERVER_VENV)
	$(SERVER_VENV)/bin/python -m pip install -q --upgrade pip
	$(SERVER_VENV)/bin/python -m pip install -q -r serving/requirements.txt
	touch $(SERVER_STAMP)

$(MLSERVER_STAMP): serving/requirements-mlserver.txt
	test -x $(MLSERVER_VENV)/bin/python || $(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/python -m pip install -q --upgrade pip
	$(MLSERVER_VENV)/bin/python -m pip install -q -r serving/requirements-mlserver.txt
	touch $(MLSERVER_STAMP)

run: install
	source $(VENV)/bin/activate && dvc repro && python -m ckd.summary metrics/validate.json

# The suite runs on every core (pytest-xdist; `make test PYTEST_WORKERS=0` runs it in one process): most of its
# time is spent waiting on the DVC, Prefect, server and stage processes the tests start. `worksteal`: a worker
# that runs out of tests takes some from another, so no worker idles while the minute-long end-to-end tests run.
PYTEST_WORKERS ?= auto
test: install-test lint docs
	source $(VENV)/bin/activate && python -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal

# Style: lint, formatting (checked, never rewritten here) and types; settings in pyproject.toml.
lint: install-test
	source $(VENV)/bin/activate && ruff check . && ruff format --check . && mypy

# The documentation site (mkdocs.yml) in site/: a broken link, a missing included result file or any other
# warning fails it (--strict; not with --quiet, which hides the warnings and passes). `mkdocs serve` previews it.
docs: install-test
	source $(VENV)/bin/activate && mkdocs build --strict

# The experiments, with only the columns whose values differ (params.yaml alone has ~50 keys).
# The experiments in 120 columns, best first: method, budget, accuracy, calls, cost (ckd/exps.py; docs/experiments.md).
exps:
	source $(VENV)/bin/activate && python -m ckd.exps

# The training curves (validation and test accuracy over steps; loss) as a static HTML page in dvc_plots/
# (PNG charts, readable offline); one line when there is nothing to plot yet. Works without $(VENV) too.
plots:
	$(if $(wildcard $(VENV)/bin/activate),source $(VENV)/bin/activate && ,)python -m ckd.reports plots

bench: install
	source $(VENV)/bin/activate && python -m bench
