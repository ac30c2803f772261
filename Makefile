# The README's commands. Every target makes its own virtual environment (.venv) with the
# pinned tools first; nothing installed by hand is assumed beyond Python 3.13.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt layers/calendly_sync/requirements.txt | cksum | cut -d' ' -f1)

CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cksum < requirements-checkov.txt | cut -d' ' -f1)

# sam build looks for python3.13 on PATH: the venv's interpreter is one.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: samples help venv test test-fast lint typecheck validate checkov unit build demo bench bench-poll bench-publish soak event schemas clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt layers/calendly_sync/requirements.txt
	@test -x $(PY) || { echo "creating $(VENV) with $$(tools/find-python313)"; "$$(tools/find-python313)" -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## create .venv with the pinned tools

test: lint typecheck validate checkov unit ## everything CI checks: ruff, bandit, mypy, sam validate, cfn-lint, checkov, pytest

lint: $(STAMP) ## ruff, bandit (medium and up) over what ships and what runs it
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/bandit -q -ll -r layers/calendly_sync/calendly_sync functions ops local

typecheck: $(STAMP) ## mypy over the layer, the functions and local/
	$(VENV)/bin/mypy

validate: $(STAMP) ## sam validate --lint, then cfn-lint with the serverless rules
	$(VENV)/bin/sam validate --lint --template template.yaml
	$(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml

$(CHECKOV_STAMP): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || "$$(tools/find-python313)" -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	@rm -f $(CHECKOV_VENV)/.installed-* && touch $@

checkov: $(CHECKOV_STAMP) ## checkov over template.yaml, offline; every skip carries its reason in the template
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation \
		--quiet --compact --skip-download

# tests/conftest.py runs the sandbox in strict OpenAPI mode whenever ../shared has the spec.
unit: $(STAMP) ## pytest: unit and integration tests (moto, loopback only)
	@if test -f ../shared/calendly/openapi-2023.yaml; then echo "sandbox strict mode: on (../shared/calendly/openapi-2023.yaml)"; \
	else echo "sandbox strict mode: off (no ../shared/calendly/openapi-2023.yaml; its tests skip)"; fi
	$(PY) -m pytest

test-fast: $(STAMP) ## pytest's fast unit layer alone: no moto, no sandbox, no server (-m "not slow")
	$(PY) -m pytest -m "not slow"

build: $(STAMP) ## sam build (arm64 wheels, python3.13) into .aws-sam/
	$(VENV)/bin/sam build --template template.yaml

demo: $(STAMP) ## run the pipeline locally: embedded AWS (moto) and signed deliveries
	$(PY) -m local.demo $(DEMO_ARGS)

bench: $(STAMP) ## print the receiver's figures (calls, import time, throughput, build size)
	$(PY) -m bench.receiver $(BENCH_ARGS)

bench-poll: $(STAMP) ## print the poller's figures (10,000 events: requests, writes; backfill pacing)
	$(PY) -m bench.poller $(BENCH_ARGS)

bench-publish: $(STAMP) ## print the publisher's figures (events per change and per duplicate, AWS calls, time)
	$(PY) -m bench.publisher $(BENCH_ARGS)

soak: $(STAMP) ## deliveries with duplicates, reordering and forgeries while the poller runs
	$(PY) -m bench.soak $(BENCH_ARGS)

event: $(STAMP) ## print a sample delivery event signed now: make -s event CASE=invitee_created
	@$(PY) -m local.sign_delivery events/receive_webhook/$(or $(CASE),invitee_created).json

schemas: $(STAMP) ## write schemas/*.json and template.yaml's schema registry block from calendly_sync/downstream/contract.py
	$(PY) -m tools.schemas

samples: $(STAMP) ## rewrite the README's sample events with the publisher's own code (after a detail change)
	$(PY) -m tools.event_samples

clean: ## remove the venv and build output
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam .mypy_cache .ruff_cache .pytest_cache
