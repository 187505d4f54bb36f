"""Per-host settings, read from inventory variables and validated before anything runs."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.desired import backups, paths, sources, tuning
from installer.errors import TuningError, UsageError
from installer.resources import migrations_dir
from installer.sqltext import validate_identifier

DEFAULT_ENV_FILE = "/etc/chatalot/database.env"
DEFAULT_BACKUP_DIR = "/var/backups/chatalot"
DEFAULT_MIGRATION_LOCK_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class HostConfig:
    """What the user wants on one host (inventory variables, defaults filled in)."""

    db_name: str = "chatalot"
    db_user: str = "chatalot"
    pg_version: int | None = None
    pg_port: int = 5432
    pg_listen: str = "localhost"
    env_file: str = DEFAULT_ENV_FILE
    pg_settings: Mapping[str, str] = field(default_factory=dict)
    #: tuning inputs that override the host's facts (None: use the facts)
    pg_memory_kb: int | None = None
    pg_cpus: int | None = None
    pg_disk: str | None = None
    pg_profile: str = "chatalot"
    pg_max_connections: int | None = None
    #: the migrations folder on the control machine; None (the default, `none`): the
    #: step is skipped, the Chatalot server applies its own migrations when it starts
    migrations_source: Path | None = None
    #: the parsed migrations_source it came from (fetched: a git commit, an archive's
    #: digest); None when built in code from a folder alone
    migrations: sources.MigrationSource | None = None
    #: where pg_dump backups go on the host before migrations touch existing data
    backup_dir: str = DEFAULT_BACKUP_DIR
    #: how long a migration statement may wait for a table lock the app holds (ms; None:
    #: without limit, as sqlx)
    migration_lock_timeout_ms: int | None = DEFAULT_MIGRATION_LOCK_TIMEOUT_MS
    #: the app role's password (None: generated once, then kept in the env file); never shown
    db_password: str | None = field(default=None, repr=False)
    #: networks the app role may connect from over SSL (hba `hostssl` lines); () = loopback only
    pg_allowed_cidrs: tuple[str, ...] = ()
    #: an existing certificate and key on the host (None: generated in the data directory)
    pg_ssl_cert: str | None = None
    pg_ssl_key: str | None = None
    #: the role db_user was called before (a planned rename: ALTER ROLE ... RENAME TO db_user)
    db_user_rename_from: str | None = None
    #: scheduled backups (installer.desired.backups): pg_dump, pgbackrest or none
    backup: str = backups.BACKUP_KINDS[0]
    #: backup=pgbackrest: the repository (None: `backup_dir`/pgbackrest)
    pgbackrest_repo_path: str | None = None
    #: days the scheduled dumps are kept
    backup_keep: int = backups.DEFAULT_KEEP_DAYS
    #: when they run (systemd OnCalendar; a daily time where cron runs them)
    backup_on_calendar: str = backups.DEFAULT_ON_CALENDAR

    @property
    def pgbackrest_repo(self) -> str:
        """backup=pgbackrest's repository on the host."""
        return self.pgbackrest_repo_path or f"{self.backup_dir.rstrip('/')}/pgbackrest"

    @property
    def remote(self) -> bool:
        """Whether remote access is asked for (hostssl rules, ssl = on)."""
        return bool(self.pg_allowed_cidrs)

    @property
    def listen_warning(self) -> str | None:
        """What to say when remote access is asked for (pg_allowed_cidrs) but pg_listen keeps
        the server on loopback, where no remote client reaches it. Not refused: inventories
        that do so (remote access planned, pg_listen not yet) keep working."""
        if not self.remote or not _loopback_only(self.pg_listen):
            return None
        if self.pg_listen.strip(" ,"):
            listen, where = f"pg_listen is {self.pg_listen}", "loopback only"
        else:
            listen, where = "pg_listen is empty", "Unix sockets only"
        return (f"pg_allowed_cidrs set but {listen}: the server listens on {where}, remote "
                "clients cannot reach it; set pg_listen (e.g. '*' or an address)")

    @property
    def bundled_migrations(self) -> bool:
        """Whether the migrations are the bundled reference set (not a Chatalot release)."""
        if self.migrations is not None and self.migrations.kind == sources.BUNDLED:
            return True
        return (self.migrations_source is not None
                and self.migrations_source.resolve() == migrations_dir().resolve())

    @property
    def migrations_label(self) -> str:
        """How reasons and reports name the migrations: the source and what it resolved
        to (`git+https://h/c.git@v0.19.0 (commit 1a2b3c4d5e6f)`), or the folder."""
        if self.migrations is not None and self.migrations.kind != sources.FOLDER:
            return self.migrations.describe()
        if self.bundled_migrations:
            return "the bundled reference migrations"
        return str(self.migrations_source) if self.migrations_source else sources.NONE

    @property
    def migrations_unfetched(self) -> str | None:
        """A git or archive source nobody fetched (a bug, said as such); None otherwise."""
        m = self.migrations
        return m.text if m is not None and m.remote and m.folder is None else None

    @classmethod
    def from_vars(cls, hostvars: Mapping[str, Any]) -> HostConfig:
        """Build from inventory variables; raise UsageError naming the bad variable."""
        db_name = validate_identifier(hostvars.get("db_name", "chatalot"), "db_name")
        db_user = validate_identifier(hostvars.get("db_user", "chatalot"), "db_user")
        pg_version = _opt_int(hostvars, "pg_version", 9, 30)
        pg_port = _opt_int(hostvars, "pg_port", 1, 65535) or 5432
        listen = str(hostvars.get("pg_listen", "localhost"))
        _check_listen(listen)
        cidrs = _allowed_cidrs(hostvars.get("pg_allowed_cidrs"))
        if not cidrs and not _loopback_only(listen):
            raise UsageError(
                f"pg_listen is {listen!r} but pg_allowed_cidrs is not set: remote clients "
                "could reach the port but no rule would let them in. Set pg_allowed_cidrs to "
                "the networks the app connects from (e.g. 10.0.0.0/24; hostssl, "
                "scram-sha-256), or leave pg_listen at localhost"
            )
        cert = _opt_file_path(hostvars, "pg_ssl_cert")
        key = _opt_file_path(hostvars, "pg_ssl_key")
        if (cert is None) != (key is None):
            raise UsageError("pg_ssl_cert and pg_ssl_key go together: give both paths (files "
                             "on the host), or neither to have a certificate generated")
        password = _password(hostvars.get("db_password"))
        env_file = paths.file_path("db_env_file", str(hostvars.get("db_env_file",
                                                                   DEFAULT_ENV_FILE)))
        settings = hostvars.get("pg_settings", {}) or {}
        if not isinstance(settings, Mapping):
            hint = ("; in a [group:vars] section an INI value is a string, as Ansible reads it: "
                    "put pg_settings on the host line"
                    if isinstance(settings, str) and settings.strip().startswith("{") else "")
            raise UsageError(
                f"pg_settings must be a dict like {{'work_mem': '8MB'}}, got {settings!r}{hint}"
            )
        memory = hostvars.get("pg_memory")
        disk = hostvars.get("pg_disk")
        profile = str(hostvars.get("pg_profile", "chatalot"))
        if disk is not None and str(disk) not in tuning.DISK_TYPES:
            raise UsageError(f"pg_disk must be one of {', '.join(tuning.DISK_TYPES)}, got {disk!r}")
        if profile not in tuning.PROFILES:
            raise UsageError(
                f"pg_profile must be one of {', '.join(tuning.PROFILES)}, got {profile!r}")
        try:
            memory_kb = tuning.parse_size(memory) if memory not in (None, "") else None
            user_settings = tuning.merge_overrides({}, settings)
        except TuningError as e:
            raise UsageError(f"pg_memory / pg_settings: {e}") from None
        max_connections = _opt_int(hostvars, "pg_max_connections", 1, 262143)
        if max_connections is not None:
            try:  # here, not once the host's facts are in: nothing is contacted for it
                tuning.check_max_connections(max_connections, "pg_max_connections")
            except TuningError as e:
                raise UsageError(str(e)) from None
        migrations = _migrations_source(hostvars)
        return cls(
            db_name, db_user, pg_version, pg_port, listen, env_file, user_settings,
            pg_memory_kb=memory_kb,
            pg_cpus=_opt_int(hostvars, "pg_cpus", 1, 4096),
            pg_disk=str(disk) if disk is not None else None,
            pg_profile=profile,
            pg_max_connections=max_connections,
            migrations_source=(migrations.folder
                               if migrations.folder is not None or migrations.kind != sources.FOLDER
                               else _migrations_folder(migrations.text)),
            migrations=migrations,
            backup_dir=paths.dir_path("backup_dir",
                                      str(hostvars.get("backup_dir", DEFAULT_BACKUP_DIR))),
            db_password=password,
            pg_allowed_cidrs=cidrs,
            pg_ssl_cert=cert,
            pg_ssl_key=key,
            migration_lock_timeout_ms=_lock_timeout(hostvars.get("migration_lock_timeout")),
            db_user_rename_from=_rename_from(hostvars.get("db_user_rename_from"), db_user),
            backup=_backup_kind(hostvars.get("backup")),
            pgbackrest_repo_path=(paths.dir_path("pgbackrest_repo_path",
                                                 str(hostvars["pgbackrest_repo_path"]))
                                  if hostvars.get("pgbackrest_repo_path") not in (None, "")
                                  else None),
            backup_keep=_opt_int(hostvars, "backup_keep", 1, 3650) or backups.DEFAULT_KEEP_DAYS,
            backup_on_calendar=_on_calendar(hostvars.get("backup_on_calendar")),
        )


