"""Distribution strategies: each owns its packages, paths and service names."""

from __future__ import annotations

from installer.config import HostConfig
from installer.distros.base import Strategy
from installer.distros.debian import DebianStrategy
from installer.errors import UnsupportedDistroError
from installer.probes.facts import Facts

STRATEGIES: tuple[type[Strategy], ...] = (DebianStrategy,)


def select(facts: Facts, config: HostConfig) -> Strategy:
    """Pick the strategy from os-release: ID first, then ID_LIKE."""
    for candidate in (facts.os_id, *facts.os_like):
        for cls in STRATEGIES:
            if candidate in cls.ids:
                return cls(facts, config)
    supported = ", ".join(sorted({i for cls in STRATEGIES for i in cls.ids}))
    found = facts.pretty_name or facts.os_id or "no /etc/os-release"
    raise UnsupportedDistroError(
        f"unsupported distribution: {found} (ID={facts.os_id or '?'}, "
        f"ID_LIKE={' '.join(facts.os_like) or '-'}); supported: {supported}"
    )


__all__ = ["STRATEGIES", "Strategy", "select"]
