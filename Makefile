# soc-responder — every target sets itself up from a fresh clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: all venv node test unit gates lint fmt demo bench clean lock coverage-report replay

all: test

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

venv: $(STAMP)
node: $(NODE_STAMP)

## make test: the gates (lint, format, types, import layers), then every test: unit, functional
## (Azurite + HTTPS fakes) and infrastructure checks
test: gates node
	@command -v chromium >/dev/null 2>&1 || echo "note: the console's browser tests (tests/console) will be skipped: install headless Chromium with 'apt-get install -y chromium chromium-driver'"
	$(PY) -m pytest

## make unit: the fast unit tests only (no Azurite, no fake, no checkov)
unit: venv
	$(PY) -m pytest -m "unit and not slow" -q

## make gates: lint, format check, type check and import layering (config in pyproject.toml)
gates: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-cache

## make lint: the same gates
lint: gates

## make fmt: apply ruff's safe fixes, then format
fmt: venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

## make demo: the sample alerts through the real function handlers, Azurite, dry-run, a readable report
demo: venv node
	$(PY) -m devtools.demo

## make coverage-report: every entry of Microsoft's alert catalogues, the priority it gets and the rules that
## fire (issue 13; config/alert-catalogue.json through config/scoring-rules.json)
coverage-report: venv
	$(PY) -m shared.triage.coverage

## make replay FROM=2026-11-01T00:00:00Z TO=2026-12-01T00:00:00Z [PARTNER=id]: past Log Analytics alerts
## through the current rules, writing nothing (needs LOG_ANALYTICS_WORKSPACE_ID and Azure credentials)
replay: venv
	$(PY) -m shared.triage.replay --from "$(FROM)" --to "$(TO)" $(if $(PARTNER),--partner "$(PARTNER)")

## make bench: ingest throughput/latency and cold-start ratios, measured in one run (issue 16: console page weight and render time)
bench: venv node
	$(PY) -m benchmarks

## make lock: refresh constraints.txt from the current venv
lock: venv
	$(VENV)/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) .venv-checkov node_modules .pytest_cache .hypothesis .demo .bench