def _backup_kind(value: Any) -> str:
    if value is None or value == "":
        return backups.BACKUP_KINDS[0]
    kind = str(value).strip().lower()
    if kind in ("false", "no", "off"):  # a YAML false, as people write "no backups"
        kind = "none"
    if kind not in backups.BACKUP_KINDS:
        raise UsageError(f"backup must be one of {', '.join(backups.BACKUP_KINDS)}, got "
                         f"{value!r}")
    return kind


_CALENDAR_CHARS = re.compile(r"^[0-9A-Za-z*:/,.~ +-]+$")


def _on_calendar(value: Any) -> str:
    if value is None or str(value).strip() == "":
        return backups.DEFAULT_ON_CALENDAR
    text = str(value).strip()
    if not _CALENDAR_CHARS.match(text) or len(text) > 100:
        raise UsageError(f"backup_on_calendar must be a systemd calendar expression such as "
                         f"'*-*-* 03:00:00' or 'daily', got {value!r}")
    return text


def _opt_int(hostvars: Mapping[str, Any], key: str, lo: int, hi: int) -> int | None:
    value = hostvars.get(key)
    if value is None or value == "":
        return None
    try:
        n = int(str(value))
    except ValueError:
        raise UsageError(f"{key} must be a whole number, got {value!r}") from None
    if not lo <= n <= hi:
        raise UsageError(f"{key} must be between {lo} and {hi}, got {n}")
    return n


