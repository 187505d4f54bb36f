"""backup=pgbackrest's pure parts, by tables: the stanza's configuration, the archive
settings in the drop-in, pgBackRest's `info` JSON (real outputs of pgBackRest 2.45), the
listings, --time, the restore's configuration and script, the probe's section, verify's
checks and the variables. The shell the host runs (the scheduled backup script, the
listing, the probe, the restore) is run here by /bin/sh against a folder in tmp_path,
with fake `pgbackrest`, `runuser` and PostgreSQL programs first in PATH that record
their arguments. The drill against a real pgBackRest is the test bed's."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from installer.desired import backups
from installer.desired.backups import BackupFile, PgbackrestInfo
from installer.desired.config import DEFAULT_BACKUP_DIR, HostConfig
from installer.desired.settings import plan_settings
from installer.errors import UsageError
from installer.host.state import (
    HostState,
    PgbackrestState,
    parse_pgbackrest,
    pgbackrest_section,
)
from installer.steps.backups import ScheduleBackups, pgbackrest_run, stanza_script
from installer.steps.base import StepFailed
from installer.steps.preflight import Preflight
from installer.verify import checks
from tests.unit.stepkit import OK, FakeHost, facts, harness, out, state

STANZA = backups.STANZA
DB = "chatalot"

#: `pgbackrest --stanza=exp --output=json info` of pgBackRest 2.45: one full backup
INFO_SAMPLE = (
    '[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1",'
    '"max":"000000010000000000000006","min":"000000010000000000000006"}],'
    '"backup":[{"archive":{"start":"000000010000000000000006",'
    '"stop":"000000010000000000000006"},"backrest":{"format":5,"version":"2.45"},'
    '"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":30428017,'
    '"repository":{"delta":4042001,"size":4042001},"size":30428017},'
    '"label":"20261202-192035F","lsn":{"start":"0/6000028","stop":"0/6000138"},'
    '"prior":null,"reference":null,"timestamp":{"start":1796239235,"stop":1796239237},'
    '"type":"full"}],"cipher":"none","db":[{"id":1,"repo-key":1,'
    '"system-id":7714788591364903451,"version":"15"}],"name":"exp","repo":[{"cipher":"none",'
    '"key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":'
    '{"held":false}},"message":"ok"}}]'
)
#: the same of a stanza the repository does not hold (`--stanza=nosuch`)
INFO_MISSING = (
    '[{"archive":[],"backup":[],"cipher":"none","db":[],"name":"nosuch","repo":[{"cipher":'
    '"none","key":1,"status":{"code":1,"message":"missing stanza path"}}],"status":{"code":1,'
    '"lock":{"backup":{"held":false}},"message":"missing stanza path"}}]'
)
FULL = "20261202-192035F"
DIFF = "20261202-192035F_20261203-030000D"
INCR = "20261202-192035F_20261203-120000I"
FULL_STOP = 1796239237


def _info(stanza: str = "exp", *extra: dict[str, object],
          archive: list[dict[str, object]] | None = None) -> str:
    """INFO_SAMPLE renamed to `stanza`, with `extra` backup entries (and other archives)."""
    data = json.loads(INFO_SAMPLE)
    data[0]["name"] = stanza
    data[0]["backup"] += list(extra)
    if archive is not None:
        data[0]["archive"] = archive
    return json.dumps(data)


def _entry(label: str, kind: str, stop: int, delta: int) -> dict[str, object]:
    """A backup entry as pgBackRest writes one (the fields parse_pgbackrest_info reads)."""
    return {"label": label, "type": kind, "timestamp": {"start": stop - 5, "stop": stop},
            "info": {"delta": delta * 4, "repository": {"delta": delta, "size": delta * 2},
                     "size": delta * 8},
            "prior": FULL, "reference": [FULL], "error": False}


# -- the stanza's configuration and the archive settings ---------------------------------------

@pytest.mark.parametrize(("stanza", "data_dir", "port", "repo", "keep"), [
    ("chatalot", "/var/lib/postgresql/15/main", 5432, "/var/backups/chatalot/pgbackrest", 7),
    ("other", "/srv/pg data", 5433, "/mnt/repo", 30),
])
def test_pgbackrest_conf(stanza: str, data_dir: str, port: int, repo: str, keep: int) -> None:
    text = backups.pgbackrest_conf(stanza, data_dir, port, repo, keep)
    lines = text.splitlines()
    assert lines[0].startswith("# Written by chatalot-db apply (backup=pgbackrest)")
    assert lines[1] == f"[{stanza}]"  # one section: our stanza's, nothing global
    assert sum(1 for ln in lines if ln.startswith("[")) == 1
    options = dict(ln.split("=", 1) for ln in lines[2:])
    assert options["pg1-path"] == data_dir
    assert options["pg1-port"] == str(port)
    assert options["repo1-path"] == repo
    # time-based retention: the full backups point-in-time recovery `keep` days back needs
    assert options["repo1-retention-full-type"] == "time"
    assert options["repo1-retention-full"] == str(keep)
    assert text.endswith("\n")


@pytest.mark.parametrize(("backup", "stanza"), [("pgbackrest", "chatalot"), ("pg_dump", None),
                                                 ("none", None)])
def test_stanza_of(backup: str, stanza: str | None) -> None:
    assert backups.stanza_of(backup) == stanza


def test_archive_settings() -> None:
    assert backups.archive_command("s") == "pgbackrest --stanza=s archive-push %p"
    assert backups.archive_settings("chatalot") == {
        "archive_mode": "on",
        "archive_command": "pgbackrest --stanza=chatalot archive-push %p"}


def test_the_pgbackrest_job_runs_its_script_as_the_schedule_does() -> None:
    job = backups.pgbackrest_job("/srv/repo")
    assert job.kind == "pgbackrest"
    assert job.argv == [backups.PGBR_SCRIPT, STANZA, "/srv/repo", "auto"]
    assert job.scripts == {backups.PGBR_SCRIPT: backups.PGBR_SCRIPT_TEXT}


# -- the drop-in's settings ----------------------------------------------------------------------

ARCHIVE_COMMAND = "pgbackrest --stanza=chatalot archive-push %p"
DEBIAN = facts("debian12")


def _settings(**hostvars: object) -> dict[str, str]:
    if hostvars.get("pg_profile") == "desktop":  # its 20 are fewer than the app's pool needs
        hostvars.setdefault("pg_max_connections", 60)
    return plan_settings(HostConfig.from_vars(hostvars), DEBIAN, 15)


SETTINGS_CASES = {
    "pgbackrest archives": (
        {"backup": "pgbackrest"},
        {"archive_mode": "on", "archive_command": ARCHIVE_COMMAND}),
    "pg_dump does not": (
        {"backup": "pg_dump"}, {"archive_mode": None, "archive_command": None}),
    "none does not": (
        {"backup": "none"}, {"archive_mode": None, "archive_command": None}),
    "the default (pg_dump) does not": (
        {}, {"archive_mode": None, "archive_command": None}),
    "desktop, pgbackrest: minimal cannot archive, replica": (
        {"backup": "pgbackrest", "pg_profile": "desktop"},
        {"wal_level": "replica", "archive_mode": "on", "archive_command": ARCHIVE_COMMAND}),
    "desktop, pg_dump: minimal stays": (
        {"backup": "pg_dump", "pg_profile": "desktop"},
        {"wal_level": "minimal", "archive_mode": None}),
    "chatalot profile, pgbackrest: wal_level untouched": (
        {"backup": "pgbackrest"}, {"wal_level": None}),
    "the user's archive_command wins": (
        {"backup": "pgbackrest", "pg_settings": {"archive_command": "/usr/local/bin/ship %p"}},
        {"archive_mode": "on", "archive_command": "/usr/local/bin/ship %p"}),
    "the user's wal_level wins over replica": (
        {"backup": "pgbackrest", "pg_profile": "desktop", "pg_settings": {"wal_level": "logical"}},
        {"wal_level": "logical", "archive_mode": "on"}),
    "the user's archive_timeout comes on top": (
        {"backup": "pgbackrest", "pg_settings": {"archive_timeout": "5min"}},
        {"archive_timeout": "5min", "archive_command": ARCHIVE_COMMAND}),
}


@pytest.mark.parametrize(("hostvars", "expected"), SETTINGS_CASES.values(),
                         ids=SETTINGS_CASES.keys())
def test_plan_settings_archives_with_pgbackrest(hostvars: dict[str, object],
                                                expected: dict[str, str | None]) -> None:
    wanted = _settings(**hostvars)
    assert {name: wanted.get(name) for name in expected} == expected


def test_pgbackrest_adds_only_the_archive_settings() -> None:
    dump, pgbr = _settings(backup="pg_dump"), _settings(backup="pgbackrest")
    assert {k: v for k, v in pgbr.items() if dump.get(k) != v} == {
        "archive_mode": "on", "archive_command": ARCHIVE_COMMAND}
    desktop = _settings(backup="pg_dump", pg_profile="desktop")
    changed = {k: v for k, v in _settings(backup="pgbackrest", pg_profile="desktop").items()
               if desktop.get(k) != v}
    assert changed == {"archive_mode": "on", "archive_command": ARCHIVE_COMMAND,
                       "wal_level": "replica"}


# -- pgBackRest's info -----------------------------------------------------------------------------

INFO_CASES = {
    "the real output: one full backup": (
        INFO_SAMPLE, "exp",
        PgbackrestInfo([BackupFile(FULL, "pgbackrest-full", FULL_STOP, 4042001)], (0, "ok"),
                       ("000000010000000000000006", "000000010000000000000006"))),
    "the real output of a missing stanza": (
        INFO_MISSING, "nosuch", PgbackrestInfo([], (1, "missing stanza path"))),
    "a diff and an incr added: newest first, the repository's delta as size": (
        _info("exp", _entry(DIFF, "diff", FULL_STOP + 30000, 1234),
              _entry(INCR, "incr", FULL_STOP + 60000, 99)), "exp",
        PgbackrestInfo([BackupFile(INCR, "pgbackrest-incr", FULL_STOP + 60000, 99),
                        BackupFile(DIFF, "pgbackrest-diff", FULL_STOP + 30000, 1234),
                        BackupFile(FULL, "pgbackrest-full", FULL_STOP, 4042001)], (0, "ok"),
                       ("000000010000000000000006", "000000010000000000000006"))),
    "an entry without its times is left out": (
        _info("exp", {"label": DIFF, "type": "diff"}), "exp",
        PgbackrestInfo([BackupFile(FULL, "pgbackrest-full", FULL_STOP, 4042001)], (0, "ok"),
                       ("000000010000000000000006", "000000010000000000000006"))),
    "an unknown type keeps its name": (
        _info("exp", _entry("X", "block", FULL_STOP + 1, 5)), "exp",
        PgbackrestInfo([BackupFile("X", "pgbackrest-block", FULL_STOP + 1, 5),
                        BackupFile(FULL, "pgbackrest-full", FULL_STOP, 4042001)], (0, "ok"),
                       ("000000010000000000000006", "000000010000000000000006"))),
    "two archives (before and after an upgrade): the oldest and the newest segment": (
        _info("exp", archive=[{"id": "15-1", "min": "000000010000000000000003",
                               "max": "000000010000000000000009"},
                              {"id": "16-2", "min": None, "max": None},
                              {"id": "17-3", "min": "000000010000000000000001",
                               "max": "00000001000000000000000A"}]), "exp",
        PgbackrestInfo([BackupFile(FULL, "pgbackrest-full", FULL_STOP, 4042001)], (0, "ok"),
                       ("000000010000000000000001", "00000001000000000000000A"))),
    "JSON of another stanza": (
        INFO_SAMPLE, STANZA, PgbackrestInfo([], None, error="no stanza chatalot in pgBackRest's "
                                                           "info")),
    "our stanza among others": (
        json.dumps(json.loads(INFO_MISSING) + json.loads(_info(STANZA))), STANZA,
        PgbackrestInfo([BackupFile(FULL, "pgbackrest-full", FULL_STOP, 4042001)], (0, "ok"),
                       ("000000010000000000000006", "000000010000000000000006"))),
    "JSON, not a list": ('{"name": "chatalot"}', STANZA,
                         PgbackrestInfo([], None, error="no stanza chatalot in pgBackRest's info")),
    "garbage: pgBackRest's error, as said": (
        "ERROR: [055]: unable to load info file '/r/backup/chatalot/backup.info'\n", STANZA,
        PgbackrestInfo([], None,
                       error="ERROR: [055]: unable to load info file "
                             "'/r/backup/chatalot/backup.info'")),
    "no output": ("", STANZA, PgbackrestInfo([], None, error="no output")),
}


@pytest.mark.parametrize(("text", "stanza", "expected"), INFO_CASES.values(),
                         ids=INFO_CASES.keys())
def test_parse_pgbackrest_info(text: str, stanza: str, expected: PgbackrestInfo) -> None:
    assert backups.parse_pgbackrest_info(text, stanza) == expected


def test_a_long_error_keeps_its_end() -> None:
    info = backups.parse_pgbackrest_info("x" * 500 + "the end", STANZA)
    assert info.status is None and len(info.error) == 300 and info.error.endswith("the end")


# -- listings --------------------------------------------------------------------------------------

LISTING = (
    "1796200000 2048 /d/chatalot-20261202T030000Z-scheduled.dump\n"
    f"{backups.PGBR_INFO}"
    + _info(STANZA, _entry(DIFF, "diff", FULL_STOP + 40000, 1234)) + "\n"
    f"{FULL_STOP + 100} 4096 /d/chatalot-20261202T192200Z-manual.dump\n"
    "1796300000 10 /d/other-20261203T030000Z-manual.dump\n"
    "garbage\n"
)

LISTING_CASES = {
    "with our stanza: dumps and pgBackRest's backups, newest first": (
        LISTING, STANZA,
        [(DIFF, "pgbackrest-diff", FULL_STOP + 40000, 1234),
         ("/d/chatalot-20261202T192200Z-manual.dump", "manual", FULL_STOP + 100, 4096),
         (FULL, "pgbackrest-full", FULL_STOP, 4042001),
         ("/d/chatalot-20261202T030000Z-scheduled.dump", "scheduled", 1796200000, 2048)]),
    "without a stanza the pgBackRest line is ignored": (
        LISTING, None,
        [("/d/chatalot-20261202T192200Z-manual.dump", "manual", FULL_STOP + 100, 4096),
         ("/d/chatalot-20261202T030000Z-scheduled.dump", "scheduled", 1796200000, 2048)]),
    "another stanza's JSON adds nothing": (
        LISTING.replace(f'"name": "{STANZA}"', '"name": "exp"'), STANZA,
        [("/d/chatalot-20261202T192200Z-manual.dump", "manual", FULL_STOP + 100, 4096),
         ("/d/chatalot-20261202T030000Z-scheduled.dump", "scheduled", 1796200000, 2048)]),
    "pgBackRest's error instead of JSON adds nothing": (
        f"{backups.PGBR_INFO}ERROR: [103]: unable to find a valid repository\n"
        "5 1 /d/chatalot-20261202T030000Z-manual.dump\n", STANZA,
        [("/d/chatalot-20261202T030000Z-manual.dump", "manual", 5, 1)]),
}


@pytest.mark.parametrize(("text", "stanza", "expected"), LISTING_CASES.values(),
                         ids=LISTING_CASES.keys())
def test_parse_listing_with_pgbackrest(text: str, stanza: str | None,
                                       expected: list[tuple[str, str, int, int]]) -> None:
    files = backups.parse_listing(text, DB, stanza)
    assert [(f.path, f.kind, f.mtime, f.size) for f in files] == expected


@pytest.mark.parametrize(("text", "line"), [
    (LISTING, _info(STANZA, _entry(DIFF, "diff", FULL_STOP + 40000, 1234))),
    (f"{backups.PGBR_INFO}\n", ""),
    ("1 1 /d/chatalot-20261202T030000Z-manual.dump\n", None),
    (f"x{backups.PGBR_INFO}{{}}\n", None),  # the prefix starts the line, or it is none
])
def test_pgbackrest_info_line(text: str, line: str | None) -> None:
    assert backups.pgbackrest_info_line(text) == line


def test_the_listing_without_a_stanza_is_the_dumps_only() -> None:
    plain = backups.listing_script("/d", DB)
    assert backups.listing_script("/d", DB, None) == plain
    assert "pgbackrest" not in plain
    with_stanza = backups.listing_script("/d", DB, STANZA)
    assert with_stanza.startswith(plain)
    assert "--stanza=chatalot --output=json info" in with_stanza
    for script in (plain, with_stanza):
        r = subprocess.run(["/bin/sh", "-n", "-c", script], capture_output=True, text=True,
                           check=False)
        assert r.returncode == 0, r.stderr


# -- --time ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "taken"), [
    ("2026-12-02 03:00:00", "2026-12-02 03:00:00"),
    ("2026-12-02T03:00:00", "2026-12-02 03:00:00"),
    ("2026-12-02 03:00", "2026-12-02 03:00"),
    ("2026-12-02 03:00:00.5", "2026-12-02 03:00:00.5"),
    ("2026-12-02 03:00:00.123456", "2026-12-02 03:00:00.123456"),
    ("2026-12-02 03:00:00+02", "2026-12-02 03:00:00+02"),
    ("2026-12-02 03:00:00+02:00", "2026-12-02 03:00:00+02:00"),
    ("2026-12-02 03:00:00 -05:30", "2026-12-02 03:00:00 -05:30"),
    ("2026-12-02 03:00:00-0530", "2026-12-02 03:00:00-0530"),
    ("2026-12-02 03:00:00 UTC", "2026-12-02 03:00:00 UTC"),
    ("  2026-12-02 03:00  ", "2026-12-02 03:00"),
])
def test_check_time_accepts(text: str, taken: str) -> None:
    assert backups.check_time(text) == taken


@pytest.mark.parametrize("text", ["2026-12-02T03:00:00Z", "2026-12-02 03:00:00Z",
                                  "2026-12-02 03:00:00 Z", "2026-12-02 03:00:00.5Z"])
def test_a_trailing_z_reaches_postgresql_as_an_offset(text: str) -> None:
    taken = backups.check_time(text)  # ISO 8601's UTC: accepted, in a form PostgreSQL takes
    assert not taken.endswith("Z") and taken.endswith(("+00", "+00:00", " UTC"))


@pytest.mark.parametrize("text", [
    "", "now", "yesterday", "2026-12-02", "03:00:00", "2026-12-02 03", "2026-12-02 3:00",
    "26-12-02 03:00", "2026/12/02 03:00", "2026-12-02 03:00:00.1234567",
    "2026-12-02 03:00:00 CET", "2026-12-02 03:00:00 utc", "2026-12-02 03:00:00+2",
    "2026-12-02 03:00:00; rm -rf /", "2026-12-02 03:00:00' --type=immediate",
    "2026-12-02\n03:00:00", "2026-12-02 03:00:00\nx", "2026-12-02 03:00:00 +02:00 UTC",
])
def test_check_time_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"--time must be 'YYYY-MM-DD HH:MM:SS'"):
        backups.check_time(text)


# -- the restore -----------------------------------------------------------------------------------

WORKDIR = "/var/backups/chatalot/restore-20261203T100000Z"
MINIMUMS = {"max_connections": "200", "max_worker_processes": "8", "max_wal_senders": "10",
            "max_prepared_transactions": "0", "max_locks_per_transaction": "64"}


def _conf(text: str) -> dict[str, str]:
    pairs = [ln.split(" = ", 1) for ln in text.splitlines()]
    assert all(len(p) == 2 for p in pairs), text
    conf = {name: value for name, value in pairs}
    assert len(conf) == len(pairs), "a setting twice"
    return conf


@pytest.mark.parametrize(("minimums", "expected"), [
    (MINIMUMS, MINIMUMS),
    ({}, {}),
    # only digits: what the live server said, nothing else gets into the file
    ({"max_connections": "100", "max_wal_senders": "", "max_worker_processes": "8; x",
      "max_locks_per_transaction": "-1", "shared_buffers": "1GB", "bogus": "5"},
     {"max_connections": "100"}),
])
def test_restore_conf(minimums: dict[str, str], expected: dict[str, str]) -> None:
    conf = _conf(backups.restore_conf(WORKDIR, 5499, minimums))
    assert conf["listen_addresses"] == "''"  # no TCP
    assert conf["port"] == "5499"
    # the socket folder is a short one of its own, given on the command line
    assert "unix_socket_directories" not in conf
    assert conf["archive_mode"] == "off"  # never pushes into the stanza's archive
    assert conf["timezone"] == "'UTC'"  # --time without an offset is UTC
    # the restore script asks pg_is_in_recovery() while it recovers: connections allowed
    assert conf.get("hot_standby", "on") == "on"
    assert {k: v for k, v in conf.items() if k in backups.RECOVERY_MINIMUMS} == expected
    assert conf["shared_buffers"] == "128MB"  # its own, whatever the live server has
    assert "bogus" not in conf


def _restore_script(label: str | None, target_time: str | None, workdir: str = WORKDIR,
                    live_major: int | None = None, other_bindirs: tuple[str, ...] = (),
                    **programs: str) -> str:
    return backups.pgbackrest_restore_script(
        workdir=workdir, stanza=STANZA, db_name=DB, port=5499, label=label,
        target_time=target_time, pg_ctl=programs.get("pg_ctl", "/usr/lib/postgresql/15/bin/pg_ctl"),
        pg_dump=programs.get("pg_dump", "/usr/lib/postgresql/15/bin/pg_dump"),
        psql=programs.get("psql", "/usr/lib/postgresql/15/bin/psql"), minimums=MINIMUMS,
        live_major=live_major, other_bindirs=other_bindirs,
        other_package="postgresql-{major}" if other_bindirs else "")


def _restore_argv(script: str) -> list[str]:
    (line,) = [ln for ln in script.splitlines() if ln.endswith(" restore")
               and " pgbackrest " in ln]
    return shlex.split(line)


RESTORE_CASES = {
    "a backup": (FULL, None, [f"--set={FULL}", "--type=immediate"]),
    "a backup, then WAL up to a time": (
        FULL, "2026-12-03 10:00:00", [f"--set={FULL}", "--type=time",
                                      "--target=2026-12-03 10:00:00"]),
    "a time: pgBackRest picks the backup": (
        None, "2026-12-03 10:00:00+02:00", ["--type=time", "--target=2026-12-03 10:00:00+02:00"]),
}


@pytest.mark.parametrize(("label", "target_time", "options"), RESTORE_CASES.values(),
                         ids=RESTORE_CASES.keys())
def test_pgbackrest_restore_script(label: str | None, target_time: str | None,
                                   options: list[str]) -> None:
    script = _restore_script(label, target_time)
    r = subprocess.run(["/bin/sh", "-n", "-c", script], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    argv = _restore_argv(script)
    assert argv[:4] == ["runuser", "-u", "postgres", "--"] and argv[4] == "pgbackrest"
    assert argv[-1] == "restore"
    opts = argv[5:-1]
    assert f"--stanza={STANZA}" in opts
    assert f"--pg1-path={WORKDIR}/cluster" in opts  # its own cluster, never the live one
    assert f"--db-include={DB}" in opts
    assert "--target-action=promote" in opts
    assert [o for o in opts if o.startswith(("--set=", "--type=", "--target="))] == options
    assert "archive_mode = off" in script
    assert "archive_mode = on" not in script and "archive_mode=on" not in script
    checked = f"runuser -u postgres -- pgbackrest --stanza={STANZA} --log-level-console=warn check"
    if target_time is None:
        assert checked not in script
    else:  # the live WAL up to now archived before recovering to a time
        assert script.index(checked) < script.index(" restore\n")
    assert script.index(" restore\n") < script.index(" start >/dev/null") \
        < script.index("pg_is_in_recovery()") < script.index("--format=custom")
    assert f"echo dump {WORKDIR}/restored.dump" in script


def _fake_bin(tmp_path: Path) -> Path:
    """Fake programs recording `NAME ARGS` into $FAKE_LOG: `runuser` (runs what follows
    `--` as the caller), `pgbackrest` (backup: a label folder and the `latest` link under
    $FAKE_REPO/backup/STANZA; restore: a file in --pg1-path; info: $FAKE_INFO), and
    pg_ctl, psql, pg_dump standing in for PostgreSQL's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "runuser": 'while [ "$1" != -- ]; do shift; done; shift; exec "$@"',
        "pgbackrest": """\
stanza= type= pg=
for a; do case $a in
    --stanza=*) stanza=${a#--stanza=} ;; --type=*) type=${a#--type=} ;;
    --pg1-path=*) pg=${a#--pg1-path=} ;;
esac; done
for cmd; do :; done
case $cmd in
backup)
    [ "${FAKE_BACKUP_RC:-0}" = 0 ] || { echo "ERROR: [056]: backup failed" >&2; exit 56; }
    d="$FAKE_REPO/backup/$stanza"
    case $type in full) label=20261203-030000F ;;
        diff) label=20261202-030000F_20261203-030000D ;;
        *) label=20261202-030000F_20261203-030000I ;; esac
    mkdir -p "$d/$label"; ln -sfn "$label" "$d/latest" ;;
restore) [ "${FAKE_RESTORE_RC:-0}" = 0 ] || exit "$FAKE_RESTORE_RC"
    echo "${FAKE_PG_VERSION:-15}" > "$pg/PG_VERSION" ;;
info) printf '%s\\n' "$FAKE_INFO" ;;
esac""",
        "pg_ctl": """\
for a; do case $prev in -l) log=$a ;; esac; prev=$a; done
case " $* " in
*" status "*) [ -z "${FAKE_STOPPED:-}" ] || exit 3 ;;
*" start "*) printf '%s\\n' "LOG:  recovery stopping before commit of transaction 9" \\
    "LOG:  last completed transaction was at log time 2026-12-03 09:59:58+00" >> "$log" ;;
esac""",
        "psql": 'echo "${FAKE_RECOVERING:-f}"',
        "pg_dump": '[ "${FAKE_DUMP_RC:-0}" = 0 ] || exit "$FAKE_DUMP_RC"\n'
                   'for a; do case $prev in -f) echo dump > "$a" ;; esac; prev=$a; done',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> "$FAKE_LOG"\n{body}\n')
        path.chmod(0o755)
    return bin_dir


