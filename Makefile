# ClosedLoop: the two commands of the README, and their parts.
#   make run   install everything, migrate the SQLite default, seed demo data, serve
#   make test  install the test dependencies and run the whole suite (SQLite and PostgreSQL)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
# `make run` keeps mail in the outbox (instance/outbox/, read at /admin/outbox) instead of
# sending it; `make run MAIL_BACKEND=smtp` uses the SMTP server of instance/config.py.
MAIL_BACKEND ?= outbox
# The links `make run` prints and mails point at the server it starts.
PUBLIC_URL ?= http://$(HOST):$(PORT)
RUN_ENV := CLOSEDLOOP_MAIL_BACKEND=$(MAIL_BACKEND) CLOSEDLOOP_PUBLIC_URL=$(PUBLIC_URL)
# PostgreSQL used by the second half of `make test` (trust auth on this machine).
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=
# pytest-xdist workers: 2 measured fastest on a 2-core machine (README, Development).
PYTEST_WORKERS ?= 2
# Line + branch coverage of survey_app, analysis and improvement may not fall below this.
COV_FLOOR ?= 94.5

.PHONY: run install install-test browser lint docs test test-sqlite test-postgres test-fast translations

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installed again only when pyproject.toml changes (stamp files in the virtualenv).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## Debian's Chromium for the browser tests (Playwright drives it; it never downloads one).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "Chromium is not installed: browser tests will be skipped (apt-get install chromium)"; fi

## Prints the demo accounts and a few survey links to answer before it serves.
run: install
	$(BIN)/closedloop init
	$(BIN)/closedloop db upgrade
	$(RUN_ENV) $(BIN)/closedloop demo
	$(RUN_ENV) $(BIN)/closedloop run --host $(HOST) --port $(PORT)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## The documentation site (docs/, mkdocs.yml), built strictly: a broken link fails.
docs: install-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: install-test browser lint docs test-sqlite test-postgres

## The whole suite on SQLite, with line and branch coverage.
test-sqlite:
	$(BIN)/pytest -n $(PYTEST_WORKERS) --cov --cov-report=term:skip-covered \
		--cov-fail-under=$(COV_FLOOR) $(PYTEST_ARGS)

## The tests marked `db` (SQL semantics) again on PostgreSQL.
test-postgres:
	@if $(BIN)/python -c "import psycopg,sys; psycopg.connect('$(PG_TEST_URL)'.replace('+psycopg',''), connect_timeout=3).close()" 2>/dev/null; then \
		echo "== PostgreSQL: $(PG_TEST_URL)"; \
		CLOSEDLOOP_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -n $(PYTEST_WORKERS) -m db $(PYTEST_ARGS); \
	elif [ -n "$$CI" ]; then echo "PostgreSQL is not reachable at $(PG_TEST_URL)"; exit 1; \
	else echo "== PostgreSQL not reachable at $(PG_TEST_URL): PostgreSQL half skipped"; fi

## The quick loop while working: everything but the slow tests, SQLite only, no coverage.
test-fast: install-test
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

## Re-extract messages and update the catalogs after changing user-facing text.
translations: install-test
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o survey_app/translations/messages.pot .
	$(BIN)/pybabel update -i survey_app/translations/messages.pot -d survey_app/translations
	$(BIN)/pybabel compile -d survey_app/translations
