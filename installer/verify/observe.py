"""Read what `verify` checks from one host: the facts, then one script as root.

The expected settings come from the very functions apply uses (detect, as apply's
gather facts step, and plan_settings with the server's capabilities); the service and package state
from the distribution strategy apply uses. The env file is never read into
this process: its mode is `stat`ed, and the login check reads it on the host
(installer.host.applogin), so no output can ever hold the password. The backup
schedule is read as apply's state probe reads it (installer.host.state), the dumps
as installer.desired.backups lists them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from installer.desired import backups
from installer.desired.backups import BackupFile
from installer.desired.config import HostConfig
from installer.desired.settings import describe, plan_settings, tuning_inputs
from installer.errors import CommandError, MigrationError
from installer.host import applogin, queries
from installer.host.distros import detect
from installer.host.distros.base import ServiceState, Strategy
from installer.host.facts import Facts
from installer.host.sections import SectionScript
from installer.host.state import (
    backup_file_texts,
    backup_sections,
    parse_cron,
    sql_section,
    timer_state,
)
from installer.sqlx.rules import LedgerState, parse_ledger_probe
from installer.transport.base import Transport
from installer.transport.shell import sh
from installer.verify.checks import (
    STAT_FORMAT,
    FileMeta,
    Socket,
    parse_proc_net_tcp,
    parse_ss,
    parse_stat,
)

#: checked by the listening check, not the settings check (one problem, one failing check)
LISTEN_SETTING = "listen_addresses"


def expected_settings(facts: Facts, config: HostConfig, strategy: Strategy,
                      caps: Mapping[str, list[str]] | None) -> tuple[dict[str, str], str]:
    """The settings apply renders for this host (bar listen_addresses), and what from.

    Exactly `plan_settings` of apply's settings step: tuning from the facts
    (cgroup limits honoured) unless pg_memory / pg_cpus / pg_disk say
    otherwise, then password_encryption and the user's pg_settings.
    """
    major = strategy.major
    if major is None:
        return {}, "PostgreSQL is not installed"
    wanted = plan_settings(config, facts, major, caps)
    wanted.pop(LISTEN_SETTING, None)
    return wanted, describe(tuning_inputs(config, facts, major, caps))


def verify_sql(config: HostConfig, setting_names: list[str]) -> str:
    """psql script (as postgres): one JSON line for the server, one for the app database,
    then the sqlx ledger as apply reads it (as the app role, in the app database), with
    migrations_source none too (the server's own migrations: none may be dirty)."""
    q = queries
    return q.script(
        config,
        [q.setting_fragment("server_version"), q.setting_fragment(LISTEN_SETTING),
         q.role_fragment(config), q.database_fragment(config),
         q.settings_fragment(setting_names), q.CAPS, q.HBA_RULES, q.ARCHIVER],
        [q.schema_privileges_fragment(config), q.unreadable_tables_fragment(config)],
        ledger=True)


@dataclass(frozen=True)
class BackupStat:
    """`stat` of backup_dir, the schedule's files and the dumps, with the host's clock."""

    #: the host's `date +%s` (None: unreadable)
    now: int | None = None
    #: backup_dir (None: it does not exist)
    dir: FileMeta | None = None
    #: the schedule's files that exist (service, timer, cron entry): path -> meta
    schedule: dict[str, FileMeta] = field(default_factory=dict)
    #: the app database's dumps in backup_dir: path -> meta
    dumps: dict[str, FileMeta] = field(default_factory=dict)

    def schedule_mtime(self, db_name: str, systemd: bool) -> int | None:
        """When the schedule's own file was written: the timer unit where systemd is PID 1,
        else the cron entry (None: it does not exist)."""
        _, timer, cron = backups.schedule_paths(db_name)
        meta = self.schedule.get(timer if systemd else cron)
        return None if meta is None else meta.mtime


def _dir(backup_dir: str) -> str:
    return backup_dir.rstrip("/") or "/"


def backup_stat_section(config: HostConfig) -> str:
    """Shell: the host's `date +%s`, then `stat -c STAT_FORMAT` of backup_dir, the
    schedule's files and the app database's dumps (what does not exist is left out)."""
    d = sh(_dir(config.backup_dir))
    return (f"date +%s; stat -c {sh(STAT_FORMAT)} -- {d} "
            f"{sh(*backups.schedule_paths(config.db_name))} {d}/{sh(config.db_name)}-*.dump "
            "2>/dev/null; true")


def parse_backup_stat(text: str, config: HostConfig) -> BackupStat:
    """backup_stat_section's output as a BackupStat."""
    first, _, rest = text.partition("\n")
    metas = parse_stat(rest)
    d = _dir(config.backup_dir)
    schedule = {p: metas[p] for p in backups.schedule_paths(config.db_name) if p in metas}
    dumps = {p: m for p, m in metas.items() if p != d and p.rsplit("/", 1)[0] == d
             and backups.kind_of(p.rsplit("/", 1)[1], config.db_name) is not None}
    return BackupStat(int(first) if first.strip().isdigit() else None, metas.get(d),
                      schedule, dumps)


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
    #: why the ledger could not be read (it exists, the app role's query failed); "" if read
    ledger_error: str = ""
    wanted: dict[str, str] = field(default_factory=dict)
    inputs: str = ""
    #: the backup script and the schedule's files (installer.host.state): path -> text
    backup_files: dict[str, str | None] = field(default_factory=dict)
    #: the backup timer's "UNITFILESTATE ACTIVESTATE" ("": no unit file, or no systemd)
    backup_timer: str = ""
    #: whether a cron daemon runs (asked only where systemd is not PID 1)
    cron_running: bool | None = None
    #: the app database's dumps in backup_dir (and pgBackRest's backups), newest first
    backups: list[BackupFile] = field(default_factory=list)
    #: backup=pgbackrest: `pgbackrest info --output=json` (None: not read)
    pgbackrest_info: str | None = None
    backup_stat: BackupStat = field(default_factory=BackupStat)

    @property
    def now(self) -> int:
        """The host's clock (this machine's when it could not be read)."""
        return self.backup_stat.now if self.backup_stat.now is not None else int(time.time())


def observe(t: Transport, name: str, config: HostConfig) -> Observed:
    """Gather facts (as apply does), then read everything else in one round trip as root."""
    found = detect(t, config, exact_major=True)  # as apply's first step: read-only
    facts, strategy = found.facts, found.strategy
    names = sorted(expected_settings(facts, config, strategy, None)[0])
    s = SectionScript()
    strategy.add_state_sections(s)
    s.section("env-meta", f"stat -c '%a %U %G' {sh(config.env_file)} 2>/dev/null; true")
    s.section("sockets", "if command -v ss >/dev/null 2>&1; then echo ss; ss -ltnp; "
              "else echo proc; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; fi")
    backup_sections(s, config, systemd=facts.systemd)
    s.section("backup-list", backups.listing_script(config.backup_dir, config.db_name,
                                                            backups.stanza_of(config.backup)))
    s.section("backup-stat", backup_stat_section(config))
    s.section("sql", sql_section(config.pg_port, verify_sql(config, names), strategy.psql()))
    s.section("login", applogin.probe_section(config.env_file, strategy.psql()))
    r = t.run(s.script, become="root", timeout=180)
    sections = s.parse(r.stdout)
    if "login" not in sections:
        raise CommandError(f"reading the state of {name}", r.exit_code, r.stderr or r.stdout)
    sql, ledger, sql_error, ledger_error = parse_sql(sections.get("sql", ""), config.db_name)
    caps = (sql or {}).get("caps") or None
    wanted, inputs = expected_settings(facts, config, strategy, caps)
    return Observed(
        name=name, config=config, facts=facts, strategy=strategy,
        service=strategy.parse_state(sections),
        systemd_words=sections.get("systemd", "").split(),
        sockets=parse_sockets(sections.get("sockets", "")),
        env_meta=sections.get("env-meta", "").strip() or None,
        sql=sql, sql_error=sql_error, ledger=ledger, ledger_error=ledger_error,
        login=applogin.parse_probe_section(sections.get("login", "")),
        wanted=wanted, inputs=inputs,
        backup_files=backup_file_texts(sections, config),
        backup_timer=timer_state(sections.get("backup-timer", "")),
        cron_running=parse_cron(sections.get("cron", "")),
        backups=backups.parse_listing(sections.get("backup-list", ""), config.db_name,
                                      backups.stanza_of(config.backup)),
        pgbackrest_info=backups.pgbackrest_info_line(sections.get("backup-list", "")),
        backup_stat=parse_backup_stat(sections.get("backup-stat", ""), config),
    )


def parse_sockets(text: str) -> list[Socket] | None:
    kind, _, rest = text.partition("\n")
    if kind.strip() == "ss":
        return parse_ss(rest)
    if kind.strip() == "proc" and rest.strip():
        return parse_proc_net_tcp(rest)
    return None


def parse_sql(text: str, database: str | None = None
              ) -> tuple[dict[str, Any] | None, LedgerState | None, str, str]:
    """The merged JSON objects, the ledger (None: not probed, or unreadable), any other
    lines (errors), and why the ledger could not be read ("": it was, or was not probed)."""
    merged, ledger_lines, errors = queries.parse_output(text)
    error_text = "\n".join(errors)
    ledger, ledger_error = None, ""
    if ledger_lines:
        try:
            ledger = parse_ledger_probe("\n".join(ledger_lines), error_text, database=database)
        except MigrationError as e:  # the migrations check reports it; the others still run
            ledger_error = str(e)
    return (merged or None), ledger, error_text, ledger_error