def _env(tmp_path: Path, bin_dir: Path, **extra: str) -> dict[str, str]:
    return {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "FAKE_LOG": str(tmp_path / "calls.log"), "HOME": str(tmp_path), **extra}


def _calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def _run_sh(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", script, "sh", *args], capture_output=True,
                          text=True, check=False, env=env, timeout=60)


@pytest.mark.parametrize(("label", "target_time"), [(FULL, None), (None, "2026-12-03 10:00:00")])
def test_the_restore_script_runs_and_keeps_only_the_dump(tmp_path: Path, label: str | None,
                                                         target_time: str | None) -> None:
    bin_dir = _fake_bin(tmp_path)
    work = tmp_path / "backups dir" / "restore-x"
    work.parent.mkdir()
    script = _restore_script(label, target_time, str(work), pg_ctl=str(bin_dir / "pg_ctl"),
                             pg_dump=str(bin_dir / "pg_dump"), psql=str(bin_dir / "psql"))
    r = _run_sh(script, _env(tmp_path, bin_dir))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == f"dump {work}/restored.dump"
    assert "log LOG:  recovery stopping before commit of transaction 9" in lines
    assert (work / "restored.dump").read_text() == "dump\n"
    assert not (work / "cluster").exists()  # the restored cluster is removed, the dump stays
    conf = _conf((work / "restore.conf").read_text())
    assert "unix_socket_directories" not in conf and conf["archive_mode"] == "off"
    started = next(c for c in _calls(tmp_path) if " start" in c and "pg_ctl" in c)
    # on the command line (over postgresql.auto.conf): no archiving, the socket folder
    assert "-c archive_mode=off" in started, started
    assert "-c unix_socket_directories=/tmp/chatalot-db-restore." in started, started
    assert not list(Path("/tmp").glob("chatalot-db-restore.*"))  # removed again
    assert (work / "restore.hba").read_text() == "local all postgres peer\n"
    assert (work / "restore.ident").read_text() == ""
    assert oct(work.stat().st_mode & 0o777) == "0o700"
    calls = [c.split(" ", 1)[0] for c in _calls(tmp_path) if not c.startswith("runuser")]
    checks_first = ["pgbackrest"] if target_time is not None else []
    assert calls == [*checks_first, "pgbackrest", "pg_ctl", "psql", "pg_dump", "pg_ctl"]
    starts = [c for c in _calls(tmp_path) if c.startswith("pg_ctl") and " start" in c]
    assert len(starts) == 1 and f"config_file={work}/restore.conf" in starts[0]


