"""installer.fleet.inventory.model: hosts, groups, the Inventory and its variable merging.

The merging is compared with `ansible-inventory --host` in test_inventory.py
(priorities.ini, deep_children.ini, clash.ini among others).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from installer.fleet.inventory import (
    INTERNAL_VARS,
    Group,
    Host,
    Inventory,
    localhost_inventory,
    parse_inventory,
)

PRECEDENCE = """\
[all:vars]
v=all
a=all

[parent:children]
child

[parent:vars]
v=parent
p=parent

[child]
h1 v=host
h2

[child:vars]
v=child

[aaa]
h2
h3

[aaa:vars]
v=aaa
s=aaa

[zzz]
h3

[zzz:vars]
s=zzz

[boosted]
h4

[plain]
h4

[boosted:vars]
s=boosted
ansible_group_priority=2

[plain:vars]
s=plain
"""

HOST_VARS: list[tuple[str, dict[str, Any]]] = [
    ("h1", {"a": "all", "p": "parent", "v": "host"}),  # host > child > parent > all
    ("h2", {"a": "all", "p": "parent", "v": "child", "s": "aaa"}),  # deeper group wins
    ("h3", {"a": "all", "v": "aaa", "s": "zzz"}),  # same depth: alphabetical, last wins
    ("h4", {"a": "all", "v": "all", "s": "boosted"}),  # priority beats the alphabet
]


@pytest.mark.parametrize(("host", "expected"), HOST_VARS)
def test_host_vars_precedence(host: str, expected: dict[str, Any]) -> None:
    assert parse_inventory(PRECEDENCE).host_vars(host) == expected


def test_group_priority_is_not_a_variable() -> None:
    inventory = parse_inventory(PRECEDENCE)
    assert inventory.groups["boosted"].priority == 2
    assert "ansible_group_priority" not in inventory.groups["boosted"].vars
    assert inventory.group_vars("boosted") == {"s": "boosted", "ansible_group_priority": 2}


def test_host_vars_are_copies() -> None:
    inventory = parse_inventory("[g]\nh\n[g:vars]\npg_settings={'work_mem': '8MB'}\n")
    inventory.host_vars("h")["pg_settings"]["work_mem"] = "1GB"
    assert inventory.host_vars("h")["pg_settings"] == {"work_mem": "8MB"}


def test_host_vars_unknown_host() -> None:
    with pytest.raises(KeyError, match="^" + re.escape("'nope'") + "$"):
        parse_inventory("h\n").host_vars("nope")


def test_internal_vars_are_not_shown() -> None:
    inventory = parse_inventory("h groups=1 x=1\n[all:vars]\nplaybook_dir=/p\n[g]\nh\n")
    assert {"groups", "playbook_dir"} <= INTERNAL_VARS
    assert inventory.host_vars("h") == {"x": 1}
    assert inventory.own_host_vars("h") == {"x": 1}
    assert inventory.group_vars("all") == {}
    assert inventory.hosts["h"].vars == {"groups": 1, "x": 1}  # still read


def test_own_host_vars_are_the_hosts_own_copies() -> None:
    inventory = parse_inventory("h d=\"{'a':[1]}\"\n[all:vars]\ng=1\n")
    mine = inventory.own_host_vars("h")
    assert mine == {"d": {"a": [1]}}
    mine["d"]["a"].append(2)
    assert inventory.hosts["h"].vars["d"] == {"a": [1]}


def test_group_tree() -> None:
    inventory = parse_inventory("[a:children]\nb\n[b:children]\nc\n[c]\nh\n[b]\nh2\n")
    assert inventory.ancestors("c") == {"b", "a", "all"}
    assert inventory.ancestors("all") == set()
    assert inventory.host_groups("h") == ["all", "a", "b", "c"]
    assert inventory.group_hosts("a") == ["h2", "h"]
    assert [inventory.groups[g].depth for g in ("all", "a", "b", "c")] == [0, 1, 2, 3]


def test_localhost_inventory() -> None:
    inventory = localhost_inventory()
    assert list(inventory.hosts) == ["localhost"]
    assert inventory.host_vars("localhost") == {"ansible_connection": "local"}
    assert inventory.select(None) == ["localhost"]
    assert inventory.select("localhost") == ["localhost"]
    assert inventory.to_ansible_list() == {
        "_meta": {
            "hostvars": {"localhost": {"ansible_connection": "local"}},
            "profile": "inventory_legacy",
        },
        "all": {"children": ["ungrouped"]},
        "ungrouped": {"hosts": ["localhost"]},
    }


def test_inventory_is_an_inventory() -> None:
    assert isinstance(parse_inventory(""), Inventory)
    assert list(parse_inventory("").groups) == ["all", "ungrouped"]


def test_inventory_from_parts() -> None:
    inventory = Inventory(
        "made.ini",
        {"h": Host("h", {"x": 1})},
        {
            "all": Group("all", children=["ungrouped", "g"], vars={"x": 0, "y": 0}),
            "ungrouped": Group("ungrouped", depth=1),
            "g": Group("g", hosts=["h"], vars={"y": 2}, depth=1),
        },
    )
    assert repr(inventory) == "Inventory('made.ini', 1 hosts, 3 groups)"
    assert inventory.host_vars("h") == {"x": 1, "y": 2}
    assert inventory.select("g") == ["h"]
