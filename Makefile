# Two set-up commands: `make demo` and `make test` (see README). Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install test test-slow test-all demo lint fix bench bench-quality clean

# torch first, pinned: here it resolves to a local CPU wheel; unpinned, pip pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The suite without the tests marked slow (pyproject's addopts leave them out): CI runs this; it
# must stay under 10 minutes. Prints the 15 slowest tests, to see what is growing.
test: install
	$(PY) -m pytest -q --durations=15

# Only the tests marked slow (a later -m overrides addopts'); none marked is not a failure.
test-slow: install
	$(PY) -m pytest -q -m slow --durations=15 || [ $$? -eq 5 ]

# Everything, slow tests included.
test-all: install
	$(PY) -m pytest -q -m "slow or not slow" --durations=15

demo: install
	$(VENV)/bin/gitindex sync .
	$(VENV)/bin/gitindex search "file lock so that only one sync runs at a time" --limit 3

# ruff and mypy, as .pre-commit-config.yaml runs them on each commit (`pre-commit install`).
lint: install
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/pre-commit run --all-files --show-diff-on-failure

fix: install
	$(VENV)/bin/ruff check --fix gitindex tests benchmarks
	$(VENV)/bin/ruff format gitindex tests benchmarks

# Everything, search quality included (langchain-text-splitters: the quality peer's splitter).
bench: install
	$(PIP) install -q langchain-text-splitters==1.1.3
	$(PY) -m benchmarks.run

# Search quality (benchmarks/quality.py): gitindex's modes and chunkers vs a LangChain peer on four
# pinned packages. langchain-text-splitters is a benchmark-only requirement, installed here.
bench-quality: install
	$(PIP) install -q langchain-text-splitters==1.1.3
	$(PY) -m benchmarks.quality

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
