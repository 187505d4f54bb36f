"""sqlx's migrator run over psql: the I/O around installer.sqlx.rules's pure logic.

One flow, two ways to reach the database:

- the `apply migrations` step runs psql on the host as postgres, with
  `SET ROLE <app role>` in the script, the ledger already read by the state probe;
- `chatalot-db migrate --database-url URL` runs psql on this machine as the URL's
  user; the password goes to psql's environment from stdin (`psql_command`), never
  into argv.

`apply_pending` plans (sqlx's dirty / missing / modified checks), calls a
`before` hook (the backup), runs rules.run_script and reads what it did.

sqlx's advisory lock is taken with pg_try_advisory_lock and polled, not waited
for inside a statement: a waiting session holds a snapshot, which a `CREATE INDEX
CONCURRENTLY` in the holder's migrations waits for, and PostgreSQL breaks that
deadlock by cancelling the index build (seen with two runs at once). While the
lock is busy, and when the script's guard finds the ledger changed since it was
read (another migrator got in between), the ledger is read again and the plan
remade, which is what sqlx does after taking its lock: two runs at once apply
each migration once.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, unquote, urlsplit

from installer.errors import MigrationError, UsageError
from installer.sqltext import quote_ident, quote_literal
from installer.sqlx import cic, rules
from installer.transport.base import Result
from installer.transport.shell import sh

#: runs a psql script (sent on stdin) against the database; never raises on exit codes
PsqlRunner = Callable[[str], Result]

#: the text of the guard's exception when the plan is stale (see rules.run_script)
STALE_PLAN = "_sqlx_migrations changed since it was read"

#: how often a stale plan is remade before giving up
ATTEMPTS = 5

#: polling sqlx's lock while another migrator holds it: first and longest pause (s)
POLL_FIRST, POLL_MAX = 0.2, 2.0

#: PostgreSQL's message when a statement gave up waiting for a lock (lock_timeout)
LOCK_TIMEOUT_ERROR = "canceling statement due to lock timeout"

log = logging.getLogger("chatalot_db.migrate")


@dataclass(frozen=True)
class LockWait:
    """How long a migration may wait for a table lock the app holds, and how often to try
    again (pausing `pause`, doubled each time) before the run gives up."""

    timeout_ms: int
    retries: int = 3
    pause: float = 1.0


@dataclass(frozen=True)
class AppliedRecord:
    """A migration this run applied, and its execution_time (ns; -1 if not recorded)."""

    migration: rules.Migration
    elapsed_ns: int

    def line(self) -> str:
        """What `sqlx migrate run` prints for it."""
        return rules.applied_line(self.migration, max(self.elapsed_ns, 0))


class MigrationRunError(MigrationError):
    """The run stopped; `applied` holds what was committed before it did, `failed` the
    migration that stopped it (None: none in particular)."""

    def __init__(self, message: str, applied: Sequence[AppliedRecord],
                 failed: int | None = None) -> None:
        super().__init__(message)
        self.applied = list(applied)
        self.failed = failed


def apply_pending(
    run_psql: PsqlRunner,
    local: Sequence[rules.Migration],
    ledger: rules.LedgerState,
    *,
    reread: Callable[[], rules.LedgerState],
    database: str,
    role: str,
    set_role: bool,
    ignore_missing: bool = False,
    target_version: int | None = None,
    before: Callable[[list[rules.Migration], rules.LedgerState], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_note: Callable[[str], None] | None = None,
    lock_wait: LockWait | None = None,
    session_name: str = "chatalot-db migrate",
    on_wait: Callable[[str], None] | None = None,
) -> list[AppliedRecord]:
    """Apply what sqlx's run() would apply; return what was applied, in order.

    Raises MigrationError with sqlx's message (nothing applied) when the ledger is
    dirty, misses a file or holds a modified one, and MigrationRunError when a
    migration fails (the earlier ones stay committed, the failing one leaves no
    row). `target_version`: sqlx-cli's, as rules.plan takes it. `before(pending, ledger)`
    runs once, just before the first script; an
    exception from it stops the run before anything is applied. While another
    session holds sqlx's lock this polls (as sqlx waits: without a time limit).

    `on_note(text)` receives what the run did besides migrating: each INVALID index
    dropped before the migration that recreates it (index_notes), and a warning for
    each INVALID index no pending migration recreates (left alone).

    `lock_wait` (apply's; sqlx has none): a statement waits at most its timeout for a
    table lock; a migration that gave up rolled back, and is tried again after a pause,
    `retries` times; then MigrationRunError names the sessions holding locks. Before each
    new try, `on_wait(text)` hears what it waits for (the sessions holding table locks).
    """
    state = ledger
    done: list[AppliedRecord] = []
    prepared = False
    stale = 0
    pause = POLL_FIRST
    lock_waits = 0
    noted: set[str] = set()

    def note(text: str) -> None:
        if on_note is not None and text not in noted:
            noted.add(text)
            on_note(text)

    while stale < ATTEMPTS:
        pending = rules.plan(local, state.applied, ignore_missing=ignore_missing,
                             target_version=target_version)
        if not pending:
            return done
        if before is not None and not prepared:
            before(pending, state)
        prepared = True
        script = rules.run_script(
            pending, database=database, applied=state.applied, role=role, set_role=set_role,
            wait_for_lock=False, lock_timeout_ms=lock_wait.timeout_ms if lock_wait else None,
            session_name=session_name)
        r = run_psql(script)
        outcome = rules.parse_run_output(r.stdout)
        by_version = {m.version: m for m in pending}
        done += [AppliedRecord(by_version[v], ns) for v, ns in outcome.applied.items()]
        for text in index_notes(outcome, pending):
            note(text)
        if r.ok and outcome.busy:
            log.info("%s: sqlx's lock is held by another session; trying again in %.1fs",
                     database, pause)
            sleep(pause)
            pause = min(pause * 2, POLL_MAX)
            state = reread()
            continue
        if r.ok and outcome.finished:
            return done
        if STALE_PLAN in r.stderr and not outcome.applied:
            stale += 1
            state = reread()
            continue
        if lock_wait is not None and LOCK_TIMEOUT_ERROR in r.stderr:
            if lock_waits < lock_wait.retries:
                wait = lock_wait.pause * 2 ** lock_waits
                lock_waits += 1
                log.info("%s: migration %s waited %d ms for a table lock; trying again in "
                         "%.1fs", database, outcome.failed, lock_wait.timeout_ms, wait)
                if on_wait is not None:
                    on_wait(wait_message(outcome.failed, lock_wait, lock_waits, wait,
                                         parse_blockers(run_psql(BLOCKERS_SQL).stdout)))
                sleep(wait)
                state = reread()
                continue
            blockers = parse_blockers(run_psql(BLOCKERS_SQL).stdout)
            raise MigrationRunError(
                lock_wait_message(outcome.failed, lock_wait, lock_waits + 1, blockers), done,
                outcome.failed)
        message = (index_failure_message(r, outcome, by_version[outcome.failed])
                   if outcome.failed in by_version else None)
        raise MigrationRunError(message or failure_message(r, outcome.failed), done,
                                outcome.failed)
    raise MigrationRunError(
        f"while executing migrations: _sqlx_migrations kept changing while this run waited "
        f"for sqlx's lock ({ATTEMPTS} attempts): is another migrator looping?", done)


#: the sessions (other than ours) holding granted table locks in this database, oldest
#: transaction first: who a migration that gave up waiting most likely waited for
BLOCKERS_MARKER = "chatalot-blocker "
BLOCKERS_SQL = f"""\\set ON_ERROR_STOP 1
\\pset tuples_only on
\\pset format unaligned
SELECT '{BLOCKERS_MARKER}' || json_build_object(
    'pid', a.pid, 'user', a.usename, 'app', a.application_name, 'state', a.state,
    'seconds', round(extract(epoch FROM now() - coalesce(a.xact_start, a.query_start))),
    'query', left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 60))
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
              WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'
                AND d.datname = current_database())
