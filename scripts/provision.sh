#!/bin/sh
# Install chatalot-db into .venv and provision this machine (local mode).
# Extra arguments go to `chatalot-db apply` (e.g. --check, --diff, -i INVENTORY).
set -eu
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/chatalot-db apply "$@"
