"""`chatalot-db status`: how each host's database is doing, one round trip per host.

Per host: PostgreSQL version and uptime, the app database's size
(pg_size_pretty), connections in use / max_connections, migrations applied /
pending (against the migrations apply uses), the newest backup of the app database
in backup_dir and how many there are, and the backup schedule (the systemd timer,
or the cron entry, read as apply's state probe reads them). Read-only, over apply's
transports.

Exit codes: 0 every host answered, 2 PostgreSQL did not answer on a host (or the
migration ledger could not be read there), 4 a host was unreachable (and none
failed), 1 / 5 / 99 as apply.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from installer.commands.targets import (
    add_target_options,
    become_password,
    inventory_inputs,
    list_hosts,
)
from installer.desired import backups
from installer.desired.backups import BackupFile
from installer.desired.config import HostConfig
from installer.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    ChatalotError,
    UnreachableError,
    UsageError,
)
from installer.fleet.hosts import (
    Connection,
    close_all,
    connect_all,
    load_hosts,
    with_migrations,
)
from installer.host import queries
from installer.host.facts import FACTS_SCRIPT_SECTIONS
from installer.host.sections import SectionScript
from installer.host.state import (
    backup_file_texts,
    backup_sections,
    parse_cron,
    sql_section,
    timer_state,
)
from installer.sqlx.rules import LedgerState, Migration, load_migrations, parse_ledger_probe
from installer.transport.base import Transport
from installer.transport.shell import sh
from installer.verify.checks import MigrationCounts, format_duration, migration_counts


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "status",
        help="show each host's PostgreSQL version, uptime, database size, connections, "
        "migrations, last backup and backup schedule",
        description="One line of facts per item and host: PostgreSQL version and uptime, "
        "database size, connections in use / max_connections, migrations applied / pending, "
        "the newest backup of the database in backup_dir and how many there are, the backup "
        "schedule (systemd timer, cron entry or none). Changes nothing.",
    )
    add_target_options(p, forks="read")
    p.set_defaults(func=run)


def status_sql(config: HostConfig) -> str:
    """psql script (as postgres): one JSON line, then the ledger as apply reads it (the
    server's own with migrations_source none)."""
    q = queries
    return q.script(config, [
        q.setting_fragment("server_version"), q.UPTIME_SECONDS, q.CONNECTIONS,
        q.setting_fragment("max_connections", "int"), q.database_size_fragment(config)],
        ledger=True)


def backup_script(backup_dir: str, db_name: str, stanza: str | None = None) -> str:
    """Shell printing `MTIME SIZE PATH` per dump of `db_name` in backup_dir, and with
    `stanza` pgBackRest's backups (backups.listing_script), or MISSING when there is no
    backup_dir."""
    return (f"if [ -d {sh(backup_dir)} ]; then "
            f"{backups.listing_script(backup_dir, db_name, stanza)}; else echo MISSING; fi")


@dataclass
class HostStatus:
    """What status found on one host (None: could not be read)."""

    name: str
    version: str | None = None
    uptime_seconds: int | None = None
    database_size: str | None = None
    connections: int | None = None
    max_connections: int | None = None
    migrations: MigrationCounts | None = None
    migrations_note: str = ""
    #: the release the counts are against (a git or archive source, with its commit)
    migrations_source: str = ""
    #: the app database's dumps in backup_dir, newest first
    backups: list[BackupFile] = field(default_factory=list)
    backup_dir: str = ""
    backup_dir_missing: bool = False
    db_name: str = ""
    #: the backup variable: pg_dump or none
    backup_setting: str = ""
    #: PID 1 (/proc/1/comm): systemd runs the timer, else cron the cron entry
    pid1: str = ""
    #: which of the backup script and the schedule's files exist
    backup_files: frozenset[str] = frozenset()
    #: the timer's "UNITFILESTATE ACTIVESTATE" ("": no unit file)
    backup_timer: str = ""
    #: the timer's OnCalendar, or the cron entry's time ("": unknown)
    backup_when: str = ""
    #: whether a cron daemon runs (None: unknown)
    cron_running: bool | None = None
    error: str = ""
    unreachable: bool = False
    notes: list[str] = field(default_factory=list)
    #: whether the status script's output was read (False: only `error` is known)
    read: bool = False

    @property
    def backup(self) -> BackupFile | None:
        """The newest backup taken on the host (None: there is none; an uploaded dump is
        not one)."""
        return backups.newest_taken(self.backups)


def read_status(name: str, t: Transport, config: HostConfig,
                local: Sequence[Migration] | None) -> HostStatus:
    """One round trip (as root): the SQL as postgres, the backup schedule, and the backup
    folder (its section last: without it, the script failed)."""
    s = SectionScript()
    s.section("sql", sql_section(config.pg_port, status_sql(config)))
    s.section("pid1", FACTS_SCRIPT_SECTIONS["pid1"])
    backup_sections(s, config, systemd=None)  # whether systemd is PID 1 is read alongside
    s.section("backup", backup_script(config.backup_dir, config.db_name,
                                           backups.stanza_of(config.backup)))
    r = t.run(s.script, become="root", timeout=120)
    sections = s.parse(r.stdout)
    if "backup" not in sections:
        return HostStatus(name, error=(r.stderr or r.stdout).strip() or
                          f"status script failed (exit {r.exit_code})")
    return parse_status(name, sections, config, local)


def parse_status(name: str, sections: dict[str, str], config: HostConfig,
                 local: Sequence[Migration] | None) -> HostStatus:
    """Pure: the sections of the status script as a HostStatus."""
    st = HostStatus(name, backup_dir=config.backup_dir, db_name=config.db_name,
                    backup_setting=config.backup, read=True)
    info, ledger_lines, errors = queries.parse_output(sections.get("sql", ""))
    if not info:
        text = "; ".join(errors) or "no output"
        st.error = text if text.startswith("PostgreSQL is not installed") else \
            f"PostgreSQL does not answer: {text}"
    else:
        st.version = str(info.get("server_version") or "").split(" ")[0] or None
        st.uptime_seconds = _int(info.get("uptime_seconds"))
        st.connections = _int(info.get("connections"))
        st.max_connections = _int(info.get("max_connections"))
        st.database_size = info.get("database_size")
        if local is None:
            st.migrations_note = "left to the Chatalot server (migrations_source is none)"
            if st.database_size is not None:
                st.migrations_note += _server_ledger(ledger_lines, errors, config.db_name)
        elif st.database_size is None:
            st.migrations_note = f"database {config.db_name} does not exist"
        else:
            try:
                ledger: LedgerState | None = parse_ledger_probe(
                    "\n".join(ledger_lines), "\n".join(errors), database=config.db_name)
            except ChatalotError as e:  # unreadable: a problem of the host, never 0 applied
                ledger, st.migrations_note = None, str(e)
                st.error = st.migrations_note
            if ledger is not None:
                st.migrations = migration_counts(local, ledger)
                named = config.migrations
                if named is not None and named.remote:
                    st.migrations_source = config.migrations_label
    backup = sections.get("backup", "")
    if backup.strip() == "MISSING":
        st.backup_dir_missing = True
    else:
        st.backups = backups.parse_listing(backup, config.db_name,
                                           backups.stanza_of(config.backup))
    _parse_schedule(st, sections, config)
    return st


def _server_ledger(ledger_lines: list[str], errors: list[str], db_name: str) -> str:
    """What the server's own ledger holds, for the migrations line: `: 52 in its ledger`."""
    try:
        ledger = parse_ledger_probe("\n".join(ledger_lines), "\n".join(errors),
                                    database=db_name)
    except ChatalotError as e:
        return f": its ledger cannot be read: {e}"
    if not ledger.exists:
        return ": no ledger yet (the server has not started on it)"
    dirty = [a.version for a in ledger.applied if not a.success]
    return (f": {len(ledger.applied)} in its ledger"
            + (f", {len(dirty)} dirty (a failed migration)" if dirty else ""))


def _parse_schedule(st: HostStatus, sections: dict[str, str], config: HostConfig) -> None:
    texts = backup_file_texts(sections, config)
    st.backup_files = frozenset(p for p, text in texts.items() if text is not None)
    st.pid1 = sections.get("pid1", "").strip()
    st.cron_running = parse_cron(sections.get("cron", ""))
    _, timer, cron = backups.schedule_paths(config.db_name)
    if st.pid1 == "systemd":
        st.backup_timer = timer_state(sections.get("backup-timer", ""))
        st.backup_when = _on_calendar(texts.get(timer) or "")
    else:
        st.backup_when = _cron_when(texts.get(cron) or "")


def _on_calendar(unit: str) -> str:
    """`OnCalendar *-*-* 03:00:00` from the timer unit (empty when it has none)."""
    for line in unit.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "OnCalendar":
            return f"OnCalendar {value.strip()}"
    return ""


def _cron_when(entry: str) -> str:
    """`daily at HH:MM` from a cron.d entry's `M H * * * USER COMMAND` line."""
    for line in entry.splitlines():
        f = line.split()
        if len(f) >= 6 and f[0].isdigit() and f[1].isdigit() and f[2:5] == ["*", "*", "*"]:
            return f"daily at {int(f[1]):02d}:{int(f[0]):02d}"
    return ""


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def format_bytes(n: int) -> str:
    """Like pg_size_pretty: bytes, kB, MB, GB, TB (binary, rounded)."""
    value, unit = float(n), "bytes"
    for next_unit in ("kB", "MB", "GB", "TB"):
        if value < 10 * 1024:
            break
        value, unit = value / 1024, next_unit
    return f"{round(value)} {unit}"


def format_status(st: HostStatus, now: float) -> str:
    """The block `status` prints for one host."""
    if st.unreachable:
        return f"{st.name}: UNREACHABLE: {st.error}"
    if not st.read:  # nothing read (sudo refused, bad variables, the script failed): no rows
        return f"{st.name}: FAILED: {st.error or 'nothing read'}"
    lines = [st.name]

    def row(label: str, value: str) -> None:
        lines.append(f"  {label:<13}{value}")

    if st.error and st.version is None:
        row("PostgreSQL", st.error)
    else:
        up = f" (up {format_duration(st.uptime_seconds)})" if st.uptime_seconds is not None else ""
        row("PostgreSQL", f"{st.version}{up}")
        row("database", st.database_size or "does not exist")
        row("connections", f"{st.connections} / {st.max_connections}")
        if st.migrations is not None:
            m = st.migrations
            text = f"{m.applied} applied, {m.pending} pending"
            if m.notes:
                text += "; " + "; ".join(m.notes)
            if st.migrations_source:
                text += f" ({st.migrations_source})"
            row("migrations", text)
        else:
            row("migrations", st.migrations_note or "unknown")
    newest = st.backup
    if newest is not None:
        age = format_duration(int(now - newest.mtime))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(newest.mtime))
        row("last backup", f"{newest.path} ({newest.kind}, {format_bytes(newest.size)}, "
            f"{stamp}, {age} ago)")
        row("backups", backup_counts(st.backups))
    elif st.backup_dir_missing:
        row("last backup", f"none ({st.backup_dir} does not exist)")
    elif st.backups:
        row("last backup", f"none taken on this host (only dumps uploaded to {st.backup_dir})")
        row("backups", backup_counts(st.backups))
    else:
        row("last backup", f"none (no dump of {st.db_name} in {st.backup_dir})")
    row("schedule", schedule_text(st))
    lines.extend(f"  note: {n}" for n in st.notes)
    return "\n".join(lines)


