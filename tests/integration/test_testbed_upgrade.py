"""`chatalot-db upgrade` on a real Debian host (real apt, real pg_upgradecluster).

debian13 with a bookworm apt source, as a host upgraded from Debian 12 keeps it: apply
with pg_version=15 provisions bookworm's PostgreSQL 15 and the 52 migrations; the app
writes 40 rows. Then, in order:
- bad input: `--to 99` (no such major: exit 5, no host contacted), `--to 14` (older than
  the running 15: refused), `--to 15` (nothing to do, exit 0);
- `--to 17 --check`: the plan and the disk it needs, nothing changed;
- a client connected: refused, naming it, nothing changed;
- an upgrade that fails midway (a reg* column, which pg_upgrade refuses after the old
  cluster was stopped and the new one made): PostgreSQL 15 serves every row again;
- `--to 17`: the data on 17 on port 5432 (rows, ledger, roles, the env file's URL logs
  in), a backup named; a rerun and apply with pg_version=17 change nothing;
- `--rollback` (check mode first): 15 serves again; a rerun has nothing to do; an
  upgrade now stops on the 17 cluster the rollback kept;
- that cluster removed by hand as the message says, `--to 17 --link`; `--rollback` is
  then refused (a linked old cluster cannot start); `--drop-old` removes 15, its rerun
  has nothing to do.

Needs root and the test bed: CI runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import host_of_kind
from tests.integration.helpers import BOOKWORM_SOURCE, cli, inventory, run_apply, run_reported

pytestmark = pytest.mark.testbed

APP = 'set -a; . /etc/chatalot/database.env; psql "$DATABASE_URL" -X -At -v ON_ERROR_STOP=1 '
ROWS = ("CREATE TABLE app_notes (id int PRIMARY KEY); "
        "INSERT INTO app_notes SELECT generate_series(1, 40);")
HOLD = ("setsid nohup runuser -u postgres -- psql -X -d chatalot -c 'SELECT pg_sleep(600)' "
        ">/dev/null 2>&1 </dev/null & sleep 1")
RELEASE = ("runuser -u postgres -- psql -XAt -p 5432 -c "
           "\"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE "
           "'%pg_sleep(600)%' AND pid <> pg_backend_pid()\" >/dev/null; sleep 1")
REGPROC = ("runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 -p 5432 -d chatalot -c "
           "\"CREATE TABLE app_bad (r regproc); INSERT INTO app_bad VALUES ('now')\"")


def snapshot(bed: Any, host: str) -> str:
    """Clusters, the env file, what answers on 5432 and the app's rows and ledger there."""
    return str(bed.ssh(host, "pg_lsclusters -h; sha256sum /etc/chatalot/database.env; "
                             "cat /etc/postgresql/*/main/start.conf | grep -v '^#'; "
                             "dpkg-query -W -f='${Package} ${Status}\\n' 'postgresql-1*'; "
                             + APP + "-c 'SHOW server_version_num' "
                             "-c 'SELECT count(*) FROM app_notes' "
                             "-c 'SELECT count(*) FROM _sqlx_migrations'", check=True).stdout)


def answering(bed: Any, host: str) -> str:
    """`MAJOR ROWS LEDGER` as the app sees them through its DATABASE_URL."""
    out = bed.ssh(host, APP + "-c 'SELECT current_setting($$server_version_num$$)::int / 10000' "
                  "-c 'SELECT count(*) FROM app_notes' -c 'SELECT count(*) FROM "
                  "_sqlx_migrations'", check=True).stdout
    return " ".join(out.split())


