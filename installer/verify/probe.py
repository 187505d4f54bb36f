"""Read what `verify` checks from one host: the facts, then one script as root.

The expected settings come from the very functions apply uses (GatherFacts,
plan_settings with the server's capabilities); the service and package state
from the distribution strategy apply uses. The env file is never read into
this process: its mode is `stat`ed, and the login check reads it on the host
(installer.applogin), so no output can ever hold the password.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from installer import applogin
from installer.config import HostConfig
from installer.distros.base import ServiceState, Strategy
from installer.errors import CommandError
from installer.probes.facts import Facts
from installer.probes.postgres import ledger_sql, psql_command
from installer.probes.sections import SectionScript
from installer.sqltext import quote_literal
from installer.sqlx import PROBE_MARKER, LedgerState, parse_ledger_probe
from installer.steps.base import HostContext
from installer.steps.host import GatherFacts
from installer.steps.server import describe, plan_settings, tuning_inputs
from installer.transport.base import Result, Transport, sh
from installer.verify.checks import Socket, parse_proc_net_tcp, parse_ss

#: checked by the listening check, not the settings check (one problem, one failing check)
LISTEN_SETTING = "listen_addresses"


class NullTransport(Transport):
    """A transport that refuses to run anything: for computing from facts already read."""

    name = "(no host)"

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        raise RuntimeError("expected_settings must not run commands")


def expected_settings(facts: Facts, config: HostConfig, strategy: Strategy,
                      caps: Mapping[str, list[str]] | None) -> tuple[dict[str, str], str]:
    """The settings apply renders for this host (bar listen_addresses), and what from.

    Exactly `plan_settings` of apply's settings step: tuning from the facts
    (cgroup limits honoured) unless pg_memory / pg_cpus / pg_disk say
    otherwise, then password_encryption and the user's pg_settings.
    """
    ctx = HostContext("verify", NullTransport(), config, check=True, diff=False)
    ctx.set_facts(facts, strategy)
    wanted = plan_settings(ctx, caps)
    wanted.pop(LISTEN_SETTING, None)
    return wanted, describe(tuning_inputs(ctx, caps))


def verify_sql(config: HostConfig, setting_names: list[str]) -> str:
    """psql script (as postgres): one JSON line for the server, one for the app database,
    then the sqlx ledger as apply reads it (as the app role, in the app database)."""
    user, db = quote_literal(config.db_user), quote_literal(config.db_name)
    names = ", ".join(quote_literal(n) for n in setting_names) or "NULL"
    return f"""\\pset format unaligned
