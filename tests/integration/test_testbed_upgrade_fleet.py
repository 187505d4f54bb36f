"""`chatalot-db upgrade --serial` on a fleet: three real Debian 13 hosts, one batch at a time.

The three hosts (debian13-u1 .. -u3) get a test bed of their own (its own state dir,
CHATALOT_TESTBED_UPGRADE_DIR), each with bookworm's PostgreSQL 15 beside trixie's
packages (as a host upgraded from Debian 12 keeps it), provisioned with pg_version=15 and
40 rows written by the app. In order:
1. `--serial 1 --max-fail-percentage 0` with debian13-u1 holding a `regproc` column
   (pg_upgrade refuses it after the old cluster was stopped): u1 fails and serves 15
   with every row again; the later batches never start, u2 and u3 are untouched (15, no
   login by the tool);
2. the column dropped, `--serial 1` again: the three hosts are upgraded one after the
   other, each serving its 40 rows on 17 on port 5432;
3. the rerun has nothing to do on any host.

Needs root and the test bed: CI runs it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import (
    BOOKWORM_SOURCE,
    TESTBED_DIR,
    booted_testbed,
    run_apply,
    run_reported,
)

pytestmark = pytest.mark.testbed

HOSTS = ("debian13-u1", "debian13-u2", "debian13-u3")
BAD = HOSTS[0]
APP = 'set -a; . /etc/chatalot/database.env; psql "$DATABASE_URL" -X -At -v ON_ERROR_STOP=1 '
ROWS = ("CREATE TABLE app_notes (id int PRIMARY KEY); "
        "INSERT INTO app_notes SELECT generate_series(1, 40);")
REGPROC = ("runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 -p 5432 -d chatalot -c "
           "\"CREATE TABLE app_bad (r regproc); INSERT INTO app_bad VALUES ('now')\"")
ANSWERS = (APP + "-c 'SELECT current_setting($$server_version_num$$)::int / 10000' "
           "-c 'SELECT count(*) FROM app_notes'")
LOGINS = "journalctl -u ssh -q --no-pager | grep -c 'Accepted publickey'"


@pytest.fixture(scope="module")
def fleet_bed() -> Iterator[Any]:
    state = os.environ.get("CHATALOT_TESTBED_UPGRADE_DIR", TESTBED_DIR + "-upgrade")
    with booted_testbed(HOSTS, state, "upgrade fleet test bed") as tb:
        yield tb


def _inventory(bed: Any, path: Path, **extra: str) -> Path:
    lines = ["[db]"] + [f"{name} ansible_host={bed.hosts[name].address}" for name in HOSTS]
    lines += ["[db:vars]", "ansible_user=root", f"ansible_ssh_private_key_file={bed.key_path}",
              f"ansible_ssh_common_args='-o UserKnownHostsFile={bed.known_hosts_path}'",
              "migrations_source=bundled"]
    lines += [f"{k}={v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _answers(bed: Any, host: str) -> list[str]:
    return str(bed.ssh(host, ANSWERS, check=True).stdout).split()


@pytest.fixture(scope="module")
def runs(fleet_bed: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    bed = fleet_bed
    tmp = tmp_path_factory.mktemp("upgrade-fleet")
    out: dict[str, Any] = {}
    for host in HOSTS:
        bed.ssh(host, BOOKWORM_SOURCE, check=True)
    pinned = _inventory(bed, tmp / "pinned.ini", pg_version="15")
    inv = _inventory(bed, tmp / "plain.ini")
    out["provision"] = run_apply(pinned, tmp / "provision.json", "-f", "3")
    for host in HOSTS:
        bed.ssh(host, APP + f'-c "{ROWS}"', check=True)
    bed.ssh(BAD, REGPROC, check=True)
    out["logins-before"] = {h: int(bed.ssh(h, LOGINS).stdout.strip() or 0) for h in HOSTS[1:]}
    out["serial-fail"] = run_reported("upgrade", inv, tmp / "serial-fail.json", "--to", "17",
                                      "--serial", "1", "--max-fail-percentage", "0")
    out["logins-after"] = {h: int(bed.ssh(h, LOGINS).stdout.strip() or 0) for h in HOSTS[1:]}
    out["after-fail"] = {h: _answers(bed, h) for h in HOSTS}
    bed.ssh(BAD, "runuser -u postgres -- psql -XAt -p 5432 -d chatalot -c 'DROP TABLE app_bad'",
            check=True)
    out["serial"] = run_reported("upgrade", inv, tmp / "serial.json", "--to", "17",
                                 "--serial", "1")
    out["after"] = {h: _answers(bed, h) for h in HOSTS}
    out["rerun"] = run_reported("upgrade", inv, tmp / "rerun.json", "--to", "17")
    return out


def test_a_failing_first_batch_stops_the_fleet_and_serves_15_again(
        runs: dict[str, Any]) -> None:
    p, _ = runs["provision"]
    assert p.returncode == 0, p.stdout + p.stderr
    p, doc = runs["serial-fail"]
    assert p.returncode == 2, p.stdout + p.stderr
    assert doc["batches"] == [[h] for h in HOSTS]
    assert doc["stopped"] and "max-fail-percentage 0" in doc["stopped"]
    bad = doc["hosts"][BAD]
    assert bad["state"] == "failed"
    failed = next(s for s in bad["steps"] if s["status"] == "failed")
    assert failed["name"] == "upgrade the cluster", failed
    assert "PostgreSQL 15 serves chatalot on port 5432 again, as before" in failed["reason"]
    for h in HOSTS[1:]:
        assert doc["hosts"][h]["state"] == "not started" and doc["hosts"][h]["steps"] == []
        assert re.search(rf"^{h}\s+:", p.stdout, re.M) is None
    # every host serves PostgreSQL 15 with its 40 rows; the later batches saw no login
    assert runs["after-fail"] == {h: ["15", "40"] for h in HOSTS}
    for h, before in runs["logins-before"].items():
        assert runs["logins-after"][h] == before + 1, h  # (the check's own login)


def test_the_fleet_upgrades_one_host_after_the_other(runs: dict[str, Any]) -> None:
    p, doc = runs["serial"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert doc["batches"] == [[h] for h in HOSTS]
    for h in HOSTS:
        host = doc["hosts"][h]
        assert host["state"] == "done" and host["failed"] == 0, host
        upgraded = next(s for s in host["steps"] if s["name"] == "upgrade the cluster")
        assert upgraded["status"] == "changed", upgraded
    assert runs["after"] == {h: ["17", "40"] for h in HOSTS}
    p, doc = runs["rerun"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert all(doc["hosts"][h]["changed"] == 0 for h in HOSTS), doc["hosts"]
