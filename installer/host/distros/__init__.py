"""Distribution strategies: each owns its packages, paths and service names."""

from __future__ import annotations

from installer.desired.config import HostConfig
from installer.errors import UnsupportedDistroError
from installer.host.distros.arch import ArchStrategy
from installer.host.distros.base import Strategy
from installer.host.distros.debian import DebianStrategy
from installer.host.distros.fedora import FedoraStrategy
from installer.host.facts import Facts

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


__all__ = ["STRATEGIES", "Strategy", "select", "supported"]
