"""Scheduled backups and the backup commands' pure parts: the variables, the schedule's
files (systemd and cron, by tables), the step's decisions against a recorded host (the
stepkit fakes), the listing, the restore's choice and checks. The drill on a real host
is tests/integration/test_testbed_backups.py."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from installer.desired import backups
from installer.desired.config import HostConfig
from installer.errors import UsageError
from installer.host.state import HostState
from installer.steps.backups import (
    ScheduleBackups,
    install_script,
    parse_checks,
    pick_backup,
    swap_sql,
)
from installer.steps.base import StepFailed
from tests.unit.stepkit import OK, FakeHost, harness, state

SERVICE, TIMER, CRON = backups.schedule_paths("chatalot")


@pytest.mark.parametrize(("hostvars", "message"), [
    ({"backup": "tape"}, "backup must be one of pg_dump, pgbackrest, none, got 'tape'"),
    ({"backup": "pgbackrest2"}, "backup must be one of pg_dump, pgbackrest, none, got "
                                "'pgbackrest2'"),
    ({"backup_keep": "0"}, "backup_keep must be between 1 and 3650, got 0"),
    ({"backup_on_calendar": "03:00; rm -rf /"}, "backup_on_calendar must be a systemd"),
    ({"backup_on_calendar": "$(reboot)"}, "backup_on_calendar must be a systemd"),
])
def test_bad_backup_variables_are_refused(hostvars: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        HostConfig.from_vars(hostvars)


@pytest.mark.parametrize(("value", "kind"), [(None, "pg_dump"), ("", "pg_dump"),
                                             ("pg_dump", "pg_dump"), ("none", "none"),
                                             ("NONE", "none"), (False, "none"), ("no", "none"),
                                             ("pgbackrest", "pgbackrest"),
                                             (" PgBackRest ", "pgbackrest")])
def test_backup_kinds(value: object, kind: str) -> None:
    assert HostConfig.from_vars({"backup": value}).backup == kind


@pytest.mark.parametrize(("calendar", "base"), [
    ("*-*-* 03:00:00", 180), ("03:00", 180), ("3:05", 185), ("daily", 0), ("23:50", 1430),
    ("Mon *-*-* 03:00:00", None), ("weekly", None), ("*-*-* 25:00:00", None),
])
@pytest.mark.parametrize("key", ["", "machine-a", "machine-b"])
def test_cron_time_is_a_daily_time_spread_by_the_key(calendar: str, base: int | None,
                                                     key: str) -> None:
    at = backups.cron_time(calendar, key)
    if base is None:
        assert at is None
        return
    assert at is not None
    minute, hour = at
    spread = backups.cron_time("00:00", key)
    assert spread is not None and spread[1] == 0  # 0-59 minutes
    assert hour * 60 + minute == (base + spread[0]) % 1440


def test_the_spread_differs_between_machines_and_is_stable() -> None:
    seen = {backups.cron_time("03:00", f"machine-{i}") for i in range(40)}
    assert len(seen) > 10
    assert backups.cron_time("03:00", "m1") == backups.cron_time("03:00", "m1")


def _pg_dump_systemd(db_name: str, port: int, backup_dir: str, keep_days: int, pgbin: str,
                     on_calendar: str, after_unit: str) -> backups.Schedule:
    """backup=pg_dump's systemd schedule (the arguments systemd_schedule took before jobs)."""
    job = backups.pg_dump_job(db_name, port, backup_dir, keep_days, pgbin)
    return backups.systemd_schedule(db_name, job, on_calendar, after_unit)


def _pg_dump_cron(db_name: str, port: int, backup_dir: str, keep_days: int, pgbin: str,
                  on_calendar: str, spread_key: str) -> backups.Schedule:
    """backup=pg_dump's cron entry (the arguments cron_schedule took before jobs)."""
    job = backups.pg_dump_job(db_name, port, backup_dir, keep_days, pgbin)
    return backups.cron_schedule(db_name, job, on_calendar, spread_key)