def test_a_failed_restore_removes_its_folder(tmp_path: Path) -> None:
    bin_dir = _fake_bin(tmp_path)
    work = tmp_path / "restore-x"
    script = _restore_script(FULL, None, str(work), pg_ctl=str(bin_dir / "pg_ctl"),
                             pg_dump=str(bin_dir / "pg_dump"), psql=str(bin_dir / "psql"))
    r = _run_sh(script, _env(tmp_path, bin_dir, FAKE_RESTORE_RC="38"))
    assert r.returncode != 0
    assert "dump " not in r.stdout
    assert not work.exists()
    assert not any(c.startswith(("pg_ctl", "pg_dump")) for c in _calls(tmp_path))


@pytest.mark.parametrize(("failing", "said"), [
    ({"FAKE_DUMP_RC": "1"}, ""),
    ({"FAKE_RECOVERING": "t", "FAKE_STOPPED": "yes"},
     "the restored cluster stopped while recovering: its log says:"),
])
def test_a_restore_failing_once_started_stops_the_cluster(tmp_path: Path,
                                                          failing: dict[str, str],
                                                          said: str) -> None:
    bin_dir = _fake_bin(tmp_path)
    work = tmp_path / "restore-x"
    script = _restore_script(FULL, None, str(work), pg_ctl=str(bin_dir / "pg_ctl"),
                             pg_dump=str(bin_dir / "pg_dump"), psql=str(bin_dir / "psql"))
    r = _run_sh(script, _env(tmp_path, bin_dir, **failing))
    assert r.returncode != 0 and "dump " not in r.stdout
    assert said in r.stderr
    assert not work.exists()
    pg_ctl = [c.split()[-1] for c in _calls(tmp_path) if c.startswith("pg_ctl")
              and " status" not in c]
    assert pg_ctl == ["start", "stop"]  # started, then stopped (immediate) by the trap
    (stop,) = [c for c in _calls(tmp_path) if c.startswith("pg_ctl") and c.endswith(" stop")]
    assert "-m immediate" in stop


