"""sqlx's migration ledger, reproduced: pure logic, no I/O but reading the folder.

The Chatalot server runs `sqlx::migrate!().run(&pool)` at start-up (sqlx 0.8).
Whatever this tool applies must look to that migrator exactly as if sqlx had
applied it (docs/sqlx-ledger.md): the same files, the same checksums, the
same `_sqlx_migrations` rows, the same advisory lock.

The flow, which the caller wires to psql (as the application role):

1. `load_migrations(folder)` reads the files by sqlx's rules.
2. Run `LEDGER_PROBE` (`psql -X`, stdin); `parse_ledger_probe(stdout, stderr)` gives
   the applied rows, or MigrationError when the ledger could not be read (never an
   empty ledger). Read-only: dry-run can stop here.
3. `plan(local, applied)` makes sqlx's checks (dirty, missing, modified) and
   returns the migrations to apply, or raises MigrationError with sqlx's text.
4. `run_script(pending, database=..., applied=...)` is one psql script doing
   sqlx's `run()` in one round trip: lock, ledger table, a guard that the
   ledger still is what step 2 read, each migration in its own transaction,
   unlock. `parse_run_output(stdout)` says what got applied and what failed.

How a migration is sent: sqlx sends the whole file as ONE simple-query string.
psql would instead split the file at semicolons itself, interpolate `:names`
and run backslash commands, so the file is never pasted into the script.
It travels as a dollar-quoted literal, `SELECT $q$<file>$q$ \\gexec`, and
`\\gexec` sends the value back to the server as one query (PQexec): the file
is run byte for byte as sqlx runs it, multi-statement files and the implicit
transaction of a `-- no-transaction` file included.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from installer.errors import MigrationError
from installer.sqltext import quote_ident, quote_literal
from installer.sqlx import cic

#: The ledger table; unqualified, as sqlx creates it (in the search_path).
LEDGER_TABLE = "_sqlx_migrations"

#: A file whose text starts with this runs without BEGIN/COMMIT.
NO_TRANSACTION = "-- no-transaction"

#: sqlx-postgres' generate_lock_id multiplier ("chosen by fair dice roll").
LOCK_MULTIPLIER = 0x3D32AD9E

#: Exactly what sqlx-postgres' ensure_migrations_table sends (bar the
#: surrounding blank lines of its raw string, which PostgreSQL ignores).
LEDGER_DDL = """\
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);
"""

#: Prefix of the progress lines the run script prints (see parse_run_output).
RUN_MARKER = "chatalot-migrate:"
#: Prefix of the lines LEDGER_PROBE prints (see parse_ledger_probe).
PROBE_MARKER = "chatalot-ledger:"

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_SUFFIX_UP = ".up.sql"
_SUFFIX_DOWN = ".down.sql"
_SUFFIX_SIMPLE = ".sql"


# -- sqlx's messages ------------------------------------------------------------
# Verbatim from sqlx-core (migrate/error.rs, migrate/source.rs), backticks included.


def dirty_message(version: int) -> str:
    return (
        f"migration {version} is partially applied; "
        "fix and remove row from `_sqlx_migrations` table"
    )


def missing_message(version: int) -> str:
    return f"migration {version} was previously applied but is missing in the resolved migrations"


def modified_message(version: int) -> str:
    return f"migration {version} was previously applied but has been modified"


def not_present_message(version: int) -> str:
    return f"migration {version} is not present in the migration source"


def too_old_message(target: int, latest: int) -> str:
    return f"migration {target} is older than the latest applied migration {latest}"


def bad_filename_message(file_name: str) -> str:
    return (
        f"error parsing migration filename {_rust_debug_str(file_name)}; "
        "expected integer version prefix (e.g. `01_foo.sql`)"
    )


# -- the migration set ------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    """One up migration as sqlx resolves it."""

    version: int
    description: str
    sql: str
    #: SHA-384 of the raw file bytes: the 48 bytes stored in the ledger.
    checksum: bytes = field(repr=False)
    no_transaction: bool
    filename: str


@dataclass(frozen=True)
class AppliedMigration:
    """One row of `_sqlx_migrations`, as far as `run()` looks at it."""

    version: int
    checksum: bytes = field(repr=False)
    success: bool = True


def checksum(data: bytes) -> bytes:
    """sqlx's checksum: SHA-384 of the file's bytes, no normalisation at all."""
    return hashlib.sha384(data).digest()


def lock_id(database_name: str) -> int:
    """The advisory-lock key sqlx takes for `database_name` (current_database()).

    sqlx: `0x3d32ad9e * (crc32_iso_hdlc(name.as_bytes()) as i64)`. Both factors
    are below 2**32 and their product below 2**63, so it never overflows i64 and
    is never negative (0 only for a crc of 0, e.g. the empty name).
    """
    return LOCK_MULTIPLIER * zlib.crc32(database_name.encode("utf-8"))


def parse_filename(file_name: str) -> tuple[int, str, str] | None:
    """Split a file name by sqlx's rules: (version, description, kind) or None.

    kind is "simple", "up" or "down". None means sqlx silently ignores the name
    (no `_`, or not ending in `.sql`); a prefix that is not an i64 is the hard
    error sqlx raises.
    """
    version_text, sep, rest = file_name.partition("_")
    if not sep or not rest.endswith(_SUFFIX_SIMPLE):
        return None
    version = _parse_i64(version_text)
    if version is None:
        raise MigrationError(bad_filename_message(file_name))
    if rest.endswith(_SUFFIX_UP):
        kind, suffix = "up", _SUFFIX_UP
    elif rest.endswith(_SUFFIX_DOWN):
        kind, suffix = "down", _SUFFIX_DOWN
    else:
        kind, suffix = "simple", _SUFFIX_SIMPLE
    # Rust's trim_end_matches strips the suffix as often as it repeats.
    while rest.endswith(suffix):
        rest = rest[: -len(suffix)]
    return version, rest.replace("_", " "), kind


def load_migrations(directory: str | Path) -> list[Migration]:
    """Read the up migrations of `directory` exactly as sqlx resolves them.

    Regular files directly in the folder (symlinks followed), named
    `<i64>_<description>.sql`; `.down.sql` files are checked like sqlx checks
    them but never returned. Sorted by version. Raises MigrationError for a bad
    version prefix, a file that is not UTF-8, or two up migrations with one
    version (sqlx would fail on the ledger's primary key mid-run).
    """
    folder = Path(directory)
    try:
        canonical = folder.resolve(strict=True)
        entries = sorted(os.scandir(canonical), key=lambda e: e.name)
    except OSError as e:
        raise MigrationError(f"error reading migration directory {folder}: {e}") from e

    found: list[Migration] = []
    for entry in entries:
        try:
            mode = os.stat(entry.path).st_mode  # follows symlinks, as sqlx does
        except OSError as e:
            raise MigrationError(
                f"error getting metadata of migration path {entry.path}: {e}"
            ) from e
        if not stat.S_ISREG(mode):
            continue
        # Rust's to_string_lossy: undecodable bytes become U+FFFD.
        name = os.fsencode(entry.name).decode("utf-8", errors="replace")
        parsed = parse_filename(name)
        if parsed is None:
            continue
        version, description, kind = parsed
        try:
            data = Path(entry.path).read_bytes()
        except OSError as e:
            raise MigrationError(f"error reading contents of migration {entry.path}: {e}") from e
        try:
            sql = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MigrationError(
                f"error reading contents of migration {entry.path}: "
                f"stream did not contain valid UTF-8 (byte {e.start})"
            ) from e
        if kind == "down":
            continue
        found.append(
            Migration(
                version=version,
                description=description,
                sql=sql,
                checksum=checksum(data),
                no_transaction=sql.startswith(NO_TRANSACTION),
                filename=name,
            )
        )
    found.sort(key=lambda m: m.version)
    _check_unique(found)
    return found


def _check_unique(migrations: Sequence[Migration]) -> None:
    seen: dict[int, Migration] = {}
    for m in migrations:
        other = seen.setdefault(m.version, m)
        if other is not m:
            raise MigrationError(
                f"migration {m.version} is defined twice ({other.filename} and {m.filename}); "
                "sqlx would fail on the _sqlx_migrations primary key: renumber one of them"
            )


# -- sqlx's run() and `sqlx migrate info` --------------------------------------------


def plan(
    local: Sequence[Migration],
    applied: Sequence[AppliedMigration],
    ignore_missing: bool = False,
    target_version: int | None = None,
) -> list[Migration]:
    """The migrations sqlx's run() would apply, in order; or sqlx's error.

    Checks in sqlx's order: a row with success = false (the lowest version) is
    "partially applied"; an applied version with no local file is "missing"
    (unless ignore_missing); then, walking local versions upwards, an applied
    one with another checksum is "modified", and an unapplied one is pending,
    even below the newest applied version. One difference, on purpose: sqlx
    applies the pending migrations below a modified one before it stops; this
    refuses before applying anything.

    `target_version` (sqlx-cli's `migrate run --target-version`): a version of the
    source ("not present" otherwise), not below the newest applied one ("older than
    the latest applied"); the pending migrations above it are left (`beyond_target`).
    A modified migration whose only difference is its line endings or a byte order
    mark is said to be so after sqlx's message (`explain_modified`).
    """
    _check_unique(local)
    if target_version is not None and all(m.version != target_version for m in local):
        raise MigrationError(not_present_message(target_version))
    dirty = [a.version for a in applied if not a.success]
    if dirty:
        raise MigrationError(dirty_message(min(dirty)))
    if not ignore_missing:
        known = {m.version for m in local}
        for a in sorted(applied, key=lambda a: a.version):
            if a.version not in known:
                raise MigrationError(missing_message(a.version))
    if target_version is not None:
        latest = max((a.version for a in applied), default=0)
        if target_version < latest:
            raise MigrationError(too_old_message(target_version, latest))
    by_version = {a.version: a for a in applied}
    pending: list[Migration] = []
    for m in sorted(local, key=lambda m: m.version):
        row = by_version.get(m.version)
        if row is None:
            if target_version is None or m.version <= target_version:
                pending.append(m)
        elif row.checksum != m.checksum:
            why = explain_modified(m, row.checksum)
            raise MigrationError(modified_message(m.version) + (f": {why}" if why else ""))
    return pending


def beyond_target(local: Sequence[Migration], applied: Sequence[AppliedMigration],
                  target_version: int | None) -> list[Migration]:
    """The unapplied migrations above `target_version`: sqlx-cli prints `Skipped` for them."""
    if target_version is None:
        return []
    done = {a.version for a in applied}
    return [m for m in sorted(local, key=lambda m: m.version)
            if m.version > target_version and m.version not in done]


def skipped_line(m: Migration) -> str:
    """The line `sqlx migrate run --target-version` prints for a migration it leaves."""
    return f"Skipped {m.version}/migrate {m.description} (0ns)"


# -- line endings and byte order marks ----------------------------------------------
# sqlx checksums the file's raw bytes: a checkout that turned LF into CRLF (git's
# core.autocrlf=true) or an editor that added a UTF-8 byte order mark gives files whose
# checksums differ from the server's build. Said, never corrected: the bytes are the
# contract.

BOM = b"\xef\xbb\xbf"


def _oddities(data: bytes) -> list[str]:
    found = []
    if b"\r\n" in data:
        found.append("CRLF line endings")
    if data.startswith(BOM):
        found.append("a UTF-8 byte order mark")
    return found


def encoding_note(local: Sequence[Migration]) -> str | None:
    """A warning naming the migrations with CRLF line endings or a byte order mark."""
    by_kind: dict[str, list[int]] = {}
    for m in local:
        for odd in _oddities(m.sql.encode("utf-8")):
            by_kind.setdefault(odd, []).append(m.version)
    if not by_kind:
        return None
    parts = [f"{odd} in migration{'s' if len(vs) > 1 else ''} {_versions(vs)}"
             for odd, vs in by_kind.items()]
    return ("warning: " + "; ".join(parts) + ": sqlx checksums the raw bytes, so a Chatalot "
            "server built from LF files without a byte order mark refuses these ledger rows "
            "(a checkout with git's core.autocrlf=true does this: check the release out again "
            "with `git -c core.autocrlf=false`)")


def _versions(versions: Sequence[int]) -> str:
    shown = ", ".join(str(v) for v in versions[:5])
    return shown + (f" and {len(versions) - 5} more" if len(versions) > 5 else "")


def explain_modified(m: Migration, ledger_checksum: bytes) -> str | None:
    """Why a ledger checksum differs from the file's, when the difference is only line
    endings or a byte order mark; None otherwise."""
    data = m.sql.encode("utf-8")
    lf = data.replace(b"\r\n", b"\n")
    variants = [
        (lf, "the ledger's checksum is this file's with LF line endings: the file has CRLF "
             "line endings (a checkout with git's core.autocrlf=true); check the release out "
             "again with `git -c core.autocrlf=false` or convert the file to LF (dos2unix)"),
        (data.removeprefix(BOM), "the ledger's checksum is this file's without its UTF-8 "
                                 "byte order mark: remove the mark (an editor added it)"),
        (lf.removeprefix(BOM), "the ledger's checksum is this file's with LF line endings "
                               "and without its UTF-8 byte order mark: check the release out "
                               "again with `git -c core.autocrlf=false` and remove the mark"),
        (lf.replace(b"\n", b"\r\n"), "the ledger's checksum is this file's with CRLF line "
                                     "endings: the ledger was applied from a checkout with "
                                     "CRLF endings (git's core.autocrlf=true), which a server "
                                     "built from LF files refuses too"),
    ]
    for variant, why in variants:
        if variant != data and checksum(variant) == ledger_checksum:
            return why
    return None


def info_lines(local: Sequence[Migration], applied: Sequence[AppliedMigration]) -> list[str]:
    """The lines `sqlx migrate info` prints (without its colours)."""
    by_version = {a.version: a for a in applied}
    lines: list[str] = []
    for m in sorted(local, key=lambda m: m.version):
        row = by_version.get(m.version)
        if row is None:
            lines.append(f"{m.version}/pending {m.description}")
        elif row.checksum != m.checksum:
            lines.append(f"{m.version}/installed (different checksum) {m.description}")
            lines.append(f"applied migration had checksum {row.checksum.hex()}")
            lines.append(f"local migration has checksum {m.checksum.hex()}")
        else:
            lines.append(f"{m.version}/installed {m.description}")
    return lines


def format_duration(nanoseconds: int) -> str:
    """A duration as Rust's `{:?}` prints it: 1.5s, 12.345678ms, 830µs, 12ns."""
    secs, nanos = divmod(max(nanoseconds, 0), 1_000_000_000)
    if secs:
        whole, frac, width, unit = secs, nanos, 9, "s"
    elif nanos >= 1_000_000:
        whole, frac, width, unit = nanos // 1_000_000, nanos % 1_000_000, 6, "ms"
    elif nanos >= 1_000:
        whole, frac, width, unit = nanos // 1_000, nanos % 1_000, 3, "µs"
    else:
        whole, frac, width, unit = nanos, 0, 0, "ns"
    text = str(whole)
    if frac:
        text += "." + f"{frac:0{width}d}".rstrip("0")
    return text + unit


def applied_line(m: Migration, elapsed_ns: int) -> str:
    """The line `sqlx migrate run` prints for an applied migration."""
    return f"Applied {m.version}/migrate {m.description} ({format_duration(elapsed_ns)})"


# -- the ledger probe -----------------------------------------------------------------

#: Read-only psql script listing the ledger. Prints `chatalot-ledger: absent`, or
#: `chatalot-ledger: owner <role>` then one `chatalot-ledger: row <v> <hex> <t|f>`
#: per row in version order, then `chatalot-ledger: end`: without the end line, the
#: row query failed (ON_ERROR_STOP) and the rows are not the ledger's.
#: Self-configuring: send it to plain `psql -X`.
LEDGER_PROBE = f"""\
\\set ON_ERROR_STOP on
\\set QUIET on
\\unset FETCH_COUNT
\\pset format unaligned
\\pset tuples_only on
SELECT to_regclass('{LEDGER_TABLE}') IS NOT NULL AS chatalot_has_ledger \\gset
\\if :chatalot_has_ledger
SELECT '{PROBE_MARKER} owner ' || pg_catalog.pg_get_userbyid(c.relowner)
FROM pg_catalog.pg_class AS c WHERE c.oid = to_regclass('{LEDGER_TABLE}');
SELECT '{PROBE_MARKER} row ' || version || ' ' || encode(checksum, 'hex') || ' '
    || CASE WHEN success THEN 't' ELSE 'f' END
FROM {LEDGER_TABLE} ORDER BY version;
\\echo {PROBE_MARKER} end
\\else
\\echo {PROBE_MARKER} absent
\\endif
"""


@dataclass(frozen=True)
class LedgerState:
    """What LEDGER_PROBE found."""

    exists: bool
    owner: str | None
    applied: tuple[AppliedMigration, ...]


_PSQL_ERROR = re.compile(r"\b(ERROR|FATAL):\s+(.*)$")


def psql_error_text(errors: str) -> str:
    """psql's error in its output, short: `ERROR: permission denied for table x` (the
    first ERROR/FATAL line, without psql's `psql:<stdin>:12:` prefix), else its last lines."""
    for line in errors.splitlines():
        m = _PSQL_ERROR.search(line)
        if m:
            return f"{m.group(1)}: {m.group(2).strip()}"
    return "; ".join(ln.strip() for ln in errors.strip().splitlines()[-3:])


def parse_ledger_probe(stdout: str, errors: str = "", *,
                       database: str | None = None) -> LedgerState:
    """Read LEDGER_PROBE's output; MigrationError if it is not recognisable, or if the
    ledger exists but could not be read (the owner line without the end line). `errors`:
    psql's error output, named in that message; `database`: named too, when given."""
    exists: bool | None = None
    owner: str | None = None
    ended = False
    rows: list[AppliedMigration] = []
    for line in stdout.splitlines():
        if not line.startswith(PROBE_MARKER):
            continue
        words = line[len(PROBE_MARKER) :].strip().split(" ", 1)
        if ended:
            raise MigrationError(f"unreadable _sqlx_migrations probe line after its end: "
                                 f"{line!r}")
        if words[0] == "absent":
            exists = False
        elif words[0] == "owner" and len(words) == 2:
            exists, owner = True, words[1]
        elif words[0] == "end" and len(words) == 1 and exists:
            ended = True
        elif words[0] == "row" and len(words) == 2:
            parts = words[1].split(" ")
            try:
                if len(parts) != 3 or parts[2] not in ("t", "f"):
                    raise ValueError(line)
                rows.append(
                    AppliedMigration(int(parts[0]), bytes.fromhex(parts[1]), parts[2] == "t")
                )
            except ValueError as e:
                raise MigrationError(f"unreadable _sqlx_migrations probe line: {line!r}") from e
        else:
            raise MigrationError(f"unreadable _sqlx_migrations probe line: {line!r}")
    detail = psql_error_text(errors)
    if exists is None:
        raise MigrationError("the _sqlx_migrations probe printed nothing recognisable"
                             + (f": {detail}" if detail else ""))
    if exists and not ended:
        where = f" in database {database}" if database else ""
        raise MigrationError(f"{LEDGER_TABLE}{where} (owner {owner}) could not be read: "
                             + (detail or "the probe stopped before its end line"))
    return LedgerState(exists, owner, tuple(rows))


# -- the run script ---------------------------------------------------------------------


def dollar_quote(text: str, tag: str = "chatalot_sql") -> str:
    """`text` as a dollar-quoted literal, with a tag that cannot end it early.

    The tag must not occur in the text, nor be completed by the closing
    delimiter (text ending in `$chatalot_sql` would close at the wrong place).
    """
    if "\x00" in text:
        raise MigrationError("a NUL character cannot be sent to PostgreSQL")
    candidate, n = tag, 0
    while True:
        delim = f"${candidate}$"
        if (text + delim).find(delim) == len(text):
            return delim + text + delim
        n += 1
        candidate = f"{tag}_{n}"


_SESSION_PREAMBLE = """\
\\set ON_ERROR_STOP on
\\set ON_ERROR_ROLLBACK off
\\set AUTOCOMMIT on
\\set SINGLESTEP off
\\set ECHO none
\\set QUIET on
\\unset FETCH_COUNT
\\encoding UTF8
\\o /dev/null
"""


def apply_script(m: Migration) -> str:
    """psql text applying one migration exactly as sqlx-postgres' apply() does.

    BEGIN (not for a no-transaction file); the whole file as one simple query
    (via \\gexec, see the module docstring); the ledger INSERT with
    execution_time -1; COMMIT; then the UPDATE of execution_time. Needs the
    ledger table and ON_ERROR_STOP, which run_script provides: a failure stops
    psql, the session ends and PostgreSQL rolls the open transaction back, so
    a failed migration leaves no trace and no row.

    execution_time: sqlx times BEGIN..COMMIT with a client clock. Here the
    server's clock_timestamp() is taken before BEGIN and again in the UPDATE,
    so it covers the same span plus the COMMIT round trip; microsecond
    resolution, stored in nanoseconds. The start is kept as UTC ISO text,
    which parses the same under any DateStyle or TimeZone a migration may set.

    A no-transaction file that builds named indexes CONCURRENTLY
    (index_targets) gets more, in the same session and under sqlx's lock: first
    the INVALID indexes of those names on those tables, which an interrupted
    build left and `IF NOT EXISTS` would skip, are dropped (cic.drop_invalid_sql);
    after the file, each named index is checked (cic.check_sql) and the script
    stops, before the ledger INSERT, when psql reported an error or an index is
    missing or invalid: the migration is not recorded as applied.
    """
    v = str(m.version)
    targets = index_targets(m)
    lines = [f"\\echo {RUN_MARKER} start {v}"]
    if targets:
        lines.append(cic.drop_invalid_sql(RUN_MARKER, m.version, targets).rstrip("\n"))
    lines.append(
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        " AS chatalot_t0 \\gset")
    if not m.no_transaction:
        lines.append("BEGIN;")
    if targets:
        lines += _checked_statement(m, targets)
    else:
        lines.append(f"SELECT {dollar_quote(m.sql)} \\gexec")
    lines.append(
        f"INSERT INTO {LEDGER_TABLE} (version, description, success, checksum, execution_time)"
        f" VALUES ({v}, {quote_literal(m.description)}, TRUE,"
        f" decode('{m.checksum.hex()}', 'hex'), -1);"
    )
    if not m.no_transaction:
        lines.append("COMMIT;")
    lines += [
        f"\\echo {RUN_MARKER} committed {v}",
        f"UPDATE {LEDGER_TABLE} SET execution_time = (round(extract(epoch FROM"
        " clock_timestamp() - (:'chatalot_t0'::timestamp AT TIME ZONE 'UTC'))"
        f" * 1000000000))::bigint WHERE version = {v}"
        " RETURNING execution_time AS chatalot_elapsed \\gset",
        f"\\echo {RUN_MARKER} applied {v} :chatalot_elapsed",
    ]
    return "\n".join(lines) + "\n"


def index_targets(m: Migration) -> tuple[cic.IndexTarget, ...]:
    """The indexes a no-transaction migration builds CONCURRENTLY (none for the others:
    inside a transaction such a statement fails, and leaves nothing behind)."""
    return cic.index_targets(m.sql) if m.no_transaction else ()


def _checked_statement(m: Migration, targets: Sequence[cic.IndexTarget]) -> list[str]:
    """The file, then the check of its indexes; psql stops (exit 3) before the ledger row
    if the file failed or left an index missing or invalid. ON_ERROR_STOP is off for the
    file alone, so that the check still runs and says what the failure left behind;
    psql's ERROR variable (psql 11+) says whether the file failed, and without it a
    failed build still shows as a missing or invalid index."""
    v = m.version
    stop = dollar_quote(
        f"BEGIN RAISE EXCEPTION 'chatalot-db: migration {v} failed"
        " (not recorded in _sqlx_migrations)'; END", "chatalot_stop")
    bad = dollar_quote(
        f"BEGIN RAISE EXCEPTION 'chatalot-db: migration {v} did not leave a valid index"
        " (not recorded in _sqlx_migrations)'; END", "chatalot_stop")
    return [
        "\\set chatalot_failed false",
        "\\set ON_ERROR_STOP off",
        f"SELECT {dollar_quote(m.sql)} \\gexec",
        "\\if :{?ERROR}",
        "\\set chatalot_failed :ERROR",
        "\\endif",
        "\\set ON_ERROR_STOP on",
        cic.check_sql(RUN_MARKER, v, targets).rstrip("\n"),
        "\\if :chatalot_failed",
        f"DO {stop};",
        "\\elif :chatalot_bad",
        f"DO {bad};",
        "\\endif",
    ]


def _fingerprint(applied: Iterable[AppliedMigration]) -> str:
    rows = sorted(applied, key=lambda a: a.version)
    return ",".join(f"{a.version}:{a.checksum.hex()}:{'t' if a.success else 'f'}" for a in rows)


def _guard(database: str, applied: Sequence[AppliedMigration], role: str | None) -> str:
    checks = [
        f"    IF current_database() <> {quote_literal(database)} THEN\n"
        "        RAISE EXCEPTION 'chatalot-db: connected to database %, expected %',\n"
        f"            current_database(), {quote_literal(database)};\n"
        "    END IF;"
    ]
    if role is not None:
        checks.append(
            f"    IF current_user <> {quote_literal(role)} THEN\n"
            "        RAISE EXCEPTION 'chatalot-db: running as role %, expected %"
            " (objects must belong to the application role)',\n"
            f"            current_user, {quote_literal(role)};\n"
            "    END IF;"
        )
    checks.append(
        "    SELECT coalesce(string_agg(version || ':' || encode(checksum, 'hex') || ':'\n"
        "        || CASE WHEN success THEN 't' ELSE 'f' END, ',' ORDER BY version), '')\n"
        f"    INTO ledger_rows FROM {LEDGER_TABLE};\n"
        f"    IF ledger_rows <> {quote_literal(_fingerprint(applied))} THEN\n"
        "        RAISE EXCEPTION 'chatalot-db: _sqlx_migrations changed since it was read"
        " (another migrator ran?); nothing was applied, run again';\n"
        "    END IF;"
    )
    body = "\nDECLARE\n    ledger_rows text;\nBEGIN\n" + "\n".join(checks) + "\nEND\n"
    return f"DO {dollar_quote(body, 'chatalot_guard')};\n"


#: PostgreSQL 14+: the backend checks every 2 s that its client is still there, so a
#: statement whose psql is gone (killed with its watchdog, installer.transport.base
#: .tethered) is cancelled instead of running on unattended
CLIENT_CHECK = (
    "SELECT current_setting('server_version_num')::int >= 140000 AS chatalot_client_check "
    "\\gset\n\\if :chatalot_client_check\nSET client_connection_check_interval = 2000;\n"
    "\\endif\n"
)


def run_script(
    pending: Sequence[Migration],
    *,
    database: str,
    applied: Sequence[AppliedMigration],
    role: str | None = None,
    set_role: bool = False,
    wait_for_lock: bool = True,
    lock_timeout_ms: int | None = None,
    session_name: str = "chatalot-db migrate",
) -> str:
    """One psql script doing sqlx's run() for `pending` (what plan() returned).

    `database` is the database psql connects to (it names sqlx's lock);
    `applied` is what the probe read, from which `pending` was planned. In
    order: the session settings (ON_ERROR_STOP, UTF8, results to /dev/null);
    `SET ROLE role` if set_role; pg_advisory_lock(lock_id(database)), waiting
    as sqlx does, so the installer and a starting server never migrate at
    once; the ledger DDL; a guard that raises unless the database, the role
    (when given) and the ledger rows are what the plan was made from; the
    INVALID indexes of the app's schemas (`invalid <JSON>`, see installer.sqlx.cic);
    each migration (apply_script); pg_advisory_unlock. The first failure stops
    psql (exit 3): earlier migrations stay committed, the failing one leaves
    no row, the session lock goes with the session.

    `wait_for_lock=False` takes the lock with pg_try_advisory_lock instead and,
    when another session holds it, prints `busy` and quits (exit 0, nothing
    done): the caller polls. A session waiting in pg_advisory_lock holds a
    snapshot, and a `CREATE INDEX CONCURRENTLY` in the holder's migrations
    waits for every such snapshot in the database: the two deadlock, and
    PostgreSQL cancels the index build. Polling never waits inside a statement.

    `session_name` is the session's application_name (apply makes it unique, so that
    Ctrl-C can find its own session). `lock_timeout_ms` (not sqlx's: chatalot-db's apply
    sets it) bounds how long any
    statement waits for a table lock once sqlx's lock is held: a migration queued behind
    an app's transaction would otherwise block every later query of that table. The
    waiting migration then fails (lock timeout) and rolls back, leaving no row.
    """
    _check_unique(pending)
    done = {a.version for a in applied}
    for m in pending:
        if m.version in done:
            raise MigrationError(f"migration {m.version} is already in _sqlx_migrations")
    if set_role and role is None:
        raise MigrationError("set_role needs the role to switch to")
    key = lock_id(database)
    parts = [_SESSION_PREAMBLE]
    parts.append(f"SET application_name = {quote_literal(session_name)};\n")
    parts.append(CLIENT_CHECK)
    if set_role and role is not None:
        parts.append(f"SET ROLE {quote_ident(role)};\n")
    if wait_for_lock:
        parts.append(f"SELECT pg_advisory_lock({key});\n")
    else:
        parts.append(
            f"SELECT pg_try_advisory_lock({key}) AS chatalot_locked \\gset\n"
            f"\\if :chatalot_locked\n\\else\n\\echo {RUN_MARKER} busy {key}\n\\q\n\\endif\n"
        )
    parts.append(f"\\echo {RUN_MARKER} locked {key}\n")
    if lock_timeout_ms is not None:
        parts.append(f"SET lock_timeout = {int(lock_timeout_ms)};\n")
    parts.append("SET client_min_messages = warning;\n")
    parts.append(LEDGER_DDL)
    parts.append("RESET client_min_messages;\n")
    parts.append(_guard(database, applied, role))
    if pending:
        parts.append(cic.list_invalid(RUN_MARKER))
    parts.extend(apply_script(m) for m in sorted(pending, key=lambda m: m.version))
    parts.append(f"SELECT pg_advisory_unlock({key});\n")
    parts.append(f"\\echo {RUN_MARKER} finished\n")
    return "".join(parts)


@dataclass(frozen=True)
class RunOutcome:
    """What a run script's stdout says happened."""

    #: version -> execution_time in ns, for each migration committed (-1 when
    #: the session ended between its COMMIT and the execution_time UPDATE).
    applied: dict[int, int]
    #: the migration that was started and not committed, if any.
    failed: int | None
    #: True when the script reached its end (lock released).
    finished: bool
    #: True once the advisory lock was held.
    locked: bool
    #: True when the lock was busy and the script quit without doing anything
    #: (run_script(..., wait_for_lock=False)).
    busy: bool = False
    #: the INVALID indexes of the app's schemas once the lock was held
    invalid: tuple[cic.InvalidIndex, ...] = ()
    #: version -> the invalid indexes (schema, name) its run set out to drop ...
    dropping: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    #: ... and those it did drop
    dropped: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    #: version -> (problem, schema, name) of the indexes it left missing or invalid
    problems: dict[int, tuple[tuple[str, str | None, str], ...]] = field(
        default_factory=dict)


def parse_run_output(stdout: str) -> RunOutcome:
    """Read the progress lines of a run script's stdout."""
    applied: dict[int, int] = {}
    started: int | None = None
    finished = locked = busy = False
    invalid: tuple[cic.InvalidIndex, ...] = ()
    dropping: dict[int, tuple[tuple[str, str], ...]] = {}
    dropped: dict[int, tuple[tuple[str, str], ...]] = {}
    problems: dict[int, tuple[tuple[str, str | None, str], ...]] = {}
    for line in stdout.splitlines():
        if not line.startswith(RUN_MARKER):
            continue
        words = line[len(RUN_MARKER) :].split()
        if not words:
            continue
        rest = line[len(RUN_MARKER) :].strip().split(" ", 2)  # JSON may hold spaces
        if words[0] == "invalid":
            invalid = cic.parse_invalid(line[len(RUN_MARKER) :].strip()[len("invalid"):])
            continue
        if words[0] in ("dropping", "dropped", "checked") and len(rest) == 3:
            try:
                version = int(rest[1])
            except ValueError:
                continue
            if words[0] == "dropping":
                dropping[version] = cic.parse_names(rest[2])
            elif words[0] == "dropped":
                dropped[version] = cic.parse_names(rest[2])
            elif found := cic.parse_problems(rest[2]):
                problems[version] = found
            continue
        if words[0] == "locked":
            locked = True
        elif words[0] == "busy":
            busy = True
        elif words[0] == "start" and len(words) == 2:
            started = int(words[1])
        elif words[0] == "committed" and len(words) == 2:
            applied[int(words[1])] = -1
            started = None
        elif words[0] == "applied" and len(words) == 3:
            applied[int(words[1])] = int(words[2])
        elif words[0] == "finished":
            finished = True
    return RunOutcome(applied=applied, failed=started, finished=finished, locked=locked,
                      busy=busy, invalid=invalid, dropping=dropping, dropped=dropped,
                      problems=problems)


# -- helpers ------------------------------------------------------------------------------

_I64_RE = re.compile(r"[+-]?[0-9]+")


def _parse_i64(text: str) -> int | None:
    """Rust's `i64::from_str`: an optional sign, ASCII digits, in range."""
    if not _I64_RE.fullmatch(text):
        return None
    value = int(text)
    return value if _I64_MIN <= value <= _I64_MAX else None


def _rust_debug_str(s: str) -> str:
    """`s` as Rust's `{:?}` prints a str (close enough for a message)."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\x00":
            out.append("\\0")
        elif not ch.isprintable() or unicodedata.category(ch) in ("Mn", "Me"):
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
