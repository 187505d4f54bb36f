"""Distribution strategies: each owns its packages, paths and service names."""

from __future__ import annotations

from dataclasses import dataclass

from installer.desired.config import HostConfig
from installer.errors import UnsupportedDistroError
from installer.host import facts as facts_probe
from installer.host.distros.arch import ArchStrategy
from installer.host.distros.base import Strategy, parse_major
from installer.host.distros.debian import DebianStrategy
from installer.host.distros.fedora import FedoraStrategy
from installer.host.facts import Facts
from installer.host.sections import SectionScript
from installer.transport.base import Transport

STRATEGIES: tuple[type[Strategy], ...] = (DebianStrategy, FedoraStrategy, ArchStrategy)


def supported() -> str:
    """The supported distributions, for messages: `Debian/Ubuntu (debian, ubuntu, ...), ...`."""
    return ", ".join(f"{cls.label} ({', '.join(sorted(cls.ids))})" for cls in STRATEGIES)


def select(facts: Facts, config: HostConfig) -> Strategy:
    """Pick the strategy from os-release: ID first, then ID_LIKE (in its order)."""
    for candidate in (facts.os_id, *facts.os_like):
        for cls in STRATEGIES:
            if candidate in cls.ids:
                return cls(facts, config)
    found = facts.pretty_name or facts.os_id or "no /etc/os-release"
    raise UnsupportedDistroError(
        f"unsupported distribution: {found} (ID={facts.os_id or '?'}, "
        f"ID_LIKE={' '.join(facts.os_like) or '-'}); supported, by ID or ID_LIKE in "
        f"/etc/os-release: {supported()}"
    )


@dataclass(frozen=True)
class Detected:
    """A host's facts and the strategy for it; `asked`: its major came from the host (its
    packages, or what its package manager would install), not from a release table."""

    facts: Facts
    strategy: Strategy
    asked: bool


def detect(t: Transport, config: HostConfig, *, exact_major: bool = False,
           script: SectionScript | None = None, output: str | None = None) -> Detected:
    """Gather the facts, pick the strategy, and learn the PostgreSQL major where needed.

    With pg_version unset and no guess from the release table (or `exact_major`, for
    readers that probe once, like verify), the host is asked; otherwise the state probe's
    pg-major section tells later, correcting a wrong guess (HostContext adopts it).
    """
    facts = facts_probe.gather(t, script, output)
    strategy = select(facts, config)
    probe = strategy.major_probe()
    asked = config.pg_version is None and bool(probe) and (
        strategy.major is None or exact_major)
    if probe and asked:
        found = parse_major(t.run(probe, timeout=60).stdout)
        if found is not None:
            strategy.major = found
    return Detected(facts, strategy, asked)


__all__ = ["STRATEGIES", "Detected", "Strategy", "detect", "select", "supported"]
