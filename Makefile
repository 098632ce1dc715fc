# The two things people do with a fresh clone (README.md shows them), and the checks CI runs.
PYTHON ?= python3
VENV := .venv
# Pins what CI installs (regenerate with `make constraints` after changing dependencies).
CONSTRAINTS := constraints.txt

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

.PHONY: install install-test up test test-fast test-system lint fmt typecheck check constraints test-ml asyncapi

install: $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -c $(CONSTRAINTS) -e .

install-test: $(VENV)/bin/python node_modules/.package-lock.json
	$(VENV)/bin/pip install --quiet -c $(CONSTRAINTS) -e '.[test,dev]'
	./scripts/setup-system-packages

# The AsyncAPI CLI, pinned by package-lock.json; reinstalled only when the lock file
# changes. Without npm the test using it says so.
node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --ignore-scripts --loglevel=error; \
	else echo "npm not found: the AsyncAPI check will report that it cannot run" >&2; fi

up: install
	$(VENV)/bin/npsloop up

# Everything: unit, integration and system tests (crash, outages, Kafka, browser, fuzz).
test: install-test
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# A minute or two: everything but tests/system and the Kafka transport tests, which wait on a
# broker's group joins and timeouts (`pytest -m kafka` runs those; `make test` runs everything).
test-fast: install-test
	$(VENV)/bin/pytest -m "not system and not kafka" $(PYTEST_ARGS)

# tests/system: npsloop run as processes, crash, outage, Kafka end-to-end, browser and fuzz tests.
test-system: install-test
	$(VENV)/bin/pytest -m system $(PYTEST_ARGS)

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

fmt: install-test
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: install-test
	$(VENV)/bin/mypy

# What CI runs before the tests.
check: lint typecheck

# asyncapi.yaml from the event models (shared/event_data.py); tests/shared/test_asyncapi.py fails when it is stale.
asyncapi: install
	$(VENV)/bin/python -m npsloop.shared.asyncapi asyncapi.yaml

constraints: $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -e '.[test,dev]'
	echo '# What CI installs, pinned (make constraints regenerates it from the [test,dev] extras).' > $(CONSTRAINTS)
	$(VENV)/bin/pip freeze --exclude-editable --exclude npsloop >> $(CONSTRAINTS)

# The optional npsloop[ml] extra, in a virtualenv of its own so that `make test` keeps checking
# what happens without it. torch's CPU build goes first: plain `torch` pulls the CUDA one.
ML_VENV := .venv-ml

test-ml:
	test -x $(ML_VENV)/bin/python || $(PYTHON) -m venv $(ML_VENV)
	$(ML_VENV)/bin/pip install --quiet torch==2.13.0
	$(ML_VENV)/bin/pip install --quiet -c $(CONSTRAINTS) -e '.[ml]' pytest pytest-asyncio pytest-timeout aiosmtpd jsonschema  # what tests/conftest.py imports
	NPSLOOP_REQUIRE_ML=1 $(ML_VENV)/bin/pytest tests/services/classifier/test_embeddings.py
