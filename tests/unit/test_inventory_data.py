"""installer.fleet.inventory.data: building an inventory as Ansible's plugins do.

The INI parser drives InventoryData; these drive it directly, as other readers will.
"""

from __future__ import annotations

import re

import pytest

from installer.errors import InventoryError
from installer.fleet.inventory.data import InventoryData
from installer.fleet.inventory.model import Group, Host


def test_reconcile_puts_everything_under_all() -> None:
    data = InventoryData("src")
    data.add_group("db")
    data.add_group("orphan")
    data.add_host("db1", "db", 5433)
    data.add_host("db1", "db", None)  # once only
    data.add_host("loose", "ungrouped", None)
    data.add_host("both", "ungrouped", None)
    data.add_host("both", "db", None)  # in a group now: leaves ungrouped
    inventory = data.reconcile()
    assert inventory.path == "src"
    assert inventory.hosts["db1"] == Host("db1", {"ansible_port": 5433})
    assert inventory.groups["all"] == Group("all", children=["ungrouped", "db", "orphan"])
    assert inventory.groups["ungrouped"].hosts == ["loose"]
    assert inventory.groups["db"].hosts == ["db1", "both"]


def test_set_variable_prefers_the_group_of_that_name() -> None:
    data = InventoryData("src")
    data.add_group("web")
    data.add_host("web", "ungrouped", None)
    data.set_variable("web", "x", 1)
    data.set_variable("web", "ansible_group_priority", "7")
    inventory = data.reconcile()
    assert inventory.hosts["web"].vars == {}
    assert inventory.groups["web"].vars == {"x": 1}
    assert inventory.groups["web"].priority == 7


def test_errors_name_the_source_and_line() -> None:
    data = InventoryData("src")
    for name in ("a", "b"):
        data.add_group(name)
    data.add_child("a", "b")
    data.line = 12
    with pytest.raises(InventoryError, match="^" + re.escape(
            "src:12: Adding group 'a' as child to 'b' creates a recursive dependency loop.")
            + "$"):
        data.add_child("b", "a")
    with pytest.raises(InventoryError, match=r"^src:3: group 'a' cannot be a child of itself$"):
        data.add_child("a", "a", line=3)
    with pytest.raises(InventoryError, match=r"^src:12: ansible_group_priority must be an int"):
        data.set_variable("a", "ansible_group_priority", "high")
    with pytest.raises(InventoryError, match=r"^src:12: Invalid empty host name provided$"):
        data.add_host("", "a", None)
