"""ApplyMigrations' run(): the ledger comes with the probed state, the migrations from a
folder in tmp_path; asserted: the backup (pg_dump as root) before a database that holds
data is migrated, the one psql run as postgres with SET ROLE and sqlx's lock, what is
reported (status, reason, sqlx's lines), and that check mode and an up-to-date database
run nothing (only a read-only lookup of INVALID indexes where a pending migration builds
one CONCURRENTLY).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from installer.desired.config import HostConfig
from installer.errors import MigrationError
from installer.sqlx import rules
from installer.steps.base import Step, StepFailed
from installer.steps.migrations import SKIP_REASON, ApplyMigrations, MigrationInfo
from installer.transport.base import Result, tethered
from tests.unit.stepkit import Harness, err, harness, out, said, service, state

PSQL = "/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 -p 5432 -d chatalot"


def is_psql(command: str) -> bool:
    """The migration's psql, tethered to us (it ends when our process or connection dies)."""
    return command == tethered(PSQL)
DUMP = re.compile(r"^/var/backups/chatalot/chatalot-\d{8}T\d{6}Z-before-(\d+)\.dump$")
FILES = {"1_users.sql": "CREATE TABLE users (id int);\n",
         "2_identity_keys.sql": "CREATE TABLE identity_keys (id int);\n",
         "3_refresh_tokens.sql": "CREATE TABLE refresh_tokens (id int);\n"}
#: builds an index CONCURRENTLY: check mode looks for INVALID indexes it would drop
CIC = {"4_users_idx.sql": "-- no-transaction\n"
                          "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_idx ON users (id);\n"}


