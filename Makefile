# One command to set up and run the main job on SQLite:   make run
# One command to set up and run the tests:                 make test-all (what CI runs)
# The fast loop (SQLite only, <= 5 min on 2 cores):        make test
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install run test test-all lint check format bench clean

# `make run` needs only the package; the test tools (pytest, hypothesis, ruff,
# mypy) come with `make install`/`make test`.
$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed: $(VENV)/.base
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

# The main job on the embedded default (a SQLite file newswatch.db here):
# create the schema, load the starter sources and watchlists, crawl once.
run: $(VENV)/.base
	$(BIN)/newswatch init
	$(BIN)/newswatch source import examples/sources.opml
	$(BIN)/newswatch watchlist import examples/watchlists.yaml
	$(BIN)/newswatch crawl

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The suite runs every database test on SQLite and on PostgreSQL
# (NEWSWATCH_TEST_POSTGRES, default postgres@127.0.0.1:5432; a throwaway
# database per run). NEWSWATCH_TEST_BACKENDS=sqlite runs SQLite only.
#
# The fast suite (<= 5 min on 2 cores): everything but `faults` and `slow`, on
# SQLite only (`make test-all`, what CI runs, adds PostgreSQL and the rest).
test: lint
	NEWSWATCH_TEST_BACKENDS=sqlite $(PY) -m pytest -n 2 -q -m "not faults and not slow"

# Everything, as CI runs it (.ci/run): faults and slow included.
test-all: lint
	$(PY) -m pytest -n 2 -q

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
