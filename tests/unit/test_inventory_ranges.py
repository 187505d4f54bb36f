"""installer.fleet.inventory.ranges: host ranges `db[01:10]` and host-line names.

Whole inventories with ranges (ranges.ini) and the broken ranges in
inventories/broken are compared with ansible-core in test_inventory.py.
"""

from __future__ import annotations

import re

import pytest

from installer.fleet.inventory import parse_inventory
from installer.fleet.inventory.ranges import (
    HostPatternError,
    expand_host_pattern,
    expand_hostname_range,
)

RANGES: list[tuple[str, list[str]]] = [
    ("db[01:03].x", ["db01.x", "db02.x", "db03.x"]),
    ("n[8:11]", ["n8", "n9", "n10", "n11"]),
    ("n[:2]", ["n0", "n1", "n2"]),
    ("c[a:c]", ["ca", "cb", "cc"]),
    ("c[Y:Z]", ["cY", "cZ"]),
    ("c[y:B]", ["cy", "cz", "cA", "cB"]),
    ("s[01:07:3]", ["s01", "s04", "s07"]),
    ("s[a:g:3]", ["sa", "sd", "sg"]),
    ("r[1:2]-n[a:b]", ["r1-na", "r1-nb", "r2-na", "r2-nb"]),
    ("gone[5:1]", []),
    ("w[001:100:33]", ["w001", "w034", "w067", "w100"]),
    ("10.0.0.[1:2]", ["10.0.0.1", "10.0.0.2"]),
]


@pytest.mark.parametrize(("pattern", "expected"), RANGES)
def test_host_ranges(pattern: str, expected: list[str]) -> None:
    inventory = parse_inventory(f"[g]\n{pattern}\n")
    assert inventory.groups["g"].hosts == expected
    assert list(inventory.hosts) == expected


@pytest.mark.parametrize(("pattern", "expected"), RANGES)
def test_expand_hostname_range(pattern: str, expected: list[str]) -> None:
    assert expand_hostname_range(pattern) == expected


@pytest.mark.parametrize(
    ("token", "names", "port"),
    [
        ("db1", ["db1"], None),
        ("db[1:2]:5433", ["db1", "db2"], 5433),
        ("[::1]:2022", ["::1"], 2022),
        ("user@db1:22", ["user@db1:22"], None),  # not a host name: kept whole
    ],
)
def test_expand_host_pattern(token: str, names: list[str], port: int | None) -> None:
    assert expand_host_pattern(token) == (names, port)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("db[01:3]", "host range must specify equal-length begin and end formats: [01:3]"),
        ("db[1:2:3:4]", "host range must be begin:end or begin:end:step, got [1:2:3:4]"),
        ("db[1:]", "host range must specify end value, got [1:]"),
        ("db[z:a]", "host range must have begin <= end, got [z:a]"),
        ("db[a:5]", "invalid host range [a:5]"),
        ("db[1:5:0]", "invalid host range [1:5:0]"),
        ("db1:", "Invalid host pattern 'db1:' supplied, ending in ':' is not allowed"),
        ("---", "'---' is normally a sign this is a YAML file"),
    ],
)
def test_malformed_host_patterns(token: str, message: str) -> None:
    with pytest.raises(HostPatternError, match=re.escape(message)):
        expand_host_pattern(token)