def test_systemd_schedule_files() -> None:
    s = _pg_dump_systemd("chatalot", 5433, "/srv/dumps", 9, "/usr/lib/postgresql/15/bin",
                         "*-*-* 04:30:00", "postgresql@15-main.service")
    assert set(s.files) == {backups.SCRIPT_PATH, SERVICE, TIMER}
    unit = s.files[SERVICE]
    assert "User=postgres\n" in unit and "Type=oneshot\n" in unit
    assert ("ExecStart=/usr/local/lib/chatalot-db/backup chatalot 5433 /srv/dumps 9 "
            "/usr/lib/postgresql/15/bin scheduled\n") in unit
    assert "After=postgresql@15-main.service\n" in unit
    timer = s.files[TIMER]
    for line in ("OnCalendar=*-*-* 04:30:00", "RandomizedDelaySec=1h", "FixedRandomDelay=true",
                 "Persistent=true", "WantedBy=timers.target"):
        assert line + "\n" in timer
    assert s.timer == "chatalot-db-backup-chatalot.timer"


def test_an_empty_pgbin_is_an_empty_argument() -> None:
    s = _pg_dump_systemd("chat", 5432, "/d", 7, "", "daily", "postgresql.service")
    assert 'ExecStart=/usr/local/lib/chatalot-db/backup chat 5432 /d 7 "" scheduled' in \
        s.files[backups.schedule_paths("chat")[0]]


def test_cron_schedule() -> None:
    s = _pg_dump_cron("chatalot", 5432, "/var/backups/chatalot", 7, "", "03:00", "k")
    entry = s.files[CRON]
    at = backups.cron_time("03:00", "k")
    assert at is not None
    assert (f"{at[0]} {at[1]} * * * postgres /usr/local/lib/chatalot-db/backup chatalot 5432 "
            '/var/backups/chatalot 7 "" scheduled\n') in entry
    assert s.timer is None
    with pytest.raises(ValueError, match="is no daily time"):
        _pg_dump_cron("c", 5432, "/d", 7, "", "Mon 03:00", "k")


#: backup=pg_dump's files as they were before backup=pgbackrest came (a pg_dump host's
#: schedule must not change, or every such host would be rewritten by the next apply)
PG_DUMP_SERVICE = """\
# Written by chatalot-db apply (backup=pg_dump); changes are overwritten.
[Unit]
Description=chatalot-db: pg_dump of database chatalot
After=postgresql@15-main.service

[Service]
Type=oneshot
User=postgres
Group=postgres
ExecStart=/usr/local/lib/chatalot-db/backup chatalot 5433 /srv/dumps 9 \
/usr/lib/postgresql/15/bin scheduled
Nice=10
IOSchedulingClass=idle
"""
PG_DUMP_TIMER = """\
# Written by chatalot-db apply (backup=pg_dump); changes are overwritten.
[Unit]
Description=chatalot-db: nightly pg_dump of database chatalot

[Timer]
OnCalendar=*-*-* 04:30:00
RandomizedDelaySec=1h
FixedRandomDelay=true
Persistent=true

[Install]
WantedBy=timers.target
"""
PG_DUMP_CRON = """\
# Written by chatalot-db apply (backup=pg_dump); changes are overwritten.
SHELL=/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
26 3 * * * postgres /usr/local/lib/chatalot-db/backup chatalot 5432 /var/backups/chatalot 7 \
"" scheduled
"""
#: sha256 of backups.SCRIPT as pg_dump hosts have it installed
PG_DUMP_SCRIPT_SHA256 = "1692b4204c5e990632459d3182ccfef6b58fa4c0163daef58235b110ad297cf0"


def test_pg_dump_schedules_render_byte_for_byte_as_before() -> None:
    s = _pg_dump_systemd("chatalot", 5433, "/srv/dumps", 9, "/usr/lib/postgresql/15/bin",
                         "*-*-* 04:30:00", "postgresql@15-main.service")
    assert s.files == {backups.SCRIPT_PATH: backups.SCRIPT, SERVICE: PG_DUMP_SERVICE,
                       TIMER: PG_DUMP_TIMER}
    assert s.timer == "chatalot-db-backup-chatalot.timer"
    assert s.when == ("*-*-* 04:30:00 (+ up to 1h, fixed per host), systemd timer "
                      "chatalot-db-backup-chatalot.timer")
    c = _pg_dump_cron("chatalot", 5432, "/var/backups/chatalot", 7, "", "03:00", "k")
    assert c.files == {backups.SCRIPT_PATH: backups.SCRIPT, CRON: PG_DUMP_CRON}
    assert (c.timer, c.when) == (None, "daily at 03:26 (cron, spread by machine-id)")
    assert hashlib.sha256(backups.SCRIPT.encode()).hexdigest() == PG_DUMP_SCRIPT_SHA256, \
        "the pg_dump script changed: every pg_dump host gets it rewritten by the next apply"


