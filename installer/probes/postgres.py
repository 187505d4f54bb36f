"""Read everything the steps compare against, in one round trip (as root).

Package and service state (from the strategy), the files we manage, and the
server's own view (roles, database, grants, settings, pg_hba) via one psql run
as the postgres user. The env file's text is read too: it holds the secret, so
this probe's output is never logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from installer import sqlx
from installer.config import HostConfig
from installer.distros.base import ServiceState, Strategy
from installer.errors import CommandError
from installer.probes.sections import SectionScript, file_section, file_value
from installer.sqltext import quote_ident, quote_literal
from installer.transport.base import Transport, sh


@dataclass
class HostState:
    service: ServiceState
    env_file: str | None
    #: "mode owner group" of the env file
    env_meta: str | None
    hba: str | None
    dropin: str | None
    #: the server's answers; None when it is not running (or not installed)
    sql: dict[str, Any] | None
    sql_error: str = ""
    #: sqlx.LEDGER_PROBE's lines for the app database, read as the app role (None: not read)
    ledger: str | None = None
    #: postgresql.conf, read where our drop-in needs an include line in it (else None)
    main_conf: str | None = None

    @property
    def running(self) -> bool:
        return self.sql is not None


def psql_command(port: int, database: str = "postgres", *extra: str) -> str:
    """psql as it is run on the host: no psqlrc, stop on the first error."""
    return sh("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-p", str(port), "-d", database, *extra)


def state_sql(config: HostConfig, setting_names: list[str]) -> str:
    """psql script printing one JSON object per line: server-wide, then per-database."""
    user = quote_literal(config.db_user)
    db = quote_literal(config.db_name)
    names = ", ".join(quote_literal(n) for n in setting_names) or "NULL"
    return f"""\\pset format unaligned
\\pset tuples_only on
SELECT jsonb_build_object(
  'server_version_num', current_setting('server_version_num')::int,
  'data_directory', current_setting('data_directory'),
  'postmaster_start', pg_postmaster_start_time()::text,
  'role', (SELECT to_jsonb(r) FROM (
      SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolreplication,
             rolbypassrls, rolpassword
      FROM pg_authid WHERE rolname = {user}) r),
  'database', (SELECT to_jsonb(d) FROM (
      SELECT datname, pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS encoding,
             EXISTS (SELECT 1 FROM aclexplode(coalesce(datacl, acldefault('d', datdba))) a
                     WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS public_connect
      FROM pg_database WHERE datname = {db}) d),
  'settings', (SELECT coalesce(jsonb_object_agg(name, jsonb_build_object(
      'value', current_setting(name), 'unit', unit, 'context', context,
      'pending_restart', pending_restart)), '{{}}')
      FROM pg_settings WHERE name IN ({names})),
  'caps', (SELECT jsonb_object_agg(name, enumvals) FROM pg_settings
      WHERE name IN ('wal_compression', 'io_method')),
  'hba_rules', (SELECT coalesce(jsonb_agg(jsonb_build_object(
      'line', line_number, 'type', type, 'database', database, 'user_name', user_name,
      'address', address, 'auth_method', auth_method, 'error', error)), '[]')
      FROM pg_hba_file_rules)
);
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = {db}) AS chatalot_db_exists \\gset
\\if :chatalot_db_exists
\\c {config.db_name}
SELECT jsonb_build_object(
  'schema_privileges', (SELECT coalesce(jsonb_agg(a.privilege_type ORDER BY a.privilege_type), '[]')
      FROM pg_namespace n, aclexplode(n.nspacl) a, pg_roles r
      WHERE n.nspname = 'public' AND r.rolname = {user} AND a.grantee = r.oid),
  'schema_owner', (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'),
  'public_tables', (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        AND c.relname <> {quote_literal(sqlx.LEDGER_TABLE)})
);
{ledger_sql(config) if config.migrations_source is not None else ""}\\endif
"""


def ledger_sql(config: HostConfig) -> str:
    """sqlx's ledger as the app role sees it (its search_path), inside the app database."""
    return (
        f"SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(config.db_user)})"
        " AS chatalot_role_exists \\gset\n"
        f"\\if :chatalot_role_exists\nSET ROLE {quote_ident(config.db_user)};\n\\endif\n"
        + sqlx.LEDGER_PROBE
    )


def probe_state(
    t: Transport, strategy: Strategy, config: HostConfig, setting_names: list[str]
) -> HostState:
    """One round trip: package/service state, managed files, and the server's view."""
    s = SectionScript()
    strategy.add_state_sections(s)
    file_section(s, "env", config.env_file)
    s.section("env-meta", f"stat -c '%a %U %G' {sh(config.env_file)} 2>/dev/null; true")
    file_section(s, "hba", strategy.hba_path())
    file_section(s, "dropin", strategy.dropin_path())
    include = strategy.conf_include()
    if include is not None:
        file_section(s, "main-conf", include.conf_path)
    sql = state_sql(config, setting_names)
    s.section(
        "sql",
        f"if command -v psql >/dev/null 2>&1; then "
        f"runuser -u postgres -- {psql_command(config.pg_port)} 2>&1 <<'CHATALOT_SQL_EOF'\n"
        f"{sql}CHATALOT_SQL_EOF\n"
        f"else echo 'psql: not installed'; fi",
    )
    r = t.run(s.script, become="root", timeout=120)
    sections = s.parse(r.stdout)
    if "sql" not in sections:
        raise CommandError("probing PostgreSQL state", r.exit_code, r.stderr)
    lines = sections["sql"].splitlines(keepends=True)
    ledger = "".join(ln for ln in lines if ln.startswith(sqlx.PROBE_MARKER))
    sql_state, sql_error = parse_sql_section(
        "".join(ln for ln in lines if not ln.startswith(sqlx.PROBE_MARKER)))
    return HostState(
        service=strategy.parse_state(sections),
        env_file=file_value(sections, "env"),
        env_meta=sections.get("env-meta"),
        hba=file_value(sections, "hba"),
        dropin=file_value(sections, "dropin"),
        sql=sql_state,
        sql_error=sql_error,
        ledger=ledger or None,
        main_conf=file_value(sections, "main-conf"),
    )


def parse_sql_section(text: str) -> tuple[dict[str, Any] | None, str]:
    """Merge the JSON lines psql printed; (None, error text) when it could not connect."""
    merged: dict[str, Any] = {}
    errors: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                merged.update(json.loads(line))
            except json.JSONDecodeError:
                errors.append(line)
        elif line:
            errors.append(line)
    if not merged:
        return None, "\n".join(errors)
    return merged, "\n".join(errors)
