# make run   - set up (first time) and train the default model on the embedded Fruits-360 sample
# make test  - set up (first time) and run the test suite (FRUITLAB_DATA or ../shared/data/fruits360: real data)
# make test-unit - the fast tier alone: pure logic, no processes, no training, no servers
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-unit test-slow lint bench ui

# Any install finds the sweeper (fruitlab adds its hydra_plugins folder to Hydra's plugin path itself);
# compat mode keeps the source tree on sys.path, so that the tests' subprocesses import this checkout.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat
	touch $(STAMP)

setup: $(STAMP)

# The run ends with its summary: run id, scores, the model, and the command and link that show it in the MLflow UI.
run: setup
	$(PY) -m fruitlab model=vgg3_bn optim=adam

# The fast tier first, so that a broken piece of logic fails in seconds; then everything else under tests/.
test: setup
	$(PY) -m ruff check fruitlab hydra_plugins tests benchmarks
	$(PY) -m ruff format --check fruitlab hydra_plugins tests benchmarks
	$(VENV)/bin/lint-imports
	$(PY) -m pytest tests/unit
	$(PY) -m pytest tests/e2e

test-unit: setup
	$(PY) -m pytest tests/unit

test-slow: setup
	$(PY) -m pytest -m slow

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: setup
	$(PY) benchmarks/bench_pipeline.py
	$(PY) benchmarks/bench_sweeps.py

ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --port 5000