OTHER_MAJOR_CASES = {
    # (the restored cluster's major, whether the other major's pg_ctl is installed,
    #  which pg_ctl starts and stops it: None when the restore stops before starting)
    "the live major: its own pg_ctl": ("17", False, "pg_ctl"),
    "a backup from before the upgrade: 15's pg_ctl": ("15", True, "pg_ctl15"),
    "15's programs removed: a clear error, nothing started": ("15", False, None),
}


@pytest.mark.parametrize(("version", "installed", "used"), OTHER_MAJOR_CASES.values(),
                         ids=OTHER_MAJOR_CASES.keys())
def test_a_backup_of_another_major_starts_with_that_majors_pg_ctl(
        tmp_path: Path, version: str, installed: bool, used: str | None) -> None:
    bin_dir = _fake_bin(tmp_path)
    pattern = f"{tmp_path}/old dirs/{{major}}/bin"
    if installed:  # the fake pg_ctl, logging under another name
        old = Path(pattern.format(major=version))
        old.mkdir(parents=True)
        (old / "pg_ctl").write_text((bin_dir / "pg_ctl").read_text().replace(
            'echo "pg_ctl ', 'echo "pg_ctl15 ', 1))
        (old / "pg_ctl").chmod(0o755)
    work = tmp_path / "restore-x"
    script = _restore_script(FULL, None, str(work), live_major=17,
                             other_bindirs=("/nonexistent/{major}", pattern),
                             pg_ctl=str(bin_dir / "pg_ctl"), pg_dump=str(bin_dir / "pg_dump"),
                             psql=str(bin_dir / "psql"))
    r = _run_sh(script, _env(tmp_path, bin_dir, FAKE_PG_VERSION=version))
    ctls = [c.split()[0] for c in _calls(tmp_path) if c.startswith("pg_ctl")]
    if used is None:
        assert r.returncode != 0 and "dump " not in r.stdout
        assert r.stderr.strip() == (
            "the backup is of PostgreSQL 15 (this host's server is 17): its restore needs "
            f"15's pg_ctl, which is not in /nonexistent/15, {pattern.format(major=15)}; install "
            "postgresql-15 and restore again. Nothing was changed")
        assert ctls == [] and not work.exists()
        return
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"dump {work}/restored.dump"
    assert set(ctls) == {used} and len(ctls) >= 2  # started and stopped by the same one