ORDER BY a.xact_start NULLS LAST
LIMIT 5;
"""


@dataclass(frozen=True)
class Blocker:
    pid: int
    user: str
    app: str
    state: str
    seconds: int
    query: str

    def describe(self) -> str:
        app = f", {self.app}" if self.app else ""
        return (f"pid {self.pid} ({self.user}{app}, {self.state or '?'} for {self.seconds} s: "
                f"{self.query or '?'})")


def wait_message(version: int | None, lock_wait: LockWait, tries: int, pause: float,
                 blockers: Sequence[Blocker]) -> str:
    """What a migration waiting for a table lock is waiting for, between its tries."""
    held = ("held by " + "; ".join(b.describe() for b in blockers) if blockers
            else "no session holds one now")
    return (f"migration {version} waits for a table lock (try {tries + 1} of "
            f"{lock_wait.retries + 1} in {pause:g} s): {held}")


def parse_blockers(stdout: str) -> list[Blocker]:
    found: list[Blocker] = []
    for line in stdout.splitlines():
        if line.startswith(BLOCKERS_MARKER):
            try:
                d = json.loads(line[len(BLOCKERS_MARKER):])
                found.append(Blocker(int(d["pid"]), str(d["user"] or "?"), str(d["app"] or ""),
                                     str(d["state"] or ""), int(d["seconds"] or 0),
                                     str(d["query"] or "")))
            except (ValueError, KeyError, TypeError):
                continue
    return found


def lock_wait_message(failed: int | None, lock_wait: LockWait, tries: int,
                      blockers: Sequence[Blocker]) -> str:
    """Why the run gave up waiting for a table lock, who held locks, and the ways forward."""
    what = f"migration {failed}" if failed is not None else "the migrations"
    held = ("; ".join(b.describe() for b in blockers) if blockers
            else "none found any more (the lock was released meanwhile)")
    first = blockers[0].pid if blockers else "PID"
    return (f"while executing {what}: waited for a table lock {tries} times "
            f"({lock_wait.timeout_ms} ms each) and gave up; rolled back, nothing of it applied. "
            f"Sessions holding table locks in the database: {held}. End their transactions "
            f"(or SELECT pg_terminate_backend({first})) and run again, or raise "
            "migration_lock_timeout")


def failure_message(r: Result, failed: int | None) -> str:
    """sqlx's wording: `while executing migration 10: error returned from database: ...`."""
    error = server_error(r.stderr or r.stdout) or f"psql exited with status {r.exit_code}"
    if failed is not None:
        return f"while executing migration {failed}: error returned from database: {error}"
    return f"while executing migrations: {error}"