def test_a_pgbackrest_schedule_runs_its_script_on_the_same_timer() -> None:
    job = backups.pgbackrest_job("/srv/repo")
    s = backups.systemd_schedule("chatalot", job, "*-*-* 04:30:00", "postgresql.service")
    assert set(s.files) == {backups.PGBR_SCRIPT, SERVICE, TIMER}
    assert s.files[backups.PGBR_SCRIPT] == backups.PGBR_SCRIPT_TEXT
    unit, timer = s.files[SERVICE], s.files[TIMER]
    assert unit.startswith("# Written by chatalot-db apply (backup=pgbackrest);")
    assert ("ExecStart=/usr/local/lib/chatalot-db/pgbackrest-backup chatalot /srv/repo auto\n"
            in unit)
    assert "User=postgres\n" in unit and "After=postgresql.service\n" in unit
    assert "Description=chatalot-db: nightly pgBackRest backup of stanza chatalot\n" in timer
    assert "OnCalendar=*-*-* 04:30:00\n" in timer
    c = backups.cron_schedule("chatalot", job, "03:00", "k")
    assert set(c.files) == {backups.PGBR_SCRIPT, CRON}
    assert ("26 3 * * * postgres /usr/local/lib/chatalot-db/pgbackrest-backup chatalot "
            "/srv/repo auto\n") in c.files[CRON]
    assert backups.SCRIPT_PATH not in s.files and backups.SCRIPT_PATH not in c.files