\\pset tuples_only on
SELECT jsonb_build_object(
  'server_version', current_setting('server_version'),
  'listen_addresses', current_setting('listen_addresses'),
  'role', (SELECT to_jsonb(r) FROM (
      SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolreplication,
             rolbypassrls
      FROM pg_roles WHERE rolname = {user}) r),
  'database', (SELECT to_jsonb(d) FROM (
      SELECT datname, pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS encoding,
             EXISTS (SELECT 1 FROM aclexplode(coalesce(datacl, acldefault('d', datdba))) a
                     WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS public_connect
      FROM pg_database WHERE datname = {db}) d),
  'settings', (SELECT coalesce(jsonb_object_agg(name, jsonb_build_object(
      'value', current_setting(name), 'unit', unit, 'pending_restart', pending_restart,
      'source', source, 'sourcefile', sourcefile, 'sourceline', sourceline)), '{{}}')
      FROM pg_settings WHERE name IN ({names})),
  'caps', (SELECT jsonb_object_agg(name, enumvals) FROM pg_settings
      WHERE name IN ('wal_compression', 'io_method')),
  'hba_rules', (SELECT coalesce(jsonb_agg(to_jsonb(h) ORDER BY h.line_number), '[]')
      FROM pg_hba_file_rules h)
);
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = {db}) AS chatalot_db_exists \\gset
\\if :chatalot_db_exists
\\c {config.db_name}
SELECT jsonb_build_object(
  'schema_privileges', (SELECT coalesce(jsonb_agg(a.privilege_type ORDER BY a.privilege_type), '[]')
      FROM pg_namespace n, aclexplode(n.nspacl) a, pg_roles r
      WHERE n.nspname = 'public' AND r.rolname = {user} AND a.grantee = r.oid)
);
{ledger_sql(config) if config.migrations_source is not None else ''}\\endif
"""


@dataclass
class Observed:
    """Everything the checks look at, for one host."""

    name: str
    config: HostConfig
    facts: Facts
    strategy: Strategy
    service: ServiceState
    #: `systemctl is-enabled` / `is-active` words, for messages
    systemd_words: list[str]
    #: listening sockets; None when neither ss nor /proc/net could be read
    sockets: list[Socket] | None
    env_meta: str | None
    #: the server's answers (merged JSON lines); None when psql could not connect
    sql: dict[str, Any] | None
    sql_error: str
    ledger: LedgerState | None
    login: applogin.LoginOutcome
    wanted: dict[str, str] = field(default_factory=dict)
    inputs: str = ""


def observe(t: Transport, name: str, config: HostConfig) -> Observed:
    """Gather facts (as apply does), then read everything else in one round trip as root."""
    ctx = HostContext(name, t, config, check=True, diff=False)
    GatherFacts().run(ctx)  # read-only: facts, strategy, major
    strategy = ctx.strategy
    names = sorted(ctx.wanted_settings)
    s = SectionScript()
    strategy.add_state_sections(s)
    s.section("env-meta", f"stat -c '%a %U %G' {sh(config.env_file)} 2>/dev/null; true")
    s.section("sockets", "if command -v ss >/dev/null 2>&1; then echo ss; ss -ltnp; "
              "else echo proc; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; fi")
    s.section(
        "sql",
        "if command -v psql >/dev/null 2>&1; then "
        f"runuser -u postgres -- {psql_command(config.pg_port)} 2>&1 <<'CHATALOT_SQL_EOF'\n"
        f"{verify_sql(config, names)}CHATALOT_SQL_EOF\n"
        "else echo 'psql: not installed'; fi",
    )
    login = applogin.script(config.env_file, applogin.LOGIN_PSQL_ARGS, announce=True)
    s.section("login", f"( {login}) 2>&1 </dev/null; echo \"chatalot-login-exit: $?\"")
    r = t.run(s.script, become="root", timeout=180)
    sections = s.parse(r.stdout)
    if "login" not in sections:
        raise CommandError(f"reading the state of {name}", r.exit_code, r.stderr or r.stdout)
    sql, ledger, sql_error = parse_sql(sections.get("sql", ""))
    caps = (sql or {}).get("caps") or None
    wanted, inputs = expected_settings(ctx.facts, config, strategy, caps)
    return Observed(
        name=name, config=config, facts=ctx.facts, strategy=strategy,
        service=strategy.parse_state(sections),
        systemd_words=sections.get("systemd", "").split(),
        sockets=parse_sockets(sections.get("sockets", "")),
        env_meta=sections.get("env-meta", "").strip() or None,
        sql=sql, sql_error=sql_error, ledger=ledger,
        login=parse_login_section(sections.get("login", "")),
        wanted=wanted, inputs=inputs,
    )


def parse_sockets(text: str) -> list[Socket] | None:
    kind, _, rest = text.partition("\n")
    if kind.strip() == "ss":
        return parse_ss(rest)
    if kind.strip() == "proc" and rest.strip():
        return parse_proc_net_tcp(rest)
    return None


def parse_login_section(text: str) -> applogin.LoginOutcome:
    exit_code = -1
    lines = []
    for line in text.splitlines():
        if line.startswith("chatalot-login-exit: "):
            value = line.split(":", 1)[1].strip()
            exit_code = int(value) if value.isdigit() else -1
        else:
            lines.append(line)
    return applogin.parse_login("\n".join(lines), exit_code)


def parse_sql(text: str) -> tuple[dict[str, Any] | None, LedgerState | None, str]:
    """The merged JSON objects, the ledger (None: not probed) and any other lines (errors)."""
    merged: dict[str, Any] = {}
    ledger_lines: list[str] = []
    errors: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(PROBE_MARKER):
            ledger_lines.append(line)
        elif line.startswith("{"):
            try:
                merged.update(json.loads(line))
            except json.JSONDecodeError:
                errors.append(line)
        elif line:
            errors.append(line)
    ledger = parse_ledger_probe("\n".join(ledger_lines)) if ledger_lines else None
    return (merged or None), ledger, "\n".join(errors)
