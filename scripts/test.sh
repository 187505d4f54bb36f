#!/bin/sh
# The whole test suite: lint (ruff), types (mypy), unit tests, local apply on this
# machine, and the end-to-end tests on the nspawn test bed. Needs root (it provisions
# this machine and boots test hosts). Installs what it needs first.
set -eu
cd "$(dirname "$0")/.."
t0=$(date +%s)
step() { echo "== $1 ($(($(date +%s) - t0))s)"; }

step "system packages for the test bed"
missing=""
for tool in debootstrap:debootstrap systemd-nspawn:systemd-container iptables:iptables ssh:openssh-client cron:cron; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing="$missing ${tool#*:}"
done
if [ -n "$missing" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null; }
fi

# this machine has no systemd as PID 1: its nightly backups (the local apply tests) run
# from cron, which must be running
if ! pgrep -x cron >/dev/null 2>&1 && [ ! -d /run/systemd/system ]; then cron; fi

step "python environment"
./scripts/bootstrap.sh

step "ruff"
.venv/bin/ruff check .
step "mypy"
.venv/bin/mypy
step "pytest"
CHATALOT_NO_SKIP=1 .venv/bin/pytest -p no:cacheprovider --durations=15 "$@"
step "done"
