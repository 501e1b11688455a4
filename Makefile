PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# One stamp per set of extras: `make demo` installs only what the demo needs, `make test` all.
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
say = @printf '\033[1m==> %s\033[0m\n' $(1)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup chromium bubblewrap java demo lab test lint typecheck format bench bench-quick clean

setup: $(TEST_STAMP)

$(VENV)/bin/python:
	$(call say,"Creating the virtual environment in $(VENV)")
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true

$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(call say,"Installing linkis-kernel and what the demo needs (about 30 s the first time)")
	@$(PIP) -e '.[demo]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -c 'import linkis_kernel, nbclient'
	@touch $@

# The test tools include pyspark (about 490 MB): the embedded server's real local Spark.
$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(call say,"Installing linkis-kernel with its test tools and Spark (a few minutes the first time)")
	@$(PIP) -e '.[test,lab,spark]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -c 'import linkis_kernel, pytest, nbclient, playwright, mypy, importlinter, pyspark'
	@touch $@ $(DEMO_STAMP)

# The browser tests drive Debian's Chromium (never a browser downloaded by Playwright).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  printf '\033[1m==> %s\033[0m\n' "Installing Debian's Chromium for the browser tests"; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# The process sandbox of the embedded server (more than one user) runs jobs under bubblewrap.
bubblewrap:
	@command -v bwrap >/dev/null 2>&1 || { \
	  printf '\033[1m==> %s\033[0m\n' "Installing bubblewrap for the embedded server's process sandbox"; \
	  apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; }
# Spark (pyspark) runs on Java 17: Debian's headless JRE when no `java` is found.
java:
	@command -v java >/dev/null 2>&1 || { \
	  printf '\033[1m==> %s\033[0m\n' "Installing Debian's Java 17 for the local Spark"; \
	  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }

demo: $(DEMO_STAMP)
	$(call say,"Running notebooks/quickstart.ipynb against the embedded Linkis server")
	@$(PY) tools/run_notebook.py notebooks/quickstart.ipynb

lab: $(TEST_STAMP) java
	@$(PY) tools/lab.py

test: setup chromium bubblewrap java lint typecheck
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check linkis_kernel tests tools benchmarks
	$(VENV)/bin/ruff format --check linkis_kernel tests tools benchmarks

# Layers (import-linter contracts in pyproject.toml) and types (mypy).
typecheck: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format linkis_kernel tests tools benchmarks
	$(VENV)/bin/ruff check --fix linkis_kernel tests tools benchmarks

bench: setup
	$(PY) benchmarks/run.py

bench-quick: setup
	$(PY) benchmarks/run.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
