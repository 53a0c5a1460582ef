# One-command entry points. Every target creates .venv and installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/segment-export demo

lint: $(STAMP)
	$(BIN)/ruff check worker tests bench

test: $(STAMP)
	$(BIN)/ruff check worker tests bench
	scripts/with-services $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/sync_bench.py --profiles $(or $(PROFILES),200000) --rate-scale $(or $(RATE_SCALE),1)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