# -- indexes built CONCURRENTLY (see installer.sqlx.cic) ---------------------------------------

_INTERRUPTED = "left by an interrupted CREATE INDEX CONCURRENTLY"


def _pending_targets(pending: Sequence[rules.Migration]
                     ) -> list[tuple[int, tuple[cic.IndexTarget, ...]]]:
    return [(m.version, rules.index_targets(m)) for m in pending]


def builds_indexes(pending: Sequence[rules.Migration]) -> bool:
    """Whether a pending migration builds a named index CONCURRENTLY: check mode then looks
    for INVALID indexes (one read-only query); otherwise it runs nothing."""
    return any(rules.index_targets(m) for m in pending)


def invalid_index_notes(invalid: Sequence[cic.InvalidIndex], pending: Sequence[rules.Migration],
                        ) -> list[str]:
    """Check mode: what a run would do about each INVALID index found."""
    targets = _pending_targets(pending)
    notes: list[str] = []
    for index in invalid:
        version = cic.owner(index, targets)
        if version is None:
            notes.append(left_alone_warning(index))
        else:
            notes.append(f"would drop invalid index {index.display()} {_INTERRUPTED}; "
                         f"migration {version} recreates it")
    return notes


def left_alone_warning(index: cic.InvalidIndex) -> str:
    return (f"warning: invalid index {index.display()} on {index.table_display()} left alone: "
            "no pending migration creates it (queries do not use it; REINDEX INDEX "
            "CONCURRENTLY rebuilds it)")


