"""The migration wiring, as data: URLs, psql commands, retries, reasons, step decisions."""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from installer.desired.config import DEFAULT_BACKUP_DIR, HostConfig
from installer.errors import MigrationError, UsageError
from installer.host.distros.base import ServiceState
from installer.host.state import HostState, state_sql
from installer.resources import migrations_dir
from installer.sqlx import migrator, rules
from installer.steps.base import HostContext, Status, StepFailed, StepResult
from installer.steps.migrations import ApplyMigrations, MigrationInfo
from installer.transport.base import Result, Transport

# -- small helpers ---------------------------------------------------------------------------

RANGES = [
    ([], ""),
    ([1], "1"),
    ([1, 2, 3], "1-3"),
    ([3, 1, 2, 5, 7, 8], "1-3, 5, 7-8"),
    ([20240101000000, 20240102000000], "20240101000000, 20240102000000"),
]


@pytest.mark.parametrize(("versions", "text"), RANGES)
def test_version_ranges(versions: list[int], text: str) -> None:
    assert migrator.version_ranges(versions) == text


def mig(version: int, description: str = "") -> rules.Migration:
    sql = f"SELECT {version};\n"
    return rules.Migration(version, description or f"m{version}", sql,
                          rules.checksum(sql.encode()), False, f"{version}_m.sql")


def rec(version: int, ns: int = 1000) -> migrator.AppliedRecord:
    return migrator.AppliedRecord(mig(version), ns)


@pytest.mark.parametrize(("versions", "text"), [
    ([1], "applied 1 (1 migration)"),
    (list(range(1, 53)), "applied 1-52 (52 migrations)"),
    ([53, 55], "applied 53, 55 (2 migrations)"),
])
def test_applied_summary(versions: list[int], text: str) -> None:
    assert migrator.applied_summary([rec(v) for v in versions]) == text


def test_applied_record_line_is_sqlxs() -> None:
    assert rec(7, 1_500_000).line() == "Applied 7/migrate m7 (1.5ms)"
    assert rec(7, -1).line() == "Applied 7/migrate m7 (0ns)"  # UPDATE never ran


@pytest.mark.parametrize(("db", "name"), [
    ("chatalot", "chatalot-20250102T030405Z-before-53.dump"),
    ("we/ird db", "we_ird_db-20250102T030405Z-before-53.dump"),
])
def test_backup_filename(db: str, name: str) -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert migrator.backup_filename(db, 53, now) == name


SERVER_ERRORS = [
    ('psql:<stdin>:12: ERROR:  function nope() does not exist\nLINE 1: SELECT nope();\n',
     "function nope() does not exist"),
    ("psql: error: connection to server at \"localhost\" (::1), port 5432 failed: FATAL:  "
     "password authentication failed for user \"x\"\n",
     'password authentication failed for user "x"'),
    ("something else\nand more\n", "something else; and more"),
    ("", ""),
]


@pytest.mark.parametrize(("stderr", "message"), SERVER_ERRORS)
def test_server_error(stderr: str, message: str) -> None:
    assert migrator.server_error(stderr) == message


def test_failure_message_is_sqlxs() -> None:
    r = Result(3, "", "psql:<stdin>:9: ERROR:  relation \"x\" does not exist\n")
    assert migrator.failure_message(r, 10) == (
        'while executing migration 10: error returned from database: relation "x" does not exist')
    assert migrator.failure_message(Result(2, "", ""), None) == (
        "while executing migrations: psql exited with status 2")


# -- DATABASE_URL -----------------------------------------------------------------------------