# -- the scheduled backup script -------------------------------------------------------------------

def _backup(tmp_path: Path, *args: str, rc: int = 0) -> tuple[subprocess.CompletedProcess[str],
                                                              list[str]]:
    bin_dir = tmp_path / "bin"
    if not bin_dir.exists():
        _fake_bin(tmp_path)
    repo = tmp_path / "repo"
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    r = _run_sh(backups.PGBR_SCRIPT_TEXT,
                _env(tmp_path, bin_dir, FAKE_REPO=str(repo), FAKE_BACKUP_RC=str(rc)),
                STANZA, str(repo), *args)
    return r, [c for c in _calls(tmp_path) if c.startswith("pgbackrest ")]


def _full_dir(tmp_path: Path, label: str, age_s: float) -> Path:
    d = tmp_path / "repo" / "backup" / STANZA / label
    d.mkdir(parents=True)
    t = time.time() - age_s
    os.utime(d, (t, t))
    return d


def _type_of(calls: list[str]) -> str:
    (call,) = calls
    argv = call.split()
    assert argv[:2] == ["pgbackrest", f"--stanza={STANZA}"] and argv[-1] == "backup"
    (t,) = [a for a in argv if a.startswith("--type=")]
    return t.removeprefix("--type=")


DAY = 86400
AUTO_CASES = {
    "no repository folder yet: full": ([], "full"),
    "a full backup finished now: diff": ([("20261202-030000F", 0)], "diff"),
    "the newest full 6 days old: diff": ([("20261202-030000F", 6 * DAY)], "diff"),
    "the newest full 7 days old: full": ([("20261202-030000F", 7 * DAY)], "full"),
    "6.5 days and an hour: full": ([("20261202-030000F", 6.5 * DAY + 3600)], "full"),
    "an old full, a fresh one: diff": ([("20261125-030000F", 8 * DAY),
                                        ("20261202-030000F", DAY)], "diff"),
    "a fresh diff is no full: full": ([("20261125-030000F", 8 * DAY),
                                       ("20261125-030000F_20261202-030000D", 0)], "full"),
    "other folders are no backups: full": ([("backup.history", 0), ("FULL-NOT", 0)], "full"),
}


@pytest.mark.parametrize(("folders", "kind"), AUTO_CASES.values(), ids=AUTO_CASES.keys())
def test_the_backup_script_picks_full_weekly_else_diff(tmp_path: Path,
                                                       folders: list[tuple[str, float]],
                                                       kind: str) -> None:
    for label, age in folders:
        _full_dir(tmp_path, label, age)
    r, calls = _backup(tmp_path)
    assert r.returncode == 0, r.stderr
    assert _type_of(calls) == kind
    assert "--log-level-console=warn" in calls[0].split()
    latest = os.readlink(tmp_path / "repo" / "backup" / STANZA / "latest")
    assert r.stdout.splitlines()[-1] == f"label {latest} {kind}"


def test_the_latest_link_to_a_fresh_full_is_no_full_backup(tmp_path: Path) -> None:
    old = _full_dir(tmp_path, "20261125-030000F", 8 * DAY)
    (old.parent / "20261202-030000F").symlink_to(old)  # a link ending in F: not a folder
    r, calls = _backup(tmp_path)
    assert r.returncode == 0, r.stderr
    assert _type_of(calls) == "full"


def test_the_backup_script_in_a_row_full_then_diff(tmp_path: Path) -> None:
    r, calls = _backup(tmp_path)
    assert (r.returncode, _type_of(calls)) == (0, "full")
    r, calls = _backup(tmp_path)  # the full just taken is the week's
    assert (r.returncode, _type_of(calls)) == (0, "diff")
    assert r.stdout.splitlines()[-1] == "label 20261202-030000F_20261203-030000D diff"


@pytest.mark.parametrize("kind", ["full", "diff", "incr"])
def test_an_explicit_type_passes_through(tmp_path: Path, kind: str) -> None:
    _full_dir(tmp_path, "20261202-030000F", 0)  # auto would say diff
    r, calls = _backup(tmp_path, kind)
    assert r.returncode == 0, r.stderr
    assert _type_of(calls) == kind
    assert r.stdout.splitlines()[-1].endswith(f" {kind}")


