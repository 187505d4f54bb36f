"""The backup checks of `verify` and the backup rows of `status`.

Tables for the pure checks (installer.verify.checks: the schedule, the newest backup's age,
who may read the backups) and for status's rows; the probe sections (shared with apply's
state probe, installer.host.state) asserted as text, and the listing and `stat` sections run
by /bin/sh against a folder in tmp_path.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from installer.commands import status as status_cmd
from installer.desired import backups
from installer.desired.backups import BackupFile
from installer.desired.config import HostConfig
from installer.host.sections import SectionScript
from installer.host.state import backup_sections
from installer.transport.base import Result, Transport
from installer.verify import checks
from installer.verify.checks import FileMeta
from installer.verify.observe import BackupStat, backup_stat_section, parse_backup_stat

DB = "chatalot"
DIR = "/var/backups/chatalot"
SCRIPT = backups.SCRIPT_PATH
SERVICE, TIMER, CRON = backups.schedule_paths(DB)
UNIT = "chatalot-db-backup-chatalot.timer"
NO_CRON = "no backups are scheduled: no systemd and no cron daemon; run cron, or set backup=none"
HOUR = 3600
NOW = 1_700_000_000


# -- the schedule ----------------------------------------------------------------------------------

SCHEDULE_CASES = {
    "systemd: timer enabled and active": (
        "pg_dump", "systemd", [SCRIPT, SERVICE, TIMER], "enabled active", None, []),
    "systemd: timer disabled": (
        "pg_dump", "systemd", [SCRIPT, SERVICE, TIMER], "disabled inactive", None,
        [f"the backup timer {UNIT} is not enabled and active (UnitFileState disabled, "
         f"ActiveState inactive): no backups are taken (systemctl enable --now {UNIT})"]),
    "systemd: timer enabled, not started": (
        "pg_dump", "systemd", [SCRIPT, SERVICE, TIMER], "enabled inactive", None,
        [f"the backup timer {UNIT} is not enabled and active (UnitFileState enabled, "
         f"ActiveState inactive): no backups are taken (systemctl enable --now {UNIT})"]),
    "systemd: no timer": (
        "pg_dump", "systemd", [SCRIPT], "", None,
        [f"no backups are scheduled: {SERVICE}, {TIMER} do not exist (backup=pg_dump; apply "
         "writes the timer)"]),
    "systemd: no service": (
        "pg_dump", "systemd", [SCRIPT, TIMER], "enabled active", None,
        [f"no backups are scheduled: {SERVICE} does not exist (backup=pg_dump; apply writes "
         "the timer)"]),
    "systemd: no script": (
        "pg_dump", "systemd", [SERVICE, TIMER], "enabled active", None,
        [f"the backup script {SCRIPT} does not exist: every scheduled run fails (apply "
         "writes it)"]),
    "systemd: a cron entry too": (
        "pg_dump", "systemd", [SCRIPT, SERVICE, TIMER, CRON], "enabled active", None,
        [f"{CRON} exists too: where systemd is PID 1 the timer schedules the backups (apply "
         "removes the cron entry)"]),
    "cron: entry and daemon": ("pg_dump", "sh", [SCRIPT, CRON], "", True, []),
    "cron: daemon, no entry": (
        "pg_dump", "sh", [SCRIPT], "", True,
        [f"no backups are scheduled: {CRON} does not exist (backup=pg_dump; apply writes it "
         "where a cron daemon runs)"]),
    "neither systemd nor cron": ("pg_dump", "sh", [], "", False, [NO_CRON]),
    "neither, an entry nothing runs": (
        "pg_dump", "tini", [SCRIPT, CRON], "", False,
        [f"{NO_CRON} ({CRON} is in place, but nothing runs it)"]),
    "cron: no script": (
        "pg_dump", "sh", [CRON], "", True,
        [f"the backup script {SCRIPT} does not exist: every scheduled run fails (apply "
         "writes it)"]),
    "none: nothing of ours": ("none", "systemd", [], "", None, []),
    "none: the script may stay": ("none", "sh", [SCRIPT], "", False, []),
    "none: timer left": (
        "none", "systemd", [SCRIPT, SERVICE, TIMER], "enabled active", None,
        [f"backup=none, but a backup schedule of ours is in place: {SERVICE}, {TIMER} (apply "
         "removes it)"]),
    "none: cron entry left": (
        "none", "sh", [CRON], "", True,
        [f"backup=none, but a backup schedule of ours is in place: {CRON} (apply removes it)"]),
}


@pytest.mark.parametrize(("backup", "pid1", "present", "timer", "cron", "expected"),
                         SCHEDULE_CASES.values(), ids=SCHEDULE_CASES.keys())
def test_backup_schedule_problems(backup: str, pid1: str, present: list[str], timer: str,
                                  cron: bool | None, expected: list[str]) -> None:
    assert checks.backup_schedule_problems(backup, DB, pid1, present, timer, cron) == expected


# -- the newest backup's age -----------------------------------------------------------------------

def _dump(age: int, kind: str = "scheduled") -> BackupFile:
    return BackupFile(f"{DIR}/{DB}-20231114T030000Z-{kind}.dump", kind, NOW - age, 1024)


AGE_CASES = {
    "fresh": (_dump(3 * HOUR), 40 * 86400, True, []),
    "26 hours exactly": (_dump(26 * HOUR), 40 * 86400, True, []),
    "fresh, of another kind": (_dump(HOUR, "before-migration"), 40 * 86400, True, []),
    "too old": (
        _dump(26 * HOUR + 1), 40 * 86400, True,
        [f"the newest backup of database {DB} is {DIR}/{DB}-20231114T030000Z-scheduled.dump "
         "(scheduled), 1 day 2:00:01 old: more than 26 hours (a nightly schedule plus slack); "
         f"see journalctl -u chatalot-db-backup-{DB}.service"]),
    "too old, cron": (
        _dump(3 * 86400, "manual"), 40 * 86400, False,
        [f"the newest backup of database {DB} is {DIR}/{DB}-20231114T030000Z-manual.dump "
         "(manual), 3 days 0:00:00 old: more than 26 hours (a nightly schedule plus slack); "
         "see the cron daemon's log"]),
    "too old, but the schedule is new": (_dump(30 * 86400), 5 * HOUR, True, []),
    "none, the schedule is new": (None, 25 * HOUR, True, []),
    "none, the schedule is old": (
        None, 2 * 86400, True,
        [f"there is no backup of database {DB} in {DIR}, and the schedule is 2 days 0:00:00 "
         f"old; see journalctl -u chatalot-db-backup-{DB}.service"]),
    "none, no schedule": (None, None, False, [f"there is no backup of database {DB} in {DIR}"]),
    "too old, no schedule": (
        _dump(2 * 86400), None, True,
        [f"the newest backup of database {DB} is {DIR}/{DB}-20231114T030000Z-scheduled.dump "
         "(scheduled), 2 days 0:00:00 old: more than 26 hours (a nightly schedule plus "
         "slack)"]),
    "from the future (clock skew)": (_dump(-HOUR), None, True, []),
}


@pytest.mark.parametrize(("newest", "schedule_age", "systemd", "expected"),
                         AGE_CASES.values(), ids=AGE_CASES.keys())
def test_backup_age_problems(newest: BackupFile | None, schedule_age: int | None, systemd: bool,
                             expected: list[str]) -> None:
    mtime = None if schedule_age is None else NOW - schedule_age
    assert checks.backup_age_problems(newest, NOW, mtime, DB, DIR, systemd=systemd) == expected


# -- who may read the backups ----------------------------------------------------------------------

def _meta(mode: str, owner: str = "postgres") -> FileMeta:
    return FileMeta(mode, owner, owner, NOW)


def _dumps(*modes: str) -> dict[str, FileMeta]:
    return {f"{DIR}/{DB}-202311{i + 10}T030000Z-scheduled.dump": _meta(m)
            for i, m in enumerate(modes)}


PERMISSION_CASES = {
    "as apply makes them": (_meta("0700"), _dumps("0600", "0600"), []),
    "no backup_dir": (None, {}, []),
    "read-only dumps are fine": (_meta("0700"), _dumps("0400"), []),
    "backup_dir 0755": (_meta("0755"), {}, [f"backup_dir {DIR} has mode 0755, not 0700"]),
    "backup_dir root's": (_meta("0700", "root"), {},
                          [f"backup_dir {DIR} is owned by root, not postgres"]),
    "one dump 0644": (
        _meta("0700"), _dumps("0600", "0644"),
        [f"backup {DIR}/{DB}-20231111T030000Z-scheduled.dump has mode 0644, not 0600: others "
         "can read the database's data"]),
    "two dumps group-readable": (
        _meta("0700"), _dumps("0640", "0660", "0600"),
        [f"2 backups in {DIR} are not 0600, so others can read the database's data: "
         f"{DIR}/{DB}-20231110T030000Z-scheduled.dump (0640), "
         f"{DIR}/{DB}-20231111T030000Z-scheduled.dump (0660)"]),
    "twelve loose dumps": (
        _meta("0700"), _dumps(*["0644"] * 12),
        [f"12 backups in {DIR} are not 0600, so others can read the database's data: "
         + ", ".join(f"{DIR}/{DB}-202311{day}T030000Z-scheduled.dump (0644)"
                     for day in range(10, 20)) + " and 2 more"]),
}


@pytest.mark.parametrize(("dir_meta", "dumps", "expected"), PERMISSION_CASES.values(),
                         ids=PERMISSION_CASES.keys())
def test_backup_permission_problems(dir_meta: FileMeta | None, dumps: dict[str, FileMeta],
                                    expected: list[str]) -> None:
    assert checks.backup_permission_problems(dir_meta, dumps, DIR) == expected


def test_parse_stat() -> None:
    text = ("700 postgres postgres 1700000000 /var/backups/chatalot\n"
            "600 postgres postgres 1700000001 /var/backups/chatalot/a b.dump\n"
            "stat: cannot statx '/nope': No such file or directory\n"
            "9x9 root root 1 /bad-mode\n")
    assert checks.parse_stat(text) == {
        "/var/backups/chatalot": FileMeta("0700", "postgres", "postgres", 1700000000),
        "/var/backups/chatalot/a b.dump": FileMeta("0600", "postgres", "postgres", 1700000001)}


# -- the probe's sections --------------------------------------------------------------------------

def _section_names(systemd: bool | None) -> list[str]:
    s = SectionScript()
    backup_sections(s, HostConfig(), systemd=systemd)
    echo = f"echo '{s.marker} "
    return [part[len(echo):-1] for part in s.parts if part.startswith(echo)]


@pytest.mark.parametrize(("systemd", "names"), [
    (True, ["backup-timer"]),    # apply's probe, systemd as PID 1: the timer's state only
    (False, ["cron"]),           # apply's probe without systemd: whether cron runs only
    (None, ["backup-timer", "cron"]),  # status: PID 1 is read in the same script
])
def test_backup_sections(systemd: bool | None, names: list[str]) -> None:
    # the pgBackRest script and our stanza's configuration are read whatever `backup` is:
    # apply keeps them when `backup` changes, and verify checks them with backup=pgbackrest
    paths = (SCRIPT, backups.PGBR_SCRIPT, SERVICE, TIMER, CRON, backups.PGBR_CONF)
    assert _section_names(systemd) == [f"backup {p}" for p in paths] + names


def _run(script: str) -> str:
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True,
                          check=True, timeout=30).stdout


def _tree(tmp_path: Path) -> Path:
    d = tmp_path / "backups"
    d.mkdir(mode=0o700)
    now = int(_run("date +%s"))  # the host's clock, as the probe reads it
    for name, mode, age in [(f"{DB}-20231114T030000Z-scheduled.dump", 0o600, 2 * HOUR),
                            (f"{DB}-20231113T030000Z-scheduled.dump", 0o644, 26 * HOUR),
                            (f"{DB}-20231101T120000Z-before-52.dump", 0o600, 300 * HOUR),
                            (f"{DB}-20231114T030000Z-scheduled.dump.partial", 0o644, 0),
                            (f"{DB}x-20231114T030000Z-manual.dump", 0o644, 0),
                            ("notes.txt", 0o644, 0)]:
        f = d / name
        f.write_bytes(b"x" * 10)
        f.chmod(mode)
        os.utime(f, (now - age, now - age))
    return d


def test_backup_stat_section_reads_the_folder_and_the_dumps(tmp_path: Path) -> None:
    d = _tree(tmp_path)
    config = HostConfig(backup_dir=f"{d}/")
    found = parse_backup_stat(_run(backup_stat_section(config)), config)
    assert found.now is not None and abs(found.now - int(os.path.getmtime(d))) < 60
    assert found.dir is not None and found.dir.mode == "0700"
    assert {p.rsplit("/", 1)[1]: m.mode for p, m in found.dumps.items()} == {
        f"{DB}-20231114T030000Z-scheduled.dump": "0600",
        f"{DB}-20231113T030000Z-scheduled.dump": "0644",
        f"{DB}-20231101T120000Z-before-52.dump": "0600"}
    # the schedule's files as this machine has them (CI's local apply writes a cron entry)
    assert set(found.schedule) == {p for p in backups.schedule_paths(DB) if os.path.exists(p)}
    me = pwd.getpwuid(os.getuid()).pw_name
    assert found.dir.owner == me
    assert checks.backup_permission_problems(found.dir, found.dumps, config.backup_dir) == [
        *([f"backup_dir {d}/ is owned by {me}, not postgres"] if me != "postgres" else []),
        f"backup {d}/{DB}-20231113T030000Z-scheduled.dump has mode 0644, not 0600: others "
        "can read the database's data"]


def test_backup_stat_section_without_a_folder(tmp_path: Path) -> None:
    config = HostConfig(backup_dir=str(tmp_path / "none"))
    found = parse_backup_stat(_run(backup_stat_section(config)), config)
    assert found.now is not None and found.dir is None and found.dumps == {}


@pytest.mark.parametrize(("systemd", "expected"), [(True, 100), (False, 200)])
def test_schedule_mtime_is_the_timer_s_or_the_cron_entry_s(systemd: bool, expected: int) -> None:
    stat = BackupStat(NOW, None, {TIMER: FileMeta("0644", "root", "root", 100),
                                  SERVICE: FileMeta("0644", "root", "root", 50),
                                  CRON: FileMeta("0644", "root", "root", 200)})
    assert stat.schedule_mtime(DB, systemd) == expected
    assert BackupStat(NOW).schedule_mtime(DB, systemd) is None


def test_status_listing_is_the_app_database_s_dumps_newest_first(tmp_path: Path) -> None:
    d = _tree(tmp_path)
    config = HostConfig(backup_dir=str(d))
    st = status_cmd.parse_status("db01", {"sql": "", "backup": _run(
        status_cmd.backup_script(config.backup_dir, config.db_name))}, config, None)
    assert [(b.path.rsplit("/", 1)[1], b.kind) for b in st.backups] == [
        (f"{DB}-20231114T030000Z-scheduled.dump", "scheduled"),
        (f"{DB}-20231113T030000Z-scheduled.dump", "scheduled"),
        (f"{DB}-20231101T120000Z-before-52.dump", "before-migration")]
    assert st.backups[0].size == 10 and not st.backup_dir_missing
    missing = HostConfig(backup_dir=str(tmp_path / "none"))
    st = status_cmd.parse_status("db01", {"sql": "", "backup": _run(
        status_cmd.backup_script(missing.backup_dir, missing.db_name))}, missing, None)
    assert st.backup_dir_missing and st.backups == []


# -- status: the backup rows -----------------------------------------------------------------------

class _Script(Transport):
    """Answers the status script with canned sections, under the script's own marker."""

    def __init__(self, sections: dict[str, str]) -> None:
        super().__init__()
        self.sections = sections
        self.scripts: list[str] = []
        self._uid = 0

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        self.scripts.append(command)
        marker = command.split("echo '", 1)[1].split(" ", 1)[0]
        return Result(0, "".join(f"{marker} {name}\n{text}"
                                 for name, text in self.sections.items()), "")