URLS: list[tuple[str, list[tuple[str, str]], str | None]] = [
    ("postgres://chatalot:s3cret@localhost:5432/chatalot",
     [("host", "localhost"), ("port", "5432"), ("dbname", "chatalot"), ("user", "chatalot")],
     "s3cret"),
    ("postgresql://u@db.example.net/app?sslmode=require",
     [("host", "db.example.net"), ("dbname", "app"), ("user", "u"), ("sslmode", "require")],
     None),
    # percent-encoding everywhere; a password holding every URL delimiter
    ("postgres://app%40x:p%40ss%3Aw%2Fo%27rd%20%5C@[::1]:6543/my%20db",
     [("host", "::1"), ("port", "6543"), ("dbname", "my db"), ("user", "app@x")],
     "p@ss:w/o'rd \\"),
    # a socket folder as host, sqlx's parameter spellings, one sqlx ignores, password in query
    ("postgres://%2Fvar%2Frun%2Fpostgresql/db?ssl-mode=disable&statement-cache-capacity=9"
     "&password=qp&application_name=x",
     [("host", "/var/run/postgresql"), ("dbname", "db"), ("sslmode", "disable"),
      ("application_name", "x")],
     "qp"),
    ("postgres:///db?host=/tmp&user=me", [("dbname", "db"), ("host", "/tmp"), ("user", "me")],
     None),
    ("postgres://u:@h/d", [("host", "h"), ("dbname", "d"), ("user", "u")], None),
]


