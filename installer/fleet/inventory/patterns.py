"""Ansible host patterns: which hosts `--limit PATTERN` or `hosts: PATTERN` means.

The semantics of ansible/inventory/manager.py: host or group names, fnmatch
globs, `~regex`, separated by `,` (or `:`), with `!` exclusion, `&`
intersection and `group[0]`, `group[-1]`, `group[1:3]`, `group[2:]`
subscripts. Globs and regexes are matched against group names and host names;
as in Ansible, `a*` matches the group `all` (and so every host).

The functions work on any `PatternTarget` (the `Inventory` is one), so this
module does not depend on the inventory model.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Protocol

from installer.errors import UsageError
from installer.fleet.inventory.addresses import parse_address

__all__ = ["PatternTarget", "match_hosts", "select_hosts", "split_host_pattern", "unmatched"]

_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
_COLON_SPLIT = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")


class PatternTarget(Protocol):
    """What host patterns are matched against: host names, group names, group members."""

    @property
    def hosts(self) -> Mapping[str, object]:
        """Hosts by name, in inventory order."""
        ...

    @property
    def groups(self) -> Mapping[str, object]:
        """Groups by name, in inventory order."""
        ...

    def group_hosts(self, group: str) -> list[str]:
        """The hosts of a group and of all its descendants, in Ansible's order."""
        ...


def select_hosts(target: PatternTarget, pattern: str | None) -> list[str]:
    """The hosts an `ansible-playbook --limit PATTERN` run targets, in run order.

    `None` or an empty pattern selects every host. The order is the order of
    `all`, as in a play on `hosts: all` limited by `--limit`. No match gives
    `[]`; a bad regex, an out-of-range subscript or a `@file` pattern raises
    UsageError.
    """
    every = target.group_hosts("all")
    if pattern is None or not pattern.strip():
        return every
    patterns = split_host_pattern(pattern)
    for item in patterns:
        if item.startswith("@"):
            raise UsageError(f"limit files ({item}) are read by the caller "
                             "(installer.fleet.hosts.expand_limit_files)")
    matched = set(match_hosts(target, patterns))
    return [h for h in every if h in matched]


def match_hosts(target: PatternTarget, patterns: str | list[str]) -> list[str]:
    """Hosts matching host patterns, in the order Ansible evaluates them.

    This is `ansible -i FILE PATTERN --list-hosts` (minus the implicit
    localhost); `select_hosts()` is the `--limit` view of it.
    """
    if isinstance(patterns, str):
        patterns = split_host_pattern(patterns)
    hosts: list[str] = []
    for item in _order_patterns(patterns):
        if item in target.hosts:  # a plain host name, never a pattern
            hosts.append(item)
            continue
        found = _match_one(target, item)
        if item[0] == "!":
            excluded = set(found)
            hosts = [h for h in hosts if h not in excluded]
        elif item[0] == "&":
            kept = set(found)
            hosts = [h for h in hosts if h in kept]
        else:
            present = set(hosts)
            hosts.extend(h for h in found if h not in present)
    return list(dict.fromkeys(hosts))


def split_host_pattern(pattern: str) -> list[str]:
    """`a,b:c` → ['a', 'b', 'c']; a lone host, host:port, IPv6 or range stays whole."""
    if "," in pattern:
        parts = pattern.split(",")
    elif parse_address(pattern) is not None:
        parts = [pattern]
    else:
        parts = _COLON_SPLIT.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


def _order_patterns(patterns: list[str]) -> list[str]:
    """Plain patterns first, then `&` ones, then `!` ones; `all` if no plain one."""
    regular = [p for p in patterns if p and p[0] not in "!&"]
    intersect = [p for p in patterns if p and p[0] == "&"]
    exclude = [p for p in patterns if p and p[0] == "!"]
    return (regular or ["all"]) + intersect + exclude


def unmatched(target: PatternTarget, pattern: str | None) -> list[str]:
    """The patterns of a --limit that match no group and no host, for Ansible's warning
    ("Could not match supplied host pattern, ignoring: NAME"); `all` never."""
    if pattern is None or not pattern.strip():
        return []
    out: list[str] = []
    for item in split_host_pattern(pattern):
        expr = _split_subscript(item.lstrip("&!") or item)[0]
        if expr == "all" or item.startswith("@"):
            continue
        if not _match_names(target.groups, expr) and not _enumerate(target, expr):
            out.append(expr)
    return out


def _match_one(target: PatternTarget, pattern: str) -> list[str]:
    """The hosts one pattern (its `&`/`!` prefix ignored) names, subscript applied."""
    if pattern[0] in "&!":
        pattern = pattern[1:]
    expr, subscript = _split_subscript(pattern)
    hosts = _enumerate(target, expr)
    if not hosts or subscript is None:
        return hosts
    start, end = subscript
    try:
        if end:
            if end == -1:
                end = len(hosts) - 1
            return hosts[start : end + 1]
        return [hosts[start]]
    except IndexError:
        raise UsageError(f"No hosts matched the subscripted pattern '{pattern}'") from None


def _enumerate(target: PatternTarget, pattern: str) -> list[str]:
    """Hosts of the groups a pattern matches, then hosts it matches by name."""
    results: list[str] = []
    groups = _match_names(target.groups, pattern)
    for group in groups:
        results.extend(target.group_hosts(group))
    if not groups or pattern[0] == "~" or any(c in pattern for c in ".?*["):
        results.extend(_match_names(target.hosts, pattern))
    return results


def _split_subscript(pattern: str) -> tuple[str, tuple[int, int | None] | None]:
    """`grp[1:3]` → ('grp', (1, 3)); `grp[2:]` → end -1; `grp[0]` → end None."""
    if pattern[0] == "~":
        return pattern, None
    m = _SUBSCRIPT.match(pattern)
    if not m:
        return pattern, None
    expr, index, start, _sep, end = m.groups()
    if index:
        return expr, (int(index), None)
    return expr, (int(start), int(end) if end else -1)


def _match_names(names: Iterable[str], pattern: str) -> list[str]:
    """The names a glob (or, after `~`, a regex) matches."""
    try:
        if pattern[0] == "~":
            regex = re.compile(pattern[1:])
        else:
            regex = re.compile(fnmatch.translate(pattern))
    except re.error as exc:
        raise UsageError(f"Invalid host list pattern: {pattern} ({exc})") from None
    return [name for name in names if regex.match(name)]
