# Aurum — the two commands of the README, plus what CI and developers use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt ci bench migrate seed clean

# Create the virtualenv and install pinned requirements (again only when they change).
$(STAMP): requirements/base.txt requirements/prod.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $(STAMP)

## run: install, migrate, load demo data, serve http://127.0.0.1:8000 (with Celery beat)
run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py serve 127.0.0.1:8000

## test: the whole test suite (SQLite unless DATABASE_URL is set)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

ci:
	.ci/run

bench: $(STAMP)
	@ls bench/*.py >/dev/null 2>&1 || { echo "No benchmarks yet."; exit 0; }; \
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache
