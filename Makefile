# MAHT-QA. `make demo` runs the embedded default; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
REQS := requirements/base.txt requirements/dev.txt
# The stamp is keyed on the requirements' content: a changed pin re-installs.
REQ_HASH := $(shell cat $(REQS) | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_HASH)
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install demo test check lint fmt services

install: $(STAMP)

$(STAMP): $(REQS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements/dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: export DJANGO_SETTINGS_MODULE = mahtqa.settings.dev
demo: install
	@mkdir -p var
	python manage.py migrate --noinput
	python manage.py collectstatic --noinput -v0
	@echo "== Demo logins (new passwords each run; set DEMO_PASSWORD to fix them) =="
	python manage.py seed_demo_users --reset
	python manage.py model_register_bundled
	@# v1 in shadow beside the active v2: the worker fills /models/<v1>/shadow/ on the demo studies
	python manage.py model_shadow mahtnet@1.0.0 --user admin --skip-active
	@if python manage.py help seed_demo_studies >/dev/null 2>&1; then \
		python manage.py seed_demo_studies; fi
	@if python manage.py help seed_demo_issues >/dev/null 2>&1; then \
		python manage.py seed_demo_issues; fi
	python manage.py seed_demo_datasets
	python manage.py seed_demo_monitoring
	@echo "== MAHT-QA on http://127.0.0.1:8000/  (API docs /api/docs/, health /readyz)"
	@echo "== web + Celery worker (all queues) + beat; Ctrl-C stops all =="
	honcho -f Procfile.demo start

services:
	./scripts/services.sh

test: install services check
	python -m pytest

check: install
	ruff check .
	lint-imports

lint: check
	ruff format --check .

fmt: install
	ruff format .
	ruff check --fix .
