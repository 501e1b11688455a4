PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup chromium demo lab test lint format bench bench-quick clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -m pip install --quiet -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -c 'import linkis_kernel, pytest, nbclient, playwright'
	touch $(STAMP)

# The browser tests drive Debian's Chromium (never a browser downloaded by Playwright).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(PY) tools/run_notebook.py notebooks/quickstart.ipynb

lab: setup
	$(PY) tools/lab.py

test: setup chromium
	$(VENV)/bin/ruff check linkis_kernel tests tools benchmarks
	$(VENV)/bin/ruff format --check linkis_kernel tests tools benchmarks
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check linkis_kernel tests tools benchmarks
	$(VENV)/bin/ruff format --check linkis_kernel tests tools benchmarks

format: setup
	$(VENV)/bin/ruff format linkis_kernel tests tools benchmarks
	$(VENV)/bin/ruff check --fix linkis_kernel tests tools benchmarks

bench: setup
	$(PY) benchmarks/run.py

bench-quick: setup
	$(PY) benchmarks/run.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