def index_notes(outcome: rules.RunOutcome, pending: Sequence[rules.Migration]) -> list[str]:
    """A run's notes: the INVALID indexes it dropped, and those it left alone."""
    targets = _pending_targets(pending)
    notes = [left_alone_warning(i) for i in outcome.invalid if cic.owner(i, targets) is None]
    for version, names in sorted(outcome.dropped.items()):
        notes += [f"dropped invalid index {cic.display_name(*n)} {_INTERRUPTED}; "
                  f"migration {version} recreates it" for n in names]
    return notes


def index_failure_message(r: Result, outcome: rules.RunOutcome, m: rules.Migration
                          ) -> str | None:
    """Why migration `m` failed when it was about its CONCURRENTLY built indexes; None
    when failure_message says it all."""
    v = m.version
    error = server_error(r.stderr or r.stdout)
    ours = error.startswith("chatalot-db: migration")
    if v in outcome.dropping and v not in outcome.dropped:
        names = ", ".join(cic.display_name(*n) for n in outcome.dropping[v])
        return (f"while executing migration {v}: dropping the invalid index {names} "
                f"{_INTERRUPTED} failed: error returned from database: {error}")
    problems = outcome.problems.get(v)
    if not problems:
        return None
    unique = {t.name for t in rules.index_targets(m) if t.unique}
    head = f"while executing migration {v}: "
    said: list[str] = [] if ours else [f"error returned from database: {error}"]
    for problem, schema, name in problems:
        shown = cic.display_name(schema, name)
        if problem == "invalid":
            harm = "never used by queries" + (", uniqueness not enforced" if name in unique
                                              else "")
            if ours:
                said.append(f"index {shown} is invalid after CREATE INDEX CONCURRENTLY and "
                            "PostgreSQL reported no error (IF NOT EXISTS kept an existing "
                            f"invalid index; {harm})")
            else:
                said.append(f"it left the invalid index {shown} behind ({harm})")
        elif problem == "other":
            said.append(f"{shown} exists but is not an index of the table migration {v} "
                        "names, so IF NOT EXISTS skipped the build")
        elif ours:
            said.append(f"index {shown} was not created")
    tail = (f"migration {v} is not recorded as applied: fix the cause and run again"
            + (" (the invalid index is dropped first)"
               if any(p == "invalid" for p, _, _ in problems) else ""))
    return head + "; ".join([*said, tail])


#: read-only: the INVALID indexes of the app's schemas (check mode)
_INVALID_MARKER = "chatalot-invalid:"


def find_invalid_indexes(run_psql: PsqlRunner, *, role: str | None = None,
                         set_role: bool = False) -> tuple[cic.InvalidIndex, ...]:
    """The INVALID indexes of the app's schemas, in one read-only psql run (check mode:
    a real run reads them in its own script, under sqlx's lock)."""
    script = ("\\set ON_ERROR_STOP on\n\\set QUIET on\n\\o /dev/null\n"
              + (f"SET ROLE {quote_ident(role)};\n" if set_role and role else "")
              + cic.list_invalid(_INVALID_MARKER))
    r = run_psql(script)
    if not r.ok:
        raise MigrationError("while looking for invalid indexes: "
                             + (server_error(r.stderr) or f"psql exited with {r.exit_code}"))
    for line in r.stdout.splitlines():
        if line.startswith(_INVALID_MARKER + " invalid "):
            return cic.parse_invalid(line[len(_INVALID_MARKER + " invalid "):])
    raise MigrationError("while looking for invalid indexes: psql printed nothing recognisable")