@pytest.mark.parametrize("kind", ["weekly", "FULL", "--type=full", "full; rm -rf /", ""])
def test_an_unknown_type_exits_2_without_pgbackrest(tmp_path: Path, kind: str) -> None:
    r, calls = _backup(tmp_path, kind)
    if kind == "":  # ${3:-auto}: an empty type is auto
        assert r.returncode == 0 and _type_of(calls) == "full"
        return
    assert r.returncode == 2
    assert f"unknown type {kind}" in r.stderr
    assert calls == []


def test_a_failed_backup_fails_the_script_without_a_label(tmp_path: Path) -> None:
    r, calls = _backup(tmp_path, rc=56)
    assert r.returncode == 56
    assert len(calls) == 1 and "label " not in r.stdout


def test_the_backup_script_runs_from_the_root_folder(tmp_path: Path) -> None:
    bin_dir = _fake_bin(tmp_path)
    (bin_dir / "pgbackrest").write_text('#!/bin/sh\npwd > "$FAKE_LOG"\n')
    r = _run_sh(backups.PGBR_SCRIPT_TEXT, _env(tmp_path, bin_dir), STANZA,
                str(tmp_path / "repo"), "full")
    assert r.returncode == 0, r.stderr
    assert _calls(tmp_path) == ["/"]  # postgres may not enter the caller's folder


# -- the listing on the host -----------------------------------------------------------------------

def test_the_listing_runs_with_pgbackrest_info(tmp_path: Path) -> None:
    bin_dir = _fake_bin(tmp_path)
    d = tmp_path / "dumps"
    d.mkdir()
    (d / f"{DB}-20261202T030000Z-scheduled.dump").write_text("x" * 10)
    os.utime(d / f"{DB}-20261202T030000Z-scheduled.dump", (1796200000, 1796200000))
    pretty = json.dumps(json.loads(INFO_SAMPLE.replace('"exp"', f'"{STANZA}"')), indent=2)
    env = _env(tmp_path, bin_dir, FAKE_INFO=pretty)
    r = _run_sh(backups.listing_script(str(d), DB, STANZA), env)
    assert r.returncode == 0, r.stderr
    files = backups.parse_listing(r.stdout, DB, STANZA)
    assert [(f.path, f.kind, f.size) for f in files] == [
        (FULL, "pgbackrest-full", 4042001),
        (f"{d}/{DB}-20261202T030000Z-scheduled.dump", "scheduled", 10)]
    info = backups.pgbackrest_info_line(r.stdout)
    assert info is not None and json.loads(info)[0]["name"] == STANZA  # on one line
    assert checks.pgbackrest_problems(info, STANZA) == []
    assert _calls(tmp_path)[-1] == "pgbackrest --stanza=chatalot --output=json info"


def test_the_listing_without_pgbackrest_installed(tmp_path: Path) -> None:
    d = tmp_path / "dumps"
    d.mkdir()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    stat = shutil.which("stat")
    assert stat is not None
    (empty / "stat").symlink_to(stat)  # the dumps' part needs stat only
    r = _run_sh(backups.listing_script(str(d), DB, STANZA), {"PATH": str(empty)})
    assert r.returncode == 0, r.stderr
    assert backups.pgbackrest_info_line(r.stdout) is None
    assert checks.pgbackrest_problems(backups.pgbackrest_info_line(r.stdout), STANZA) == [
        "pgbackrest is not installed (backup=pgbackrest; apply installs it)"]


# -- apply's probe ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("", PgbackrestState(False, False, ())),
    ("installed\n", PgbackrestState(True, False, ())),
    ("installed\nstanza\n", PgbackrestState(True, True, ())),
    ("stanza\n", PgbackrestState(False, True, ())),
    (f"installed\nstanza\nlabel {DIFF}\nlabel {FULL}\nlabel 20261125-030000F\n",
     PgbackrestState(True, True, ("20261125-030000F", FULL, DIFF))),
    ("installed-not\nstanzas\nlabels x\n", PgbackrestState(False, False, ())),
])
def test_parse_pgbackrest(text: str, expected: PgbackrestState) -> None:
    assert parse_pgbackrest(text) == expected


