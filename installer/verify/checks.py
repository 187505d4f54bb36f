"""What a Chatalot database host should look like, as pure checks.

Each `*_problems` function takes what was read from the host and returns the
problems found, each a sentence that names the thing that is wrong
("postgresql listens on 0.0.0.0:5432 ...", "migration 12 is missing from the
ledger", "pg_hba line 3 uses trust ..."); an empty list means the check passes.
The parsers turn command output into plain values. No I/O here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from installer.desired import backups, pgconf
from installer.desired.backups import BackupFile
from installer.host.applogin import EXIT_BAD_ENV, LoginOutcome
from installer.sqlx.rules import LEDGER_TABLE, LedgerState, Migration

# -- listening sockets ------------------------------------------------------------


@dataclass(frozen=True)
class Socket:
    """A listening TCP socket: its local address (no brackets), port and owning process."""

    address: str
    port: int
    process: str | None = None

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def parse_ss(text: str) -> list[Socket]:
    """Listening sockets from `ss -ltnp` (State Recv-Q Send-Q Local Peer [Process])."""
    out: list[Socket] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[0] != "LISTEN":
            continue
        address, _, port = fields[3].rpartition(":")
        if not port.isdigit():
            continue
        address = address.strip("[]").split("%", 1)[0]
        if address == "*":
            address = "0.0.0.0"
        process = None
        rest = " ".join(fields[5:])
        if 'users:(("' in rest:
            process = rest.split('users:(("', 1)[1].split('"', 1)[0]
        out.append(Socket(address, int(port), process))
    return out


def parse_proc_net_tcp(text: str) -> list[Socket]:
    """Listening sockets from /proc/net/tcp or /proc/net/tcp6 (state 0A is LISTEN)."""
    out: list[Socket] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A" or ":" not in fields[1]:
            continue
        hex_addr, _, hex_port = fields[1].partition(":")
        try:
            raw = bytes.fromhex(hex_addr)
            port = int(hex_port, 16)
        except ValueError:
            continue
        # the kernel prints each 32-bit word in host (little-endian) order
        words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
        if len(words) == 4:
            address = str(ipaddress.IPv4Address(words))
        elif len(words) == 16:
            address = str(ipaddress.IPv6Address(words))
        else:
            continue
        out.append(Socket(address, port))
    return out


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _allowed(address: str, pg_listen: str) -> bool:
    """Whether a socket on `address` is what `pg_listen` asked for."""
    wanted = [p.strip() for p in pg_listen.split(",") if p.strip()]
    if "*" in wanted:
        return True
    if _is_loopback(address) and "localhost" in wanted:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for w in wanted:
        try:
            if ipaddress.ip_address(w) == ip:
                return True
        except ValueError:
            continue
    return False


def _describe_listen(pg_listen: str) -> str:
    if pg_listen.strip() in ("localhost", "127.0.0.1,::1", "::1,127.0.0.1"):
        return f"pg_listen is {pg_listen!r}: loopback only"
    return f"pg_listen is {pg_listen!r}"


def listen_problems(sockets: Sequence[Socket] | None, port: int, pg_listen: str,
                    live_listen_addresses: str | None) -> list[str]:
    """PostgreSQL's TCP sockets are on the addresses pg_listen names, and nowhere else.

    `sockets` None: they could not be read; then only listen_addresses is compared.
    """
    problems: list[str] = []
    why = _describe_listen(pg_listen)
    if sockets is not None:
        mine = [s for s in sockets if s.port == port and s.process in (None, "postgres")]
        for s in mine:
            if not _allowed(s.address, pg_listen):
                problems.append(f"postgresql listens on {s} ({why})")
        if not mine and pg_listen.strip():
            problems.append(f"postgresql listens on no TCP address on port {port} "
                            f"({why}): is it running, and on that port?")
    if live_listen_addresses is not None and not pgconf.same_value(
            pg_listen, live_listen_addresses):
        problems.append(f"listen_addresses is {live_listen_addresses!r}, {why}")
    return problems


# -- the role, the database, grants, pg_hba -----------------------------------------------

#: pg_roles columns and what it means when one is not as apply sets it (steps.access.ROLE_FLAGS)
_ROLE_FLAG_TEXT = {
    "rolcanlogin": ("cannot log in (NOLOGIN)", True),
    "rolsuper": ("is a superuser", False),
    "rolcreatedb": ("may create databases (CREATEDB)", False),
    "rolcreaterole": ("may create roles (CREATEROLE)", False),
    "rolreplication": ("may start replication (REPLICATION)", False),
    "rolbypassrls": ("bypasses row-level security (BYPASSRLS)", False),
}


def role_problems(role: Mapping[str, Any] | None, user: str) -> list[str]:
    """The app role exists, logs in, and holds none of the powers apply takes away."""
    if role is None:
        return [f"role {user} does not exist"]
    return [f"role {user} {text}" for col, (text, want) in _ROLE_FLAG_TEXT.items()
            if bool(role.get(col)) != want]


def database_problems(db: Mapping[str, Any] | None, name: str, user: str) -> list[str]:
    """The database exists, is owned by the app role and is UTF8."""
    if db is None:
        return [f"database {name} does not exist"]
    problems = []
    if db.get("owner") != user:
        problems.append(f"database {name} is owned by {db.get('owner')}, not {user}")
    if db.get("encoding") != "UTF8":
        problems.append(f"database {name} has encoding {db.get('encoding')}, not UTF8")
    return problems


def public_connect_problems(db: Mapping[str, Any] | None, name: str) -> list[str]:
    """PUBLIC holds no CONNECT on the database."""
    if db is None:
        return [f"database {name} does not exist"]
    if db.get("public_connect"):
        return [f"PUBLIC may connect to database {name} (REVOKE CONNECT ON DATABASE {name} "
                "FROM PUBLIC)"]
    return []


def schema_problems(privileges: Iterable[str] | None, user: str, db_name: str) -> list[str]:
    """The app role was granted USAGE and CREATE on schema public (as apply grants them)."""
    if privileges is None:
        return [f"database {db_name} does not exist: no schema grants to check"]
    have = set(privileges)
    return [f"role {user} lacks {p} on schema public in database {db_name}"
            for p in ("USAGE", "CREATE") if p not in have]


def table_read_problems(unreadable: Iterable[str] | None, user: str,
                        db_name: str) -> list[str]:
    """The app role may SELECT from every table of schema public (the ledger included).

    `unreadable`: the tables it may not read; None when the role or the database does not
    exist, which their own checks report."""
    tables = sorted(unreadable or ())
    if not tables:
        return []
    where = f"in schema public of database {db_name}"
    if len(tables) == 1:
        return [f"role {user} lacks SELECT on table {tables[0]} {where}"]
    shown = ", ".join(tables[:10]) + (f" and {len(tables) - 10} more" if len(tables) > 10 else "")
    return [f"role {user} lacks SELECT on {len(tables)} tables {where}: {shown}"]


def _rule_text(rule: Mapping[str, Any]) -> str:
    def field(key: str) -> str:
        value = rule.get(key)
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return "" if value is None else str(value)

    parts = [field("type"), field("database"), field("user_name")]
    if rule.get("type") != "local":
        parts.append(_address(field("address"), field("netmask")))
    return " ".join(p for p in parts if p)


def _address(address: str, netmask: str) -> str:
    """`192.0.2.1` + `255.255.255.255` -> `192.0.2.1/32`, as pg_hba.conf would say it."""
    if not netmask:
        return address
    try:
        return f"{address}/{ipaddress.ip_network(f'{address}/{netmask}', strict=False).prefixlen}"
    except ValueError:
        return f"{address}/{netmask}"


def hba_problems(rules: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """No rule in pg_hba_file_rules uses `trust`, and none is invalid."""
    if rules is None:
        return ["pg_hba_file_rules could not be read"]
    problems = []
    for r in rules:
        where = f"{r['file_name']} line {r.get('line_number')}" if r.get("file_name") else \
            f"pg_hba line {r.get('line_number')}"
        if r.get("error"):
            problems.append(f"{where} is invalid: {r['error']}")
        elif r.get("auth_method") == "trust":
            problems.append(f"{where} uses trust ({_rule_text(r)}): anyone matching it logs "
                            "in without a password")
    return problems


# -- settings ------------------------------------------------------------------------------


def settings_problems(wanted: Mapping[str, str], live: Mapping[str, Mapping[str, Any]],
                      inputs: str) -> list[str]:
    """Every setting apply renders is in force with the same value (units normalised).

    `live` is name -> {value: current_setting(name), unit, pending_restart,
    sourcefile, sourceline} from pg_settings; `inputs` says what the tuning was
    computed from, for the message.
    """
    problems = []
    for name, value in wanted.items():
        row = live.get(name)
        if row is None:
            if "." not in name:
                problems.append(f"{name} is not a setting this server knows")
            continue
        unit = row.get("unit")
        have = str(row.get("value"))
        if pgconf.same_value(value, have, str(unit) if unit else None):
            continue
        where = ""
        if row.get("sourcefile"):
            where = f" (set in {row['sourcefile']} line {row.get('sourceline')})"
        elif row.get("source"):
            where = f" (source: {row['source']})"
        pending = "; a restart is pending" if row.get("pending_restart") else ""
        problems.append(f"{name} is {have}{where}, the tuning calculator gives {value} "
                        f"for {inputs}{pending}")
    return problems


# -- migrations -----------------------------------------------------------------------------


def _versions(versions: Iterable[int]) -> str:
    """1, 2, 3, 7, 9, 10 -> '1-3, 7, 9-10'."""
    items = sorted(set(versions))
    spans: list[str] = []
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        spans.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ", ".join(spans)


def _migrations(versions: Sequence[int]) -> str:
    return ("migration " if len(versions) == 1 else "migrations ") + _versions(versions)


def server_ledger_problems(ledger: LedgerState | None, ledger_error: str = "") -> list[str]:
    """migrations_source none: the ledger the Chatalot server keeps (if it started yet) is
    readable and holds no dirty row (a migration of the server's that failed half-way)."""
    if ledger_error:
        return [ledger_error]
    dirty = [a.version for a in (ledger.applied if ledger else ()) if not a.success]
    if dirty:
        return [f"{_migrations(dirty)} {'is' if len(dirty) == 1 else 'are'} dirty (success = "
                f"false in {LEDGER_TABLE}): a migration of the Chatalot server failed "
                "half-way; the server will not start until it is fixed"]
    return []


def migration_problems(local: Sequence[Migration], ledger: LedgerState | None,
                       db_name: str, ledger_error: str = "") -> list[str]:
    """Every local migration is in the ledger with the same checksum, none dirty, none unknown.

    `ledger_error`: why the ledger could not be read; it is the problem then (an unreadable
    ledger is not an empty one)."""
    if ledger_error:
        return [ledger_error]
    if ledger is None:
        return [f"database {db_name} does not exist: no migration ledger to check"]
    if not ledger.exists:
        return [f"the {LEDGER_TABLE} ledger does not exist in database {db_name}: none of the "
                f"{len(local)} migrations is applied"]
    rows = {a.version: a for a in ledger.applied}
    known = {m.version for m in local}
    problems = []
    dirty = [v for v, a in sorted(rows.items()) if not a.success]
    if dirty:
        problems.append(f"{_migrations(dirty)} {'is' if len(dirty) == 1 else 'are'} dirty "
                        f"(success = false in {LEDGER_TABLE}): partially applied")
    missing = [m.version for m in local if m.version not in rows]
    if missing:
        problems.append(f"{_migrations(missing)} {'is' if len(missing) == 1 else 'are'} "
                        "missing from the ledger")
    modified = [m.version for m in local
                if m.version in rows and rows[m.version].checksum != m.checksum]
    if modified:
        problems.append(f"{_migrations(modified)} {'was' if len(modified) == 1 else 'were'} "
                        "applied with a different checksum than the local file")
    unknown = [v for v in sorted(rows) if v not in known]
    if unknown:
        problems.append(f"{_migrations(unknown)} {'is' if len(unknown) == 1 else 'are'} in "
                        f"the ledger but not among the {len(local)} local migrations")
    return problems


@dataclass(frozen=True)
class MigrationCounts:
    applied: int
    pending: int
    #: other findings: dirty, modified or unknown rows (as migration_problems words them)
    notes: tuple[str, ...] = ()


def migration_counts(local: Sequence[Migration], ledger: LedgerState | None) -> MigrationCounts:
    """Applied (with a matching checksum) and pending local migrations, for `status`."""
    if ledger is None or not ledger.exists:
        return MigrationCounts(0, len(local))
    rows = {a.version: a for a in ledger.applied}
    applied = sum(1 for m in local if m.version in rows and rows[m.version].success
                  and rows[m.version].checksum == m.checksum)
    pending = sum(1 for m in local if m.version not in rows)
    notes = tuple(p for p in migration_problems(local, ledger, "")
                  if "missing from the ledger" not in p)
    return MigrationCounts(applied, pending, notes)


# -- files and login ---------------------------------------------------------------------------


def env_file_problems(meta: str | None, path: str) -> list[str]:
    """The env file exists, mode 0600, owned by root:root. `meta` is `stat -c '%a %U %G'`."""
    fields = (meta or "").split()
    if len(fields) != 3:
        return [f"env file {path} does not exist"]
    mode, owner, group = fields
    problems = []
    if mode.zfill(4) != "0600":
        problems.append(f"env file {path} has mode {mode.zfill(4)}, not 0600: others can read "
                        "the database password")
    if (owner, group) != ("root", "root"):
        problems.append(f"env file {path} is owned by {owner}:{group}, not root:root")
    return problems


def login_problems(outcome: LoginOutcome, path: str, user: str, db_name: str) -> list[str]:
    """DATABASE_URL in the env file logs in over TCP, as the app role, to the app database."""
    if outcome.exit_code == EXIT_BAD_ENV:
        return [outcome.error.removeprefix("chatalot-db: ") or f"{path} is unusable"]
    target = outcome.target or "?"
    if outcome.user is None:
        detail = outcome.error or f"psql exited with {outcome.exit_code}"
        return [f"DATABASE_URL in {path} ({target}) does not log in: {detail}"]
    problems = []
    if outcome.user != user:
        problems.append(f"DATABASE_URL in {path} logs in as {outcome.user}, not {user}")
    if outcome.database != db_name:
        problems.append(f"DATABASE_URL in {path} connects to database {outcome.database}, "
                        f"not {db_name}")
    if not outcome.tcp:
        problems.append(f"DATABASE_URL in {path} ({target}) connects over a Unix socket, "
                        "not TCP")
    return problems


# -- backups ---------------------------------------------------------------------------------------

#: the newest backup may be this old: a nightly schedule plus slack
MAX_BACKUP_AGE = 26 * 3600


def format_duration(seconds: int) -> str:
    """3 days 2:11:05 / 2:11:05 / 0:00:42."""
    days, rest = divmod(max(0, seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    if days:
        return f"{days} day{'s' if days != 1 else ''} {clock}"
    return clock


@dataclass(frozen=True)
class FileMeta:
    """A file's `stat -c '%a %U %G %Y %n'`: mode (4 octal digits), owner, group, mtime."""

    mode: str
    owner: str
    group: str
    mtime: int


#: the stat format parse_stat reads
STAT_FORMAT = "%a %U %G %Y %n"


def parse_stat(text: str) -> dict[str, FileMeta]:
    """path -> FileMeta from `stat -c STAT_FORMAT` lines (others skipped)."""
    out: dict[str, FileMeta] = {}
    for line in text.splitlines():
        parts = line.split(" ", 4)
        if len(parts) != 5 or not parts[3].isdigit():
            continue
        mode, owner, group, mtime, path = parts
        try:
            int(mode, 8)
        except ValueError:
            continue
        out[path] = FileMeta(mode.zfill(4), owner, group, int(mtime))
    return out


def _timer_words(state: str) -> str:
    words = state.split()
    if len(words) != 2:
        return "systemctl shows no state"
    return f"UnitFileState {words[0]}, ActiveState {words[1]}"


def _list(paths: Sequence[str]) -> str:
    return ", ".join(paths) + (" does" if len(paths) == 1 else " do")


def backup_schedule_problems(backup: str, db_name: str, pid1: str, present: Iterable[str],
                             timer_state: str, cron_running: bool | None) -> list[str]:
    """backup=pg_dump: the schedule apply writes is in place and something runs it (the
    timer enabled and active where systemd is PID 1, else the cron.d entry and a cron
    daemon); backup=none: no schedule of ours. `present`: which of the script and the
    schedule's files exist; `timer_state`: "UNITFILESTATE ACTIVESTATE"."""
    have = set(present)
    service, timer, cron = backups.schedule_paths(db_name)
    unit = timer.rsplit("/", 1)[1]
    if backup == "none":
        ours = [p for p in (service, timer, cron) if p in have]
        if ours:
            return [f"backup=none, but a backup schedule of ours is in place: {', '.join(ours)}"
                    " (apply removes it)"]
        return []
    if pid1 == "systemd":
        missing = [p for p in (service, timer) if p not in have]
        if missing:
            return [f"no backups are scheduled: {_list(missing)} not exist (backup={backup}; "
                    "apply writes the timer)"]
        problems = []
        if timer_state != "enabled active":
            problems.append(f"the backup timer {unit} is not enabled and active "
                            f"({_timer_words(timer_state)}): no backups are taken "
                            f"(systemctl enable --now {unit})")
        if cron in have:
            problems.append(f"{cron} exists too: where systemd is PID 1 the timer schedules "
                            "the backups (apply removes the cron entry)")
        return problems + _script_problems(have, backup)
    if not cron_running:
        text = ("no backups are scheduled: no systemd and no cron daemon; run cron, or set "
                "backup=none")
        if cron in have:
            text += f" ({cron} is in place, but nothing runs it)"
        return [text]
    if cron not in have:
        return [f"no backups are scheduled: {cron} does not exist (backup={backup}; apply "
                "writes it where a cron daemon runs)"]
    return _script_problems(have, backup)


def _script_problems(have: set[str], backup: str) -> list[str]:
    needed = ((backups.PGBR_SCRIPT, backups.PGBR_CONF) if backup == "pgbackrest"
              else (backups.SCRIPT_PATH,))
    return [f"the backup {'script' if p.endswith('backup') else 'configuration'} {p} does "
            "not exist: every scheduled run fails (apply writes it)"
            for p in needed if p not in have]


def archiver_problems(archiver: Mapping[str, Any] | None) -> list[str]:
    """backup=pgbackrest: WAL archiving works (pg_stat_archiver: no failure since the last
    segment archived). A failing archive_command keeps every WAL segment in pg_wal."""
    if not archiver:
        return ["pg_stat_archiver could not be read"]
    if archiver.get("failing"):
        return [f"WAL archiving fails: the last try ({archiver.get('last_failed_wal')}) failed "
                f"after the last success ({archiver.get('failed')} failures, "
                f"{archiver.get('archived')} archived); every WAL segment stays in pg_wal "
                "until it works (see the server log, and `pgbackrest check` as postgres)"]
    return []


def pgbackrest_problems(info_json: str | None, stanza: str) -> list[str]:
    """backup=pgbackrest: pgBackRest reads the stanza and calls it ok (its repository and
    WAL archive in order, no backup failing right now)."""
    if info_json is None:
        return ["pgbackrest is not installed (backup=pgbackrest; apply installs it)"]
    info = backups.parse_pgbackrest_info(info_json, stanza)
    if info.status is None:
        return [f"pgBackRest's info on stanza {stanza} could not be read: {info.error}"]
    code, message = info.status
    if code != 0:
        return [f"pgBackRest says stanza {stanza} is not in order: {message} (code {code}; "
                f"`pgbackrest --stanza={stanza} check` as postgres says more)"]
    return []


def backup_age_problems(newest: BackupFile | None, now: int, schedule_mtime: int | None,
                        db_name: str, backup_dir: str, *, systemd: bool,
                        max_age: int = MAX_BACKUP_AGE) -> list[str]:
    """The newest backup (any kind) is at most `max_age` old, unless the schedule's own file
    (the timer unit, or the cron entry) is younger than that: no night has passed yet.
    `now` is the host's clock; `schedule_mtime` None: there is no schedule."""
    if newest is not None and now - newest.mtime <= max_age:
        return []
    if schedule_mtime is not None and now - schedule_mtime < max_age:
        return []
    limit = f"{max_age // 3600} hours (a nightly schedule plus slack)"
    see = ""
    if schedule_mtime is not None:
        see = (f"; see journalctl -u {backups.unit_base(db_name)}.service" if systemd else
               "; see the cron daemon's log")
    if newest is None:
        since = ""
        if schedule_mtime is not None:
            since = f", and the schedule is {format_duration(now - schedule_mtime)} old"
        return [f"there is no backup of database {db_name} in {backup_dir}{since}{see}"]
    return [f"the newest backup of database {db_name} is {newest.path} ({newest.kind}), "
            f"{format_duration(now - newest.mtime)} old: more than {limit}{see}"]


def backup_permission_problems(dir_meta: FileMeta | None, dumps: Mapping[str, FileMeta],
                               backup_dir: str) -> list[str]:
    """backup_dir is 0700 and owned by postgres; no dump in it grants group or others any
    access (apply and the backup script write them 0600). `dir_meta` None: there is no
    backup_dir, so nothing to read."""
    problems = []
    if dir_meta is not None:
        if dir_meta.mode != "0700":
            problems.append(f"backup_dir {backup_dir} has mode {dir_meta.mode}, not 0700")
        if dir_meta.owner != "postgres":
            problems.append(f"backup_dir {backup_dir} is owned by {dir_meta.owner}, not "
                            "postgres")
    loose = sorted((path, m.mode) for path, m in dumps.items() if int(m.mode, 8) & 0o077)
    if len(loose) == 1:
        path, mode = loose[0]
        problems.append(f"backup {path} has mode {mode}, not 0600: others can read the "
                        "database's data")
    elif loose:
        shown = ", ".join(f"{p} ({m})" for p, m in loose[:10])
        more = f" and {len(loose) - 10} more" if len(loose) > 10 else ""
        problems.append(f"{len(loose)} backups in {backup_dir} are not 0600, so others can "
                        f"read the database's data: {shown}{more}")
    return problems


def package_problems(missing: Sequence[str]) -> list[str]:
    return [f"package {p} is not installed" for p in missing]


def fail_text(problems: Sequence[str]) -> str:
    """The failure message of a check: one problem per line."""
    return "\n".join(problems)