_ERROR_LINE = re.compile(r"(?:^|: )(?:ERROR|FATAL):\s+(.*)$")


def server_error(stderr: str) -> str:
    """The server's message in psql's stderr (`psql:<stdin>:9: ERROR:  ...`), else its tail."""
    for line in stderr.splitlines():
        m = _ERROR_LINE.search(line)
        if m:
            return m.group(1).strip()
    return "; ".join(ln.strip() for ln in stderr.strip().splitlines()[-3:])


def version_ranges(versions: Iterable[int]) -> str:
    """`1-52`, `3, 5-7`: versions in order, consecutive runs folded."""
    runs: list[list[int]] = []
    for v in sorted(versions):
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def applied_summary(applied: Sequence[AppliedRecord]) -> str:
    n = len(applied)
    versions = version_ranges(a.migration.version for a in applied)
    return f"applied {versions} ({n} migration{'s' if n != 1 else ''})"


def backup_filename(database: str, first_pending: int, now: datetime) -> str:
    """`<db>-<UTC timestamp>-before-<first pending version>.dump` (now must be UTC)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", database)
    return f"{safe}-{now:%Y%m%dT%H%M%SZ}-before-{first_pending}.dump"


# -- a database URL, for `migrate --database-url` ------------------------------------------

#: URL query parameters sqlx reads, as libpq's keywords (sqlx ignores any other)
_URL_PARAMS = {
    "sslmode": "sslmode", "ssl-mode": "sslmode",
    "sslrootcert": "sslrootcert", "ssl-root-cert": "sslrootcert", "ssl-ca": "sslrootcert",
    "sslcert": "sslcert", "ssl-cert": "sslcert",
    "sslkey": "sslkey", "ssl-key": "sslkey",
    "host": "host", "hostaddr": "hostaddr", "port": "port", "dbname": "dbname",
    "user": "user", "application_name": "application_name", "options": "options",
}  # fmt: skip


@dataclass(frozen=True)
class DatabaseUrl:
    """A postgres:// URL split into libpq keywords, the password kept apart."""

    #: libpq keyword -> value, in a stable order; never the password
    params: tuple[tuple[str, str], ...]
    password: str | None = field(default=None, repr=False)

    def get(self, key: str) -> str | None:
        return dict(self.params).get(key)

    def conninfo(self) -> str:
        """`host='h' port='5432' dbname='d' user='u'`: safe for argv (no password)."""
        return " ".join(f"{k}={_conninfo_value(v)}" for k, v in self.params)

    def redacted(self) -> str:
        return self.conninfo() + (" password=********" if self.password else "")


def _conninfo_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_database_url(url: str) -> DatabaseUrl:
    """Read `postgres[ql]://user:password@host:port/db?sslmode=...` as sqlx reads it."""
    try:
        parts = urlsplit(url.strip())
    except ValueError as e:
        raise UsageError(f"DATABASE_URL is not a valid URL: {e}") from None
    if parts.scheme not in ("postgres", "postgresql"):
        raise UsageError("DATABASE_URL must start with postgres:// or postgresql://, got "
                         f"{parts.scheme + '://' if parts.scheme else 'no scheme'}")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    if hostport.startswith("["):  # [IPv6]:port
        end = hostport.find("]")
        host, rest = hostport[1:end], hostport[end + 1 :]
        port = rest[1:] if rest.startswith(":") else rest
    else:
        host, _, port = hostport.partition(":")
    params: dict[str, str] = {}
    if host:
        params["host"] = unquote(host)
    if port:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"DATABASE_URL has an invalid port {port!r}")
        params["port"] = port
    if len(parts.path) > 1:
        params["dbname"] = unquote(parts.path[1:])
    if user:
        params["user"] = unquote(user)
    secret = unquote(password) if at and ":" in userinfo else None
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password":
            secret = value
        elif key in _URL_PARAMS:
            params[_URL_PARAMS[key]] = value
    for key, value in [*params.items(), ("password", secret or "")]:
        if "\x00" in value or (key == "password" and "\n" in value):
            raise UsageError(f"DATABASE_URL: the {key} holds a character psql cannot take")
    return DatabaseUrl(tuple(params.items()), secret or None)