def test_the_pgbackrest_section_parses_and_names_the_repository() -> None:
    config = HostConfig(migrations_source=None, backup="pgbackrest",
                        pgbackrest_repo_path="/srv/pg repo")
    script = pgbackrest_section(config)
    r = subprocess.run(["/bin/sh", "-n", "-c", script], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert "'/srv/pg repo/backup/chatalot'/backup.info" in script
    assert "'/srv/pg repo/archive/chatalot'/archive.info" in script


def _probe(tmp_path: Path, path: str) -> PgbackrestState:
    config = HostConfig(migrations_source=None, backup="pgbackrest",
                        pgbackrest_repo_path=str(tmp_path / "repo"))
    r = _run_sh(pgbackrest_section(config), {"PATH": path})
    assert r.returncode == 0, r.stderr
    return parse_pgbackrest(r.stdout)


def test_the_pgbackrest_section_runs(tmp_path: Path) -> None:
    bin_dir = _fake_bin(tmp_path)
    nothing = tmp_path / "no-bin"
    nothing.mkdir()
    assert _probe(tmp_path, str(nothing)) == PgbackrestState(False, False, ())
    assert _probe(tmp_path, str(bin_dir)) == PgbackrestState(True, False, ())
    b, a = tmp_path / "repo" / "backup" / STANZA, tmp_path / "repo" / "archive" / STANZA
    b.mkdir(parents=True)
    (b / "backup.info").write_text("")
    assert _probe(tmp_path, str(bin_dir)) == PgbackrestState(True, False, ())  # both files
    a.mkdir(parents=True)
    (a / "archive.info").write_text("")
    for label in (FULL, DIFF):
        (b / label).mkdir()
    (b / "latest").symlink_to(DIFF)
    (b / "backup.history").mkdir()
    (b / "20261203-000000F.partial").write_text("")  # a file: no backup
    assert _probe(tmp_path, str(bin_dir)) == PgbackrestState(True, True, (FULL, DIFF))


# -- verify ----------------------------------------------------------------------------------------

PGBR_PROBLEM_CASES = {
    "not installed": (None, STANZA,
                      ["pgbackrest is not installed (backup=pgbackrest; apply installs it)"]),
    "ok": (_info(STANZA), STANZA, []),
    "the real missing stanza": (
        INFO_MISSING, "nosuch",
        ["pgBackRest says stanza nosuch is not in order: missing stanza path (code 1; "
         "`pgbackrest --stanza=nosuch check` as postgres says more)"]),
    "no valid backups": (
        INFO_SAMPLE.replace('"status":{"code":0,"lock"', '"status":{"code":2,"lock"')
        .replace('"message":"ok"}}]', '"message":"no valid backups"}}]'), "exp",
        ["pgBackRest says stanza exp is not in order: no valid backups (code 2; "
         "`pgbackrest --stanza=exp check` as postgres says more)"]),
    "another stanza's info": (
        INFO_SAMPLE, STANZA,
        ["pgBackRest's info on stanza chatalot could not be read: no stanza chatalot in "
         "pgBackRest's info"]),
    "an error instead of JSON": (
        "ERROR: [041]: unable to open file '/etc/pgbackrest/pgbackrest.conf'", STANZA,
        ["pgBackRest's info on stanza chatalot could not be read: ERROR: [041]: unable to open "
         "file '/etc/pgbackrest/pgbackrest.conf'"]),
}


@pytest.mark.parametrize(("info", "stanza", "expected"), PGBR_PROBLEM_CASES.values(),
                         ids=PGBR_PROBLEM_CASES.keys())
def test_pgbackrest_problems(info: str | None, stanza: str, expected: list[str]) -> None:
    assert checks.pgbackrest_problems(info, stanza) == expected


SCRIPT, PGBR_SCRIPT, PGBR_CONF = backups.SCRIPT_PATH, backups.PGBR_SCRIPT, backups.PGBR_CONF
SERVICE, TIMER, CRON = backups.schedule_paths(DB)
NO_PGBR_SCRIPT = (f"the backup script {PGBR_SCRIPT} does not exist: every scheduled run fails "
                  "(apply writes it)")
NO_PGBR_CONF = (f"the backup configuration {PGBR_CONF} does not exist: every scheduled run "
                "fails (apply writes it)")

SCHEDULE_CASES = {
    "systemd: all in place": (
        "systemd", [PGBR_SCRIPT, PGBR_CONF, SERVICE, TIMER], "enabled active", None, []),
    "systemd: the pg_dump script beside them": (
        "systemd", [SCRIPT, PGBR_SCRIPT, PGBR_CONF, SERVICE, TIMER], "enabled active", None,
        []),
    "systemd: only the pg_dump script": (
        "systemd", [SCRIPT, SERVICE, TIMER], "enabled active", None,
        [NO_PGBR_SCRIPT, NO_PGBR_CONF]),
    "systemd: no configuration": (
        "systemd", [PGBR_SCRIPT, SERVICE, TIMER], "enabled active", None, [NO_PGBR_CONF]),
    "systemd: no timer": (
        "systemd", [PGBR_SCRIPT, PGBR_CONF, SERVICE], "", None,
        [f"no backups are scheduled: {TIMER} does not exist (backup=pgbackrest; apply writes "
         "the timer)"]),
    "cron: all in place": ("sh", [PGBR_SCRIPT, PGBR_CONF, CRON], "", True, []),
    "cron: no script": ("sh", [PGBR_CONF, CRON], "", True, [NO_PGBR_SCRIPT]),
    "cron: no entry": (
        "sh", [PGBR_SCRIPT, PGBR_CONF], "", True,
        [f"no backups are scheduled: {CRON} does not exist (backup=pgbackrest; apply writes "
         "it where a cron daemon runs)"]),
}


@pytest.mark.parametrize(("pid1", "present", "timer", "cron", "expected"),
                         SCHEDULE_CASES.values(), ids=SCHEDULE_CASES.keys())
def test_backup_schedule_problems_with_pgbackrest(pid1: str, present: list[str], timer: str,
                                                  cron: bool | None,
                                                  expected: list[str]) -> None:
    assert checks.backup_schedule_problems("pgbackrest", DB, pid1, present, timer,
                                           cron) == expected


def test_pg_dump_does_not_want_the_pgbackrest_files() -> None:
    assert checks.backup_schedule_problems("pg_dump", DB, "systemd", [SCRIPT, SERVICE, TIMER],
                                           "enabled active", None) == []
    assert checks.backup_schedule_problems("pg_dump", DB, "systemd",
                                           [PGBR_SCRIPT, PGBR_CONF, SERVICE, TIMER],
                                           "enabled active", None) == [
        f"the backup script {SCRIPT} does not exist: every scheduled run fails (apply "
        "writes it)"]


# -- the variables ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("hostvars", "repo"), [
    ({"backup": "pgbackrest"}, f"{DEFAULT_BACKUP_DIR}/pgbackrest"),
    ({"backup": "pgbackrest", "backup_dir": "/srv/backups/"}, "/srv/backups/pgbackrest"),
    ({"backup": "pgbackrest", "backup_dir": "/srv/backups",
      "pgbackrest_repo_path": "/mnt/pgbackrest"}, "/mnt/pgbackrest"),
    ({"backup": "pgbackrest", "pgbackrest_repo_path": ""}, f"{DEFAULT_BACKUP_DIR}/pgbackrest"),
    ({"backup": "pgbackrest", "pgbackrest_repo_path": None}, f"{DEFAULT_BACKUP_DIR}/pgbackrest"),
    ({"backup": "pg_dump", "pgbackrest_repo_path": "/mnt/r"}, "/mnt/r"),
])
def test_pgbackrest_repo(hostvars: dict[str, object], repo: str) -> None:
    config = HostConfig.from_vars(hostvars)
    assert config.pgbackrest_repo == repo
    assert config.backup == hostvars["backup"]


