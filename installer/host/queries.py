"""The server's state in SQL, as named fragments: one builder for every reader.

apply's state probe (host.state.state_sql), verify's (verify.observe.verify_sql) and
status (commands.status.status_sql) each pick the fragments they need; `script` makes
of them one psql script, run as postgres, that prints one JSON object per line (the
server-wide fragments, then those read inside the app database when it exists), then
sqlx's ledger as the app role sees it. `parse_output` splits what it printed.

A fragment is (JSON key, SQL expression); the expressions read the catalogs only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from installer.desired.config import HostConfig
from installer.sqltext import quote_ident, quote_literal
from installer.sqlx import rules

#: (JSON key, SQL expression giving its value)
Fragment = tuple[str, str]


# -- server-wide (connected to the postgres database) -----------------------------------------


def setting_fragment(name: str, cast: str = "", key: str | None = None) -> Fragment:
    """One server setting as current_setting shows it (`cast`: e.g. "int")."""
    return key or name, f"current_setting({quote_literal(name)})" + (f"::{cast}" if cast else "")


def role_fragment(config: HostConfig, *, password: bool = False) -> Fragment:
    """The app role's flags (null when it does not exist); with `password`, its stored
    verifier too (pg_authid: the secret's hash, for apply's comparison only)."""
    table, extra = ("pg_authid", ", rolpassword") if password else ("pg_roles", "")
    return "role", f"""(SELECT to_jsonb(r) FROM (
      SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolreplication,
             rolbypassrls{extra}
      FROM {table} WHERE rolname = {quote_literal(config.db_user)}) r)"""


def database_fragment(config: HostConfig) -> Fragment:
    """The app database: name, owner (and whether that role is a superuser), encoding,
    whether PUBLIC may CONNECT (null: no such database)."""
    return "database", f"""(SELECT to_jsonb(d) FROM (
      SELECT datname, pg_get_userbyid(datdba) AS owner,
             (SELECT rolsuper FROM pg_roles WHERE oid = datdba) AS owner_super,
             pg_encoding_to_char(encoding) AS encoding,
             EXISTS (SELECT 1 FROM aclexplode(coalesce(datacl, acldefault('d', datdba))) a
                     WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS public_connect
      FROM pg_database WHERE datname = {quote_literal(config.db_name)}) d)"""


def settings_fragment(names: Sequence[str]) -> Fragment:
    """name -> {value (current_setting), unit, context, pending_restart, source, sourcefile,
    sourceline} of these settings (unknown names are left out), and of every setting
    waiting for a restart (one taken out of our drop-in, archive_mode when backup leaves
    pgbackrest, keeps its old value until then: the settings step restarts for it)."""
    listed = ", ".join(quote_literal(n) for n in names) or "NULL"
    return "settings", f"""(SELECT coalesce(jsonb_object_agg(name, jsonb_build_object(
      'value', current_setting(name), 'unit', unit, 'context', context,
      'pending_restart', pending_restart, 'source', source, 'sourcefile', sourcefile,
      'sourceline', sourceline)), '{{}}')
      FROM pg_settings WHERE name IN ({listed}) OR pending_restart)"""


#: WAL archiving (backup=pgbackrest): whether the last try failed after the last success
ARCHIVER: Fragment = ("archiver", """(SELECT jsonb_build_object(
      'archived', archived_count, 'failed', failed_count, 'last_failed_wal', last_failed_wal,
      'failing', coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false))
      FROM pg_stat_archiver)""")

#: the values this server accepts for the settings whose choices differ between versions
CAPS: Fragment = ("caps", """(SELECT jsonb_object_agg(name, enumvals) FROM pg_settings
      WHERE name IN ('wal_compression', 'io_method'))""")

#: pg_hba_file_rules, whole rows in file order (line_number, type, database, user_name, ...)
HBA_RULES: Fragment = ("hba_rules", """(SELECT coalesce(jsonb_agg(to_jsonb(h)
      ORDER BY h.line_number), '[]') FROM pg_hba_file_rules h)""")

POSTMASTER_START: Fragment = ("postmaster_start", "pg_postmaster_start_time()::text")

UPTIME_SECONDS: Fragment = (
    "uptime_seconds", "extract(epoch FROM now() - pg_postmaster_start_time())::bigint")

#: client connections in use (not the server's own background processes)
CONNECTIONS: Fragment = (
    "connections",
    "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')")


def database_size_fragment(config: HostConfig) -> Fragment:
    """The app database's size as pg_size_pretty writes it (null: no such database)."""
    return "database_size", (f"(SELECT pg_size_pretty(pg_database_size(oid)) FROM pg_database\n"
                             f"      WHERE datname = {quote_literal(config.db_name)})")


