# istio-ca: `make up` runs the dev stack in one command; `make test` is the whole check (CI runs it);
# `make unit` is the fast loop.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: up test unit lint tools venv

up: venv
	bash scripts/dev-up.sh

test: lint
	toolchain="$$(bash toolchain/build.sh)" && ISTIO_CA_TOOLCHAIN="$$toolchain" $(PY) -m pytest --durations=20

unit: lint
	$(PY) -m pytest -m "not e2e"

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

tools:
	bash toolchain/build.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@
