# Touchpoint: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BROWSER_STAMP := $(VENV)/.browser

.PHONY: install run test lint bench demo up down logs clean

# Python packages, plus Chromium for the dashboard's browser tests (where it can be installed).
install: $(STAMP) $(BROWSER_STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[local,test,tracing]'
	@touch $(STAMP)
	@echo "installed into $(VENV)"

$(BROWSER_STAMP): deploy/scripts/install-browser.sh $(STAMP)
	@bash deploy/scripts/install-browser.sh || true
	@touch $(BROWSER_STAMP)

# `run` needs only the Python packages, so a first start does not wait for a browser install.
run: $(STAMP)
	@$(BIN)/touchpoint run

test: install
	@$(BIN)/python -m pytest

lint: install
	@$(BIN)/ruff check shared services tests

bench: install
	@$(BIN)/touchpoint bench
	@$(BIN)/touchpoint bench --soak

demo: install
	@$(BIN)/touchpoint demo

up:
	docker compose up -d --build

down:
	docker compose down

logs:
	docker compose logs -f --tail=100

clean:
	rm -rf $(VENV) .data .pytest_cache