# -- inside the app database ----------------------------------------------------------------


def schema_privileges_fragment(config: HostConfig) -> Fragment:
    """The app role's privileges on schema public, sorted (USAGE, CREATE)."""
    return "schema_privileges", f"""(SELECT coalesce(
      jsonb_agg(a.privilege_type ORDER BY a.privilege_type), '[]')
      FROM pg_namespace n, aclexplode(n.nspacl) a, pg_roles r
      WHERE n.nspname = 'public' AND r.rolname = {quote_literal(config.db_user)}
        AND a.grantee = r.oid)"""


SCHEMA_OWNER: Fragment = (
    "schema_owner", "(SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public')")

#: tables in schema public besides sqlx's ledger: whether the database holds data
PUBLIC_TABLES: Fragment = ("public_tables", f"""(SELECT count(*) FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        AND c.relname <> {quote_literal(rules.LEDGER_TABLE)})""")


def unreadable_tables_fragment(config: HostConfig) -> Fragment:
    """Tables in schema public (sqlx's ledger included) the app role may not SELECT from,
    sorted by name; null when the role does not exist (the role check reports that)."""
    return "unreadable_tables", f"""(SELECT CASE WHEN r.oid IS NULL THEN NULL ELSE (
      SELECT coalesce(jsonb_agg(c.relname ORDER BY c.relname), '[]') FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        AND NOT has_table_privilege(r.oid, c.oid, 'SELECT')) END
      FROM (SELECT (SELECT oid FROM pg_roles
                    WHERE rolname = {quote_literal(config.db_user)}) AS oid) r)"""


# -- the script and its output ----------------------------------------------------------------


def json_line(fragments: Sequence[Fragment]) -> str:
    """A query printing the fragments as one JSON object (one line, unaligned)."""
    body = ",\n".join(f"  {quote_literal(key)}, {expr}" for key, expr in fragments)
    return f"SELECT jsonb_build_object(\n{body}\n);\n"


def ledger_sql(config: HostConfig) -> str:
    """sqlx's ledger as the app role sees it (its search_path), inside the app database."""
    return (
        f"SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(config.db_user)})"
        " AS chatalot_role_exists \\gset\n"
        f"\\if :chatalot_role_exists\nSET ROLE {quote_ident(config.db_user)};\n\\endif\n"
        + rules.LEDGER_PROBE
    )


def script(config: HostConfig, server: Sequence[Fragment],
           in_database: Sequence[Fragment] = (), *, ledger: bool | None = None) -> str:
    """The psql script (for `psql -X -q -v ON_ERROR_STOP=1 -d postgres` as postgres): a JSON
    line of the `server` fragments; then, when the app database exists, one of the
    `in_database` fragments read inside it, and the ledger (`ledger`; by default unless
    migrations_source is none). Nothing is read from a database that does not exist."""
    db = quote_literal(config.db_name)
    inside = json_line(in_database) if in_database else ""
    if ledger is None:
        ledger = config.migrations_source is not None
    probe = ledger_sql(config) if ledger else ""
    return ("\\pset format unaligned\n\\pset tuples_only on\n"
            + json_line(server)
            + f"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = {db}) "
            "AS chatalot_db_exists \\gset\n"
            "\\if :chatalot_db_exists\n"
            f"\\c {config.db_name}\n"
            + inside + probe + "\\endif\n")


def parse_output(text: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """What `script` printed: the JSON lines merged, the ledger's lines (for
    rules.parse_ledger_probe) and every other line (psql's errors)."""
    merged: dict[str, Any] = {}
    ledger: list[str] = []
    errors: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(rules.PROBE_MARKER):
            ledger.append(line)
        elif line.startswith("{"):
            try:
                merged.update(json.loads(line))
            except json.JSONDecodeError:
                errors.append(line)
        elif line:
            errors.append(line)
    return merged, ledger, errors