def _check_listen(listen: str) -> None:
    for part in listen.split(","):
        part = part.strip()
        if part in ("localhost", "*", ""):
            continue
        try:
            ipaddress.ip_address(part)
        except ValueError:
            raise UsageError(
                f"pg_listen must be 'localhost', '*' or a comma-separated list of IP "
                f"addresses, got {listen!r}"
            ) from None


def _loopback_only(listen: str) -> bool:
    """Whether listen_addresses names loopback addresses only ('' = Unix sockets only)."""
    for part in (p.strip() for p in listen.split(",")):
        if part in ("localhost", ""):
            continue
        if part == "*" or not ipaddress.ip_address(part).is_loopback:
            return False
    return True


def _allowed_cidrs(value: object) -> tuple[str, ...]:
    """pg_allowed_cidrs: a list or a comma-separated string of networks, normalised."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    out: list[str] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as e:
            raise UsageError(
                f"pg_allowed_cidrs: {text!r} is not a network ({e}); give CIDRs like "
                "10.0.0.0/24 or 2001:db8::/64, as a list or comma-separated"
            ) from None
        if str(net) not in out:
            out.append(str(net))
    return tuple(out)


def _password(value: object) -> str | None:
    """db_password as given; None when unset. The value itself is never echoed."""
    if value is None or value == "":
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise UsageError(f"db_password must be a string, got a {type(value).__name__}")
    text = str(value)
    if any(c in text for c in "\x00\r\n"):
        raise UsageError("db_password cannot contain a line break or NUL")
    return text


_DURATION = re.compile(r"\s*(\d+)\s*(ms|s|min)?\s*")
_UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000, None: 1000}


def _rename_from(value: Any, db_user: str) -> str | None:
    """db_user_rename_from: a plain identifier other than db_user, or None (unset)."""
    if value is None or value == "":
        return None
    old = validate_identifier(value, "db_user_rename_from")
    if old == db_user:
        raise UsageError(f"db_user_rename_from is {old!r}, the same as db_user: a role is "
                         "renamed from another name; remove db_user_rename_from")
    return old


def _lock_timeout(value: Any) -> int | None:
    """migration_lock_timeout: `5s`, `500ms`, `1min` or plain seconds; `0`/`none`: no
    limit. Unset: the default."""
    if value is None or value == "":
        return DEFAULT_MIGRATION_LOCK_TIMEOUT_MS
    if str(value).strip().lower() in ("none", "0"):
        return None
    m = _DURATION.fullmatch(str(value))
    if m is None or isinstance(value, bool):
        raise UsageError(f"migration_lock_timeout must be a duration like 5s, 500ms or 1min "
                         f"(0 or none: no limit), got {value!r}")
    ms = int(m.group(1)) * _UNIT_MS[m.group(2)]
    if not 1 <= ms <= 3_600_000:
        raise UsageError(f"migration_lock_timeout must be between 1ms and 60min, got {value!r}")
    return ms


def _opt_file_path(hostvars: Mapping[str, Any], key: str) -> str | None:
    if hostvars.get(key) in (None, ""):
        return None
    return paths.file_path(key, str(hostvars[key]))


def _migrations_source(hostvars: Mapping[str, Any]) -> sources.MigrationSource:
    """The parsed source: none when unset (the Chatalot server applies its own). A value
    already fetched on the control machine (installer.fleet.sources) is taken as it is."""
    value = hostvars.get("migrations_source", sources.NONE)
    if isinstance(value, sources.MigrationSource):
        return value
    parsed = sources.parse_source(value)
    if parsed.kind == sources.BUNDLED:
        try:
            return parsed.fetched(migrations_dir())
        except FileNotFoundError as e:
            raise UsageError(f"migrations_source: {e}") from None
    return parsed


def _migrations_folder(value: str) -> Path:
    """A folder source, as given: it must be a folder on this (the control) machine."""
    path = Path(value).expanduser()
    if not path.is_dir():
        raise UsageError(
            f"migrations_source {value!r} is not a folder on this (the control) machine; "
            "give the migrations folder of your Chatalot release, git+URL@REF, a release "
            "archive URL, or none to leave migrations to the Chatalot server"
        )
    return path.resolve()