@pytest.mark.parametrize(("url", "params", "password"), URLS)
def test_parse_database_url(url: str, params: list[tuple[str, str]],
                            password: str | None) -> None:
    parsed = migrator.parse_database_url(url)
    assert list(parsed.params) == params
    assert parsed.password == password
    if password:
        assert password not in repr(parsed) and password not in parsed.redacted()


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://u@h/d", "must start with postgres://"),
    ("localhost:5432/db", "must start with postgres://"),
    ("postgres://u@h:port/d", "invalid port"),
    ("postgres://u@h:70000/d", "invalid port"),
    ("postgres://u:a%0Ab@h/d", "password holds a character"),
])
def test_parse_database_url_refuses(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        migrator.parse_database_url(url)


def test_conninfo_quotes_values() -> None:
    url = migrator.DatabaseUrl((("dbname", "it's"), ("user", "a\\b c")))
    assert url.conninfo() == "dbname='it\\'s' user='a\\\\b c'"


SECRET = "Sup3r'Secret \\ pass$(id)`x`"


@pytest.mark.parametrize("build", [
    lambda u: migrator.psql_for_url(u),
    lambda u: migrator.pg_dump_command(u, "/var/backups/x.dump"),
])
def test_password_never_in_the_command_line(
        build: Callable[[migrator.DatabaseUrl], str]) -> None:
    from urllib.parse import quote

    url = migrator.parse_database_url(
        f"postgres://app:{quote(SECRET, safe='')}@db.example.net:5433/app")
    command = build(url)
    assert SECRET not in command and quote(SECRET, safe="") not in command
    assert "password" not in command.lower().replace("pgpassword", "")
    # the argv psql / pg_dump really get: conninfo without the password
    argv = shlex.split(command.splitlines()[-1])
    assert argv[0] == "exec" and "host='db.example.net' port='5433'" in argv[-1]
    assert all(SECRET not in a for a in argv)
    # the password is stdin's first line, read into PGPASSWORD by the shell
    assert migrator.stdin_for(url, "SELECT 1;\n") == SECRET + "\nSELECT 1;\n"
    assert "export PGPASSWORD" in command


def test_pg_dump_command_repeats_host_and_port_for_pg_wrapper() -> None:
    url = migrator.parse_database_url("postgres://u:p@db:5433/d")
    argv = shlex.split(migrator.pg_dump_command(url, "/b/d.dump").splitlines()[-1])
    assert argv[1:8] == ["pg_dump", "--format=custom", "-w", "-h", "db", "-p", "5433"]
    assert argv[8:10] == ["-f", "/b/d.dump"]


# -- apply_pending with a scripted psql ------------------------------------------------------


def ledger_of(*versions: int) -> rules.LedgerState:
    return rules.LedgerState(True, "app", tuple(
        rules.AppliedMigration(v, mig(v).checksum) for v in versions))


class FakePsql:
    """Answers run scripts in turn; records which migrations each script held."""

    def __init__(self, *answers: Result) -> None:
        self.answers = list(answers)
        self.scripts: list[list[int]] = []

    def __call__(self, script: str) -> Result:
        started = [int(line.split()[-1]) for line in script.splitlines()
                   if line.startswith(f"\\echo {rules.RUN_MARKER} start ")]
        self.scripts.append(started)
        return self.answers.pop(0)


def ran(*versions: int, finished: bool = True, failed: int | None = None) -> Result:
    out = [f"{rules.RUN_MARKER} locked 1"]
    for v in versions:
        out += [f"{rules.RUN_MARKER} start {v}", f"{rules.RUN_MARKER} committed {v}",
                f"{rules.RUN_MARKER} applied {v} {v * 1000}"]
    if failed is not None:
        out.append(f"{rules.RUN_MARKER} start {failed}")
        return Result(3, "\n".join(out) + "\n",
                      f"psql:<stdin>:1: ERROR:  boom in {failed}\n")
    if finished:
        out.append(f"{rules.RUN_MARKER} finished")
    return Result(0, "\n".join(out) + "\n", "")


BUSY = Result(0, f"{rules.RUN_MARKER} busy 1\n", "")

STALE = Result(3, f"{rules.RUN_MARKER} locked 1\n",
               "psql:<stdin>:20: ERROR:  chatalot-db: _sqlx_migrations changed since it was "
               "read (another migrator ran?); nothing was applied, run again\n")

LOCAL = [mig(1), mig(2), mig(3)]


def apply(psql: FakePsql, ledger: rules.LedgerState, rereads: list[rules.LedgerState],
          before: list[list[int]] | None = None, sleeps: list[float] | None = None
          ) -> list[migrator.AppliedRecord]:
    def hook(pending: list[rules.Migration], state: rules.LedgerState) -> None:
        del state
        if before is not None:
            before.append([m.version for m in pending])

    return migrator.apply_pending(
        psql, LOCAL, ledger, reread=lambda: rereads.pop(0), database="db", role="app",
        set_role=True, before=hook, sleep=(sleeps if sleeps is not None else []).append)


def test_apply_pending_applies_in_order() -> None:
    psql = FakePsql(ran(2, 3))
    hooks: list[list[int]] = []
    done = apply(psql, ledger_of(1), [], hooks)
    assert [(a.migration.version, a.elapsed_ns) for a in done] == [(2, 2000), (3, 3000)]
    assert psql.scripts == [[2, 3]] and hooks == [[2, 3]]


def test_apply_pending_nothing_to_do_runs_nothing() -> None:
    psql = FakePsql()
    hooks: list[list[int]] = []
    assert apply(psql, ledger_of(1, 2, 3), [], hooks) == []
    assert psql.scripts == [] and hooks == []


def test_apply_pending_replans_when_another_migrator_won() -> None:
    # planned 1-3 on an empty ledger; meanwhile another run applied 1-2
    psql = FakePsql(STALE, ran(3))
    hooks: list[list[int]] = []
    done = apply(psql, ledger_of(), [ledger_of(1, 2)], hooks)
    assert [a.migration.version for a in done] == [3]
    assert psql.scripts == [[1, 2, 3], [3]]
    assert hooks == [[1, 2, 3]]  # the backup hook runs once


def test_apply_pending_polls_a_busy_lock_then_replans() -> None:
    psql = FakePsql(BUSY, BUSY, BUSY, BUSY, BUSY, BUSY, ran(3))
    sleeps: list[float] = []
    rereads = [ledger_of()] * 4 + [ledger_of(1, 2)] * 2
    done = apply(psql, ledger_of(), rereads, sleeps=sleeps)
    assert [a.migration.version for a in done] == [3]
    assert sleeps == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0]  # backing off, never giving up
    assert psql.scripts[-1] == [3]


def test_apply_pending_uses_the_polling_lock() -> None:
    scripts: list[str] = []

    def psql(script: str) -> Result:
        scripts.append(script)
        return ran(1, 2, 3)

    migrator.apply_pending(psql, LOCAL, ledger_of(), reread=ledger_of, database="db",
                           role="app", set_role=True)
    assert "pg_try_advisory_lock" in scripts[0] and "pg_advisory_lock(" not in scripts[0]


def test_apply_pending_other_migrator_did_everything() -> None:
    psql = FakePsql(STALE)
    assert apply(psql, ledger_of(), [ledger_of(1, 2, 3)]) == []


