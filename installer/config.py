"""Per-host settings, read from inventory variables and validated before anything runs."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from installer.errors import UsageError
from installer.sqltext import validate_identifier

DEFAULT_ENV_FILE = "/etc/chatalot/database.env"


@dataclass(frozen=True)
class HostConfig:
    """What the user wants on one host (inventory variables, defaults filled in)."""

    db_name: str = "chatalot"
    db_user: str = "chatalot"
    pg_version: int | None = None
    pg_port: int = 5432
    pg_listen: str = "localhost"
    env_file: str = DEFAULT_ENV_FILE
    pg_settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_vars(cls, hostvars: Mapping[str, Any]) -> HostConfig:
        """Build from inventory variables; raise UsageError naming the bad variable."""
        db_name = validate_identifier(hostvars.get("db_name", "chatalot"), "db_name")
        db_user = validate_identifier(hostvars.get("db_user", "chatalot"), "db_user")
        pg_version = _opt_int(hostvars, "pg_version", 9, 30)
        pg_port = _opt_int(hostvars, "pg_port", 1, 65535) or 5432
        listen = str(hostvars.get("pg_listen", "localhost"))
        _check_listen(listen)
        env_file = str(hostvars.get("db_env_file", DEFAULT_ENV_FILE))
        if not env_file.startswith("/") or any(c in env_file for c in "\n\x00"):
            raise UsageError(f"db_env_file must be an absolute path, got {env_file!r}")
        settings = hostvars.get("pg_settings", {}) or {}
        if not isinstance(settings, Mapping):
            raise UsageError(
                f"pg_settings must be a dict like {{'work_mem': '8MB'}}, got {settings!r}"
            )
        return cls(db_name, db_user, pg_version, pg_port, listen, env_file, dict(settings))


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
