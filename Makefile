# Two commands on a fresh clone: `make demo` (the main job on the packaged sample) and
# `make test` (the test suite, exactly as CI runs it). Both create .venv on first use
# and reuse it afterwards; pyproject.toml changing re-installs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The tests read real ECG from here (see the README's data table).
export TINYRHYTHM_DATA ?= $(abspath ../shared/data)

.PHONY: demo test clean-demo

# The CPU build of torch first: an unpinned torch pulls a multi-GB CUDA build.
$(BIN)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Tests also need pytest and the TFLite toolchain (litert-torch, ai-edge-litert, tflite-micro).
$(BIN)/.full: $(BIN)/.base
	$(BIN)/python -m pip install --quiet -e ".[dev,tflite]"
	touch $@

demo: $(BIN)/.base
	$(BIN)/tinyrhythm demo --out demo

test: $(BIN)/.full
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/python -m pytest -q

clean-demo:
	rm -rf demo
