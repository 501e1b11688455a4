PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(PY) -m linkis_kernel.demo

test: setup
	$(VENV)/bin/ruff check linkis_kernel tests
	$(VENV)/bin/ruff format --check linkis_kernel tests
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check linkis_kernel tests
	$(VENV)/bin/ruff format --check linkis_kernel tests

format: setup
	$(VENV)/bin/ruff format linkis_kernel tests
	$(VENV)/bin/ruff check --fix linkis_kernel tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
