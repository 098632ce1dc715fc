# The two things people do with a fresh clone. README.md shows them.
PYTHON ?= python3
VENV := .venv

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

.PHONY: install install-test up test

install: $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -e .

install-test: $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -e '.[test]'
	./scripts/setup-system-packages

up: install
	$(VENV)/bin/npsloop up

test: install-test
	$(VENV)/bin/pytest $(PYTEST_ARGS)
