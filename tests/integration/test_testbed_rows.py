"""Rows of the hardening table (docs/security.md) proved on the session's test-bed hosts.

Hosts are looked up by kind (`host_of_kind`), so the module also runs in a second test bed
(CHATALOT_TESTBED_SUFFIX). Each test says which host it uses and how it leaves it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import host_of_kind
from tests.integration.helpers import inventory, run_apply

pytestmark = pytest.mark.testbed


def _logins(bed: Any, host: str) -> int:
    """SSH logins the host has accepted so far (this check's own login included)."""
    r = bed.ssh(host, "journalctl -q --no-pager | grep -c 'Accepted publickey'")
    return int(r.stdout.strip() or "0")


def test_a_port_that_is_no_number_fails_that_host_at_connect_the_other_finishes(
        bed: Any, tmp_path: Path) -> None:
    """`ansible_port=twentytwo` on debian13 (of debian12 and debian13): debian13 fails at
    `connect` with the message, never contacted (no SSH login); debian12 is provisioned
    (or left as it is, when an earlier module provisioned it) to the end; exit 2."""
    good, bad = host_of_kind(bed, "debian12"), host_of_kind(bed, "debian13")
    inv = inventory(bed, tmp_path / "inv.ini", {good: "root", bad: "root"})
    text = inv.read_text()
    bad_line = f"{bad} ansible_host={bed.hosts[bad].address} ansible_user=root\n"
    assert bad_line in text
    inv.write_text(text.replace(bad_line, bad_line[:-1] + " ansible_port=twentytwo\n"))
    message = "ansible_port must be a port number (1-65535), got 'twentytwo'"
    logins_before = _logins(bed, bad)
    p, doc = run_apply(inv, tmp_path / "apply.json")
    assert p.returncode == 2, p.stdout + p.stderr
    failed = doc["hosts"][bad]
    assert failed["state"] == "failed" and failed["error"] == message, failed
    assert [(s["name"], s["status"], s["reason"]) for s in failed["steps"]] == [
        ("connect", "failed", message)]
    assert failed["failed"] == 1 and failed["unreachable"] == 0 and failed["changed"] == 0
    assert message in p.stdout
    assert re.search(rf"^{bad}\s+: ok=0\s+changed=0\s+unreachable=0\s+failed=1", p.stdout,
                     re.M), p.stdout
    assert _logins(bed, bad) == logins_before + 1  # only this check's own login
    done = doc["hosts"][good]
    assert done["state"] == "done" and done["failed"] == 0 and done["unreachable"] == 0, done
    assert done["steps"][-1]["name"] == "check DATABASE_URL login", done["steps"][-1]
    assert done["steps"][-1]["status"] == "ok"
