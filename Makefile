# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPILED := $(VENV)/.compiled
CODE := $(wildcard logtail parsers tests bench fixtures setup.py)
# The modules setup.py compiles live among these: a change to one rebuilds the extensions next to them.
HOT := setup.py $(wildcard parsers/*.py logtail/pipeline/*.py logtail/export/encode.py logtail/export/metrics.py logtail/export/wire.py logtail/source/work.py)

.PHONY: demo test lint bench soak clean

# `pip install -e .` alone would compile too (setup.py); here the extensions are built once, by the rule below.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	LOGTAIL_PURE=1 $(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Built in place, where they are imported before the sources. An extension older than its source would run in
# its place: rebuilt whenever a compiled module changes.
$(COMPILED): $(STAMP) $(HOT)
	$(BIN)/python setup.py --quiet build_ext --inplace
	find logtail parsers -name '*.so' -exec touch {} +  # built from these sources even where nothing changed
	touch $(COMPILED)

demo: $(COMPILED)
	$(BIN)/python -m logtail.commands.demo

lint: $(COMPILED)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy

# The suite runs against the compiled build; tests/test_compiled.py fails if it is not what was imported.
test: lint
	LOGTAIL_EXPECT_COMPILED=1 $(BIN)/pytest -q

bench: $(COMPILED)
	$(BIN)/python -m bench

# About 20 minutes of rotation, kills and outages (bench/soak.py); not part of `test` or `bench`. MINUTES=3 for less.
soak: $(STAMP)
	$(BIN)/python -m bench.soak --minutes $(or $(MINUTES),20)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find logtail parsers -name '*.so' -delete
