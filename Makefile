# istio-ca: `make up` runs the dev stack in one command; `make test` is the whole check (CI runs it);
# `make unit` is the fast loop.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: up test unit lint tools venv

up: venv
	bash scripts/dev-up.sh

# Two workers (pytest-xdist), whole files each, the slowest files first (tests/e2e/conftest.py orders them):
# one end-to-end test at a time keeps the two cores only about two-thirds busy. Each worker starts its own
# API servers, istiod and PostgreSQL.
test: lint
	GOTOOLCHAIN=local go -C toolchain/pulumi test ./pylanghost/
	toolchain="$$(bash toolchain/build.sh)" && ISTIO_CA_TOOLCHAIN="$$toolchain" \
	  $(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=20

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