def test_status_reads_the_schedule_in_its_one_script() -> None:
    t = _Script({"sql": "", "pid1": "systemd\n",
                 f"backup {SCRIPT}": "#!/bin/sh\n", f"backup {SERVICE}": "[Service]\n",
                 f"backup {TIMER}": "[Timer]\nOnCalendar=*-*-* 03:00:00\n",
                 f"backup {CRON}": "MISSING\n",
                 "backup-timer": "UnitFileState=enabled\nActiveState=active\n",
                 "cron": "no\n",
                 "backup": f"{NOW} 2048 {DIR}/{DB}-20231114T221320Z-manual.dump\n"})
    st = status_cmd.read_status("db01", t, HostConfig(), None)
    assert len(t.scripts) == 1
    assert "systemctl show -p UnitFileState -p ActiveState" in t.scripts[0]
    assert "/proc/1/comm" in t.scripts[0]
    assert st.backup_files == {SCRIPT, SERVICE, TIMER}
    assert (st.pid1, st.backup_timer, st.backup_when) == (
        "systemd", "enabled active", "OnCalendar *-*-* 03:00:00")
    assert st.backup == BackupFile(f"{DIR}/{DB}-20231114T221320Z-manual.dump", "manual", NOW,
                                   2048)
    lines = status_cmd.format_status(st, now=NOW + 90).splitlines()
    assert lines[-3].startswith(f"  last backup  {DIR}/{DB}-20231114T221320Z-manual.dump "
                                "(manual, 2048 bytes, ")
    assert lines[-3].endswith(", 0:01:30 ago)")
    assert lines[-2:] == [
        "  backups      1 (1 manual)",
        f"  schedule     systemd timer {UNIT} (enabled, active, OnCalendar *-*-* 03:00:00)"]


