# Two commands for a newcomer: `make up` and `make test`. Both set up .venv/ from nothing first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup up test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

up: setup
	$(VENV)/bin/streamdesk up --simulator

# Two workers, a test file each at a time (its module fixtures stay in one process): most tests wait on
# brokers and subprocesses, so 2 workers on 2 cores took 8.5 minutes against 13-16 serially.
test: setup
	$(VENV)/bin/python -m pytest -q --durations=15 -n 2 --dist loadfile

lint: setup
	$(VENV)/bin/ruff check pipeline api schemas simulators tests bench

QUIX_VENV := .venv-quix

bench: setup
	$(VENV)/bin/python -m pip install -q -e '.[dev,bench]'
	test -x $(QUIX_VENV)/bin/python || $(PYTHON) -m venv $(QUIX_VENV)
	$(QUIX_VENV)/bin/python -m pip install -q quixstreams==3.28.1 duckdb==2.0.1 pyarrow==26.0.1 orjson==3.13.0
	$(VENV)/bin/python bench/calls.py --quix-python $(QUIX_VENV)/bin/python

clean:
	rm -rf $(VENV) $(QUIX_VENV) data .pytest_cache
