"""Host ranges: `db[01:10]`, `node[a:f]`, `web[1:9:2]` and the first token of a host line.

`expand_hostname_range` is ansible's `expand_hostname_range` (numeric and
letter ranges, zero padding, a step, several ranges in one name);
`expand_host_pattern` is what an inventory plugin does with a host line's first
token (ansible's `_expand_hostpattern`): split off the port, expand ranges and
refuse what Ansible refuses. Errors are `HostPatternError`, without file and
line: the INI parser adds them.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from installer.fleet.inventory.addresses import parse_address

__all__ = ["HostPatternError", "expand_host_pattern", "expand_hostname_range"]


class HostPatternError(Exception):
    """A malformed host name, port or range; the parser adds file and line."""


def expand_hostname_range(pattern: str) -> list[str]:
    """Expand `db[01:03]x`, `db[a:c]`, `db[1:9:2]` (several ranges allowed)."""
    parts = pattern.replace("[", "|", 1).replace("]", "|", 1).split("|")
    if len(parts) != 3:
        raise HostPatternError(
            f"malformed host range in {pattern!r}: expected name[begin:end] or "
            "name[begin:end:step], and no '|' in host names"
        )
    head, inner, tail = parts
    bounds = inner.split(":")
    if len(bounds) not in (2, 3):
        raise HostPatternError(f"host range must be begin:end or begin:end:step, got [{inner}]")
    begin, end = bounds[0] or "0", bounds[1]
    step = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise HostPatternError(f"host range must specify end value, got [{inner}]")
    width = 0
    if begin[0] == "0" and len(begin) > 1:
        width = len(begin)
        if width != len(end):
            raise HostPatternError(
                "host range must specify equal-length begin and end formats: "
                f"[{inner}] ('{begin}' has {len(begin)} characters, '{end}' has {len(end)}); "
                f"write [{begin}:{end.zfill(width)}] or drop the leading zeros"
            )
    names: list[str] = []
    for item in _range_items(inner, begin, end, step):
        text = str(item).zfill(width) if width else str(item)
        name = head + text + tail
        if "[" in name:
            names.extend(expand_hostname_range(name))
        else:
            names.append(name)
    return names


def _range_items(inner: str, begin: str, end: str, step: str) -> Iterable[str | int]:
    """The letters or numbers of the range `[inner]`, before padding."""
    try:
        i_begin = string.ascii_letters.index(begin)
        i_end = string.ascii_letters.index(end)
        if i_begin > i_end:
            raise HostPatternError(f"host range must have begin <= end, got [{inner}]")
        return list(string.ascii_letters[i_begin : i_end + 1 : int(step)])
    except ValueError:  # not a letter range
        try:
            return range(int(begin), int(end) + 1, int(step))
        except ValueError as exc:
            raise HostPatternError(
                f"invalid host range [{inner}]: begin and end must be numbers or single "
                f"letters and step a number other than 0 ({exc})"
            ) from None


def expand_host_pattern(pattern: str) -> tuple[list[str], int | None]:
    """Hostnames and port of a host line's first token, as the ini plugin reads it."""
    parsed = parse_address(pattern)
    name, port = parsed if parsed is not None else (pattern, None)
    names = expand_hostname_range(name) if "[" in name else [name]
    if pattern.strip().endswith(":") and port is None:
        raise HostPatternError(
            f"Invalid host pattern '{pattern}' supplied, ending in ':' is not allowed, "
            "this character is reserved to provide a port."
        )
    for host in names:
        if host.strip() == "---":
            raise HostPatternError(
                f"Invalid host pattern '{pattern}' supplied, '---' is normally a sign "
                "this is a YAML file."
            )
    return names, port