def _status(backup: str = "pg_dump", pid1: str = "systemd", files: tuple[str, ...] = (),
            timer: str = "", when: str = "", cron: bool | None = None) -> status_cmd.HostStatus:
    return status_cmd.HostStatus("db01", db_name=DB, backup_setting=backup, pid1=pid1,
                                 backup_files=frozenset(files), backup_timer=timer,
                                 backup_when=when, cron_running=cron)


STATUS_SCHEDULE_CASES = {
    "timer": (_status(files=(SCRIPT, SERVICE, TIMER), timer="enabled active",
                      when="OnCalendar daily"),
              f"systemd timer {UNIT} (enabled, active, OnCalendar daily)"),
    "timer disabled": (_status(files=(SERVICE, TIMER), timer="disabled inactive"),
                       f"systemd timer {UNIT} (disabled, inactive)"),
    "timer, state unread": (_status(files=(TIMER,)), f"systemd timer {UNIT} (state unknown)"),
    "cron": (_status(pid1="sh", files=(SCRIPT, CRON), cron=True, when="daily at 03:17"),
             f"cron entry {CRON} (cron running, daily at 03:17)"),
    "cron entry, no daemon": (_status(pid1="sh", files=(CRON,), cron=False),
                              f"cron entry {CRON} (no cron daemon running: it never runs)"),
    "nothing runs one": (_status(pid1="sh", cron=False),
                         "none: no systemd and no cron daemon (backup=pg_dump: run cron, or "
                         "set backup=none)"),
    "not yet applied": (_status(files=(SCRIPT,)), "none (backup=pg_dump: apply schedules it)"),
    "cron daemon, no entry": (_status(pid1="sh", cron=True),
                              "none (backup=pg_dump: apply schedules it)"),
    "backup=none": (_status("none", files=(SCRIPT,)), "none (backup=none)"),
    "backup=none, timer left": (
        _status("none", files=(SERVICE, TIMER), timer="enabled active"),
        f"systemd timer {UNIT} (enabled, active); backup=none: apply removes it"),
}