@pytest.mark.parametrize(("value", "message"), [
    ("/etc", "pgbackrest_repo_path '/etc' is a shared system folder"),
    ("/", "pgbackrest_repo_path '/' is a shared system folder"),
    ("/var/lib", "pgbackrest_repo_path '/var/lib' is a shared system folder"),
    ("/usr/local/repo", "pgbackrest_repo_path '/usr/local/repo' is in /usr, the system's"),
    ("/etc/ssh/repo", "pgbackrest_repo_path '/etc/ssh/repo' is in /etc/ssh, the system's"),
    ("relative/repo", "pgbackrest_repo_path must be an absolute path"),
    ("/srv/../etc", "pgbackrest_repo_path must not contain '..'"),
])
def test_a_system_folder_is_no_repository(value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        HostConfig.from_vars({"backup": "pgbackrest", "pgbackrest_repo_path": value})


def test_an_unknown_backup_kind_names_pgbackrest() -> None:
    with pytest.raises(UsageError,
                       match=r"^backup must be one of pg_dump, pgbackrest, none, got 'barman'$"):
        HostConfig.from_vars({"backup": "barman"})


# -- apply's stanza commands -----------------------------------------------------------------------

def test_pgbackrest_run_is_postgres_on_our_stanza() -> None:
    assert shlex.split(pgbackrest_run("check")) == [
        "runuser", "-u", "postgres", "--", "pgbackrest", "--stanza=chatalot",
        "--log-level-console=warn", "check"]


MISMATCH = ("ERROR: [028]: backup and archive info files exist but do not match the database\n"
            "HINT: is this the correct stanza?\nHINT: did an error occur during stanza-upgrade?")


@pytest.mark.parametrize(("create_rc", "said", "was", "expected_rc", "ran", "stderr"), [
    (0, "", "15", 0, ["stanza-create"], ""),
    # the stanza's newest database is 15, the cluster 17: `chatalot-db upgrade` ran
    (28, MISMATCH, "15", 0, ["stanza-create", "info", "stanza-upgrade"], ""),
    # the same major: another cluster's stanza, never taken over
    (28, MISMATCH, "17", 1, ["stanza-create", "info"], "not taken over"),
    (55, "ERROR: [055]: unable to load info file", "15", 1, ["stanza-create"],
     "unable to load info file"),  # pgBackRest's words, passed on
])
def test_the_stanza_script(tmp_path: Path, create_rc: int, said: str, was: str,
                           expected_rc: int, ran: list[str], stderr: str) -> None:
    bin_dir = _fake_bin(tmp_path)
    (bin_dir / "pgbackrest").write_text(
        '#!/bin/sh\nfor cmd; do :; done\necho "$cmd" >> "$FAKE_LOG"\n'
        'if [ "$cmd" = stanza-create ]; then printf "%s\\n" "$SAID"; exit "$RC"; fi\n'
        'if [ "$cmd" = info ]; then printf \'[{"backup":[{"backrest":{"version":"2.45"}}],'
        '"db":[{"version":"14"},{"version":"%s"}]}]\' "$WAS"; fi\n')
    r = _run_sh(stanza_script(17), _env(tmp_path, bin_dir, RC=str(create_rc), SAID=said,
                                        WAS=was))
    assert r.returncode == expected_rc, r.stderr
    assert [c for c in _calls(tmp_path) if not c.startswith("runuser")] == ran
    assert stderr in r.stderr
    assert ("stanza-upgraded" in r.stdout.split()) == ("stanza-upgrade" in ran)


# -- apply's step, against a recorded host (the stepkit fakes) -------------------------------------

REPO = f"{DEFAULT_BACKUP_DIR}/pgbackrest"
PGBR_CONFIG = HostConfig(migrations_source=None, backup="pgbackrest")
CONF_TEXT = backups.pgbackrest_conf(STANZA, "/var/lib/postgresql/15/main", 5432, REPO, 7)


def _pgbr_files(conf: str | None = CONF_TEXT) -> dict[str, str | None]:
    """The backup files of a Debian 12 host that has backup=pgbackrest in place."""
    job = backups.pgbackrest_job(REPO)
    schedule = backups.systemd_schedule(DB, job, backups.DEFAULT_ON_CALENDAR,
                                        "postgresql@15-main.service")
    files: dict[str, str | None] = {p: None for p in (SCRIPT, PGBR_SCRIPT, SERVICE, TIMER,
                                                      CRON, PGBR_CONF)}
    files.update(schedule.files)
    files[PGBR_CONF] = conf
    return files


def _pgbr_state(files: dict[str, str | None], pgbr: PgbackrestState | None,
                timer: str = "") -> HostState:
    return dataclasses.replace(state(sql={"data_directory": "/var/lib/postgresql/15/main"}),
                               backup_files=files, backup_timer=timer, pgbackrest=pgbr)


def _nothing() -> dict[str, str | None]:
    return {p: None for p in (SCRIPT, PGBR_SCRIPT, SERVICE, TIMER, CRON, PGBR_CONF)}


def test_a_fresh_host_gets_pgbackrest_its_stanza_and_a_first_full_backup() -> None:
    host = FakeHost()
    host.on("install -y -q --no-install-recommends pgbackrest", OK)
    host.on("systemctl enable --now --quiet chatalot-db-backup-chatalot.timer",
            out("label 20261203-030000F full\n"))
    h = harness(before=_pgbr_state(_nothing(), PgbackrestState(False, False, ())),
                config=PGBR_CONFIG, host=host,
                after=[_pgbr_state(_pgbr_files(), PgbackrestState(True, True, (FULL,)))])
    r = h.run(ScheduleBackups())
    assert str(r.status) == "changed"
    assert r.reason.startswith(
        f"installed pgbackrest; created stanza chatalot in {REPO}; took the first full backup "
        "(20261203-030000F); scheduled pgBackRest backups of stanza chatalot (full weekly, "
        "differential daily) *-*-* 03:00:00")
    assert r.reason.endswith(f"kept 7 days in {REPO}")
    (install, schedule) = [c for _, c in host.ran()]
    assert "apt-get" in install
    # the files first, then the repository, the stanza, its check and the first backup,
    # the timer last
    assert schedule.index(PGBR_CONF) < schedule.index("install -d -o postgres -g postgres "
                                                      f"-m 0750 {REPO}") \
        < schedule.index("stanza-create") < schedule.index("--log-level-console=warn check") \
        < schedule.index(f"{PGBR_SCRIPT} chatalot {REPO} full") \
        < schedule.index("systemctl enable --now")
    assert CONF_TEXT in schedule and backups.PGBR_SCRIPT_TEXT in schedule
    assert backups.SCRIPT not in schedule  # the pg_dump script is not needed
    assert h.invalidated


def test_pgbackrest_in_place_is_ok_with_its_count() -> None:
    h = harness(before=_pgbr_state(_pgbr_files(), PgbackrestState(True, True, (FULL, DIFF)),
                                   "enabled active"), config=PGBR_CONFIG)
    r = h.run(ScheduleBackups())
    assert str(r.status) == "ok" and h.host.ran() == []
    assert r.reason.endswith(f"kept 7 days in {REPO}; 2 backups (1 full) in the repository")


def test_a_changed_configuration_is_checked_again() -> None:
    host = FakeHost()
    host.on("systemctl enable --now", OK)
    h = harness(before=_pgbr_state(_pgbr_files(CONF_TEXT.replace("=7", "=3")),
                                   PgbackrestState(True, True, (FULL,)), "enabled active"),
                config=PGBR_CONFIG, host=host,
                after=[_pgbr_state(_pgbr_files(), PgbackrestState(True, True, (FULL,)))])
    r = h.run(ScheduleBackups())
    assert str(r.status) == "changed"
    assert r.reason.startswith("checked stanza chatalot; updated the schedule:")
    (command,) = [c for _, c in host.ran()]
    assert "stanza-create" in command and "--log-level-console=warn check" in command
    # it has a full backup: none taken unconditionally
    assert f"runuser -u postgres -- {PGBR_SCRIPT} chatalot {REPO} full" not in \
        command.splitlines()
    assert "repo1-retention-full=7\n" in command


def test_check_mode_says_what_pgbackrest_would_do() -> None:
    h = harness(before=_pgbr_state(_nothing(), PgbackrestState(False, False, ())),
                config=PGBR_CONFIG, check=True)
    r = h.run(ScheduleBackups())
    assert str(r.status) == "changed"
    assert r.reason.startswith(f"would install pgbackrest; create stanza chatalot in {REPO}; "
                               "take the first full backup; would have pgBackRest backups")
    assert r.reason.endswith("(none yet)")
    assert h.host.ran() == []


def test_no_pgbackrest_package_and_none_installed_fails() -> None:
    h = harness("arch", before=_pgbr_state(_nothing(), PgbackrestState(False, False, ())),
                config=PGBR_CONFIG)
    with pytest.raises(StepFailed, match="pgBackRest is not in Arch Linux's package "
                                         "repositories: install it yourself"):
        h.run(ScheduleBackups())
    assert h.host.ran() == []


@pytest.mark.parametrize(("distro", "installed", "refused"), [
    ("arch", False, True),  # AUR only: archive_command would name a missing program
    ("arch", True, False),  # installed by hand: used
    ("debian12", False, False),  # the schedule step installs Debian's package
])
def test_preflight_refuses_pgbackrest_that_cannot_be_installed(distro: str, installed: bool,
                                                                refused: bool) -> None:
    h = harness(distro, before=dataclasses.replace(
        state(), pgbackrest=PgbackrestState(installed, False, ())), config=PGBR_CONFIG)
    if refused:
        with pytest.raises(StepFailed, match=r"backup=pgbackrest, and pgBackRest is not in "
                                             r"Arch Linux's package repositories.*Nothing was "
                                             r"changed"):
            h.run(Preflight())
    else:
        assert str(h.run(Preflight()).status) == "ok"
    assert h.host.ran() == []


def test_leaving_pgbackrest_keeps_its_script_and_configuration() -> None:
    host = FakeHost()
    host.on("rm -f", OK)
    cfg = HostConfig(migrations_source=None, backup="none")
    h = harness(before=_pgbr_state(_pgbr_files(), None, "enabled active"), config=cfg,
                host=host, after=[_pgbr_state(_nothing(), None)])
    r = h.run(ScheduleBackups())
    assert str(r.status) == "changed"
    assert r.reason.endswith(f"the dumps in {DEFAULT_BACKUP_DIR} stay (and the pgBackRest "
                             "repository)")
    (command,) = [c for _, c in host.ran()]
    removed = command.split("rm -f", 1)[1].splitlines()[0]
    assert SERVICE in removed and TIMER in removed
    assert PGBR_SCRIPT not in removed and PGBR_CONF not in removed
