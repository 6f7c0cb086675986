# The front door. `make run` and `make test` install everything they need first.
SHELL := /bin/bash
# A Python 3.10: plain python3.10 on a user's machine, pyenv's 3.10 where its global version differs.
PYTHON ?= $(shell for p in python3.10 "$$(pyenv root 2>/dev/null)"/versions/3.10*/bin/python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONHASHSEED := 0
ARGS ?=
# Data folder of the quality benchmark; empty: its synthetic shapes (ml-100k, the default data,
# and long-tail; bench/quality.py SHAPES).
DATA ?=

.PHONY: install run test test-fast lint browser compile bench bench-quality bench-index bench-serving \
	bench-rerank bench-scale bench-cost bench-ease bench-continuous bench-evaluator clean

$(BIN)/recsys: setup.py requirements/constraints.txt
	@test -n "$(PYTHON)" || { echo "error: Python 3.10 not found; install it (TFX 1.16 supports 3.9/3.10)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip==24.2"
	$(BIN)/pip install -q -c requirements/constraints.txt -e ".[dev]"
	@touch $@

install: $(BIN)/recsys

run: install
	$(BIN)/recsys run $(ARGS)

# Two pytest-xdist workers (tests/conftest.py groups the tests of the shared run, and each
# module's, into one worker; TEST_JOBS= runs in one process); random order (pytest-randomly:
# the seed is printed, ARGS=--randomly-seed=N replays it, ARGS="-p no:randomly" turns it off);
# a time limit per test by its marker (pytest-timeout, tests/conftest.py).
TEST_JOBS ?= -n 2 --dist loadgroup
test: install
	$(BIN)/python -m pytest -v -rA --durations=15 $(TEST_JOBS) $(ARGS)

# Pure functions, executors on hand-made inputs, compile checks: no model training, no pipeline run.
test-fast: install
	$(BIN)/python -m pytest -v -m "not e2e and not slow" $(ARGS)

# Debian's Chromium, for the test that renders the run report (tests/e2e/test_e2e.py); needs root.
browser:
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# Style, and the import direction: a module never imports a layer above its own
# (tests/unit/test_layout.py).
lint: install
	$(BIN)/ruff check models recommender components pipeline presentation local kubeflow cli bench tests
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_layout.py

compile: install
	$(BIN)/recsys compile $(ARGS)

# Benchmarks print figures side by side with baselines measured in the same run.
bench: bench-quality bench-index bench-serving bench-rerank bench-scale bench-cost bench-ease \
	bench-continuous bench-evaluator

bench-quality: install
	$(BIN)/python -m bench.quality $(if $(DATA),--data $(DATA)) $(ARGS)

# ScaNN through the project's index code vs TensorFlow's exact top-k at 100k and 1M items.
bench-index: install
	$(BIN)/python -m bench.index $(ARGS)

# The recommender servable vs the retrieval-only servable: p50/p99 of single requests and
# batches of 32, at MovieLens size and over a 1M-item ScaNN catalogue (RUN_DIR: reuse a run).
RUN_DIR ?=
bench-serving: install
	$(BIN)/python -m bench.serving $(if $(RUN_DIR),--run-dir $(RUN_DIR)) $(ARGS)

# Sizes of the scale benchmark (100k, 1m, 10m or a count such as 30k); 10m takes hours.
SIZES ?= 100k,1m
bench-scale: install
	$(BIN)/python -m bench.scale --sizes $(SIZES) $(ARGS)

# The whole run beside the stock TFX chain on the same data: per step wall, CPU and memory, the
# ratio, and each step's fixed cost (its time on 100 interactions). 1m takes about 15 minutes.
COST_SIZES ?= fixed,15k,100k,1m
bench-cost: install
	$(BIN)/python -m bench.cost --sizes $(COST_SIZES) $(ARGS)

# The stock Evaluator replayed on a run's artifacts: TFMA's metrics per request (the pipeline's)
# vs per candidate, with and without a served baseline (RUN_DIR: reuse a run).
bench-evaluator: install
	$(BIN)/python -m bench.evaluator $(if $(RUN_DIR),--run-dir $(RUN_DIR)) $(ARGS)

# EASE's items x items inverse vs Woodbury's users x users one at the ML-100K and ml-latest-small
# shapes: time, memory and the scores' difference.
bench-ease: install
	$(BIN)/python -m bench.ease $(ARGS)

# What each re-ranking rule costs and buys on held-out data (NDCG, diversity, freshness).
bench-rerank: install
	$(BIN)/python -m bench.rerank $(if $(RUN_DIR),--run-dir $(RUN_DIR)) $(ARGS)

# The data replayed span by span (SPANS of it, default the embedded data): runs warm-started from
# the previous push beside cold ones on the same window, each scored on the next span.
SPANS ?= 4
bench-continuous: install
	$(BIN)/python -m bench.continuous --spans $(SPANS) $(if $(DATA),--data $(DATA)) $(ARGS)

clean:
	rm -rf tfx_output serving .pytest_cache
