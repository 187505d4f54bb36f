"""Fleet runs on the test bed: four real hosts, one of them powered off, rolling batches.

The four hosts (debian12-f1 .. -f4) get a test bed of their own (its own state dir,
CHATALOT_TESTBED_FLEET_DIR): `Testbed.up` clears whatever its state dir ran before,
so it cannot add hosts to the shared session bed without tearing that down. Booting
them takes a few seconds (the images are the session bed's, cached); the runs below
provision three of them from scratch, in parallel.

In order, on fresh hosts:
1. `--serial 2 --max-fail-percentage 0` with debian12-f1 failing at a real step
   (PostgreSQL refuses `work_mem = lots`): the second batch never starts, exit 2;
2. debian12-f4 powered off, the whole fleet: the others are provisioned, the recap
   shows unreachable=1 for f4, exit 4;
3. a no-op rerun of the three with per-host logs: changed=0, exit 0.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import TESTBED_DIR, booted_testbed, run_apply

pytestmark = pytest.mark.testbed

HOSTS = ("debian12-f1", "debian12-f2", "debian12-f3", "debian12-f4")
BAD = "debian12-f1"  # fails at "configure postgresql.conf" (PostgreSQL refuses the value)
OFF = "debian12-f4"  # powered off before the second run
SECOND_BATCH = ("debian12-f3", "debian12-f4")
RECAP_COUNTS = r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)"


@pytest.fixture(scope="module")
def fleet_bed() -> Iterator[Any]:
    state = os.environ.get("CHATALOT_TESTBED_FLEET_DIR", TESTBED_DIR + "-fleet")
    with booted_testbed(HOSTS, state, "fleet test bed") as tb:
        yield tb


def _inventory(bed: Any, path: Path, host_vars: dict[str, str] | None = None) -> Path:
    lines = ["[db]"]
    for name in HOSTS:
        extra = (host_vars or {}).get(name, "")
        lines.append(f"{name} ansible_host={bed.hosts[name].address} {extra}".rstrip())
    lines += ["[db:vars]", "ansible_user=root",
              f"ansible_ssh_private_key_file={bed.key_path}",
              f"ansible_ssh_common_args='-o UserKnownHostsFile={bed.known_hosts_path}'"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _logins(bed: Any, host: str) -> int:
    """SSH logins the host has accepted so far (this check's own login included)."""
    r = bed.ssh(host, "journalctl -u ssh -q --no-pager | grep -c 'Accepted publickey'")
    return int(r.stdout.strip() or "0")


def _timed(inv: Path, report: Path, *args: str
           ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], float]:
    start = time.monotonic()
    p, doc = run_apply(inv, report, *args)
    return p, doc, time.monotonic() - start