def folder(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "migrations"
    d.mkdir(exist_ok=True)
    for name, sql in files.items():
        (d / name).write_text(sql)
    return d


def ledger(tmp_path: Path, *applied: int, exists: bool = True) -> str:
    """LEDGER_PROBE's output with these versions applied (their files' checksums)."""
    if not exists:
        return f"{rules.PROBE_MARKER} absent\n"
    d = tmp_path / "migrations"
    rows = "".join(
        f"{rules.PROBE_MARKER} row {v} "
        f"{hashlib.sha384(next(d.glob(f'{v}_*.sql')).read_bytes()).hexdigest()} t\n"
        for v in applied)
    return f"{rules.PROBE_MARKER} owner chatalot\n" + rows + f"{rules.PROBE_MARKER} end\n"


def ran(*versions: int, failed: int | None = None) -> Result:
    """What the run script prints: lock taken, each migration applied, finished."""
    lines = [f"{rules.RUN_MARKER} locked 1", f"{rules.RUN_MARKER} invalid []"]
    for v in versions:
        lines += [f"{rules.RUN_MARKER} start {v}", f"{rules.RUN_MARKER} committed {v}",
                  f"{rules.RUN_MARKER} applied {v} {v * 1000}"]
    if failed is not None:
        lines.append(f"{rules.RUN_MARKER} start {failed}")
        return Result(3, "\n".join(lines) + "\n",
                      'psql:<stdin>:40: ERROR:  relation "users" already exists\n')
    lines.append(f"{rules.RUN_MARKER} finished")
    return Result(0, "\n".join(lines) + "\n", "")


def migrating(tmp_path: Path, *applied: int, absent: bool = False, tables: int = 0,
              check: bool = False, files: dict[str, str] | None = None,
              lines: list[str] | None = None) -> tuple[Harness, ApplyMigrations]:
    config = HostConfig(migrations_source=folder(tmp_path, files or FILES))
    sql = {"database": {"datname": "chatalot", "owner": "chatalot", "encoding": "UTF8"},
           "public_tables": tables}
    before = state(service(), sql=sql, ledger=ledger(tmp_path, *applied, exists=not absent))
    h = harness("debian12", before, check=check, config=config)
    step = ApplyMigrations(on_line=None if lines is None else
                           (lambda host, line: lines.append(f"{host}: {line}")))
    return h, step


# --- nothing to do ---------------------------------------------------------------------------

@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_all_applied_runs_nothing(tmp_path: Path, check: bool) -> None:
    h, step = migrating(tmp_path, 1, 2, 3, check=check)
    assert said(h.run(step)) == ("ok", "3 applied, none pending")
    assert h.host.calls == [] and not h.invalidated


def test_without_migrations_source_the_step_is_skipped() -> None:
    h = harness("debian12", state(sql={"database": None}))
    assert said(h.run(ApplyMigrations())) == ("skipped", SKIP_REASON)
    assert h.host.calls == []


# --- applying --------------------------------------------------------------------------------

def test_a_fresh_database_is_migrated_in_one_psql_run_as_the_app_role(tmp_path: Path) -> None:
    lines: list[str] = []
    h, step = migrating(tmp_path, absent=True, lines=lines)
    h.host.on(PSQL, ran(1, 2, 3))
    result = h.run(step)
    assert said(result) == ("changed", "applied 1-3 (3 migrations)")
    [call] = h.host.calls  # no backup: nothing to lose
    assert (call.become, call.timeout) == ("postgres", None) and is_psql(call.command)
    script = call.stdin or ""
    assert 'SET ROLE "chatalot";' in script and "pg_try_advisory_lock(" in script
    positions = [script.index(sql) for sql in FILES.values()]
    assert positions == sorted(positions)  # in version order
    assert lines == ["h: Applied 1/migrate users (1µs)", "h: Applied 2/migrate identity keys (2µs)",
                     "h: Applied 3/migrate refresh tokens (3µs)"]
    assert h.invalidated


@pytest.mark.parametrize(("applied", "tables", "pending", "summary"), [
    ((1, 2), 0, 3, "applied 3 (1 migration)"),
    ((), 2, 1, "applied 1-3 (3 migrations)"),  # tables but no ledger yet
], ids=["ledger rows", "tables only"])
def test_a_database_that_holds_data_is_dumped_first(
        tmp_path: Path, applied: tuple[int, ...], tables: int, pending: int,
        summary: str) -> None:
    h, step = migrating(tmp_path, *applied, absent=not applied, tables=tables)
    h.host.on("pg_dump").on(PSQL, ran(*range(pending, 4)))
    result = h.run(step)
    backup, migrate = h.host.calls
    assert (backup.become, backup.timeout) == ("root", None) and is_psql(migrate.command)
    m = re.search(r"runuser -u postgres -- pg_dump --format=custom --lock-wait-timeout=5000 "
                  r"-p 5432 -d chatalot "
                  r"-f (\S+); then rm -f ", backup.command)
    assert m is not None, backup.command
    dump = DUMP.match(m.group(1))
    assert dump is not None and dump.group(1) == str(pending)
    assert "chmod 0600 " + m.group(1) in backup.command
    assert said(result) == ("changed", f"{summary}; backup {m.group(1)}")


def test_no_backup_says_so(tmp_path: Path) -> None:
    h, _ = migrating(tmp_path, 1, 2)
    h.host.on(PSQL, ran(3))
    assert said(h.run(ApplyMigrations(backup=False))) == (
        "changed", "applied 3 (1 migration); no backup (--no-backup)")
    assert [is_psql(c.command) for c in h.host.calls] == [True]


def test_another_migrator_applied_them_meanwhile(tmp_path: Path) -> None:
    """The script's guard finds the ledger changed since the probe: read again, replan."""
    h, step = migrating(tmp_path, absent=True)
    stale = Result(3, f"{rules.RUN_MARKER} locked 1\n",
                   "psql:<stdin>:20: ERROR:  chatalot-db: _sqlx_migrations changed since it "
                   "was read (another migrator ran?); nothing was applied, run again\n")
    h.host.on(PSQL, stale)
    h.probes.states.append(state(sql={"database": {"datname": "chatalot"}},
                                 ledger=ledger(tmp_path, 1, 2, 3)))
    assert said(h.run(step)) == (
        "ok", "3 applied (by another migrator meanwhile), none pending")
    assert len(h.host.calls) == 1 and h.probes.count == 1


# --- failures --------------------------------------------------------------------------------

def test_a_failed_backup_applies_nothing(tmp_path: Path) -> None:
    h, step = migrating(tmp_path, 1)
    h.host.on("pg_dump", err(1, "pg_dump: error: could not open output file: Permission "
                                "denied\n"))
    with pytest.raises(StepFailed, match=r"^backup before migrating failed, nothing applied: "
                       r"pg_dump into /var/backups/chatalot/chatalot-\d{8}T\d{6}Z-before-2\.dump: "
                       r"pg_dump: error: could not open output file: Permission denied$"):
        h.run(step)
    assert [c.become for c in h.host.calls] == ["root"]  # psql never ran


def test_a_failing_migration_reports_what_was_applied_before_it(tmp_path: Path) -> None:
    lines: list[str] = []
    h, step = migrating(tmp_path, absent=True, lines=lines)
    h.host.on(PSQL, ran(1, 2, failed=3))
    with pytest.raises(StepFailed, match="^" + re.escape(
            "applied 1-2 (2 migrations); while executing migration 3: error returned from "
            'database: relation "users" already exists') + "$"):
        h.run(step)
    assert lines == ["h: Applied 1/migrate users (1µs)", "h: Applied 2/migrate identity keys (2µs)"]
    assert h.invalidated


@pytest.mark.parametrize(("sql", "error", "message"), [
    (None, "psql: error: connection to server failed", "PostgreSQL is not running: psql: "
                                                       "error: connection to server failed"),
    ({"database": None}, "", "database chatalot does not exist"),
], ids=["server down", "no database"])
def test_nothing_to_migrate_into_fails(tmp_path: Path, sql: dict[str, None] | None, error: str,
                                       message: str) -> None:
    h, step = migrating(tmp_path)
    h.ctx.set_state(state(sql=sql, sql_error=error))
    with pytest.raises(StepFailed, match=f"^{message}$"):
        h.run(step)
    assert h.host.calls == []


#: the state probe's psql output when the app role may not read the ledger (it printed the
#: owner line, then ON_ERROR_STOP stopped it at the row query)
DENIED = "psql:<stdin>:31: ERROR:  permission denied for table _sqlx_migrations"
UNREADABLE = (r"^_sqlx_migrations in database chatalot \(owner postgres\) could not be read: "
              r"ERROR: permission denied for table _sqlx_migrations$")


@pytest.mark.parametrize(("step", "check"), [
    (ApplyMigrations(), False), (ApplyMigrations(), True), (MigrationInfo(), False),
], ids=["apply", "check", "info"])
def test_an_unreadable_ledger_fails_the_step(tmp_path: Path, step: Step, check: bool) -> None:
    """Never `would apply 3` / `0 installed`: the ledger is there, its rows unread."""
    h, _ = migrating(tmp_path, 1, 2, 3, check=check)
    h.ctx.set_state(state(sql={"database": {"datname": "chatalot"}, "public_tables": 3},
                          ledger=f"{rules.PROBE_MARKER} owner postgres\n", sql_error=DENIED))
    with pytest.raises(StepFailed, match=UNREADABLE):
        h.run(step)
    assert h.host.calls == []


def test_a_modified_migration_stops_before_anything_runs(tmp_path: Path) -> None:
    h, step = migrating(tmp_path, 1, 2)
    (tmp_path / "migrations" / "2_identity_keys.sql").write_text("-- edited\n")
    with pytest.raises(MigrationError, match=r"^migration 2 was previously applied but has "
                                             r"been modified$"):
        h.run(step)
    assert h.host.calls == []


# --- check mode ------------------------------------------------------------------------------

@pytest.mark.parametrize(("applied", "absent", "tables", "database", "reason"), [
    ((), True, 0, True, "would apply 3 migrations: 1-3"),
    ((1,), False, 0, True, "would back up chatalot to /var/backups/chatalot, then apply 2 "
                           "migrations: 2-3"),
    ((), True, 4, True, "would back up chatalot to /var/backups/chatalot, then apply 3 "
                        "migrations: 1-3"),
    ((), True, 0, False, "would apply 3 migrations: 1-3"),
], ids=["fresh", "on data", "tables only", "no database yet"])
def test_check_mode_says_what_it_would_apply_and_runs_nothing(
        tmp_path: Path, applied: tuple[int, ...], absent: bool, tables: int, database: bool,
        reason: str) -> None:
    lines: list[str] = []
    h, step = migrating(tmp_path, *applied, absent=absent, tables=tables, check=True,
                        lines=lines)
    if not database:
        h.ctx.set_state(state(sql={"database": None}))
    assert said(h.run(step)) == ("changed", reason)
    assert h.host.calls == [] and not h.invalidated
    if database:
        assert lines[0] == f"h: Can apply {applied[-1] + 1 if applied else 1}/migrate " \
                           f"{'identity keys' if applied else 'users'} (0ns)"


@pytest.mark.parametrize(("answer", "note"), [
    (out('chatalot-invalid: invalid [["public", "users_idx", "public", "users", true]]\n'),
     "would drop invalid index public.users_idx left by an interrupted CREATE INDEX CONCURRENTLY; "
     "migration 4 recreates it"),
    (out("chatalot-invalid: invalid []\n"), None),
    (err(2, "psql: error: FATAL:  role \"chatalot\" does not exist\n"),
     'could not look for invalid indexes: while looking for invalid indexes: '
     'role "chatalot" does not exist'),
], ids=["one to drop", "none", "lookup fails"])
def test_check_mode_looks_for_invalid_indexes_read_only(
        tmp_path: Path, answer: Result, note: str | None) -> None:
    h, step = migrating(tmp_path, 1, 2, 3, check=True, files={**FILES, **CIC})
    h.host.on(PSQL, answer)
    result = h.run(step)
    head = "would back up chatalot to /var/backups/chatalot, then apply 1 migration: 4"
    assert said(result) == ("changed", head + (f"; {note}" if note else ""))
    [call] = h.host.calls
    assert call.become == "postgres" and is_psql(call.command)
    script = call.stdin or ""
    assert 'SET ROLE "chatalot";' in script and "indisvalid" in script
    for write in ("CREATE", "DROP", "INSERT", "pg_advisory", "_sqlx_migrations"):
        assert write not in script


# --- the bundled reference set ------------------------------------------------------------------

def test_the_bundled_set_is_named_as_such_when_applied_never_on_a_no_op() -> None:
    from installer.resources import migrations_dir
    from installer.sqlx.rules import load_migrations
    from installer.steps.migrations import BUNDLED_NOTE, bundled

    bundled_dir = migrations_dir()
    assert bundled(bundled_dir) and not bundled(None)
    config = HostConfig(migrations_source=bundled_dir)
    h = harness("debian12", state(service(), sql={"database": None}), check=True, config=config)
    status, reason = said(h.run(ApplyMigrations()))
    assert status == "changed" and reason.endswith("; " + BUNDLED_NOTE), reason
    rows = "".join(f"{rules.PROBE_MARKER} row {m.version} {m.checksum.hex()} t\n"
                   for m in load_migrations(bundled_dir))
    full = f"{rules.PROBE_MARKER} owner chatalot\n{rows}{rules.PROBE_MARKER} end\n"
    sql = {"database": {"datname": "chatalot", "owner": "chatalot", "encoding": "UTF8"}}
    h = harness("debian12", state(service(), sql=sql, ledger=full), config=config)
    status, reason = said(h.run(ApplyMigrations()))
    assert status == "ok" and "bundled" not in reason


def test_a_copy_elsewhere_is_not_the_bundled_set(tmp_path: Path) -> None:
    from installer.steps.migrations import bundled

    assert not bundled(folder(tmp_path, FILES))
