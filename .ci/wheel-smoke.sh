#!/usr/bin/env bash
# Build Parley's wheel, install it (not editable) into a fresh virtual environment outside the
# checkout, and use it as a deployment would: every `parley` command, then `parley serve` answering
# /health, /ws-docs, a static file of the page and /ws-docs/spec. Any step that fails stops the
# script with the step's name and what it printed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="$(command -v "${PYTHON:-python3}")"
case "$python" in /*) ;; *) python="$PWD/$python" ;; esac  # the script leaves the current folder
work="$(mktemp -d)"
server_pid=""

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "wheel smoke test FAILED: $1" >&2
  if [ -f "$work/serve.log" ]; then
    echo "---- parley serve log ----" >&2
    cat "$work/serve.log" >&2
  fi
  exit 1
}

step() {
  local name="$1"
  shift
  if ! "$@" >"$work/step.log" 2>&1; then
    cat "$work/step.log" >&2
    fail "$name"
  fi
}

step "build the wheel" "$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$repo"
wheel="$(ls "$work"/dist/parley-*.whl)"
step "create a fresh venv" "$python" -m venv "$work/venv"
step "install $(basename "$wheel")" "$work/venv/bin/python" -m pip install --quiet "$wheel"

# From here on nothing of the checkout may be used: run outside it, from the installed package only.
cd "$work"
parley="$work/venv/bin/parley"
installed="$("$work/venv/bin/python" -c 'import app; print(app.__file__)')"
case "$installed" in
  "$work/venv/"*) ;;
  *) fail "app is imported from $installed, not from the installed wheel" ;;
esac

export APP_ENV=local LOG_LEVEL=WARNING DATABASE_URL="sqlite+aiosqlite:///$work/parley.db" REDIS_URL=""
step "parley db upgrade" "$parley" db upgrade
step "parley db upgrade (again, nothing to do)" "$parley" db upgrade
step "parley users create" "$parley" users create alice --password correct-horse-42
step "parley docs spec" "$parley" docs spec --output "$work/asyncapi.json"
step "parley docs types" "$parley" docs types --output "$work/parley.d.ts"
grep -q '"asyncapi": *"2.6.0"' "$work/asyncapi.json" || fail "parley docs spec wrote no AsyncAPI 2.6.0 document"
grep -q 'chat:send' "$work/parley.d.ts" || fail "parley docs types wrote no chat:send"

port="$("$work/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
"$parley" serve --host 127.0.0.1 --port "$port" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  curl -fsS "$base/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || fail "parley serve exited before answering /health"
  sleep 0.2
done

fetch() {  # fetch PATH EXPECTED-TEXT: the answer must be 200 and contain the text
  local body
  body="$(curl -fsS "$base$1")" || fail "GET $1 did not answer 200"
  grep -qF -- "$2" <<<"$body" || fail "GET $1 does not contain '$2'"
}
fetch /health '"status"'
fetch /ws-docs '<html'
fetch /ws-docs/static/ws-docs.css '{'
fetch /ws-docs/static/ws-docs.js 'function'
fetch /ws-docs/spec '"asyncapi"'
fetch /schema/openapi.json '"openapi"'

kill -TERM "$server_pid"
wait "$server_pid" || fail "parley serve did not stop cleanly on SIGTERM"
server_pid=""

# A module from its own wheel: the example game, named by PARLEY_MODULES, brings its migration.
step "build the example module's wheel" "$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$repo/examples/game"
step "install the example module's wheel" "$work/venv/bin/python" -m pip install --quiet "$work"/dist/parley_game-*.whl
export PARLEY_MODULES=game
step "parley db upgrade with the game module" "$parley" db upgrade
step "parley docs types with the game module" "$parley" docs types --output "$work/parley-game.d.ts"
grep -q 'game:score' "$work/parley-game.d.ts" || fail "parley docs types lacks the game module's game:score"
"$work/venv/bin/python" - "$work/parley.db" <<'PY' || fail "the game module's migration did not create game_scores"
import sqlite3, sys
tables = {row[0] for row in sqlite3.connect(sys.argv[1]).execute("SELECT name FROM sqlite_master")}
sys.exit(0 if "game_scores" in tables else 1)
PY
echo "wheel smoke test passed: $(basename "$wheel") installed in a fresh venv serves every command"
