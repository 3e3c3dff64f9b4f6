# Redis Monitor: `make up` runs it, `make test` tests it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: up test install system-deps docs bench clean

# Reinstall only when the dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/redismon up

system-deps:
	scripts/system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

docs: $(STAMP)
	$(BIN)/python -m monitor.docs > docs/metrics.md

bench: $(STAMP)
	$(BIN)/python bench/collect.py

clean:
	rm -rf $(VENV) redismon.db* redismon-broker.db* redismon-beat*
