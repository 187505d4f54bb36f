"""Several inventory names on one host: several apps on one cluster, or a conflict. Pure.

Two names that reach one machine provision one cluster. That works when they are two
apps of it: each its own database, role and env file, and the same values for everything
the cluster has once (its major and port, where it listens, its tuning inputs and
settings, its certificate): then the drop-in is rendered the same for both (no restart
ping-pong) and no app touches another's password. Anything else is a conflict, named.
"""

from __future__ import annotations

from collections.abc import Mapping

from installer.desired.config import HostConfig

#: (variable, HostConfig attribute) the cluster has once: equal across its apps
CLUSTER_WIDE = (
    ("pg_version", "pg_version"), ("pg_port", "pg_port"), ("pg_listen", "pg_listen"),
    ("pg_memory", "pg_memory_kb"), ("pg_cpus", "pg_cpus"), ("pg_disk", "pg_disk"),
    ("pg_profile", "pg_profile"), ("pg_max_connections", "pg_max_connections"),
    ("pg_settings", "pg_settings"), ("pg_allowed_cidrs", "pg_allowed_cidrs"),
    ("pg_ssl_cert", "pg_ssl_cert"), ("pg_ssl_key", "pg_ssl_key"),
)

#: (variable, HostConfig attribute) each app has its own of
PER_APP = (("db_name", "db_name"), ("db_user", "db_user"), ("db_env_file", "env_file"))


def _shown(value: object) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "none"
    return "unset" if value is None else str(value)


def conflict(name: str, mine: HostConfig, other: str, theirs: HostConfig) -> str | None:
    """Why `name` and `other`, one machine, cannot both be provisioned in one run: every
    conflict, joined (None: they are two apps of one cluster)."""
    found: list[str] = []
    same = [f"{var}={getattr(mine, attr)}" for var, attr in PER_APP
            if getattr(mine, attr) == getattr(theirs, attr)]
    if same:
        listed = same[0] if len(same) == 1 else f"{', '.join(same[:-1])} and {same[-1]}"
        found.append(f"both have {listed}: each app of a cluster needs its own, or they "
                     "overwrite each other's")
    for var, attr in CLUSTER_WIDE:
        a, b = getattr(mine, attr), getattr(theirs, attr)
        if (dict(a) if isinstance(a, Mapping) else a) != (dict(b) if isinstance(b, Mapping) else b):
            found.append(f"{var} differs ({name}: {_shown(a)}; {other}: {_shown(b)}): the "
                         "cluster has one, each run would rewrite it (a restart every run)")
    return "; ".join(found) or None


def refusal(name: str, others: list[str], where: str, why: str) -> str:
    """The message for a name refused because it is one host with `others`."""
    return (f"{name} and {', '.join(others)} are one host ({where}), and {why}. Nothing was "
            f"changed: give them the same cluster-wide values and each its own db_name, "
            "db_user and db_env_file (several apps on one cluster), or keep one name per host")