#: the dump kinds, in the order `status` counts them
KIND_ORDER = (backups.SCHEDULED, backups.MANUAL, "before-migration", "before-upgrade")


def backup_counts(found: Sequence[BackupFile]) -> str:
    """`9 (7 scheduled, 2 before-migration)` (kinds in KIND_ORDER)."""
    counts = Counter(b.kind for b in found)
    kinds = sorted(counts, key=lambda k: (KIND_ORDER.index(k) if k in KIND_ORDER
                                          else len(KIND_ORDER), k))
    return f"{len(found)} (" + ", ".join(f"{counts[k]} {k}" for k in kinds) + ")"


def schedule_text(st: HostStatus) -> str:
    """The schedule row: what runs the nightly dump (or why nothing does)."""
    _, timer, cron = backups.schedule_paths(st.db_name)
    unit = timer.rsplit("/", 1)[1]
    when = f", {st.backup_when}" if st.backup_when else ""
    in_place = ""
    if st.pid1 == "systemd" and timer in st.backup_files:
        words = st.backup_timer.split()
        state = ", ".join(words) if len(words) == 2 else "state unknown"
        in_place = f"systemd timer {unit} ({state}{when})"
    elif st.pid1 != "systemd" and cron in st.backup_files:
        runs = ("cron running" if st.cron_running else
                "no cron daemon running: it never runs" if st.cron_running is False else
                "cron unknown")
        in_place = f"cron entry {cron} ({runs}{when})"
    if st.backup_setting == "none":
        return f"{in_place}; backup=none: apply removes it" if in_place else "none (backup=none)"
    if in_place:
        return in_place
    if st.pid1 != "systemd" and st.cron_running is False:
        return ("none: no systemd and no cron daemon (backup=pg_dump: run cron, or set "
                "backup=none)")
    return "none (backup=pg_dump: apply schedules it)"


