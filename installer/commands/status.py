"""`chatalot-db status`: how each host's database is doing, one round trip per host.

Per host: PostgreSQL version and uptime, the app database's size
(pg_size_pretty), connections in use / max_connections, migrations applied /
pending (against the migrations apply uses), and the newest file in backup_dir.
Read-only, over apply's transports.

Exit codes: 0 every host answered, 2 PostgreSQL did not answer on a host (or the
migration ledger could not be read there), 4 a host was unreachable (and none
failed), 1 / 5 / 99 as apply.
"""

from __future__ import annotations

import argparse
import time
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
from installer.desired.config import HostConfig
from installer.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    ChatalotError,
    UnreachableError,
    UsageError,
)
from installer.fleet.hosts import Connection, close_all, connect_all, load_hosts
from installer.host import queries
from installer.host.sections import SectionScript
from installer.host.state import sql_section
from installer.sqlx.rules import LedgerState, Migration, load_migrations, parse_ledger_probe
from installer.transport.base import Transport
from installer.transport.shell import sh
from installer.verify.checks import MigrationCounts, migration_counts


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "status",
        help="show each host's PostgreSQL version, uptime, database size, connections, "
        "migrations and last backup",
        description="One line of facts per item and host: PostgreSQL version and uptime, "
        "database size, connections in use / max_connections, migrations applied / pending, "
        "the newest file in backup_dir. Changes nothing.",
    )
    add_target_options(p, forks="read")
    p.set_defaults(func=run)


def status_sql(config: HostConfig) -> str:
    """psql script (as postgres): one JSON line, then the ledger as apply reads it."""
    q = queries
    return q.script(config, [
        q.setting_fragment("server_version"), q.UPTIME_SECONDS, q.CONNECTIONS,
        q.setting_fragment("max_connections", "int"), q.database_size_fragment(config)])


def backup_script(backup_dir: str) -> str:
    """Shell printing `MTIME SIZE NAME` of the newest file in backup_dir, or MISSING."""
    d = sh(backup_dir)
    return (f"if [ -d {d} ]; then find {d} -maxdepth 1 -type f -printf '%T@ %s %f\\n' "
            "2>/dev/null | sort -n | tail -n 1; else echo MISSING; fi")


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
    #: (mtime, size in bytes, file name) of the newest backup; None: no backup
    backup: tuple[float, int, str] | None = None
    backup_dir: str = ""
    backup_dir_missing: bool = False
    error: str = ""
    unreachable: bool = False
    notes: list[str] = field(default_factory=list)
    #: whether the status script's output was read (False: only `error` is known)
    read: bool = False


def read_status(name: str, t: Transport, config: HostConfig,
                local: Sequence[Migration] | None) -> HostStatus:
    """One round trip (as root): the SQL as postgres, and the backup folder."""
    s = SectionScript()
    s.section("sql", sql_section(config.pg_port, status_sql(config)))
    s.section("backup", backup_script(config.backup_dir))
    r = t.run(s.script, become="root", timeout=120)
    sections = s.parse(r.stdout)
    if "backup" not in sections:
        return HostStatus(name, error=(r.stderr or r.stdout).strip() or
                          f"status script failed (exit {r.exit_code})")
    return parse_status(name, sections, config, local)


def parse_status(name: str, sections: dict[str, str], config: HostConfig,
                 local: Sequence[Migration] | None) -> HostStatus:
    """Pure: the sections of the status script as a HostStatus."""
    st = HostStatus(name, backup_dir=config.backup_dir, read=True)
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
    backup = sections.get("backup", "").strip()
    if backup == "MISSING":
        st.backup_dir_missing = True
    elif backup:
        parts = backup.split(" ", 2)
        try:
            st.backup = (float(parts[0]), int(parts[1]), parts[2])
        except (IndexError, ValueError):
            st.notes.append(f"unreadable backup listing: {backup!r}")
    return st


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def format_duration(seconds: int) -> str:
    """3 days 2:11:05 / 2:11:05 / 0:00:42."""
    days, rest = divmod(max(0, seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    if days:
        return f"{days} day{'s' if days != 1 else ''} {clock}"
    return clock


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
            row("migrations", text)
        else:
            row("migrations", st.migrations_note or "unknown")
    if st.backup is not None:
        mtime, size, fname = st.backup
        age = format_duration(int(now - mtime))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(mtime))
        row("last backup", f"{st.backup_dir.rstrip('/')}/{fname} ({format_bytes(size)}, "
            f"{stamp}, {age} ago)")
    elif st.backup_dir_missing:
        row("last backup", f"none ({st.backup_dir} does not exist)")
    else:
        row("last backup", f"none (nothing in {st.backup_dir})")
    lines.extend(f"  note: {n}" for n in st.notes)
    return "\n".join(lines)


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
    hosts = load_hosts(args.inventory, args.limit, *inventory_inputs(args))
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
