"""installer.fleet.inventory.output: what `ansible-inventory` prints.

`--list`, `--list --export`, `--list --limit`, `--graph [--vars]` and `--host`
of every inventory in inventories/ are compared with ansible-core, byte for
byte, in test_inventory.py. These pin the pieces without Ansible.
"""

from __future__ import annotations

from typing import Any

import pytest

from installer.errors import UsageError
from installer.fleet.inventory import UntrustedStr, jsonable, parse_inventory
from installer.fleet.inventory.output import ansible_graph, ansible_list

SMALL = """\
loose role=x
[db]
db1 ansible_port=5433 inventory_hostname=dropped
[db:vars]
pg={'work_mem': '8MB', 1: None}
ansible_group_priority=3
[pg:children]
db
"""

JSONABLE: list[tuple[Any, bool, Any]] = [
    ({2: "a", None: "b", True: "c", 1.5: "d", "s": "e"}, False,
     {"2": "a", "null": "b", "true": "c", "1.5": "d", "s": "e"}),
    ([{2: [{3: 4}]}], False, [{"2": [{"3": 4}]}]),
    (UntrustedStr("x"), False, "x"),
    (UntrustedStr("x"), True, {"__ansible_unsafe": "x"}),
    ({"k": [UntrustedStr("x")]}, True, {"k": [{"__ansible_unsafe": "x"}]}),
    ("plain", True, "plain"),
    (None, True, None),
]  # fmt: skip


@pytest.mark.parametrize(("value", "mark", "expected"), JSONABLE)
def test_jsonable(value: Any, mark: bool, expected: Any) -> None:
    assert jsonable(value, mark_untrusted=mark) == expected


def test_list() -> None:
    inventory = parse_inventory(SMALL)
    assert ansible_list(inventory) == inventory.to_ansible_list()
    assert inventory.to_ansible_list() == {
        "_meta": {
            "hostvars": {
                "loose": {"role": "x"},
                "db1": {"ansible_port": 5433, "pg": {"work_mem": "8MB", "1": None}},
            },
            "profile": "inventory_legacy",
        },
        "all": {"children": ["ungrouped", "pg"]},
        "ungrouped": {"hosts": ["loose"]},
        "pg": {"children": ["db"]},
        "db": {"hosts": ["db1"]},
    }


def test_list_export_shows_own_vars_only() -> None:
    listing = parse_inventory(SMALL).to_ansible_list(export=True)
    assert listing["_meta"]["hostvars"] == {
        "loose": {"role": "x"},
        "db1": {"ansible_port": 5433},
    }
    assert listing["db"] == {
        "hosts": ["db1"],
        "vars": {"pg": {"work_mem": "8MB", "1": None}, "ansible_group_priority": 3},
    }


def test_list_limit_keeps_groups_drops_hosts() -> None:
    listing = parse_inventory(SMALL).to_ansible_list(limit="db1")
    assert list(listing["_meta"]["hostvars"]) == ["db1"]
    assert "ungrouped" not in listing  # no host left, no children: not shown
    assert listing["all"] == {"children": ["ungrouped", "pg"]}


def test_graph() -> None:
    inventory = parse_inventory(SMALL)
    assert ansible_graph(inventory) == inventory.graph()
    assert inventory.graph() == (
        "@all:\n  |--@ungrouped:\n  |  |--loose\n  |--@pg:\n  |  |--@db:\n  |  |  |--db1"
    )
    assert inventory.graph("db", show_vars=True) == (
        "@db:\n"
        "  |--db1\n"
        "  |  |--{ansible_port = 5433}\n"
        "  |  |--{pg = {'work_mem': '8MB', 1: None}}\n"
        "  |--{ansible_group_priority = 3}\n"
        "  |--{pg = {'work_mem': '8MB', 1: None}}"
    )


def test_graph_of_unknown_group() -> None:
    with pytest.raises(UsageError, match="Pattern must be valid group name when using --graph"):
        parse_inventory(SMALL).graph("nope")