@pytest.fixture(scope="module")
def upgrades(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("upgrade")
    host = host_of_kind(bed, "debian13")
    bed.reset(host)
    out: dict[str, Any] = {"host": host, "runs": {}, "seen": {}}
    runs, seen = out["runs"], out["seen"]

    def up(name: str, *args: str) -> None:
        runs[name] = run_reported("upgrade", inv, tmp / f"{name}.json", *args)

    try:
        bed.ssh(host, BOOKWORM_SOURCE, check=True)
        pinned = inventory(bed, tmp / "pinned.ini", {host: "root"}, pg_version="15")
        inv = inventory(bed, tmp / "plain.ini", {host: "root"})
        runs["provision"] = run_apply(pinned, tmp / "provision.json")
        seen["rows"] = bed.ssh(host, APP + f'-c "{ROWS}"')
        seen["start"] = snapshot(bed, host)
        runs["unknown"] = (cli("upgrade", "-i", str(inv), "--to", "99"), {})
        up("older", "--to", "14")
        up("same", "--to", "15")
        up("check", "--to", "17", "--check")
        seen["after-check"] = snapshot(bed, host)
        bed.ssh(host, HOLD, check=True)
        up("session", "--to", "17")
        bed.ssh(host, RELEASE, check=True)
        seen["after-session"] = snapshot(bed, host)
        bed.ssh(host, REGPROC, check=True)
        up("midway", "--to", "17")
        seen["after-midway"] = snapshot(bed, host)
        seen["midway-answers"] = answering(bed, host)
        bed.ssh(host, "runuser -u postgres -- psql -XAt -p 5432 -d chatalot "
                      "-c 'DROP TABLE app_bad'", check=True)
        up("upgrade", "--to", "17")
        seen["upgraded"] = snapshot(bed, host)
        seen["upgraded-answers"] = answering(bed, host)
        seen["backups"] = bed.ssh(host, "stat -c '%a %U %n' /var/backups/chatalot/*before-"
                                        "upgrade-15-to-17.dump", check=True).stdout
        up("rerun", "--to", "17")
        seventeen = inventory(bed, tmp / "seventeen.ini", {host: "root"}, pg_version="17")
        runs["apply-17"] = run_apply(seventeen, tmp / "apply-17.json")
        up("rollback-check", "--rollback", "--check")
        seen["after-rollback-check"] = snapshot(bed, host)
        up("rollback", "--rollback")
        seen["rolled-back"] = snapshot(bed, host)
        seen["rolled-back-answers"] = answering(bed, host)
        up("rollback-rerun", "--rollback")
        up("again", "--to", "17")
        seen["after-again"] = snapshot(bed, host)
        bed.ssh(host, "pg_dropcluster 17 main", check=True)
        up("link", "--to", "17", "--link")
        seen["linked-answers"] = answering(bed, host)
        up("rollback-linked", "--rollback")
        seen["after-rollback-linked"] = answering(bed, host)
        up("drop-old", "--drop-old")
        seen["dropped"] = snapshot(bed, host)
        seen["dropped-answers"] = answering(bed, host)
        up("drop-old-rerun", "--drop-old")
        yield out
    finally:
        bed.reset(host)


def _host(upgrades: dict[str, Any], name: str) -> dict[str, Any]:
    p, doc = upgrades["runs"][name]
    assert doc, p.stdout + p.stderr
    h: dict[str, Any] = doc["hosts"][upgrades["host"]]
    return h


def _step(upgrades: dict[str, Any], run: str, step: str) -> dict[str, Any]:
    for s in _host(upgrades, run)["steps"]:
        if s["name"] == step:
            return dict(s)
    raise AssertionError(f"{run}: no step {step!r}: {_host(upgrades, run)['steps']}")


def test_provisioned_on_15_with_rows(upgrades: dict[str, Any]) -> None:
    p, _ = upgrades["runs"]["provision"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert upgrades["seen"]["rows"].returncode == 0, upgrades["seen"]["rows"].stderr
    assert " ".join(upgrades["seen"]["start"].split()).startswith("15 main 5432 online")


def test_an_unknown_major_is_refused_before_any_host_is_contacted(
        upgrades: dict[str, Any]) -> None:
    p, _ = upgrades["runs"]["unknown"]
    assert p.returncode == 5, p.stdout + p.stderr
    assert "--to 99: no such PostgreSQL major" in p.stderr
    assert "TASK" not in p.stdout


def test_an_older_major_is_refused_and_the_same_one_is_nothing_to_do(
        upgrades: dict[str, Any]) -> None:
    p, _ = upgrades["runs"]["older"]
    assert p.returncode == 2, p.stdout + p.stderr
    assert _step(upgrades, "older", "plan the upgrade")["reason"].startswith(
        "database chatalot is on PostgreSQL 15, newer than --to 14: pg_upgrade only goes to "
        "a newer major. Nothing was changed")
    p, _ = upgrades["runs"]["same"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert _step(upgrades, "same", "plan the upgrade")["reason"] == (
        "database chatalot is on PostgreSQL 15 already (main, port 5432): nothing to upgrade")
    assert _step(upgrades, "same", "back up before the upgrade")["status"] == "skipped"


def test_check_mode_says_what_and_how_much_disk_and_changes_nothing(
        upgrades: dict[str, Any]) -> None:
    p, _ = upgrades["runs"]["check"]
    assert p.returncode == 0, p.stdout + p.stderr
    plan = _step(upgrades, "check", "plan the upgrade")["reason"]
    assert plan.startswith("PostgreSQL 15 (main, port 5432, running) to 17 with "
                           "pg_upgradecluster -v 17 -m upgrade 15 main; copies "), plan
    assert " free" in plan
    assert _step(upgrades, "check", "upgrade the cluster")["reason"].startswith(
        "would run pg_upgradecluster -v 17 -m upgrade 15 main")
    assert _step(upgrades, "check", "configure postgresql.conf")["status"] == "skipped"
    assert upgrades["seen"]["after-check"] == upgrades["seen"]["start"]


def test_a_connected_client_is_named_and_stops_the_upgrade(upgrades: dict[str, Any]) -> None:
    p, _ = upgrades["runs"]["session"]
    assert p.returncode == 2, p.stdout + p.stderr
    why = _step(upgrades, "session", "plan the upgrade")["reason"]
    assert "1 session(s) connected to PostgreSQL 15: postgres@chatalot (psql, from the " \
           "local socket)" in why, why
    assert why.endswith("stop the app (and other clients) first, or pass --force")
    assert upgrades["seen"]["after-session"] == upgrades["seen"]["start"]


def test_an_upgrade_failing_midway_leaves_15_serving_every_row(
        upgrades: dict[str, Any]) -> None:
    p, _ = upgrades["runs"]["midway"]
    assert p.returncode == 2, p.stdout + p.stderr
    failed = _step(upgrades, "midway", "upgrade the cluster")
    assert failed["status"] == "failed"
    assert failed["reason"].startswith("pg_upgradecluster -v 17 -m upgrade 15 main failed: ")
    assert "PostgreSQL 15 serves chatalot on port 5432 again, as before" in failed["reason"]
    assert "; backup /var/backups/chatalot/chatalot-" in failed["reason"]
    major, rows, ledger = upgrades["seen"]["midway-answers"].split()
    assert (major, rows, ledger) == ("15", "40", "52")
    after = " ".join(upgrades["seen"]["after-midway"].split())
    assert after.startswith("15 main 5432 online"), after
    assert "17 main" not in after


def test_the_upgrade_moves_every_row_to_17_on_the_same_port(upgrades: dict[str, Any]) -> None:
    p, _ = upgrades["runs"]["upgrade"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert upgrades["seen"]["upgraded-answers"] == "17 40 52"
    clusters = " ".join(upgrades["seen"]["upgraded"].split())
    assert "15 main 5433 down" in clusters and "17 main 5432 online" in clusters, clusters
    env = [ln for ln in upgrades["seen"]["start"].splitlines() if "database.env" in ln]
    assert env and env[0] in upgrades["seen"]["upgraded"]  # the app's URL did not change
    assert _step(upgrades, "upgrade", "check DATABASE_URL login")["status"] == "ok"
    assert _step(upgrades, "upgrade", "rebuild statistics")["status"] == "changed"
    backup = _step(upgrades, "upgrade", "back up before the upgrade")["reason"]
    assert backup.startswith("backup /var/backups/chatalot/chatalot-")
    assert upgrades["seen"]["backups"].startswith("600 postgres ")
    assert "set pg_version=17 for this host in the inventory" in p.stdout


@pytest.mark.parametrize("run", ["rerun", "apply-17"])
def test_after_the_upgrade_nothing_changes(upgrades: dict[str, Any], run: str) -> None:
    p, _ = upgrades["runs"][run]
    assert p.returncode == 0, p.stdout + p.stderr
    h = _host(upgrades, run)
    assert h["changed"] == 0, [s for s in h["steps"] if s["status"] == "changed"]


def test_rollback_brings_15_back_and_keeps_17(upgrades: dict[str, Any]) -> None:
    p, _ = upgrades["runs"]["rollback-check"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert upgrades["seen"]["after-rollback-check"] == upgrades["seen"]["upgraded"]
    p, _ = upgrades["runs"]["rollback"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert upgrades["seen"]["rolled-back-answers"] == "15 40 52"
    clusters = " ".join(upgrades["seen"]["rolled-back"].split())
    assert "15 main 5432 online" in clusters and "17 main 5433 down" in clusters, clusters
    reason = _step(upgrades, "rollback", "roll back to the old cluster")["reason"]
    assert "writes made on PostgreSQL 17 since the upgrade are not in 15" in reason
    p, _ = upgrades["runs"]["rollback-rerun"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert _host(upgrades, "rollback-rerun")["changed"] == 0
    assert "rolled back already" in _step(upgrades, "rollback-rerun",
                                          "plan the rollback")["reason"]


def test_an_upgrade_over_the_kept_17_cluster_stops_before_any_change(
        upgrades: dict[str, Any]) -> None:
    p, _ = upgrades["runs"]["again"]
    assert p.returncode == 2, p.stdout + p.stderr
    h = _host(upgrades, "again")
    assert [s["name"] for s in h["steps"]] == ["gather facts", "plan the upgrade"]
    assert h["steps"][-1]["reason"].startswith(
        "PostgreSQL 17's cluster main already exists (port 5433, stopped: kept by a "
        "rollback?), so the upgrade cannot make it. Nothing was changed")
    assert upgrades["seen"]["after-again"] == upgrades["seen"]["rolled-back"]


def test_link_mode_then_no_rollback_then_drop_old(upgrades: dict[str, Any]) -> None:
    p, _ = upgrades["runs"]["link"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert upgrades["seen"]["linked-answers"] == "17 40 52"
    p, _ = upgrades["runs"]["rollback-linked"]
    assert p.returncode == 2, p.stdout + p.stderr
    reason = _step(upgrades, "rollback-linked", "roll back to the old cluster")["reason"]
    assert "was upgraded with --link" in reason and "Nothing was changed" in reason
    assert upgrades["seen"]["after-rollback-linked"] == "17 40 52"
    p, _ = upgrades["runs"]["drop-old"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert _step(upgrades, "drop-old", "remove the old cluster")["reason"] == \
        "removed PostgreSQL 15's cluster (main)"
    dropped = " ".join(upgrades["seen"]["dropped"].split())
    assert dropped.startswith("17 main 5432 online") and "15 main" not in dropped, dropped
    assert upgrades["seen"]["dropped-answers"] == "17 40 52"
    p, _ = upgrades["runs"]["drop-old-rerun"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert _host(upgrades, "drop-old-rerun")["changed"] == 0