def test_apply_pending_failure_keeps_what_was_applied() -> None:
    with pytest.raises(migrator.MigrationRunError, match="^" + re.escape(
            "while executing migration 2: error returned from database: boom in 2") + "$") as e:
        apply(FakePsql(ran(1, failed=2)), ledger_of(), [])
    assert [a.migration.version for a in e.value.applied] == [1]


def test_apply_pending_refuses_before_running_anything() -> None:
    psql = FakePsql()
    hooks: list[list[int]] = []
    modified = rules.LedgerState(True, "app", (rules.AppliedMigration(1, b"x" * 48),))
    with pytest.raises(MigrationError, match="migration 1 was previously applied but has been "
                       "modified"):
        apply(psql, modified, [], hooks)
    assert psql.scripts == [] and hooks == []


def test_apply_pending_hook_failure_stops_everything() -> None:
    psql = FakePsql()

    def hook(pending: list[rules.Migration], state: rules.LedgerState) -> None:
        raise MigrationError("backup failed")

    with pytest.raises(MigrationError, match="backup failed"):
        migrator.apply_pending(psql, LOCAL, ledger_of(1), reread=ledger_of, database="db",
                               role="app", set_role=True, before=hook)
    assert psql.scripts == []


# -- configuration ------------------------------------------------------------------------------


def test_config_defaults() -> None:
    c = HostConfig.from_vars({})
    # none by default: a Chatalot server applies its own (the bundled set, not a release's
    # files, would give a ledger it refuses); `bundled` names the reference set
    assert c.migrations_source is None and not c.bundled_migrations
    bundled = HostConfig.from_vars({"migrations_source": "bundled"})
    assert bundled.migrations_source == migrations_dir() and bundled.bundled_migrations
    assert c.backup_dir == DEFAULT_BACKUP_DIR == "/var/backups/chatalot"


@pytest.mark.parametrize("value", ["none", "None", "", " ", None])
def test_config_migrations_source_none(value: object) -> None:
    assert HostConfig.from_vars({"migrations_source": value}).migrations_source is None


def test_config_migrations_source_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    assert HostConfig.from_vars({"migrations_source": "mine"}).migrations_source == (
        tmp_path / "mine").resolve()


