# The two commands of the README: `make run` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
SITE_URL ?= http://127.0.0.1:$(PORT)  # links in e-mails and SMS (the patient's link) lead here
BENCH ?=
DEV_ENV := DEBUG=1 DEMO_MODE=1

.PHONY: run test bench install install-dev system-check lint messages clean

system-check:
	@scripts/check_system.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

install: system-check $(VENV)/.installed
install-dev: system-check $(VENV)/.installed-dev

messages:  # the settings module makes compilemessages include LOCALE_PATHS (locale_allauth is not named locale)
	@cd teleexpertise && DJANGO_SETTINGS_MODULE=teleexpertise.settings_test ../$(BIN)/python ../manage.py compilemessages --ignore=.venv -v 0

run: install messages
	@mkdir -p var
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput -v 0
	$(DEV_ENV) $(BIN)/python manage.py createcachetable
	$(DEV_ENV) $(BIN)/python manage.py seed_demo
	$(DEV_ENV) PORT=$(PORT) SITE_URL=$(SITE_URL) $(BIN)/python manage.py serve --port $(PORT)

test: install-dev messages
	@scripts/run_tests.sh

bench: install-dev
	@mkdir -p bench/results
	$(BIN)/python -m bench.run $(BENCH)

lint: install-dev
	$(BIN)/ruff check .

clean:
	rm -rf var $(VENV)
