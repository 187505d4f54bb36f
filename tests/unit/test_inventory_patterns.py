"""installer.fleet.inventory.patterns: Ansible host patterns and `--limit`.

Every pattern in test_inventory.LIMITS is compared with
`ansible all --limit PATTERN --list-hosts` in test_inventory.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from installer.errors import UsageError
from installer.fleet.inventory import parse_inventory
from installer.fleet.inventory.patterns import match_hosts, select_hosts, split_host_pattern

SELECT: list[tuple[str | None, list[str]]] = [
    (None, ["l1", "a1", "a2", "b1"]),
    ("", ["l1", "a1", "a2", "b1"]),
    ("b,a", ["a1", "a2", "b1"]),  # --limit keeps the run order of 'all'
    ("nothing", []),
    ("a:!a2", ["a1"]),
]


@pytest.mark.parametrize(("pattern", "expected"), SELECT)
def test_select(pattern: str | None, expected: list[str]) -> None:
    inventory = parse_inventory("l1\n[a]\na1\na2\n[b]\nb1\n")
    assert inventory.select(pattern) == expected


def test_match_keeps_pattern_order() -> None:
    inventory = parse_inventory("l1\n[a]\na1\na2\n[b]\nb1\n")
    assert inventory.match("b,a") == ["b1", "a1", "a2"]


@pytest.mark.parametrize(("pattern", "message"), [
    ("~(", "Invalid host list pattern: ~( (missing ), unterminated subpattern at position 0)"),
    ("@retry.txt", "limit files (@retry.txt) are read by the caller "
                   "(installer.fleet.hosts.expand_limit_files)"),
])
def test_select_rejects_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(UsageError, match="^" + re.escape(message) + "$"):
        parse_inventory("h\n").select(pattern)


SPLITS: list[tuple[str, list[str]]] = [
    ("a,b:c", ["a", "b:c"]),  # a comma wins: no split at ':'
    ("a:b:!c", ["a", "b", "!c"]),
    (" a , b ", ["a", "b"]),
    ("db1:22", ["db1:22"]),  # host:port stays whole
    ("2001:db8::10", ["2001:db8::10"]),  # so does IPv6
    ("web[0:20:5]", ["web[0:20:5]"]),  # and a range
    ("g[1:2]:h", ["g[1:2]", "h"]),
    ("a,,b,", ["a", "b"]),
]


@pytest.mark.parametrize(("pattern", "expected"), SPLITS)
def test_split_host_pattern(pattern: str, expected: list[str]) -> None:
    assert split_host_pattern(pattern) == expected


class _Flat:
    """A PatternTarget that is no Inventory: patterns need only names and group members."""

    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups: Mapping[str, object] = groups
        self.hosts: Mapping[str, object] = dict.fromkeys(h for hs in groups.values() for h in hs)
        self._members = groups

    def group_hosts(self, group: str) -> list[str]:
        return list(self._members[group])


def test_patterns_need_no_inventory() -> None:
    target = _Flat({"all": ["x1", "x2", "y1"], "xs": ["x1", "x2"], "ys": ["y1"]})
    assert select_hosts(target, "ys,xs[1]") == ["x2", "y1"]
    assert match_hosts(target, "ys,xs[1]") == ["y1", "x2"]
    assert match_hosts(target, "~x:!x1") == ["x2"]
    assert match_hosts(target, "all:&ys") == ["y1"]
    with pytest.raises(UsageError, match="No hosts matched the subscripted pattern 'ys\\[4\\]'"):
        match_hosts(target, "ys[4]")