@pytest.mark.parametrize(("hostvars", "message"), [
    ({"migrations_source": "/no/such/folder"}, "not a folder on this"),
    ({"backup_dir": "relative/dir"}, "backup_dir must be an absolute path"),
    ({"backup_dir": "/a\nb"}, "backup_dir must be an absolute path"),
])
def test_config_refuses(hostvars: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        HostConfig.from_vars(hostvars)


def test_state_probe_reads_the_ledger_as_the_app_role_only_when_migrating() -> None:
    with_ledger = state_sql(HostConfig(db_user="app", migrations_source=migrations_dir()), [])
    assert 'SET ROLE "app";' in with_ledger and rules.LEDGER_PROBE in with_ledger
    assert with_ledger.index(rules.LEDGER_PROBE) > with_ledger.index("\\c chatalot")
    assert with_ledger.rstrip().endswith("\\endif")
    without = state_sql(HostConfig(migrations_source=None), [])
    assert rules.LEDGER_PROBE not in without and "'public_tables'" in without


# -- the steps' decisions, as data: given the probed state, this result ------------------------


class NoTransport(Transport):
    """Check mode and no-op runs must not run anything."""

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        raise AssertionError(f"ran a command: {command[:80]}")


def probe_lines(applied: dict[int, bytes], *, exists: bool = True) -> str:
    if not exists:
        return f"{rules.PROBE_MARKER} absent\n"
    rows = "".join(f"{rules.PROBE_MARKER} row {v} {c.hex()} t\n" for v, c in applied.items())
    return f"{rules.PROBE_MARKER} owner app\n" + rows + f"{rules.PROBE_MARKER} end\n"


def migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    if not folder.exists():
        folder.mkdir()
        for name in ("1_users.sql", "2_identity_keys.sql", "3_refresh_tokens.sql"):
            (folder / name).write_text(f"CREATE TABLE t{name[0]} (id int);\n")
    return folder


def context(tmp_path: Path, *, check: bool, database: bool = True, tables: int = 0,
            ledger: str | None = None, source: bool = True) -> HostContext:
    config = HostConfig(db_name="app", db_user="app",
                        migrations_source=migrations(tmp_path) if source else None)
    ctx = HostContext("h", NoTransport(), config, check=check, diff=False)
    sql: dict[str, Any] = {"database": {"datname": "app"} if database else None,
                           "public_tables": tables}
    ctx.set_state(HostState(ServiceState([], True, True), None, None, None, None, sql,
                            ledger=ledger))
    return ctx


def sums(tmp_path: Path, *versions: int) -> dict[int, bytes]:
    folder = migrations(tmp_path)
    return {v: hashlib.sha384(next(folder.glob(f"{v}_*.sql")).read_bytes()).digest()
            for v in versions}


def decide(tmp_path: Path, case: str) -> StepResult:
    ctx: HostContext
    if case == "source none":
        ctx = context(tmp_path, check=False, source=False)
    elif case == "check, no database yet":
        ctx = context(tmp_path, check=True, database=False)
    elif case == "check, fresh database":
        ctx = context(tmp_path, check=True, ledger=probe_lines({}, exists=False))
    elif case == "check, pending on data":
        ctx = context(tmp_path, check=True, ledger=probe_lines(sums(tmp_path, 1, 2)))
    elif case == "check, tables but no ledger":
        ctx = context(tmp_path, check=True, tables=3, ledger=probe_lines({}, exists=False))
    elif case == "all applied":
        ctx = context(tmp_path, check=False, ledger=probe_lines(sums(tmp_path, 1, 2, 3)))
    else:
        raise AssertionError(case)
    return ApplyMigrations().run(ctx)


DECISIONS = [
    ("source none", Status.SKIPPED,
     "migrations_source=none: the Chatalot server applies its own when it starts (set "
     "migrations_source to your release, git+URL@TAG, to apply them here)"),
    ("check, no database yet", Status.CHANGED, "would apply 3 migrations: 1-3"),
    ("check, fresh database", Status.CHANGED, "would apply 3 migrations: 1-3"),
    ("check, pending on data", Status.CHANGED,
     "would back up app to /var/backups/chatalot, then apply 1 migration: 3"),
    ("check, tables but no ledger", Status.CHANGED,
     "would back up app to /var/backups/chatalot, then apply 3 migrations: 1-3"),
    ("all applied", Status.OK, "3 applied, none pending"),
]


@pytest.mark.parametrize(("case", "status", "reason"), DECISIONS, ids=[d[0] for d in DECISIONS])
def test_apply_step_decisions(tmp_path: Path, case: str, status: Status, reason: str) -> None:
    assert decide(tmp_path, case) == StepResult(status, reason)


def test_apply_step_modified_fails_with_sqlxs_message(tmp_path: Path) -> None:
    applied = {**sums(tmp_path, 1, 3), 2: b"\x00" * 48}
    ctx = context(tmp_path, check=False, ledger=probe_lines(applied))
    with pytest.raises(MigrationError,
                       match=r"^migration 2 was previously applied but has been modified$"):
        ApplyMigrations().run(ctx)


def test_apply_step_unreadable_ledger_fails(tmp_path: Path) -> None:
    ctx = context(tmp_path, check=False, ledger=None)
    ctx.state.sql_error = "ERROR:  permission denied for table _sqlx_migrations"
    with pytest.raises(StepFailed, match="could not read _sqlx_migrations in app as app: "
                       "ERROR:  permission denied"):
        ApplyMigrations().run(ctx)


_SESSION = 'chatalot-session: {"database": "app", "user": "app", "public_tables": 3}\n'
_DENIED = "psql:<stdin>:12: ERROR:  permission denied for table _sqlx_migrations\n"


@pytest.mark.parametrize(("answer", "message"), [
    # as psql answers: ON_ERROR_STOP after the owner line, exit 3
    (Result(3, f"{rules.PROBE_MARKER} owner other\n", _DENIED),
     r"^_sqlx_migrations \(owner other\) could not be read: ERROR: permission denied for "
     r"table _sqlx_migrations$"),
    # exit 0 but no end line (a psql that went on): still not an empty ledger
    (Result(0, f"{rules.PROBE_MARKER} owner other\n" + _SESSION, _DENIED),
     r"^_sqlx_migrations in database app \(owner other\) could not be read: ERROR: "
     r"permission denied for table _sqlx_migrations$"),
    # the probe finished, the session query failed: the old message
    (Result(3, f"{rules.PROBE_MARKER} owner app\n{rules.PROBE_MARKER} end\n",
            "psql:<stdin>:20: ERROR:  canceling statement due to user request\n"),
     r"^while reading _sqlx_migrations: canceling statement due to user request$"),
], ids=["psql stopped", "exit 0 without end", "session query failed"])
def test_read_ledger_an_unreadable_ledger_is_an_error(answer: Result, message: str) -> None:
    with pytest.raises(MigrationError, match=message):
        migrator.read_ledger(lambda script: answer)


def test_read_ledger_reads_a_complete_probe() -> None:
    answer = Result(0, probe_lines({1: b"\x01" * 48}) + _SESSION, "")
    ledger, session = migrator.read_ledger(lambda script: answer)
    assert ledger == rules.LedgerState(True, "app", (rules.AppliedMigration(1, b"\x01" * 48),))
    assert session == migrator.Session("app", "app", 3)


def test_info_step_lines(tmp_path: Path) -> None:
    lines: list[tuple[str, str]] = []
    ctx = context(tmp_path, check=False, ledger=probe_lines(sums(tmp_path, 1)))
    result = MigrationInfo(on_line=lambda h, line: lines.append((h, line))).run(ctx)
    assert result == StepResult(Status.OK, "1 installed, 2 pending")
    assert lines == [("h", "1/installed users"), ("h", "2/pending identity keys"),
                     ("h", "3/pending refresh tokens")]


# -- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["migrate", "--help"], ["migrate", "run", "--help"],
                                  ["migrate", "info", "--help"]])
