"""installer.fleet.inventory.ini: the INI parser, loading files, errors with file and line.

Every inventory in inventories/ and every broken one in inventories/broken is
also read by ansible-core and compared in test_inventory.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from installer.errors import InventoryError
from installer.fleet.inventory import Group, Host, load_inventory, parse_inventory

INVENTORIES = Path(__file__).resolve().parent / "inventories"


def test_structure() -> None:
    inventory = parse_inventory(
        "loose ansible_connection=local\n"
        "[db]\ndb[1:2]:5433 role=db\n"
        "[pg:children]\ndb\n"
        "[pg:vars]\nx=1\n",
        "inv.ini",
    )
    assert inventory.path == "inv.ini"
    assert inventory.hosts == {
        "loose": Host("loose", {"ansible_connection": "local"}),
        "db1": Host("db1", {"ansible_port": 5433, "role": "db"}),
        "db2": Host("db2", {"ansible_port": 5433, "role": "db"}),
    }
    assert list(inventory.groups) == ["all", "ungrouped", "db", "pg"]
    assert inventory.groups["all"] == Group("all", children=["ungrouped", "pg"])
    assert inventory.groups["ungrouped"] == Group("ungrouped", hosts=["loose"], depth=1)
    assert inventory.groups["pg"] == Group("pg", children=["db"], vars={"x": 1}, depth=1)
    assert inventory.groups["db"] == Group("db", hosts=["db1", "db2"], depth=2)
    assert inventory.host_groups("db1") == ["all", "db", "pg"]


def test_groups_used_before_their_section() -> None:
    inventory = parse_inventory(
        "[top:children]\nmid\n[mid:children]\nleaf\n[leaf]\nh\n[mid:vars]\nx=1\n[mid]\n"
    )
    assert inventory.groups["top"].children == ["mid"]
    assert inventory.groups["mid"].children == ["leaf"]
    assert inventory.host_groups("h") == ["all", "top", "mid", "leaf"]


def test_host_line_variables_are_copied_per_host() -> None:
    inventory = parse_inventory("[g]\nh[1:2] d=\"{'a': [1]}\"\n")
    inventory.hosts["h1"].vars["d"]["a"].append(2)
    assert inventory.hosts["h2"].vars["d"] == {"a": [1]}


def test_error_from_text_names_string_source() -> None:
    with pytest.raises(InventoryError, match="^" + re.escape(
            "<string>:3: Section [g:bogus] has unknown type: bogus "
            "(use [group], [group:vars] or [group:children])") + "$"):
        parse_inventory("[g]\nh\n[g:bogus]\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[g]\nh\n[g:vars]\nx={[1]: 2}\n", "x.ini:4: cannot evaluate the value '{[1]: 2}'"),
        ("[g]\ndb[3:1:0]\n", "x.ini:2: invalid host range [3:1:0]"),
        ("[g:vars]\nx=1\n\n# end\n", "x.ini:1: Section [g:vars] not valid for undefined group"),
        ("[all]\nall\n", "x.ini:2: Adding group 'all' as child to 'ungrouped' creates a"),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(InventoryError, match="^" + re.escape(message)):
        parse_inventory(text, "x.ini")


def test_latin1_comments_are_accepted_like_ansible() -> None:
    inventory = load_inventory(str(INVENTORIES / "latin1_comments.ini"))
    assert inventory.host_vars("web1") == {"role": "front"}


def test_missing_file() -> None:
    with pytest.raises(InventoryError, match="cannot read the inventory"):
        load_inventory(str(INVENTORIES / "no-such-file.ini"))


def test_an_empty_directory_is_an_inventory_without_hosts(tmp_path: Path) -> None:
    """As ansible-core reads it (tests/unit/test_inventory_sources.py compares the rest)."""
    assert load_inventory(str(tmp_path)).hosts == {}


def test_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text("[web]\nweb1\n")
    with pytest.raises(InventoryError, match="TOML"):
        load_inventory(str(path))