def test_the_backup_script_parses_and_guards_its_output() -> None:
    r = subprocess.run(["sh", "-n", "-c", backups.SCRIPT], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    s = backups.SCRIPT
    assert s.index("pg_dump") < s.index("pg_restore\" --list") < s.index('mv "$part"')
    assert '-name "$db-*-scheduled.dump"' in s  # retention touches the scheduled dumps only
    assert s.index('mv "$part" "$final"') < s.index("find ")


@pytest.mark.parametrize(("name", "kind"), [
    ("chatalot-20261202T030000Z-scheduled.dump", "scheduled"),
    ("chatalot-20261202T030000Z-manual.dump", "manual"),
    ("chatalot-20261202T030000Z-before-restore.dump", "before-restore"),
    ("chatalot-20261202T030000Z-before-12.dump", "before-migration"),
    ("chatalot-20261202T030000Z-before-upgrade-15-to-17.dump", "before-upgrade"),
    ("chatalot-20261202T030000Z-uploaded.dump", "uploaded"),
    ("chatalot_prod-20261202T030000Z-manual.dump", None),
    ("chatalot-20261202T030000Z-manual.dump.partial", None),
    ("chatalot-latest.dump", None),
])
def test_kind_of(name: str, kind: str | None) -> None:
    assert backups.kind_of(name, "chatalot") == kind


def test_parse_listing_newest_first() -> None:
    text = ("100 2048 /d/chatalot-20261201T030000Z-scheduled.dump\n"
            "300 4096 /d/chatalot-20261202T030000Z-manual.dump\n"
            "200 10 /d/chatalot-junk.dump\n"
            "garbage\n")
    files = backups.parse_listing(text, "chatalot")
    assert [(f.kind, f.mtime, f.size) for f in files] == [("manual", 300, 4096),
                                                           ("scheduled", 100, 2048)]


@pytest.mark.parametrize(("seconds", "said"), [(5, "5 s"), (600, "10 min"), (7300, "2 h"),
                                               (4 * 86400, "4 d")])
def test_age_text(seconds: int, said: str) -> None:
    assert backups.age_text(seconds) == said


FILES = backups.parse_listing("300 1 /d/c-20261202T030000Z-manual.dump\n"
                              "100 1 /d/c-20261201T030000Z-scheduled.dump\n", "c")


@pytest.mark.parametrize(("source", "picked"), [
    ("latest", "/d/c-20261202T030000Z-manual.dump"),
    ("c-20261201T030000Z-scheduled.dump", "/d/c-20261201T030000Z-scheduled.dump"),
    ("/d/c-20261201T030000Z-scheduled.dump", "/d/c-20261201T030000Z-scheduled.dump"),
])
def test_pick_backup(source: str, picked: str) -> None:
    assert pick_backup(FILES, source, "/d", "c").path == picked


@pytest.mark.parametrize(("files", "source", "message"), [
    ([], "latest", "no backups of c in /d: nothing to restore"),
    (FILES, "/etc/shadow", "/etc/shadow is not one of the 2 backups of c in /d"),
    (FILES, "../c-20261201T030000Z-scheduled.dump", "is not one of the 2 backups"),
])
def test_pick_backup_refuses(files: list[backups.BackupFile], source: str,
                             message: str) -> None:
    with pytest.raises(StepFailed, match=message.replace("(", r"\(")):
        pick_backup(files, source, "/d", "c")


def _f(name: str, size: int, kind: str = "manual") -> backups.BackupFile:
    return backups.BackupFile(f"/var/backups/chatalot/{name}", kind, 1, size)


@pytest.mark.parametrize(("files", "local", "fetch", "present", "differs", "pgbr"), [
    ([], {}, [], [], [], 0),
    ([_f("a.dump", 10), _f("b.dump", 20)], {}, ["a.dump", "b.dump"], [], [], 0),
    ([_f("a.dump", 10), _f("b.dump", 20)], {"a.dump": 10}, ["b.dump"], ["a.dump"], [], 0),
    ([_f("a.dump", 10)], {"a.dump": 10, "z.dump": 5}, [], ["a.dump"], [], 0),
    # another file of that name here: left alone, never overwritten
    ([_f("a.dump", 10), _f("b.dump", 20)], {"a.dump": 11}, ["b.dump"], [], ["a.dump"], 0),
    # a hidden .partial of an earlier cut fetch is not the dump: fetched again
    ([_f("a.dump", 10)], {".a.dump.partial": 4}, ["a.dump"], [], [], 0),
    # pgBackRest backups are a repository, not files to fetch
    ([_f("20261202-030000F", 99, "pgbackrest-full"), _f("a.dump", 10)], {}, ["a.dump"], [],
     [], 1),
])
def test_fetch_plan(files: list[backups.BackupFile], local: dict[str, int], fetch: list[str],
                    present: list[str], differs: list[str], pgbr: int) -> None:
    plan = backups.fetch_plan(files, local)
    names = [[f.path.rsplit("/", 1)[1] for f in part]
             for part in (plan.fetch, plan.present, plan.differs)]
    assert names == [fetch, present, differs] and plan.pgbackrest == pgbr


@pytest.mark.parametrize(("stderr", "sha"), [
    ("a" * 64 + "  /d/x.dump\n", "a" * 64),
    ("warning: something\n" + "0123456789abcdef" * 4 + "  /d/x y.dump\n",
     "0123456789abcdef" * 4),
    ("cat: /d/x.dump: No such file or directory\n", None),
    ("A" * 64 + "  /d/x.dump\n", None),
    ("a" * 63 + "  /d/x.dump\n", None),
])
def test_fetch_sha(stderr: str, sha: str | None) -> None:
    assert backups.fetch_sha(stderr) == sha


def test_the_fetch_command_sends_the_bytes_then_the_checksum(tmp_path: Path) -> None:
    """Run for real on this machine: stdout is the file, stderr its sha256 (a name with a
    space and a quote is quoted)."""
    f = tmp_path / "it's a.dump"
    f.write_bytes(b"PGDMP\x00\xff" * 1000)
    r = subprocess.run(["sh", "-c", backups.fetch_command(str(f))], capture_output=True,
                       check=False)
    assert r.returncode == 0 and r.stdout == f.read_bytes()
    assert backups.fetch_sha(r.stderr.decode()) == hashlib.sha256(f.read_bytes()).hexdigest()
    r = subprocess.run(["sh", "-c", backups.fetch_command(str(tmp_path / "gone.dump"))],
                       capture_output=True, check=False)
    assert r.returncode != 0 and backups.fetch_sha(r.stderr.decode()) is None


def test_the_upload_script_checks_before_the_dump_takes_its_name() -> None:
    s = backups.upload_script("/var/backups/it's", "chatalot-20261203T000000Z-uploaded.dump",
                              "ab" * 32, "/usr/pgsql-17/bin/pg_restore")
    r = subprocess.run(["sh", "-n", "-c", s], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "dir='/var/backups/it'\"'\"'s'" in s
    # an existing file is never replaced; the checksum, then pg_restore, then the name
    assert (s.index('[ -e "$final" ]') < s.index('cat > "$part"') < s.index('"$want"')
            < s.index("/usr/pgsql-17/bin/pg_restore --list") < s.index('mv "$part" "$final"'))
    assert s.index("trap 'rm -f -- \"$part\"' EXIT") < s.index('cat > "$part"')
    assert backups.kind_of(backups.uploaded_name("chatalot", "20261203T000000Z"),
                           "chatalot") == "uploaded"


def test_parse_checks() -> None:
    text = "ANALYZE\nledger 52 52\nrows public.app_notes 40\nrows public.users 0\n"
    assert parse_checks(text) == ("ledger 52 rows, last 52",
                                  [("public.app_notes", 40), ("public.users", 0)])
    assert parse_checks("ledger none\n") == ("no ledger", [])


def test_swap_keeps_the_live_database_and_reopens_it() -> None:
    sql = swap_sql("chat", "chat_restoring_x", "chat_replaced_x")
    assert sql.index('ALTER DATABASE "chat" ALLOW_CONNECTIONS false') < \
        sql.index("pg_terminate_backend") < sql.index('RENAME TO "chat_replaced_x"') < \
        sql.index('ALTER DATABASE "chat_replaced_x" ALLOW_CONNECTIONS true') < \
        sql.index('"chat_restoring_x" RENAME TO "chat"')
    assert "DROP" not in sql


def test_install_script_parses() -> None:
    script = install_script({"/a b/c": "x\n"}, ["/old"], "t.timer", "/var/backups/c",
                            systemd=True, stale_timer="old.timer")
    r = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "systemctl enable --now --quiet t.timer" in script
    assert script.index("systemctl disable --now old.timer") < script.index("rm -f /old")


# -- the step against a recorded host --------------------------------------------------------

def _files(schedule: backups.Schedule | None) -> dict[str, str | None]:
    paths = (backups.SCRIPT_PATH, SERVICE, TIMER, CRON)
    return {p: (schedule.files.get(p) if schedule else None) for p in paths}


def _wanted_systemd() -> backups.Schedule:
    return _pg_dump_systemd("chatalot", 5432, "/var/backups/chatalot", 7,
                            "/usr/lib/postgresql/15/bin", "*-*-* 03:00:00",
                            "postgresql@15-main.service")


def _state(files: dict[str, str | None], timer: str = "", cron: bool | None = None
           ) -> HostState:
    return dataclasses.replace(state(), backup_files=files, backup_timer=timer,
                               cron_running=cron)


def test_a_fresh_host_gets_the_timer_in_one_command() -> None:
    host = FakeHost()
    host.on("systemctl enable --now --quiet chatalot-db-backup-chatalot.timer", OK)
    h = harness(before=_state(_files(None)), after=[_state(_files(_wanted_systemd()),
                                                           "enabled active")], host=host)
    r = h.run(ScheduleBackups())
    assert str(r.status) == "changed"
    assert r.reason.startswith("scheduled pg_dump of chatalot *-*-* 03:00:00")
    assert len(host.ran()) == 1
    assert h.invalidated


def test_the_same_schedule_is_ok_without_a_command() -> None:
    h = harness(before=_state(_files(_wanted_systemd()), "enabled active"))
    r = h.run(ScheduleBackups())
    assert str(r.status) == "ok" and h.host.ran() == []


def test_a_disabled_timer_is_enabled_again() -> None:
    host = FakeHost()
    host.on("systemctl enable --now", OK)
    h = harness(before=_state(_files(_wanted_systemd()), "disabled inactive"), host=host)
    r = h.run(ScheduleBackups())
    assert str(r.status) == "changed" and r.reason.startswith("updated the schedule:")


def test_check_mode_changes_nothing_and_diffs_the_units() -> None:
    h = harness(before=_state(_files(None)), check=True, diff=True)
    r = h.run(ScheduleBackups())
    assert str(r.status) == "changed" and r.reason.startswith("would have pg_dump")
    assert r.diff is not None and "+OnCalendar=*-*-* 03:00:00" in r.diff
    assert h.host.ran() == []


def test_without_systemd_cron_or_nothing() -> None:
    cfg = HostConfig(migrations_source=None)
    h = harness(before=_state(_files(None), cron=False), systemd=False, config=cfg)
    r = h.run(ScheduleBackups())
    assert str(r.status) == "skipped" and "no cron daemon running" in r.reason
    host = FakeHost()
    host.on("CHATALOT_EOF", OK)
    h = harness(before=_state(_files(None), cron=True), systemd=False, config=cfg, host=host,
                after=[_state(_files(None), cron=True)])
    r = h.run(ScheduleBackups())
    assert str(r.status) == "changed" and "(cron, spread by machine-id)" in r.reason
    (command,) = [c for _, c in host.ran()]
    assert CRON in command and "systemctl" not in command


def test_backup_none_removes_the_schedule_and_keeps_the_script() -> None:
    cfg = HostConfig(migrations_source=None, backup="none")
    host = FakeHost()
    host.on("rm -f", OK)
    h = harness(before=_state(_files(_wanted_systemd()), "enabled active"), config=cfg,
                host=host, after=[_state(_files(None))])
    r = h.run(ScheduleBackups())
    assert str(r.status) == "changed" and r.reason.endswith("the dumps in "
                                                            "/var/backups/chatalot stay")
    (command,) = [c for _, c in host.ran()]
    assert "systemctl disable --now chatalot-db-backup-chatalot.timer" in command
    assert backups.SCRIPT_PATH not in command.split("rm -f", 1)[1]
    h = harness(before=_state(_files(None)), config=cfg)
    assert str(h.run(ScheduleBackups()).status) == "ok"


@pytest.mark.parametrize(("content", "message"), [
    (None, "No such file or directory"),
    ("dir", "a directory, not a dump file"),
    (b"-- PostgreSQL database dump\nCREATE TABLE t ();\n", "not a custom-format pg_dump"),
    (b"", "not a custom-format pg_dump"),
])
def test_restore_upload_refuses_what_is_no_dump_before_any_host_is_contacted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | str | None,
        message: str) -> None:
    """Exit 5, the message names the file; no inventory is even read (none exists)."""
    from installer import cli
    path = tmp_path / "x.dump"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    code = cli.main(["restore", "-i", str(tmp_path / "no-such.ini"), "db01",
                     "--upload", str(path)])
    assert code == 5
    err = capsys.readouterr().err
    assert f"--upload {path}" in err and message in err


def test_restore_upload_takes_a_dump_and_gives_its_checksum(tmp_path: Path) -> None:
    from installer.commands.backup import dump_to_upload
    path = tmp_path / "x.dump"
    path.write_bytes(b"PGDMP" + bytes(range(256)) * 5000)
    assert dump_to_upload(path) == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("argv", [
    ["--upload", "x.dump", "--time", "2026-12-01 10:00:00"],
    ["--upload", "x.dump", "--from", "latest"],
    [],
])
def test_restore_takes_one_source(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    from installer import cli
    try:
        code = cli.main(["restore", "db01", *argv])
    except SystemExit as e:  # argparse's own refusals
        code = int(str(e.code))
    assert code == 5
    err = capsys.readouterr().err
    assert ("--time restores from pgBackRest's archive" in err
            or "one of the arguments --from --upload is required" in err
            or "not allowed with argument" in err), err


def _at(kind: str, mtime: int) -> backups.BackupFile:
    return backups.BackupFile(f"/d/chatalot-x-{kind}.dump", kind, mtime, 1)


@pytest.mark.parametrize(("files", "newest"), [
    ([], None),
    ([_at("uploaded", 9)], None),
    ([_at("uploaded", 9), _at("before-restore", 9), _at("scheduled", 1)], "before-restore"),
    ([_at("uploaded", 9), _at("scheduled", 1)], "scheduled"),
    ([_at("pgbackrest-diff", 9), _at("uploaded", 8)], "pgbackrest-diff"),
])
def test_an_uploaded_dump_is_never_the_newest_backup(files: list[backups.BackupFile],
                                                     newest: str | None) -> None:
    """What `status` shows as the last backup and what verify's age check reads: a dump
    sent from elsewhere (maybe days old, maybe another host's) is no backup of this host."""
    got = backups.newest_taken(files)
    assert (got.kind if got else None) == newest


def test_status_with_only_uploaded_dumps_says_none_was_taken_here() -> None:
    from installer.commands import status as status_cmd
    st = status_cmd.parse_status(
        "db01", {"sql": "psql: error: boom\n",
                 "backup": "1700000000 146282 /var/backups/chatalot/"
                           "chatalot-20261203T000000Z-uploaded.dump\n"},
        HostConfig(), None)
    lines = status_cmd.format_status(st, now=1700000100.0).splitlines()
    assert lines[2:4] == [
        "  last backup  none taken on this host (only dumps uploaded to /var/backups/chatalot)",
        "  backups      1 (1 uploaded)"], lines


def test_the_upload_keeps_the_local_copys_time() -> None:
    s = backups.upload_script("/d", "n.dump", "ab" * 32, "pg_restore", 1700000000)
    assert s.index('touch -d @1700000000 "$part"') < s.index('mv "$part" "$final"')
    assert "touch" not in backups.upload_script("/d", "n.dump", "ab" * 32, "pg_restore")


# -- FetchBackups for real: LocalTransport streams `cat` of real files into a real folder -----


def _fetch_ctx() -> Any:
    from installer.transport.local import LocalTransport
    return SimpleNamespace(name="db01", config=HostConfig(), t=LocalTransport())


def _dump_file(where: Path, name: str, size: int, mtime: int) -> backups.BackupFile:
    path = where / name
    path.write_bytes(b"PGDMP" + os.urandom(size - 5))
    os.utime(path, (mtime, mtime))
    return backups.BackupFile(str(path), "manual", mtime, size)


def test_fetch_copies_checks_keeps_the_time_and_a_rerun_copies_nothing(tmp_path: Path) -> None:
    from installer.steps.backups import FetchBackups
    host = tmp_path / "host"
    host.mkdir()
    files = [_dump_file(host, f"chatalot-2026120{i}T030000Z-manual.dump", 70000 + i, 1700000000 + i)
             for i in (1, 2)]
    to = tmp_path / "fetched"
    step = FetchBackups({"db01": files}, to)
    r = step.run(_fetch_ctx())
    assert r.status == "changed" and r.reason.startswith("fetched 2 dump(s) (") \
        and str(to / "db01") in r.reason, r.reason
    for f in files:
        copy = to / "db01" / f.path.rsplit("/", 1)[1]
        assert copy.read_bytes() == Path(f.path).read_bytes()
        assert (oct(copy.stat().st_mode & 0o777), int(copy.stat().st_mtime)) == ("0o600", f.mtime)
    assert oct(to.stat().st_mode & 0o777) == oct((to / "db01").stat().st_mode & 0o777) == "0o700"
    assert sorted(p.name for p in (to / "db01").iterdir()) == sorted(
        f.path.rsplit("/", 1)[1] for f in files)  # no .partial left
    again = step.run(_fetch_ctx())
    assert (again.status, again.reason) == ("ok", f"all 2 dump(s) already in {to / 'db01'}")


def test_a_dump_gone_from_the_host_fails_and_leaves_nothing(tmp_path: Path) -> None:
    from installer.steps.backups import FetchBackups
    gone = backups.BackupFile(str(tmp_path / "chatalot-20261201T030000Z-manual.dump"),
                              "manual", 1, 10)
    with pytest.raises(StepFailed, match=r"chatalot-20261201T030000Z-manual\.dump could not be "
                                         r"read on the host: cat: .*No such file"):
        FetchBackups({"db01": [gone]}, tmp_path / "f").run(_fetch_ctx())
    assert list((tmp_path / "f" / "db01").iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_this_machines_full_disk_is_said_as_such_and_leaves_nothing(tmp_path: Path) -> None:
    """A fetch into a 64 kB tmpfs: the 200 kB dump does not fit. The step says that
    writing here failed (not that the host is unreachable), and no partial file is left."""
    from installer.steps.backups import FetchBackups
    host = tmp_path / "host"
    host.mkdir()
    big = _dump_file(host, "chatalot-20261201T030000Z-manual.dump", 200000, 1700000000)
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], check=True)
    try:
        with pytest.raises(StepFailed, match=r"writing .*/small/db01/chatalot-20261201T030000Z"
                                             r"-manual.dump on this machine failed: No space "
                                             r"left on device; not kept"):
            FetchBackups({"db01": [big]}, small).run(_fetch_ctx())
        assert list((small / "db01").iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)
