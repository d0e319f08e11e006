# Parley: `make run` serves on the embedded default (SQLite, no Redis); `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint typecheck contracts check bench clean

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

# The suite spread over pytest-xdist workers: three on two cores, since the end-to-end tests mostly
# wait on servers and timers (two left a core idle for half the run; four, on two cores shared with
# other runs, made server start-ups miss their deadlines); a module's tests that share a server stay
# in one worker (tests/conftest.py). The fifteen slowest tests are listed at the end.
TEST_WORKERS ?= 3

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15

# bench/ joins the checks once it holds code (git keeps no empty folder, so a fresh clone may lack it).
LINT_PATHS := app tests examples $(wildcard bench)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports

# mypy strict over app, tests and the example module (pyproject's [tool.mypy] files).
typecheck: $(STAMP)
	$(BIN)/mypy

# Import contracts (pyproject's [tool.importlinter]): core never imports a domain module, modules
# use each other only through what a module exports.
contracts: $(STAMP)
	$(BIN)/lint-imports

# Everything CI checks besides the tests: lint = ruff, mypy (see typecheck), the import contracts.
check: lint

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache parley.db parley.db-wal parley.db-shm
