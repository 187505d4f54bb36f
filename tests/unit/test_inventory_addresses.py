"""installer.fleet.inventory.addresses: host names, IP addresses and ports.

hostport.ini, read by ansible-core too, is compared in test_inventory.py.
"""

from __future__ import annotations

import pytest

from installer.fleet.inventory import parse_inventory
from installer.fleet.inventory.addresses import parse_address

HOST_PORTS: list[tuple[str, str, int | None]] = [
    ("db1", "db1", None),
    ("db1:2222", "db1", 2222),
    ("10.0.0.1:22", "10.0.0.1", 22),
    ("::1", "::1", None),
    ("[::1]:2022", "::1", 2022),
    ("fe80::1:22", "fe80::1:22", None),  # bare IPv6 takes no port
    ("[db1.example.net]:2024", "db1.example.net", 2024),
    ("user@db1:22", "user@db1:22", None),  # not a host name: kept whole
    ("db1:0022", "db1", 22),
    ("db1:0", "db1", None),  # port 0 is ignored
]


@pytest.mark.parametrize(("token", "name", "port"), HOST_PORTS)
def test_host_and_port(token: str, name: str, port: int | None) -> None:
    inventory = parse_inventory(f"{token}\n")
    assert list(inventory.hosts) == [name]
    assert inventory.hosts[name].vars.get("ansible_port") == port


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("db1", ("db1", None)),
        ("db1:2222", ("db1", 2222)),
        ("db1:0", ("db1", 0)),  # parsed; the INI parser ignores port 0
        ("[::1]:2022", ("::1", 2022)),
        ("2001:db8::10", ("2001:db8::10", None)),
        ("10.0.0.[1:3]", ("10.0.0.[1:3]", None)),  # a range is part of the name
        ("db[01:03].x:22", ("db[01:03].x", 22)),
        ("user@db1", None),
        ("db_", None),  # a label may not end in '_' or '-'
        ("a:b", None),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int | None] | None) -> None:
    assert parse_address(address) == expected
