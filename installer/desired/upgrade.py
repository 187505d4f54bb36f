"""What `chatalot-db upgrade` does on one host, decided from its clusters. Pure.

The host's clusters (installer.host.clusters: every major's, with its port, whether it
runs and, for a running one, whether it holds the app's database) and what was asked
(`--to N`, `--rollback`, `--drop-old`) give one decision: nothing to do (the reason), a
refusal (why, and the way forward; nothing is changed), or the clusters to act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from installer.desired.backups import size_text


@dataclass(frozen=True)
class Cluster:
    """One PostgreSQL cluster of a host, as installer.host.clusters reads it."""

    major: int
    #: Debian's cluster name (main), or the data directory (Fedora, Arch)
    name: str
    port: int
    running: bool
    #: whether it holds the app's database (None: not asked, it is not running)
    holds_database: bool | None


#: the PostgreSQL majors `--to` accepts (pg_upgrade's oldest source is 9.2; every
#: family here packages 10 and later)
KNOWN_MAJORS = range(10, 20)


@dataclass(frozen=True)
class Decision:
    """`act` False: nothing to do (`reason` says why). `refused`: the host fails with
    `reason`, nothing changed. Otherwise `source` is the cluster to act on (the one to
    upgrade, the old one to bring back or to drop) and `serving` the one serving now."""

    act: bool
    reason: str
    refused: bool = False
    source: Cluster | None = None
    serving: Cluster | None = None


def _nothing(reason: str) -> Decision:
    return Decision(False, reason)


def _refuse(reason: str) -> Decision:
    return Decision(False, reason, refused=True)


def describe(c: Cluster) -> str:
    state = "running" if c.running else "stopped"
    return f"PostgreSQL {c.major} ({c.name}, port {c.port}, {state})"


def _holder(clusters: tuple[Cluster, ...], db_name: str, pg_port: int) -> Cluster | Decision:
    """The running cluster holding the app's database on pg_port, or the refusal."""
    holders = [c for c in clusters if c.holds_database]
    if len(holders) > 1:
        return _refuse(f"database {db_name} is in several clusters: "
                       + ", ".join(describe(c) for c in holders)
                       + ". Nothing was changed; say which one the app uses (pg_port) and "
                       "remove the other")
    if not holders:
        found = ", ".join(describe(c) for c in clusters) or "no PostgreSQL cluster"
        asked = (" (a stopped cluster cannot be asked: start it if it holds the database)"
                 if any(not c.running for c in clusters) else "")
        return _refuse(f"no running cluster holds database {db_name}: found {found}{asked}. "
                       "Nothing to upgrade; provision the host with `chatalot-db apply`")
    h = holders[0]
    if h.port != pg_port:
        return _refuse(f"database {db_name} is in {describe(h)}, not on pg_port {pg_port}. "
                       f"Nothing was changed; set pg_port={h.port} for this host")
    return h


def decide_upgrade(clusters: tuple[Cluster, ...], to: int, db_name: str,
                   pg_port: int) -> Decision:
    """`--to N`: the cluster to upgrade, nothing (already on N), or a refusal."""
    h = _holder(clusters, db_name, pg_port)
    if isinstance(h, Decision):
        return h
    if h.major == to:
        return _nothing(f"database {db_name} is on PostgreSQL {to} already ({h.name}, port "
                        f"{h.port}): nothing to upgrade")
    if h.major > to:
        return _refuse(f"database {db_name} is on PostgreSQL {h.major}, newer than --to {to}: "
                       "pg_upgrade only goes to a newer major. Nothing was changed; to go "
                       f"back to {to}, dump with pg_dump and restore into a {to} cluster")
    for c in clusters:
        if c.major == to and c.name == h.name and (not c.running or c.holds_database):
            how = ("stopped: kept by a rollback?" if not c.running
                   else "running, with a database of that name")
            return _refuse(
                f"PostgreSQL {to}'s cluster {c.name} already exists (port {c.port}, {how}), "
                "so the upgrade cannot make it. Nothing was changed; if nothing in it is "
                f"needed, remove it (Debian: pg_dropcluster {to} {c.name}) and rerun")
    return Decision(True, f"PostgreSQL {h.major} ({h.name}, port {h.port}) to {to}",
                    source=h, serving=h)


def _kept(clusters: tuple[Cluster, ...], serving: Cluster) -> list[Cluster]:
    """Stopped clusters an upgrade left behind: older majors, same cluster name."""
    return sorted((c for c in clusters if c.major < serving.major and not c.running
                   and c.name == serving.name), key=lambda c: c.major, reverse=True)


def decide_rollback(clusters: tuple[Cluster, ...], db_name: str, pg_port: int) -> Decision:
    """`--rollback`: the newest older cluster to serve again, nothing, or a refusal."""
    h = _holder(clusters, db_name, pg_port)
    if isinstance(h, Decision):
        return h
    old = _kept(clusters, h)
    if old:
        o = old[0]
        return Decision(True, f"back to PostgreSQL {o.major} ({o.name}, now port {o.port}) "
                        f"on port {h.port}; PostgreSQL {h.major} kept, stopped", source=o,
                        serving=h)
    newer = [c for c in clusters if c.major > h.major and not c.running and c.name == h.name]
    if newer:
        return _nothing(f"PostgreSQL {h.major} serves database {db_name} on port {h.port}, "
                        f"PostgreSQL {newer[0].major} is kept stopped: rolled back already")
    return _refuse(f"PostgreSQL {h.major} serves database {db_name} and no older cluster is "
                   "kept (removed with --drop-old, or never upgraded): nothing to roll back "
                   "to. Nothing was changed; restore the backup taken before the upgrade")


def decide_drop_old(clusters: tuple[Cluster, ...], db_name: str, pg_port: int) -> Decision:
    """`--drop-old`: the old cluster an upgrade kept, to remove; nothing; or a refusal."""
    h = _holder(clusters, db_name, pg_port)
    if isinstance(h, Decision):
        return h
    old = _kept(clusters, h)
    if not old:
        return _nothing(f"PostgreSQL {h.major} serves database {db_name}; no older cluster "
                        "is kept: nothing to remove")
    return Decision(True, f"remove PostgreSQL {old[0].major}'s cluster ({old[0].name}), kept "
                    f"since the upgrade to {h.major}", source=old[0], serving=h)


def disk_shortfall(needed: int | None, available: int | None) -> str | None:
    """Copy mode needs the old data directory's size free, and a tenth more; why not, or
    None (sizes unknown are not held against the host: pg_upgrade itself then stops)."""
    if needed is None or available is None:
        return None
    want = needed + needed // 10
    if available >= want:
        return None
    return (f"copying the data needs {size_text(want)} free and {size_text(available)} is: free "
            "space, or upgrade with --link (no copy; the old cluster then cannot come back)")


__all__ = ["KNOWN_MAJORS", "Cluster", "Decision", "decide_drop_old", "decide_rollback",
           "decide_upgrade", "describe", "disk_shortfall"]
