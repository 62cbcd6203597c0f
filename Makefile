# Two entry points: `make demo` runs the main job on the shipped data, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,xgboost]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/quantum-trader backtest --config examples/demo.toml

lint: $(STAMP)
	$(BIN)/ruff check quantum_trader tests benchmarks
	$(BIN)/ruff format --check quantum_trader tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py --repeat 5
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_pipeline.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