def _status_of(c: Connection, config: HostConfig | str,
               local: Sequence[Migration] | str | None) -> HostStatus:
    """One host's status; `config` / `local` are the error text when they could not be made."""
    if c.transport is None:
        return HostStatus(c.name, error=c.error, unreachable=c.unreachable)
    if isinstance(config, str):
        return HostStatus(c.name, error=f"bad variables: {config}")
    try:
        st = read_status(c.name, c.transport, config, None if isinstance(local, str) else local)
    except UnreachableError as e:
        return HostStatus(c.name, error=str(e), unreachable=True)
    except ChatalotError as e:
        return HostStatus(c.name, error=str(e))
    if isinstance(local, str):
        st.migrations_note = f"cannot read the local migrations: {local}"
    return st


def run(args: argparse.Namespace) -> int:
    if args.forks < 1:
        raise UsageError("--forks must be at least 1")
    if args.list_hosts:
        return list_hosts(args, "status")
    become = become_password(args)  # asked first, then the vault's: Ansible's order
    hosts = with_migrations(load_hosts(args.inventory, args.limit, *inventory_inputs(args)))
    configs: dict[str, HostConfig | str] = {}
    sources: dict[str, Sequence[Migration] | str | None] = {}
    for name, hostvars in hosts.items():
        try:
            config = HostConfig.from_vars(hostvars)
        except ChatalotError as e:
            configs[name] = str(e)
            continue
        configs[name] = config
        key = str(config.migrations_source)
        if key not in sources:
            try:
                sources[key] = (load_migrations(config.migrations_source)
                                if config.migrations_source is not None else None)
            except ChatalotError as e:
                sources[key] = str(e)

    def local_for(name: str) -> Sequence[Migration] | str | None:
        config = configs[name]
        return None if isinstance(config, str) else sources[str(config.migrations_source)]

    conns = connect_all(hosts, accept_new_host_keys=args.accept_new_host_keys,
                        forks=args.forks, become_password=become)
    try:
        with ThreadPoolExecutor(max_workers=args.forks) as pool:
            results = list(pool.map(
                lambda c: _status_of(c, configs[c.name], local_for(c.name)), conns))
    finally:
        close_all(conns)
    now = time.time()
    print("\n\n".join(format_status(st, now) for st in results))
    if any(st.error and not st.unreachable for st in results):
        return EXIT_FAILED
    if any(st.unreachable for st in results):
        return EXIT_UNREACHABLE
    return EXIT_OK
