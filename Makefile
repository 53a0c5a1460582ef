# One-command entry points. Every target creates .venv and installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench chaos clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/segment-export demo

lint: $(STAMP)
	$(BIN)/ruff check worker tests bench chaos
	$(BIN)/mypy

# Tests run in parallel (pytest-xdist) although the machine may have 2 cores: they mostly wait on RabbitMQ,
# simulators and worker subprocesses. TEST_JOBS=0 runs them in one process. loadgroup: tests marked
# @pytest.mark.xdist_group("name") share a worker; every other test goes to whichever worker is free.
test: $(STAMP)
	$(BIN)/ruff check worker tests bench chaos
	$(BIN)/mypy
	scripts/with-services $(BIN)/python -m pytest -n $(or $(TEST_JOBS),4) --dist loadgroup $(PYTEST_ARGS)

# `make bench` runs the suite of bench/README.md (about 45 min: 200k at the real budget, 1M at 10x, 10M for
# memory, 30 days of 1M refreshes), writes bench/results/*.json and redraws bench/*.png.
# `make bench PROFILES=N [RATE_SCALE=S]` runs one size and prints its figures.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
ifdef PROFILES
	$(BIN)/python bench/sync_bench.py --profiles $(PROFILES) --rate-scale $(or $(RATE_SCALE),10)
else
	$(BIN)/python bench/sync_bench.py --profiles 200000 --rate-scale 1 --json bench/results/200k.json
	$(BIN)/python bench/sync_bench.py --profiles 1000000 --rate-scale 10 --json bench/results/1m.json
	$(BIN)/python bench/sync_bench.py --profiles 10000000 --pipeline-only --json bench/results/10m.json
	$(BIN)/python bench/retention_bench.py --profiles 1000000 --days 30 --readmit-days 10 --json bench/results/retention.json
	$(BIN)/python bench/tags_bench.py --profiles 20000 --json bench/results/tags.json
	$(BIN)/python bench/format_bench.py --profiles 1000000 --json bench/results/formats.json
	$(BIN)/python bench/plot.py
endif

# The chaos suite (chaos/README.md): the real worker, RabbitMQ, moto's S3 and the simulator through kills,
# outages, faults and bad input; prints one row per scenario, then the long run of the fuzz tests (chaos/fuzz.py).
# About 20 minutes on 2 busy cores (10 of them the fuzz run; CHAOS_ARGS="--fuzz-scale 0" skips it).
# CHAOS_ARGS passes options, e.g. CHAOS_ARGS="--only kill9-sending,s3-outage --profiles 50000".
chaos: $(STAMP)
	scripts/with-services $(BIN)/python -m chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