#: reads the password from stdin's first line into psql's environment (never argv);
#: with no password in the URL, PGPASSWORD / ~/.pgpass apply as they would for sqlx
_PASSWORD_FROM_STDIN = (
    "IFS= read -r chatalot_pw || true\n"
    'if [ -n "$chatalot_pw" ]; then PGPASSWORD=$chatalot_pw; export PGPASSWORD; fi\n'
    "unset chatalot_pw\n"
)


#: how every psql of ours runs: no psqlrc, quiet, stop at the first error
PSQL_FLAGS = ("-X", "-q", "-v", "ON_ERROR_STOP=1")


def psql_for_url(url: DatabaseUrl) -> str:
    """The shell command running psql as the URL says (never prompting for a password);
    its stdin: `stdin_for(url, script)`. On a host, as postgres: host.state.psql_command."""
    return _PASSWORD_FROM_STDIN + "exec " + sh("psql", *PSQL_FLAGS, "-w", "-d", url.conninfo())


def pg_dump_command(url: DatabaseUrl, path: str) -> str:
    """pg_dump of the URL's database into `path` (mode 0600); stdin: `stdin_for(url, "")`.

    Host and port are repeated as options so Debian's pg_wrapper picks the newest
    pg_dump for a remote server (it reads -h/-p, not the conninfo).
    """
    extra: list[str] = []
    for key, option in (("host", "-h"), ("port", "-p")):
        value = url.get(key)
        if value:
            extra += [option, value]
    return _PASSWORD_FROM_STDIN + "umask 077\nexec " + sh(
        "pg_dump", "--format=custom", "-w", *extra, "-f", path, "-d", url.conninfo())


def stdin_for(url: DatabaseUrl, script: str) -> str:
    return (url.password or "") + "\n" + script


# -- reading the ledger directly (migrate --database-url) ---------------------------------

SESSION_MARKER = "chatalot-session:"

#: appended to rules.LEDGER_PROBE: who and where we are, and whether the database holds data
SESSION_QUERY = (
    f"SELECT {quote_literal(SESSION_MARKER + ' ')} || json_build_object("
    "'database', current_database(), 'user', current_user, 'public_tables', "
    "(SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
    " ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
    f" AND c.relname <> {quote_literal(rules.LEDGER_TABLE)}))::text;\n"
)


@dataclass(frozen=True)
class Session:
    database: str
    user: str
    #: tables in schema public other than the ledger
    public_tables: int


def read_ledger(run_psql: PsqlRunner) -> tuple[rules.LedgerState, Session]:
    """The ledger and the session, in one psql run (read-only: creates nothing)."""
    r = run_psql(rules.LEDGER_PROBE + SESSION_QUERY)
    if not r.ok:
        if f"{rules.PROBE_MARKER} owner " in r.stdout:  # the ledger exists: were its rows
            rules.parse_ledger_probe(r.stdout, r.stderr)  # read? if not, say so as apply does
        raise MigrationError("while reading _sqlx_migrations: "
                             + (server_error(r.stderr) or f"psql exited with {r.exit_code}"))
    session: Session | None = None
    for line in r.stdout.splitlines():
        if line.startswith(SESSION_MARKER):
            doc = json.loads(line[len(SESSION_MARKER):])
            session = Session(str(doc["database"]), str(doc["user"]), int(doc["public_tables"]))
    if session is None:
        raise MigrationError("while reading _sqlx_migrations: psql printed no session line")
    # psql exited 0: the probe ran to its end line, else parse_ledger_probe says what failed
    return rules.parse_ledger_probe(r.stdout, r.stderr, database=session.database), session
