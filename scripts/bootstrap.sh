#!/bin/sh
# Create .venv with chatalot-db and its test tools installed (idempotent).
set -eu
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install -q -e '.[test]' 2>&1 | grep -v '^WARNING: Location' >&2 || true
.venv/bin/python -c 'import installer, fabric, testinfra' # fail here if the install did not work
# byte-compile as a wheel install does (an editable install leaves that to the first run,
# and PYTHONDONTWRITEBYTECODE=1 in the environment would make every run compile again)
.venv/bin/python -m compileall -q installer >/dev/null
