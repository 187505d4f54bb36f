"""backup=pgbackrest, drilled on a real Debian host with systemd and real apt.

`apply` installs pgBackRest from Debian's own repository, writes our stanza's
configuration, turns WAL archiving on, creates the stanza, checks it, takes the first
full backup and schedules the job (a full backup when none is younger than 6.5 days,
else a differential one); its rerun changes nothing and `verify` passes. The app writes
rows with its DATABASE_URL; the timer's service runs (as the timer would at night);
`chatalot-db backup` takes one now. The app then writes more, a point in time is noted,
and it deletes rows and drops a table. `restore --from latest` brings the backup-time
data into a new database, `restore --time T` the data as at T (between the two writes),
`restore --in-place --yes` puts a backup in place of the live database.

Retention: the job is run with the clock eight days ahead (libfaketime, installed on the
host from Debian's repository: the one stand-in here, for a week passing); it takes a full
backup and pgBackRest's time-based expiry removes the older full backup and its
differentials.

Faults: a backup file in the repository damaged, then restored from: fails before the
live cluster is touched; the repository on a full disk (a tmpfs just large enough for
what it holds): `backup` fails loudly, the earlier backups stay, the database is
untouched. Then `backup=pg_dump`: WAL archiving off again (a restart), the nightly dump
scheduled instead, the repository and its configuration kept; `--check --diff` back to
pgbackrest shows the files it would write and writes none.

A major upgrade (debian13 with bookworm's PostgreSQL 15, as a host upgraded from Debian 12
keeps it): `chatalot-db upgrade --to 17` rewrites our stanza's configuration for the new
cluster, runs `stanza-upgrade` and takes the new cluster's first full backup; a backup
taken on 15 before the upgrade restores (its cluster started with 15's programs) into a
database of the live 17, and a point in time after the upgrade restores on 17.

Needs root and the test bed: CI runs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import host_of_kind
from tests.integration.helpers import BOOKWORM_SOURCE, cli, inventory, run_apply, run_reported
from tests.integration.test_testbed_backups import (
    APP,
    DAMAGE,
    DATABASES,
    DIR,
    READ,
    ROWS,
    SERVICE,
    TIMER,
)

pytestmark = pytest.mark.testbed

MORE = "INSERT INTO app_notes SELECT g, 'later ' || g FROM generate_series(41, 50) g;"
NOW = "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
REPO = f"{DIR}/pgbackrest"
CONF = "/etc/pgbackrest/conf.d/chatalot-db.conf"
LABELS = f"ls {REPO}/backup/chatalot | grep -E '^[0-9]{{8}}-[0-9]{{6}}F' || true"
#: the backups pgBackRest itself counts (complete ones)
INFO = ("runuser -u postgres -- pgbackrest --stanza=chatalot info | "
        "grep -E '(full|diff|incr) backup: ' || true")
SETTING = "runuser -u postgres -- psql -XAt -d postgres -c 'SHOW {}'"


@pytest.fixture(scope="module")
def drill(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("pgbackrest")
    host = host_of_kind(bed, "debian12")
    bed.reset(host)
    out: dict[str, Any] = {"host": host, "runs": {}, "seen": {}}
    runs, seen = out["runs"], out["seen"]

    def sh(command: str) -> str:
        return str(bed.ssh(host, "cd / && " + command, check=True).stdout)

    try:
        inv = inventory(bed, tmp / "hosts.ini", {host: "root"}, backup="pgbackrest")
        dump = inventory(bed, tmp / "dump.ini", {host: "root"}, backup="pg_dump")
        runs["apply"] = run_apply(inv, tmp / "apply.json")
        runs["rerun"] = run_apply(inv, tmp / "rerun.json")
        seen["after-apply"] = sh(f"systemctl is-enabled {TIMER}; systemctl is-active {TIMER}; "
                                 + SETTING.format("archive_mode") + "; "
                                 + SETTING.format("archive_command") + f"; {LABELS}; "
                                 f"stat -c '%a %U' {REPO}")
        runs["verify"] = cli("verify", "-i", str(inv))
        sh(APP + f'-c "{ROWS}"')
        sh(f"systemctl start {SERVICE}")  # what the timer does at night
        seen["after-timer"] = sh(f"journalctl -u {SERVICE} -o cat --no-pager | tail -n 5")
        runs["backup"] = run_reported("backup", inv, tmp / "backup.json")
        runs["backups"] = run_reported("backups", inv, tmp / "backups.json")
        runs["status"] = cli("status", "-i", str(inv))
        sh(APP + f'-c "{MORE}"')
        seen["time"] = sh(APP + f'-c "{NOW}"').strip()
        sh("sleep 1.1; " + APP + f'-c "{DAMAGE}"')
        seen["damaged"] = bed.ssh(host, APP + READ).stdout
        runs["restore"] = run_reported("restore", inv, tmp / "restore.json", host,
                                       "--from", "latest", "--to-db", "chatalot_drill")
        seen["restored"] = sh("runuser -u postgres -- psql -XAt -d chatalot_drill " + READ)
        runs["pitr"] = run_reported("restore", inv, tmp / "pitr.json", host, "--from",
                                    "latest", "--time", seen["time"], "--to-db", "chatalot_pitr")
        seen["pitr"] = sh("runuser -u postgres -- psql -XAt -d chatalot_pitr " + READ)
        seen["live-after-restores"] = sh(APP + "-c 'SELECT count(*) FROM app_notes'")
        seen["leftovers"] = sh(f"ls -A {DIR}")
        nightly = sh(LABELS).split()[1]  # the timer's differential backup
        runs["in-place"] = run_reported("restore", inv, tmp / "in-place.json", host,
                                        "--from", nightly, "--in-place", "--yes")
        seen["live-after-in-place"] = sh(APP + READ + " -c 'SELECT count(*) FROM "
                                         "_sqlx_migrations'")
        # a week passes for pgBackRest (and for find, which picks the kind)
        sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q faketime >/dev/null")
        seen["labels-before-week"] = sh(f"ls {REPO}/backup/chatalot | grep -E '^[0-9]' || true")
        seen["week"] = sh("runuser -u postgres -- faketime -f +8d "
                          f"/usr/local/lib/chatalot-db/pgbackrest-backup chatalot {REPO} auto")
        seen["labels-after-week"] = sh(f"ls {REPO}/backup/chatalot | grep -E '^[0-9]' || true")
        # a damaged file in the newest backup: its restore fails before the live cluster
        newest = sh(f"readlink {REPO}/backup/chatalot/latest").strip()
        sh(f"f=$(find {REPO}/backup/chatalot/{newest}/pg_data/base/1 -type f -size +8k | "
           "head -n1);"
           ' printf garbage | dd of="$f" bs=1 seek=100 conv=notrunc status=none')
        seen["databases-before-damaged"] = sh(DATABASES)
        runs["damaged"] = run_reported("restore", inv, tmp / "damaged.json", host,
                                       "--from", newest, "--to-db", "chatalot_damaged")
        seen["databases-after-damaged"] = sh(DATABASES)
        seen["damaged-leftovers"] = sh(f"ls -A {DIR}")
        # the repository on a disk with no room for another backup
        sh(f"cp -a {REPO} /var/tmp/repo-copy && k=$(du -sk {REPO} | cut -f1) && "
           "mount -t tmpfs -o size=$((k + 600))k,mode=0750,uid=$(id -u postgres),"
           f"gid=$(id -g postgres) tmpfs {REPO} && "
           f"cp -a /var/tmp/repo-copy/. {REPO}/")
        seen["full-before"] = sh(f"{INFO}; " + APP + READ)
        runs["full"] = run_reported("backup", inv, tmp / "full.json", "--type", "full")
        seen["full-after"] = sh(f"{INFO}; " + APP + READ)
        sh(f"umount {REPO}")
        runs["to-dump"] = run_apply(dump, tmp / "to-dump.json")
        seen["after-to-dump"] = sh(SETTING.format("archive_mode") + f"; ls {CONF} {REPO}; "
                                   f"grep -c pg_dump /etc/systemd/system/{SERVICE}")
        runs["to-dump-rerun"] = run_apply(dump, tmp / "to-dump-rerun.json")
        runs["check-diff"] = run_apply(inv, tmp / "check-diff.json", "--check", "--diff")
        seen["after-check"] = sh(f"grep -c pg_dump /etc/systemd/system/{SERVICE}; "
                                 + SETTING.format("archive_mode"))
        yield out
    finally:
        bed.ssh(host, f"umount {REPO} 2>/dev/null; true")
        bed.reset(host)


def _steps(drill: dict[str, Any], run: str) -> dict[str, dict[str, Any]]:
    p, doc = drill["runs"][run]
    assert doc, p.stdout + p.stderr
    return {s["name"]: s for s in doc["hosts"][drill["host"]]["steps"]}


def _ok(drill: dict[str, Any], run: str) -> None:
    p, _ = drill["runs"][run]
    assert p.returncode == 0, p.stdout + p.stderr


def test_apply_sets_pgbackrest_up_and_the_rerun_changes_nothing(drill: dict[str, Any]) -> None:
    _ok(drill, "apply")
    steps = _steps(drill, "apply")
    reason = steps["schedule backups"]["reason"]
    assert reason.startswith(f"installed pgbackrest; created stanza chatalot in {REPO}; "
                             "took the first full backup (20"), reason
    assert reason.endswith(f"systemd timer {TIMER}, kept 7 days in {REPO}"), reason
    enabled, active, mode, command, label, repo_mode = \
        drill["seen"]["after-apply"].splitlines()[:6]
    assert (enabled, active, mode) == ("enabled", "active", "on")
    assert command == "pgbackrest --stanza=chatalot archive-push %p"
    assert label.endswith("F") and label in reason
    assert repo_mode == "750 postgres"
    _ok(drill, "rerun")
    _, doc = drill["runs"]["rerun"]
    assert doc["hosts"][drill["host"]]["changed"] == 0
    assert _steps(drill, "rerun")["schedule backups"]["reason"].endswith(
        "1 backups (1 full) in the repository")


def test_verify_checks_the_stanza(drill: dict[str, Any]) -> None:
    p = drill["runs"]["verify"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert "test_pgbackrest_stanza_is_in_order" in p.stdout and " PASSED" in p.stdout


def test_the_timer_and_backup_now_take_differential_backups(drill: dict[str, Any]) -> None:
    assert "label 20" in drill["seen"]["after-timer"] and " diff" in drill["seen"]["after-timer"]
    _ok(drill, "backup")
    reason = _steps(drill, "backup")["take a backup"]["reason"]
    assert reason.startswith("pgBackRest diff backup 20") and "D (" in reason, reason
    assert reason.endswith(" in the repository)")
    _ok(drill, "backups")
    p, _ = drill["runs"]["backups"]
    assert f"{drill['host']}: 3 backup(s)" in p.stdout, p.stdout
    rows = [ln.split()[-2] for ln in p.stdout.splitlines() if ln.startswith("  20")]
    assert sorted(rows) == ["pgbackrest-diff", "pgbackrest-diff", "pgbackrest-full"], p.stdout
    status = drill["runs"]["status"]
    assert status.returncode == 0, status.stdout + status.stderr
    assert "backups      3 (2 pgbackrest-diff, 1 pgbackrest-full)" in status.stdout, status.stdout


def test_restore_latest_into_a_new_database(drill: dict[str, Any]) -> None:
    assert drill["seen"]["damaged"].split() == ["30"]  # app_keys is gone: psql stops there
    _ok(drill, "restore")
    reason = _steps(drill, "restore")["restore a backup"]["reason"]
    assert reason.startswith("restored pgBackRest backup 20"), reason
    assert "(pgbackrest-diff) into database chatalot_drill: ledger 52 rows, last 52" in reason
    assert "public.app_notes 40" in reason and "public.app_keys 5" in reason
    assert drill["seen"]["restored"].split() == ["40", "5"]


def test_restore_to_a_point_in_time_between_two_writes(drill: dict[str, Any]) -> None:
    _ok(drill, "pitr")
    reason = _steps(drill, "pitr")["restore a backup"]["reason"]
    assert reason.startswith(f"restored the state of {drill['seen']['time']} (pgBackRest and "
                             "the archived WAL: recovery stopping before commit"), reason
    assert drill["seen"]["pitr"].split() == ["50", "5"]
    assert drill["seen"]["live-after-restores"].strip() == "30"
    # the restore's own cluster is gone again
    assert not [n for n in drill["seen"]["leftovers"].split() if n.startswith("restore-")]


def test_in_place_from_a_label(drill: dict[str, Any]) -> None:
    _ok(drill, "in-place")
    steps = _steps(drill, "in-place")
    reason = steps["restore a backup"]["reason"]
    assert reason.startswith("replaced database chatalot with pgBackRest backup 20"), reason
    assert "D (pgbackrest-diff)" in reason
    assert steps["check DATABASE_URL login"]["status"] == "ok"
    assert drill["seen"]["live-after-in-place"].split() == ["40", "5", "52"]


def test_a_week_later_a_full_backup_and_the_old_ones_expire(drill: dict[str, Any]) -> None:
    before = drill["seen"]["labels-before-week"].split()
    after = drill["seen"]["labels-after-week"].split()
    week = drill["seen"]["week"].split()
    assert week[0] == "label" and week[2] == "full", week
    assert len([x for x in before if x.endswith("F")]) == 1 and len(before) == 3, before
    assert after == [week[1]], (before, after)


def test_a_damaged_backup_fails_before_the_live_cluster_is_touched(
        drill: dict[str, Any]) -> None:
    p, _ = drill["runs"]["damaged"]
    assert p.returncode == 2, p.stdout + p.stderr
    reason = _steps(drill, "damaged")["restore a backup"]["reason"]
    assert reason.startswith("restoring pgBackRest backup 20"), reason
    assert reason.endswith("nothing was changed (the live database chatalot untouched)")
    assert drill["seen"]["databases-after-damaged"] == drill["seen"]["databases-before-damaged"]
    assert not [n for n in drill["seen"]["damaged-leftovers"].split()
                if n.startswith("restore-")]


def test_a_full_repository_fails_loudly_and_loses_nothing(drill: dict[str, Any]) -> None:
    p, _ = drill["runs"]["full"]
    assert p.returncode == 2, p.stdout + p.stderr
    reason = _steps(drill, "full")["take a backup"]["reason"]
    assert reason.startswith(f"pgBackRest backup of stanza chatalot into {REPO} failed: "), \
        reason
    assert "unable to write" in reason and " kB free; the earlier backups untouched" in reason
    assert drill["seen"]["full-after"] == drill["seen"]["full-before"]


def test_backup_pg_dump_turns_archiving_off_and_keeps_the_repository(
        drill: dict[str, Any]) -> None:
    _ok(drill, "to-dump")
    steps = _steps(drill, "to-dump")
    settings = steps["configure postgresql.conf"]["reason"]
    assert "archive_mode (back to its default)" in settings and "restarted" in settings
    assert steps["schedule backups"]["reason"].startswith("updated the schedule: pg_dump of ")
    lines = drill["seen"]["after-to-dump"].split()
    assert lines[0] == "off" and CONF in lines and lines[-1] != "0", lines
    _ok(drill, "to-dump-rerun")
    _, doc = drill["runs"]["to-dump-rerun"]
    assert doc["hosts"][drill["host"]]["changed"] == 0


def test_check_diff_back_to_pgbackrest_writes_nothing(drill: dict[str, Any]) -> None:
    _ok(drill, "check-diff")
    step = _steps(drill, "check-diff")["schedule backups"]
    assert step["status"] == "changed"
    assert step["reason"].startswith("would have pgBackRest backups of stanza chatalot"), step
    assert "+ExecStart=/usr/local/lib/chatalot-db/pgbackrest-backup chatalot" in step["diff"]
    units = drill["seen"]["after-to-dump"].split()[-1]
    assert drill["seen"]["after-check"].split() == [units, "off"]
    json.dumps(step)  # the report is JSON as written


@pytest.fixture(scope="module")
def upgraded(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("pgbackrest-upgrade")
    host = host_of_kind(bed, "debian13")
    bed.reset(host)
    out: dict[str, Any] = {"host": host, "runs": {}, "seen": {}}
    runs, seen = out["runs"], out["seen"]

    def sh(command: str) -> str:
        return str(bed.ssh(host, "cd / && " + command, check=True).stdout)

    try:
        sh(BOOKWORM_SOURCE)
        pinned = inventory(bed, tmp / "pinned.ini", {host: "root"}, pg_version="15",
                           backup="pgbackrest")
        inv = inventory(bed, tmp / "plain.ini", {host: "root"}, backup="pgbackrest")
        runs["provision"] = run_apply(pinned, tmp / "provision.json")
        sh(APP + f'-c "{ROWS}"')
        runs["backup-15"] = run_reported("backup", pinned, tmp / "backup-15.json")
        seen["label-15"] = sh(f"readlink {REPO}/backup/chatalot/latest").strip()
        runs["upgrade"] = run_reported("upgrade", inv, tmp / "upgrade.json", "--to", "17")
        seen["info"] = sh("runuser -u postgres -- pgbackrest --stanza=chatalot info")
        sh(APP + f'-c "{MORE}"')
        seen["time"] = sh(APP + f'-c "{NOW}"').strip()
        sh("sleep 1.1; " + APP + f'-c "{DAMAGE}"')
        runs["pitr"] = run_reported("restore", inv, tmp / "pitr.json", host, "--from",
                                    "latest", "--time", seen["time"], "--to-db", "chatalot_pitr")
        seen["pitr"] = sh("runuser -u postgres -- psql -XAt -p 5432 -d chatalot_pitr "
                          "-c 'SHOW server_version_num' " + READ)
        # a backup from before the upgrade: its cluster starts with 15's programs
        runs["before"] = run_reported("restore", inv, tmp / "before.json", host, "--from",
                                      seen["label-15"], "--to-db", "chatalot_before")
        seen["before"] = sh("runuser -u postgres -- psql -XAt -p 5432 -d chatalot_before "
                            "-c 'SHOW server_version_num' " + READ)
        seventeen = inventory(bed, tmp / "seventeen.ini", {host: "root"}, pg_version="17",
                              backup="pgbackrest")
        runs["rerun"] = run_apply(seventeen, tmp / "rerun.json")
        yield out
    finally:
        bed.reset(host)


def test_an_upgrade_upgrades_the_stanza_and_takes_a_full_backup(upgraded: dict[str, Any]
                                                                 ) -> None:
    for run in ("provision", "upgrade"):
        p, _ = upgraded["runs"][run]
        assert p.returncode == 0, p.stdout + p.stderr
    _, doc = upgraded["runs"]["upgrade"]
    steps = {s["name"]: s for s in doc["hosts"][upgraded["host"]]["steps"]}
    reason = steps["schedule backups"]["reason"]
    assert reason.startswith("upgraded stanza chatalot to PostgreSQL 17, then took its first "
                             "full backup (20"), reason
    info = upgraded["seen"]["info"]
    assert "status: ok" in info and "db (current)" in info, info
    assert info.count("full backup: ") == 2, info  # 15's first one, and 17's


def test_a_backup_from_before_the_upgrade_restores_into_17(upgraded: dict[str, Any]) -> None:
    p, _ = upgraded["runs"]["backup-15"]
    assert p.returncode == 0, p.stdout + p.stderr
    p, doc = upgraded["runs"]["before"]
    assert p.returncode == 0, p.stdout + p.stderr
    reason = {s["name"]: s for s in doc["hosts"][upgraded["host"]]["steps"]}[
        "restore a backup"]["reason"]
    assert upgraded["seen"]["label-15"] in reason, reason
    version, notes, keys = upgraded["seen"]["before"].split()
    assert version.startswith("17") and (notes, keys) == ("40", "5")


def test_a_point_in_time_after_the_upgrade_restores_on_17(upgraded: dict[str, Any]) -> None:
    p, doc = upgraded["runs"]["pitr"]
    assert p.returncode == 0, p.stdout + p.stderr
    version, notes, keys = upgraded["seen"]["pitr"].split()
    assert version.startswith("17") and (notes, keys) == ("50", "5")
    p, doc = upgraded["runs"]["rerun"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert doc["hosts"][upgraded["host"]]["changed"] == 0, [
        (s["name"], s["reason"]) for s in doc["hosts"][upgraded["host"]]["steps"]
        if s["status"] != "ok"]
