"""The Chatalot migrations, applied on the host exactly as sqlx applies them.

The ledger comes with the state probe (read as the app role, so it is the table
the server will see); nothing runs when nothing is pending. Otherwise psql runs
on the host as postgres with `SET ROLE <app role>`: the ledger and every object
belong to the app role, which the server later ALTERs. A database that already
holds data is first dumped with pg_dump (`backup_dir`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from installer.desired.sources import redact
from installer.errors import MigrationError
from installer.host.state import psql_command
from installer.resources import migrations_dir
from installer.sqltext import quote_literal
from installer.sqlx import migrator, rules
from installer.steps.base import HostContext, Step, StepFailed, StepResult, changed, ok, skipped
from installer.transport.base import Result, tethered, untethered
from installer.transport.shell import sh

#: receives (host name, line) for each line `sqlx migrate run` / `info` would print
LineSink = Callable[[str, str], None]

SKIP_REASON = ("migrations_source=none: the Chatalot server applies its own when it starts "
               "(set migrations_source to your release, git+URL@TAG, to apply them here)")

#: said whenever the bundled set is applied (never on a no-op): it is this project's
#: reference schema, not a release's files, whose checksums a Chatalot server compares
BUNDLED_NOTE = ("bundled reference migrations (not a Chatalot release): a Chatalot server "
                "will refuse this ledger; set migrations_source to your release")


def bundled(source: Path | None) -> bool:
    """Whether `source` is the bundled reference set (the default migrations_source)."""
    return source is not None and source.resolve() == migrations_dir().resolve()

#: Ctrl-C during a migration: our session (by its application_name) is cancelled only
#: while it waits for a lock; a statement that executes ends on its own terms
CANCEL_WAIT_SQL = ("SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity "
                   "WHERE application_name = {app} AND wait_event_type = 'Lock';\n")



def _local(ctx: HostContext) -> list[rules.Migration] | None:
    unfetched = ctx.config.migrations_unfetched
    if unfetched is not None:
        raise StepFailed(f"migrations_source {redact(unfetched)} was not fetched on the control "
                         "machine (this command does not fetch migrations)")
    source = ctx.config.migrations_source
    return None if source is None else rules.load_migrations(source)


def _source_said(ctx: HostContext, local: list[rules.Migration]) -> list[str]:
    """What a changing run says of its source: the bundled set's note, or the source
    named (a release's tag and commit); the files' line endings when they are odd."""
    c = ctx.config
    said = ([BUNDLED_NOTE] if c.bundled_migrations
            else [f"from {c.migrations_label}"] if _named(ctx) else [])
    odd = rules.encoding_note(local)
    return said + ([odd] if odd else [])


def _named(ctx: HostContext) -> bool:
    """Whether reasons name the source: a git or archive source (its commit or digest)."""
    m = ctx.config.migrations
    return m is not None and m.remote


def _from(ctx: HostContext) -> str:
    """A no-op's mention of a git or archive source (a folder or the bundled set: none)."""
    return f" ({ctx.config.migrations_label})" if _named(ctx) else ""


def _ledger(ctx: HostContext) -> rules.LedgerState | None:
    """The app database's ledger as probed; None when the database does not exist yet.
    StepFailed (in check mode too) when it exists but could not be read."""
    st = ctx.state
    if st.sql is None:
        if ctx.check:
            return None
        raise StepFailed(f"PostgreSQL is not running: {st.sql_error.strip()}")
    if st.sql.get("database") is None:
        if ctx.check:
            return None
        raise StepFailed(f"database {ctx.config.db_name} does not exist")
    if not st.ledger:
        raise StepFailed(f"could not read _sqlx_migrations in {ctx.config.db_name} as "
                         f"{ctx.config.db_user}: {st.sql_error.strip() or 'no output'}")
    try:  # a ledger that exists but cannot be read is a failure, never an empty ledger
        return rules.parse_ledger_probe(st.ledger, st.sql_error, database=ctx.config.db_name)
    except MigrationError as e:
        raise StepFailed(str(e)) from None


def _count(migrations: list[rules.Migration]) -> str:
    return f"{len(migrations)} migration{'s' if len(migrations) != 1 else ''}"


def _holds_data(ctx: HostContext, ledger: rules.LedgerState) -> bool:
    return bool(ledger.applied) or int((ctx.state.sql or {}).get("public_tables") or 0) > 0


def backup_script(ctx: HostContext, path: str) -> str:
    """Root shell: backup_dir (made 0700, postgres) and a custom-format dump, mode 0600."""
    c = ctx.config
    d, f = sh(c.backup_dir), sh(path)
    # pg_dump waits for its table locks no longer than a migration would
    # (migration_lock_timeout), then fails: it never queues in front of the app either
    wait = ([f"--lock-wait-timeout={c.migration_lock_timeout_ms}"]
            if c.migration_lock_timeout_ms is not None else [])
    dump = sh("runuser", "-u", "postgres", "--", "pg_dump", "--format=custom", *wait,
              "-p", str(c.pg_port), "-d", c.db_name, "-f", path)
    not_writable = sh(f"backup_dir {c.backup_dir} is not writable by postgres: chown it to "
                      "postgres, or set backup_dir to another folder")
    return (
        "set -eu\ncd /\n"
        f"if [ ! -d {d} ]; then umask 022; mkdir -p {d}; chown postgres:postgres {d}; "
        f"chmod 0700 {d}; fi\n"
        f"if ! runuser -u postgres -- test -w {d} -a -x {d}; then echo {not_writable} >&2; "
        "exit 1; fi\n"
        f"if [ -e {f} ]; then echo {sh(path + ' already exists')} >&2; exit 1; fi\n"
        "umask 077\n"
        f"if ! {dump}; then rm -f {f}; exit 1; fi\n"
        f"chmod 0600 {f}\n"
    )


class ApplyMigrations(Step):
    """Every migration of migrations_source is in the ledger, applied as sqlx applies it."""

    name = "apply migrations"

    def __init__(self, *, backup: bool = True, ignore_missing: bool = False,
                 target_version: int | None = None, on_line: LineSink | None = None) -> None:
        self.backup = backup
        self.ignore_missing = ignore_missing
        self.target_version = target_version
        self.on_line = on_line

    def run(self, ctx: HostContext) -> StepResult:
        c = ctx.config
        local = _local(ctx)
        if local is None:
            return skipped(SKIP_REASON)
        ledger = _ledger(ctx)
        said = _source_said(ctx, local)
        try:
            pending = rules.plan(local, ledger.applied if ledger else (),
                                 ignore_missing=self.ignore_missing,
                                 target_version=self.target_version)
        except MigrationError as e:
            if _named(ctx):
                raise MigrationError(f"{e} ({c.migrations_label})") from None
            raise
        left = rules.beyond_target(local, ledger.applied if ledger else (), self.target_version)
        for m in left if not pending else ():
            self._emit(ctx, rules.skipped_line(m))
        if ledger is None:  # check mode, nothing there yet
            return changed("; ".join([f"would apply {_count(pending)}: "
                                      f"{migrator.version_ranges(m.version for m in pending)}",
                                      *said]))
        if not pending:
            beyond = f", {len(left)} beyond --target-version" if left else ""
            return ok(f"{len(ledger.applied)} applied, none pending{beyond}{_from(ctx)}")
        notes: list[str] = []

        def before(todo: list[rules.Migration], state: rules.LedgerState) -> None:
            if not _holds_data(ctx, state):
                return
            if not self.backup:
                notes.append("no backup (--no-backup)")
                return
            name = migrator.backup_filename(c.db_name, todo[0].version, datetime.now(UTC))
            path = c.backup_dir.rstrip("/") + "/" + name
            r = untethered(ctx.t.run(tethered(backup_script(ctx, path)), become="root",
                                     timeout=None))
            if not r.ok:
                error = migrator.server_error(r.stderr or r.stdout)
                if "statement timeout" in error and c.migration_lock_timeout_ms is not None:
                    # pg_dump's --lock-wait-timeout ran out: who holds the locks
                    held = migrator.parse_blockers(run_psql(migrator.BLOCKERS_SQL).stdout)
                    error = (f"it waited {c.migration_lock_timeout_ms} ms for a table lock "
                             "(migration_lock_timeout) and gave up. Sessions holding table "
                             "locks in the database: "
                             + ("; ".join(b.describe() for b in held) or "none any more")
                             + ". End their transactions and run again, or raise "
                             "migration_lock_timeout")
                raise StepFailed(f"backup before migrating failed, nothing applied: pg_dump "
                                 f"into {path}: {error}")
            notes.append(f"backup {path}")

        # the session is named, so that Ctrl-C can find it and cancel a wait for a lock
        app_name = f"chatalot-db migrate {uuid.uuid4().hex[:12]}"

        def run_psql(script: str) -> Result:
            # tethered: when our connection or process dies, psql cancels and ends
            return untethered(ctx.t.run(
                tethered(psql_command(c.pg_port, c.db_name, psql=ctx.strategy.psql())),
                become="postgres", stdin=script, timeout=None))

        cancelled: list[bool] = []  # set when Ctrl-C cancelled our session's wait
        # The server ends the waiting statement before the cancelling psql's answer reaches
        # us: a failed migration waits for a cancel in flight before deciding why it failed.
        cancelling, cancel_done = threading.Event(), threading.Event()

        def cancel_wait() -> str | None:
            """Ctrl-C: our session, if it waits for a lock (never one that executes)."""
            cancelling.set()
            try:
                r = ctx.t.run(psql_command(c.pg_port, "postgres", "-At",
                                           psql=ctx.strategy.psql()),
                              become="postgres", stdin=CANCEL_WAIT_SQL.format(
                                  app=quote_literal(app_name)), timeout=60)
                if r.ok and r.stdout.strip() not in ("", "0"):
                    cancelled.append(True)
                    return "cancelled the migration's wait for a table lock"
                return None
            finally:
                cancel_done.set()

        if ctx.check:
            for m in pending:
                self._emit(ctx, f"Can apply {m.version}/migrate {m.description} (0ns)")
            for m in left:
                self._emit(ctx, rules.skipped_line(m))
            first = (f"back up {c.db_name} to {c.backup_dir}, then "
                     if self.backup and _holds_data(ctx, ledger) else "")
            try:  # read-only: the INVALID indexes a run would drop, or leave alone
                if migrator.builds_indexes(pending):
                    notes += migrator.invalid_index_notes(migrator.find_invalid_indexes(
                        run_psql, role=c.db_user, set_role=True), pending)
            except MigrationError as e:
                notes.append(f"could not look for invalid indexes: {e}")
            return changed("; ".join([f"would {first}apply {_count(pending)}: "
                                      f"{migrator.version_ranges(m.version for m in pending)}",
                                      *notes, *said]))

        def reread() -> rules.LedgerState:
            ctx.invalidate()
            fresh = _ledger(ctx)
            if fresh is None:
                raise StepFailed(f"database {c.db_name} disappeared while migrating")
            return fresh

        ctx.interrupt_hooks.append(cancel_wait)
        try:
            applied = migrator.apply_pending(
                run_psql, local, ledger, reread=reread, database=c.db_name, role=c.db_user,
                set_role=True, ignore_missing=self.ignore_missing,
                target_version=self.target_version, before=before,
                on_note=notes.append, lock_wait=(
                    migrator.LockWait(c.migration_lock_timeout_ms)
                    if c.migration_lock_timeout_ms is not None else None),
                session_name=app_name, on_wait=ctx.progress)
        except migrator.MigrationRunError as e:
            if cancelling.is_set():
                cancel_done.wait(timeout=90)
            ctx.invalidate()
            for a in e.applied:
                self._emit(ctx, a.line())
            done = [migrator.applied_summary(e.applied)] if e.applied else []
            why = (f"while executing migration {e.failed}: Ctrl-C cancelled its wait for a "
                   "table lock; rolled back, nothing of it applied" if cancelled else str(e))
            raise StepFailed("; ".join([*done, why, *notes])) from None
        finally:
            ctx.interrupt_hooks.remove(cancel_wait)
        ctx.invalidate()
        for a in applied:
            self._emit(ctx, a.line())
        for m in left:
            self._emit(ctx, rules.skipped_line(m))
        if not applied:  # another migrator applied them while we waited for the lock
            return ok(f"{len(local) - len(left)} applied (by another migrator meanwhile), "
                      f"none pending{_from(ctx)}")
        return changed("; ".join([migrator.applied_summary(applied), *notes, *said]))

    def _emit(self, ctx: HostContext, line: str) -> None:
        if self.on_line is not None:
            self.on_line(ctx.name, line)


class MigrationInfo(Step):
    """Read-only: each migration's status, as `sqlx migrate info` prints it."""

    name = "migrate info"

    def __init__(self, on_line: LineSink | None = None) -> None:
        self.on_line = on_line

    def run(self, ctx: HostContext) -> StepResult:
        local = _local(ctx)
        if local is None:
            return skipped(SKIP_REASON)
        if ctx.state.sql is None:
            raise StepFailed(f"PostgreSQL is not running: {ctx.state.sql_error.strip()}")
        ledger = _ledger(ctx) if ctx.state.sql.get("database") else None
        applied = ledger.applied if ledger else ()
        for line in rules.info_lines(local, applied):
            if self.on_line is not None:
                self.on_line(ctx.name, line)
        by_version = {a.version: a.checksum for a in applied}
        installed = sum(1 for m in local if by_version.get(m.version) == m.checksum)
        modified = sum(1 for m in local if by_version.get(m.version) not in (None, m.checksum))
        pending = len(local) - installed - modified
        where = "" if ledger else f" (database {ctx.config.db_name} does not exist yet)"
        extra = f", {modified} with a different checksum" if modified else ""
        return ok(f"{installed} installed, {pending} pending{extra}{where}{_from(ctx)}")
