"""Backups a sysadmin can restore: the drill, on a real Debian host with systemd.

`apply` schedules the nightly pg_dump (a systemd timer, a fixed random delay per host);
its rerun changes nothing. The app writes rows in two tables with its DATABASE_URL; the
timer's service runs (as the timer would at night) and rotates: scheduled dumps older
than backup_keep days go, a manual dump of the same age stays. `chatalot-db backup` takes
a dump, `backups` lists them. The app then deletes rows and drops a table; `restore
--from latest` brings the backup-time data into a new database (checked, the live one
untouched), `restore --in-place --yes` puts it in place of the live one (the live one
dumped first and kept renamed), and the app reads its rows as at backup time.

Faults: a truncated dump is refused before anything is created; a backup folder that is
full (a tmpfs with room for one and a half dumps) makes `backup` fail loudly, the earlier
dumps intact, the database untouched. `backup=none` removes the schedule (the dumps
stay), `--check --diff` then shows the unit files it would write.

Needs root and the test bed: CI runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import host_of_kind
from tests.integration.helpers import inventory, run_apply, run_reported

pytestmark = pytest.mark.testbed

APP = 'set -a; . /etc/chatalot/database.env; psql "$DATABASE_URL" -X -At -v ON_ERROR_STOP=1 '
ROWS = ("CREATE TABLE app_notes (id int PRIMARY KEY, body text); "
        "INSERT INTO app_notes SELECT g, 'note ' || g FROM generate_series(1, 40) g; "
        "CREATE TABLE app_keys (id int PRIMARY KEY); "
        "INSERT INTO app_keys SELECT generate_series(1, 5);")
DAMAGE = "DELETE FROM app_notes WHERE id > 30; DROP TABLE app_keys;"
READ = "-c 'SELECT count(*) FROM app_notes' -c 'SELECT count(*) FROM app_keys'"
DIR = "/var/backups/chatalot"
TIMER = "chatalot-db-backup-chatalot.timer"
SERVICE = "chatalot-db-backup-chatalot.service"
OLD = (f"for f in {DIR}/chatalot-20200101T000000Z-scheduled.dump "
       f"{DIR}/chatalot-20200101T000000Z-manual.dump; do echo old > $f; "
       "chown postgres:postgres $f; chmod 0600 $f; touch -d '10 days ago' $f; done")
DATABASES = ("runuser -u postgres -- psql -XAt -d postgres "
             "-c 'SELECT datname FROM pg_database ORDER BY 1'")


@pytest.fixture(scope="module")
def drill(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("backups")
    host = host_of_kind(bed, "debian12")
    bed.reset(host)
    out: dict[str, Any] = {"host": host, "runs": {}, "seen": {}}
    runs, seen = out["runs"], out["seen"]

    def sh(command: str) -> str:
        return str(bed.ssh(host, command, check=True).stdout)

    try:
        inv = inventory(bed, tmp / "hosts.ini", {host: "root"})
        none = inventory(bed, tmp / "none.ini", {host: "root"}, backup="none")
        runs["apply"] = run_apply(inv, tmp / "apply.json")
        runs["rerun"] = run_apply(inv, tmp / "rerun.json")
        seen["timer"] = sh(f"systemctl is-enabled {TIMER}; systemctl is-active {TIMER}; "
                           f"systemctl show -p NextElapseUSecRealtime --value {TIMER}")
        seen["rows"] = sh(APP + f'-c "{ROWS}"')
        sh(OLD)
        sh(f"systemctl start {SERVICE}")  # what the timer does at night
        seen["after-timer"] = sh(f"stat -c '%a %U %n' {DIR} {DIR}/*.dump")
        runs["backup"] = run_reported("backup", inv, tmp / "backup.json")
        runs["backups"] = run_reported("backups", inv, tmp / "backups.json")
        sh(APP + f'-c "{DAMAGE}"')
        seen["damaged"] = bed.ssh(host, APP + READ).stdout
        seen["databases-before"] = sh(DATABASES)
        sh(f"cp {DIR}/$(cd {DIR} && ls -t *-manual.dump | head -n1) /tmp/good.dump && "
           f"head -c 20000 /tmp/good.dump > {DIR}/chatalot-20991231T000000Z-manual.dump && "
           f"chown postgres:postgres {DIR}/chatalot-20991231T000000Z-manual.dump")
        runs["truncated"] = run_reported("restore", inv, tmp / "truncated.json", host,
                                         "--from", "chatalot-20991231T000000Z-manual.dump")
        seen["databases-after-truncated"] = sh(DATABASES)
        sh(f"rm {DIR}/chatalot-20991231T000000Z-manual.dump")
        runs["restore"] = run_reported("restore", inv, tmp / "restore.json", host,
                                       "--from", "latest", "--to-db", "chatalot_drill")
        seen["restored"] = sh("runuser -u postgres -- psql -XAt -d chatalot_drill " + READ)
        seen["live-after-restore"] = sh(APP + "-c 'SELECT count(*) FROM app_notes'")
        runs["in-place-unconfirmed"] = run_reported("restore", inv, tmp / "unconfirmed.json",
                                                    host, "--from", "latest", "--in-place")
        runs["in-place"] = run_reported("restore", inv, tmp / "in-place.json", host,
                                        "--from", "latest", "--in-place", "--yes")
        seen["live-after-in-place"] = sh(APP + READ + " -c 'SELECT count(*) FROM "
                                         "_sqlx_migrations'")
        seen["databases-after-in-place"] = sh(DATABASES)
        seen["dumps"] = sh(f"ls {DIR}")
        # room for one earlier dump and half of another
        sh("k=$(( $(stat -c %s /tmp/good.dump) * 3 / 2 / 1024 + 4 )); "
           "mount -t tmpfs -o size=${k}k,mode=0700,uid=$(id -u postgres),gid=$(id -g postgres) "
           f"tmpfs {DIR} && cp -p /tmp/good.dump {DIR}/chatalot-20200102T000000Z-manual.dump")
        seen["full-before"] = sh(f"ls -l {DIR}; " + APP + READ)
        runs["full"] = run_reported("backup", inv, tmp / "full.json")
        seen["full-after"] = sh(f"ls -l {DIR}; " + APP + READ)
        sh(f"umount {DIR}")
        runs["none"] = run_apply(none, tmp / "none.json")
        seen["none-units"] = sh("ls /etc/systemd/system | grep -c chatalot-db-backup || true")
        seen["none-dumps"] = sh(f"ls {DIR} | wc -l")
        runs["none-rerun"] = run_apply(none, tmp / "none-rerun.json")
        runs["check-diff"] = run_apply(inv, tmp / "check-diff.json", "--check", "--diff")
        seen["after-check"] = sh("ls /etc/systemd/system | grep chatalot || true")
        runs["back"] = run_apply(inv, tmp / "back.json")
        yield out
    finally:
        bed.ssh(host, f"umount {DIR} 2>/dev/null; true")
        bed.reset(host)


def _steps(drill: dict[str, Any], run: str) -> dict[str, dict[str, Any]]:
    p, doc = drill["runs"][run]
    assert doc, p.stdout + p.stderr
    return {s["name"]: s for s in doc["hosts"][drill["host"]]["steps"]}


def _ok(drill: dict[str, Any], run: str) -> None:
    p, _ = drill["runs"][run]
    assert p.returncode == 0, p.stdout + p.stderr


def test_apply_schedules_a_nightly_dump_and_the_rerun_changes_nothing(
        drill: dict[str, Any]) -> None:
    _ok(drill, "apply")
    step = _steps(drill, "apply")["schedule backups"]
    assert step["status"] == "changed"
    assert step["reason"] == (
        "scheduled pg_dump of chatalot *-*-* 03:00:00 (+ up to 1h, fixed per host), systemd "
        f"timer {TIMER}, kept 7 days in {DIR}")
    enabled, active, _next = drill["seen"]["timer"].splitlines()[:3]
    assert (enabled, active) == ("enabled", "active")
    _ok(drill, "rerun")
    _, doc = drill["runs"]["rerun"]
    assert doc["hosts"][drill["host"]]["changed"] == 0


def test_the_timer_dumps_and_rotates_only_its_own_old_dumps(drill: dict[str, Any]) -> None:
    seen = drill["seen"]["after-timer"]
    assert f"700 postgres {DIR}\n" in seen
    scheduled = [ln for ln in seen.splitlines() if ln.endswith("-scheduled.dump")]
    assert len(scheduled) == 1 and scheduled[0].startswith("600 postgres "), seen
    assert "20200101T000000Z-scheduled" not in seen  # older than 7 days: rotated
    assert "20200101T000000Z-manual.dump" in seen  # not the timer's: kept


def test_backup_now_and_the_listing(drill: dict[str, Any]) -> None:
    _ok(drill, "backup")
    reason = _steps(drill, "backup")["take a backup"]["reason"]
    assert reason.startswith(f"backup {DIR}/chatalot-") and reason.endswith(" kB)")
    _ok(drill, "backups")
    p, _ = drill["runs"]["backups"]
    assert f"{drill['host']}: 3 backup(s)" in p.stdout
    for kind in ("scheduled", "manual"):
        assert f"  {kind}  " in p.stdout or f"  {kind}     " in p.stdout, p.stdout


def test_a_truncated_dump_is_refused_before_anything_is_created(drill: dict[str, Any]) -> None:
    p, _ = drill["runs"]["truncated"]
    assert p.returncode == 2, p.stdout + p.stderr
    reason = _steps(drill, "truncated")["restore a backup"]["reason"]
    assert reason.startswith("chatalot-20991231T000000Z-manual.dump cannot be read to its end "
                             "(truncated or corrupt)")
    assert reason.endswith("nothing was changed")
    assert drill["seen"]["databases-after-truncated"] == drill["seen"]["databases-before"]


def test_restore_into_a_new_database_checks_it_and_leaves_the_live_one(
        drill: dict[str, Any]) -> None:
    _ok(drill, "restore")
    reason = _steps(drill, "restore")["restore a backup"]["reason"]
    assert "into database chatalot_drill: ledger 52 rows, last 52; rows: " in reason, reason
    assert "public.app_notes 40" in reason and "public.app_keys 5" in reason
    assert reason.endswith("the live database chatalot untouched")
    assert drill["seen"]["restored"].split() == ["40", "5"]
    assert drill["seen"]["live-after-restore"].strip() == "30"


def test_in_place_asks_first_then_replaces_keeping_the_live_one(drill: dict[str, Any]) -> None:
    p, _ = drill["runs"]["in-place-unconfirmed"]
    assert p.returncode == 5, p.stdout + p.stderr
    assert "confirm with --yes" in p.stderr
    _ok(drill, "in-place")
    steps = _steps(drill, "in-place")
    reason = steps["restore a backup"]["reason"]
    assert reason.startswith("replaced database chatalot with chatalot-"), reason
    assert "the previous one kept as database chatalot_replaced_" in reason
    assert f"and dumped to {DIR}/chatalot-" in reason and reason.endswith("-before-restore.dump")
    assert steps["check DATABASE_URL login"]["status"] == "ok"
    assert drill["seen"]["live-after-in-place"].split() == ["40", "5", "52"]
    assert "chatalot_replaced_" in drill["seen"]["databases-after-in-place"]
    assert "-before-restore.dump" in drill["seen"]["dumps"]


def test_a_full_backup_folder_fails_loudly_and_loses_nothing(drill: dict[str, Any]) -> None:
    p, _ = drill["runs"]["full"]
    assert p.returncode == 2, p.stdout + p.stderr
    reason = _steps(drill, "full")["take a backup"]["reason"]
    assert reason.startswith(f"pg_dump of chatalot into {DIR} failed: ")
    assert "No space left on device" in reason, reason
    assert reason.endswith("no backup written, the earlier ones untouched")
    assert drill["seen"]["full-after"] == drill["seen"]["full-before"]


def test_backup_none_removes_the_schedule_and_keeps_the_dumps(drill: dict[str, Any]) -> None:
    _ok(drill, "none")
    step = _steps(drill, "none")["schedule backups"]
    assert step["status"] == "changed"
    assert step["reason"].startswith("removed the backup schedule (")
    assert step["reason"].endswith(f"the dumps in {DIR} stay")
    assert drill["seen"]["none-units"].strip() == "0"
    assert int(drill["seen"]["none-dumps"]) >= 4
    _ok(drill, "none-rerun")
    assert _steps(drill, "none-rerun")["schedule backups"]["status"] == "ok"


def test_check_diff_shows_the_units_and_writes_none(drill: dict[str, Any]) -> None:
    _ok(drill, "check-diff")
    step = _steps(drill, "check-diff")["schedule backups"]
    assert step["status"] == "changed"
    assert step["reason"].startswith("would have pg_dump of chatalot")
    assert "+OnCalendar=*-*-* 03:00:00" in (step.get("diff") or ""), step
    assert "chatalot-db-backup" not in drill["seen"]["after-check"]
    _ok(drill, "back")
    assert _steps(drill, "back")["schedule backups"]["reason"].startswith("scheduled ")
