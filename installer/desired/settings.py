"""The settings our postgresql.conf drop-in holds, from the host's facts and its variables.

Access settings (listen_addresses, password_encryption, SSL where remote access is asked
for), then the tuning calculator's output (installer.desired.tuning), then the user's
pg_settings on top. No I/O: apply's settings step and verify both call `plan_settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from installer.desired import backups
from installer.desired.config import HostConfig
from installer.desired.tuning import (
    TuningInputs,
    compute,
    effective_cpus,
    effective_memory_kb,
    format_kb,
    merge_overrides,
)

#: the certificate generated where pg_allowed_cidrs is set and pg_ssl_cert is not
#: (relative paths: PostgreSQL reads them from its data directory)
SSL_CERT = "chatalot-server.crt"
SSL_KEY = "chatalot-server.key"


class HostResources(Protocol):
    """What tuning needs of a host's facts (installer.host.facts.Facts has it)."""

    @property
    def memory_kb(self) -> int: ...
    @property
    def cpus(self) -> int: ...
    @property
    def disk(self) -> str: ...
    @property
    def raw(self) -> Mapping[str, str]: ...


def tuning_inputs(config: HostConfig, facts: HostResources, major: int,
                  caps: Mapping[str, list[str]] | None = None) -> TuningInputs:
    """The calculator's inputs: the host's facts (cgroup limits honoured), unless the
    variables override them; `caps` (the server's enum values) say whether lz4 and io_uring
    are there."""
    c, raw = config, facts.raw
    memory = c.pg_memory_kb or effective_memory_kb(
        facts.memory_kb, raw.get("cgroup-v2-memory"), raw.get("cgroup-v1-memory"))
    cpus = c.pg_cpus or effective_cpus(
        facts.cpus, raw.get("cgroup-v2-cpu"), raw.get("cgroup-v1-quota"),
        raw.get("cgroup-v1-period"))
    caps = caps or {}
    return TuningInputs(
        memory_kb=memory, cpus=cpus, disk=c.pg_disk or facts.disk, pg_major=major,
        profile=c.pg_profile, max_connections=c.pg_max_connections,
        lz4="lz4" in caps.get("wal_compression", ["lz4"]),
        io_uring="io_uring" in caps.get("io_method", ["io_uring"]),
    )


def describe(inp: TuningInputs) -> str:
    """What the tuning was computed from, for the drop-in's header and the step's reason."""
    return (f"{format_kb(inp.memory_kb)} RAM, {inp.cpus} CPUs, {inp.disk}, PostgreSQL "
            f"{inp.pg_major}, profile {inp.profile}")


def plan_settings(config: HostConfig, facts: HostResources, major: int,
                  caps: Mapping[str, list[str]] | None = None) -> dict[str, str]:
    """Every setting our drop-in holds: access settings, tuning, then the user's pg_settings."""
    c = config
    wanted: dict[str, str] = {
        "listen_addresses": c.pg_listen,
        "password_encryption": "scram-sha-256",
    }
    if c.remote:  # hostssl rules need SSL on, with our certificate or the one given
        wanted.update({"ssl": "on", "ssl_cert_file": c.pg_ssl_cert or SSL_CERT,
                       "ssl_key_file": c.pg_ssl_key or SSL_KEY})
    wanted.update(compute(tuning_inputs(c, facts, major, caps)))
    if c.backup == "pgbackrest":  # WAL archived for point-in-time recovery
        wanted.update(backups.archive_settings(backups.STANZA))
        if wanted.get("wal_level") == "minimal":  # (the desktop profile's) cannot archive
            wanted["wal_level"] = "replica"
    return merge_overrides(wanted, c.pg_settings)
