# The two things people do with a fresh clone. README.md shows them.
PYTHON ?= python3
VENV := .venv

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

.PHONY: install install-test up test test-ml

install: $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -e .

install-test: $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -e '.[test]'
	./scripts/setup-system-packages

up: install
	$(VENV)/bin/npsloop up

test: install-test
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The optional npsloop[ml] extra, in a virtualenv of its own so that `make test` keeps checking
# what happens without it. torch's CPU build goes first: plain `torch` pulls the CUDA one.
ML_VENV := .venv-ml

test-ml:
	test -x $(ML_VENV)/bin/python || $(PYTHON) -m venv $(ML_VENV)
	$(ML_VENV)/bin/pip install --quiet torch==2.13.0
	$(ML_VENV)/bin/pip install --quiet -e '.[ml]' pytest pytest-asyncio pytest-timeout
	NPSLOOP_REQUIRE_ML=1 $(ML_VENV)/bin/pytest tests/classifier/test_embeddings.py