@pytest.fixture(scope="module")
def runs(fleet_bed: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    bed = fleet_bed
    tmp = tmp_path_factory.mktemp("fleet")
    out: dict[str, Any] = {"tmp": tmp}
    bad = _inventory(bed, tmp / "bad.ini", {BAD: "pg_settings=\"{'work_mem': 'lots'}\""})
    logins_before = {h: _logins(bed, h) for h in SECOND_BATCH}
    out["serial"] = _timed(bad, tmp / "serial.json", "--serial", "2",
                           "--max-fail-percentage", "0")
    out["logins"] = {h: (logins_before[h], _logins(bed, h)) for h in SECOND_BATCH}
    out["pg_on_second_batch"] = {
        h: bed.ssh(h, "dpkg -s postgresql >/dev/null 2>&1 && echo yes || echo no; "
                      "test -e /etc/chatalot && echo yes || echo no").stdout.split()
        for h in SECOND_BATCH}

    bed.stop(OFF)
    good = _inventory(bed, tmp / "good.ini")
    out["off"] = _timed(good, tmp / "off.json")
    out["noop"] = _timed(good, tmp / "noop.json", "--limit", f"!{OFF}",
                         "--log-dir", str(tmp / "logs"))
    print(f"\nfleet timings: serial run {out['serial'][2]:.1f}s, three hosts provisioned "
          f"(one off) {out['off'][2]:.1f}s, no-op rerun of three {out['noop'][2]:.1f}s")
    return out


def test_second_batch_never_starts_after_a_failure_in_the_first(runs: dict[str, Any]) -> None:
    p, doc, _ = runs["serial"]
    assert p.returncode == 2, p.stdout + p.stderr
    assert doc["batches"] == [list(HOSTS[:2]), list(HOSTS[2:])]
    assert doc["stopped"] and "max-fail-percentage 0" in doc["stopped"]
    bad = doc["hosts"][BAD]
    assert bad["state"] == "failed" and bad["failed"] == 1
    failed_step = next(s for s in bad["steps"] if s["status"] == "failed")
    assert failed_step["name"] == "configure postgresql.conf", failed_step
    assert "work_mem" in failed_step["reason"]
    assert doc["hosts"]["debian12-f2"]["state"] in ("done", "stopped", "not started")
    for h in SECOND_BATCH:
        assert doc["hosts"][h]["state"] == "not started" and doc["hosts"][h]["steps"] == []
        assert re.search(rf"^{h}\s+:", p.stdout, re.M) is None  # not in the recap, as Ansible
    assert "NOT STARTED" in p.stdout and ", ".join(SECOND_BATCH) in p.stdout


def test_second_batch_hosts_were_never_touched(runs: dict[str, Any]) -> None:
    for h, (before, after) in runs["logins"].items():
        assert after == before + 1, f"{h}: someone logged in ({before} -> {after})"
    assert runs["pg_on_second_batch"] == {h: ["no", "no"] for h in SECOND_BATCH}


def test_a_host_that_is_off_is_unreachable_and_the_others_are_provisioned(
        runs: dict[str, Any]) -> None:
    p, doc, _ = runs["off"]
    _, serial, _ = runs["serial"]
    assert p.returncode == 4, p.stdout + p.stderr
    off = re.search(rf"^{OFF}\s+: {RECAP_COUNTS}", p.stdout, re.M)
    assert off and off.groups() == ("0", "0", "1", "0", "0"), p.stdout
    assert doc["hosts"][OFF]["state"] == "unreachable" and doc["hosts"][OFF]["unreachable"] == 1
    for h in HOSTS[:3]:
        line = re.search(rf"^{h}\s+: {RECAP_COUNTS}\s+rescued=0\s+ignored=0", p.stdout, re.M)
        assert line, p.stdout
        ok, changed, unreachable, failed, skipped = (int(x) for x in line.groups())
        assert unreachable == failed == 0
        # a host the serial run stopped may have done all its changes before the stop (how
        # far it got is a race with the failing host); the others have work left
        assert changed >= (0 if serial["hosts"][h]["state"] == "stopped" else 1), line
        host = doc["hosts"][h]
        assert ok + skipped == len(host["steps"])
        assert host["state"] == "done"
        assert host["steps"][-1]["name"] == "check DATABASE_URL login"
        assert host["steps"][-1]["status"] == "ok"


def test_recap_is_in_ansibles_layout(runs: dict[str, Any]) -> None:
    p, _, _ = runs["off"]
    lines = p.stdout.splitlines()
    start = lines.index("PLAY RECAP " + "*" * 69)
    assert lines[start - 1] == ""
    names = [ln.split()[0] for ln in lines[start + 1: start + 5]]
    assert names == sorted(HOSTS)
    for ln in lines[start + 1: start + 5]:
        assert ln[26:29] == " : " and ln.endswith("ignored=0   ")


def test_noop_rerun_changes_nothing_and_logs_each_host(
        fleet_bed: Any, runs: dict[str, Any]) -> None:
    p, doc, _ = runs["noop"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert set(doc["hosts"]) == set(HOSTS[:3])
    for h in HOSTS[:3]:
        assert doc["hosts"][h]["changed"] == 0, doc["hosts"][h]
    logs: Path = runs["tmp"] / "logs"
    assert sorted(x.name for x in logs.iterdir()) == [f"{h}.log" for h in HOSTS[:3]]
    for h in HOSTS[:3]:
        text = (logs / f"{h}.log").read_text()
        assert "TASK [gather facts] ......" in text and f"{h}: run as root: " in text
        url = fleet_bed.ssh(h, "sed -n 's/^DATABASE_URL=//p' /etc/chatalot/database.env")
        password = url.stdout.strip().split(":", 2)[2].split("@", 1)[0]
        assert len(password) >= 32
        assert password not in text
        for key in ("serial", "off", "noop"):
            q, report, _ = runs[key]
            assert password not in q.stdout + q.stderr + json.dumps(report)
