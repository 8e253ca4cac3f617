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

.PHONY: install start test lint postgres bench
install: $(STAMP)

start: $(STAMP)
	GATE_ANONYMOUS_READ=true $(VENV)/bin/gate serve --port $(PORT) --demo --local-data gsm8k=$(SHARED)/data/gsm8k

postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; echo "Postgres did not start" >&2; exit 1

lint: $(STAMP)
	$(VENV)/bin/ruff check gate tests bench migrations/env.py
	$(VENV)/bin/ruff format --check gate tests bench migrations/env.py

test: $(STAMP) postgres lint
	GATE_GSM8K_DIR=$(SHARED)/data/gsm8k $(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP) postgres
	$(PY) bench/api_latency.py
