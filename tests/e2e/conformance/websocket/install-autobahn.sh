#!/usr/bin/env bash
# Installs Autobahn|Testsuite's `wstest` (Python 2.7 only) into .ci/autobahn, for
# tests/e2e/conformance/websocket/test_autobahn.py. PYTHON2 names the interpreter (default: python2.7,
# else pyenv's 2.7). The packages are installed with --prefix; the test adds that site directory.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
prefix=$PWD/.ci/autobahn
python2=${PYTHON2:-}
if [ -z "$python2" ]; then  # the first that runs (pyenv's shim for python2.7 exists but may not)
  for candidate in python2.7 "$HOME"/.pyenv/versions/2.7*/bin/python; do
    if "$candidate" -c pass 2>/dev/null; then python2=$candidate; break; fi
  done
fi
[ -n "$python2" ] || { echo "install-autobahn: no Python 2.7 (set PYTHON2)" >&2; exit 1; }
site=$prefix/lib/python2.7/site-packages
requirements=$PWD/tests/e2e/conformance/websocket/autobahn-requirements.txt
cd /  # out of the repository, whose Python 3 package metadata pip 2.7 would check against
# pip builds some of the pinned packages from source with the setuptools it installs there first
PYTHONPATH=$site "$python2" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --prefix "$prefix" setuptools==44.0.0
PYTHONPATH=$site "$python2" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --prefix "$prefix" -r "$requirements"
"$python2" -c "import sys; print(sys.executable)" > "$prefix/python"