@pytest.mark.parametrize(("st", "expected"), STATUS_SCHEDULE_CASES.values(),
                         ids=STATUS_SCHEDULE_CASES.keys())
def test_status_schedule_row(st: status_cmd.HostStatus, expected: str) -> None:
    assert status_cmd.schedule_text(st) == expected


@pytest.mark.parametrize(("entry", "when"), [
    (f"SHELL=/bin/sh\nPATH=/usr/bin\n17 3 * * * postgres {SCRIPT} {DB} 5432\n", "daily at 03:17"),
    ("# no entry\n", ""),
])
def test_status_reads_the_cron_entry_s_time(entry: str, when: str) -> None:
    st = status_cmd.parse_status("db01", {"sql": "", "backup": "", "pid1": "sh\n",
                                          "cron": "yes\n", f"backup {CRON}": entry},
                                 HostConfig(), None)
    assert (st.backup_when, st.cron_running, st.backup_files) == (when, True,
                                                                  frozenset({CRON}))


def test_backup_counts_by_kind() -> None:
    found = [_dump(1), _dump(2, "before-upgrade"), _dump(3), _dump(4, "before-migration"),
             _dump(5, "manual")]
    assert status_cmd.backup_counts(found) == \
        "5 (2 scheduled, 1 manual, 1 before-migration, 1 before-upgrade)"