def test_migrate_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from installer.cli import build_parser

    with pytest.raises(SystemExit, match=r"^0$"):  # --help: exit code 0
        build_parser().parse_args(argv)
    assert "sqlx" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["migrate", "run", "--database-url", "postgres://u@h/d", "-i", "hosts.ini"], "not both"),
    (["migrate", "info", "--database-url", "postgres://u@h/d", "--limit", "db01"],
     "--limit goes with -i"),
    (["migrate", "run", "--database-url", "http://h/d"], "must start with postgres://"),
])
def test_migrate_usage_errors(argv: list[str], message: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from installer.cli import main

    assert main(argv) == 5
    assert message in capsys.readouterr().err


# -- a migration waiting for a table lock the app holds ---------------------------------------


def lock_timeout(*versions: int, failed: int) -> Result:
    """The script committed `versions`, then migration `failed` gave up waiting for a lock."""
    r = ran(*versions, failed=failed)
    return Result(3, r.stdout, "psql:<stdin>:40: ERROR:  canceling statement due to lock "
                               "timeout\nCONTEXT:  ...\n")


BLOCKERS = Result(0, "\n".join([
    'chatalot-blocker {"pid" : 4242, "user" : "app", "app" : "chatalot-server", '
    '"state" : "idle in transaction", "seconds" : 41, "query" : "LOCK TABLE users IN ACCESS '
    'SHARE MODE"}',
    'chatalot-blocker {"pid" : 77, "user" : "report", "app" : "", "state" : "active", '
    '"seconds" : 3, "query" : "SELECT count(*) FROM users"}',
    "not a blocker line",
]) + "\n", "")


def wait_apply(psql: Any, rereads: list[rules.LedgerState], sleeps: list[float],
               lock_wait: migrator.LockWait) -> list[migrator.AppliedRecord]:
    return migrator.apply_pending(
        psql, LOCAL, ledger_of(), reread=lambda: rereads.pop(0), database="db", role="app",
        set_role=True, sleep=sleeps.append, lock_wait=lock_wait)


def test_lock_timeout_is_set_once_sqlxs_lock_is_held() -> None:
    script = rules.run_script([mig(1)], database="db", applied=[], role="app", set_role=True,
                              wait_for_lock=False, lock_timeout_ms=5000)
    locked = script.index(f"\\echo {rules.RUN_MARKER} locked")
    assert script.index("SET lock_timeout = 5000;") > locked
    assert script.index("SET lock_timeout = 5000;") < script.index(f"{rules.RUN_MARKER} start 1")
    assert "lock_timeout" not in rules.run_script(
        [mig(1)], database="db", applied=[], wait_for_lock=False)  # sqlx's own: no limit


def test_a_lock_wait_is_retried_with_back_off_then_applies() -> None:
    psql = FakePsql(lock_timeout(1, failed=2), lock_timeout(failed=2), ran(2, 3))
    sleeps: list[float] = []
    done = wait_apply(psql, [ledger_of(1), ledger_of(1)], sleeps,
                      migrator.LockWait(5000, retries=3, pause=1.0))
    assert [a.migration.version for a in done] == [1, 2, 3]
    assert sleeps == [1.0, 2.0]
    assert psql.scripts == [[1, 2, 3], [2, 3], [2, 3]]  # replanned from the ledger each time


def test_each_new_try_says_what_the_migration_waits_for() -> None:
    """Between tries, on_wait hears the sessions holding table locks (the live view and the
    step line show it); one BLOCKERS_SQL read per retry, none when nobody listens."""
    answers = [lock_timeout(failed=2), BLOCKERS, lock_timeout(failed=2), BLOCKERS, ran(2, 3)]
    scripts: list[str] = []

    def psql(script: str) -> Result:
        scripts.append(script)
        return answers.pop(0)

    heard: list[str] = []
    done = migrator.apply_pending(
        psql, LOCAL, ledger_of(1), reread=lambda: ledger_of(1), database="db", role="app",
        set_role=True, sleep=lambda s: None, lock_wait=migrator.LockWait(2000, retries=3),
        on_wait=heard.append)
    assert [a.migration.version for a in done] == [2, 3]
    assert scripts[1] == scripts[3] == migrator.BLOCKERS_SQL
    held = ("pid 4242 (app, chatalot-server, idle in transaction for 41 s: LOCK TABLE users IN "
            "ACCESS SHARE MODE); pid 77 (report, active for 3 s: SELECT count(*) FROM users)")
    assert heard == [
        f"migration 2 waits for a table lock (try 2 of 4 in 1 s): held by {held}",
        f"migration 2 waits for a table lock (try 3 of 4 in 2 s): held by {held}",
    ]


def test_wait_message_with_nobody_holding_a_lock() -> None:
    assert migrator.wait_message(7, migrator.LockWait(500, retries=1), 1, 1.0, []) == (
        "migration 7 waits for a table lock (try 2 of 2 in 1 s): no session holds one now")


def test_a_lock_wait_gives_up_naming_the_sessions_holding_locks() -> None:
    answers = [lock_timeout(failed=1)] * 4 + [BLOCKERS]
    scripts: list[str] = []

    def psql(script: str) -> Result:
        scripts.append(script)
        return answers.pop(0)

    sleeps: list[float] = []
    with pytest.raises(migrator.MigrationRunError, match="^" + re.escape(
            "while executing migration 1: waited for a table lock 4 times (2000 ms each) and "
            "gave up; rolled back, nothing of it applied.")) as e:
        wait_apply(psql, [ledger_of()] * 3, sleeps, migrator.LockWait(2000, retries=3))
    assert sleeps == [1.0, 2.0, 4.0]
    assert scripts[-1] == migrator.BLOCKERS_SQL
    assert str(e.value) == (
        "while executing migration 1: waited for a table lock 4 times (2000 ms each) and gave "
        "up; rolled back, nothing of it applied. Sessions holding table locks in the database: "
        "pid 4242 (app, chatalot-server, idle in transaction for 41 s: LOCK TABLE users IN "
        "ACCESS SHARE MODE); pid 77 (report, active for 3 s: SELECT count(*) FROM users). End "
        "their transactions (or SELECT pg_terminate_backend(4242)) and run again, or raise "
        "migration_lock_timeout")
    assert e.value.applied == []


def test_without_a_lock_wait_a_lock_timeout_is_an_ordinary_failure() -> None:
    """`migrate run` (sqlx's drop-in) sets no limit; a timeout set elsewhere just fails."""
    with pytest.raises(migrator.MigrationRunError, match="lock timeout"):
        apply(FakePsql(lock_timeout(failed=1)), ledger_of(), [])
