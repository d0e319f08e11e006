# Parley: `make run` serves on the embedded default (SQLite, no Redis); `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint typecheck check bench clean

# The example module (examples/game) is installed beside Parley: the end-to-end tests serve it.
$(STAMP): pyproject.toml examples/game/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e examples/game
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/parley serve

test: $(STAMP)
	$(BIN)/python -m pytest

# bench/ joins the checks once it holds code (git keeps no empty folder, so a fresh clone may lack it).
LINT_PATHS := app tests examples $(wildcard bench)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy app examples/game/parley_game
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache parley.db parley.db-wal parley.db-shm
