"""YAML inventories, compared with the real ansible-core: `--list`, `--list --export` and
`--host` for every host equal `ansible-inventory`'s, group_vars/ beside them included; the
structures Ansible refuses fail here too, naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from installer.errors import InventoryError
from installer.fleet.inventory import load_inventory
from tests.unit.test_inventory import Ansible

INVENTORIES: dict[str, str] = {
    "flat": "all:\n  hosts:\n    db1:\n      ansible_host: 10.0.0.1\n    db2:\n",
    "groups and children": (
        "all:\n  vars:\n    pg_profile: chatalot\n  children:\n    chat_eu:\n"
        "      vars: {db_name: eu}\n      children:\n        eu_web:\n          hosts:\n"
        "            web1:\n            web2: {db_user: w2}\n        eu_db:\n          hosts:\n"
        "            db1:\n    chat_us:\n      hosts:\n        us1:\n"),
    "ranges and ports": (
        "all:\n  children:\n    fleet:\n      hosts:\n        db[01:03].example.net:\n"
        "          pg_memory: 8GB\n        10.0.0.9:2222:\n        'host-[a:c]':\n"),
    "top-level groups": "web:\n  hosts:\n    w1:\ndb:\n  hosts:\n    d1:\n    w1:\n",
    "typed values": (
        "all:\n  hosts:\n    h:\n      b: yes\n      o: 0022\n      s: '0022'\n"
        "      l: [1, two]\n      d: {k: v}\n      n: ~\n      f: 1.5\n"),
    "string sections and priority": (
        "all:\n  children:\n    a:\n      hosts: h1\n      vars:\n"
        "        ansible_group_priority: 5\n        v: a\n    b:\n      hosts: h1\n"
        "      vars: {v: b}\n"),
    "same host in several groups": (
        "g1:\n  hosts:\n    h: {x: 1}\n  vars: {y: g1}\ng2:\n  hosts:\n    h: {x: 2}\n"
        "  vars: {y: g2}\n"),
    "json inventory": '{"all": {"hosts": {"j1": {"a": 1}}, "children": {"g": {"hosts": '
                      '{"j2": null}}}}}',
}

GROUP_VARS = {"group_vars/chat_eu.yml": "db_name: from_file\n",
              "host_vars/web1.yml": "colour: file\n"}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Ansible]]:
    root = tmp_path_factory.mktemp("yaml-inv")
    (root / "ref").mkdir()
    ansible = Ansible(root / "ref")
    out: dict[str, tuple[Path, Ansible]] = {}
    calls: list[tuple[str, ...]] = []
    for i, (name, text) in enumerate(INVENTORIES.items()):
        folder = root / f"inv{i}"
        folder.mkdir()
        for rel, content in GROUP_VARS.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(content)
        path = folder / ("hosts.json" if name == "json inventory" else "hosts.yml")
        path.write_text(text)
        out[name] = (path, ansible)
        calls += [("ansible-inventory", "-i", str(path), "--list"),
                  ("ansible-inventory", "-i", str(path), "--list", "--export")]
    ansible.prefetch(calls)
    return out


def _json(ansible: Ansible, *call: str) -> Any:
    r = ansible.run(*call)
    assert r.returncode == 0 and b"Failed to parse" not in r.stderr, r.stderr.decode()
    return json.loads(r.stdout)


@pytest.mark.parametrize("name", list(INVENTORIES))
def test_yaml_inventory_equals_ansible(written: dict[str, tuple[Path, Ansible]],
                                       name: str) -> None:
    path, ansible = written[name]
    ours = load_inventory(str(path))
    assert ours.to_ansible_list() == _json(ansible, "ansible-inventory", "-i", str(path),
                                           "--list")
    assert ours.to_ansible_list(export=True) == _json(
        ansible, "ansible-inventory", "-i", str(path), "--list", "--export")
    for host in ours.hosts:
        assert json.loads(json.dumps(ours.host_vars(host))) == _json(
            ansible, "ansible-inventory", "-i", str(path), "--host", host), host


def test_an_empty_yaml_file_is_an_inventory_without_hosts(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"  # as Ansible: its ini plugin reads it, no hosts
    path.write_text("")
    (tmp_path / "ref").mkdir()
    theirs = _json(Ansible(tmp_path / "ref"), "ansible-inventory", "-i", str(path), "--list")
    assert load_inventory(str(path)).to_ansible_list() == theirs


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n- b\n", "YAML inventory has invalid structure, it should be a dictionary, got: list"),
    ("plugin: aws_ec2\n", "Plugin configuration YAML file, not YAML inventory"),
    ("all:\n  hosts: [a, b]\n",
     'Invalid "hosts" entry for "all" group, requires a dictionary, found "list" instead.'),
    ("all:\n  hosts:\n    'db[1:':\n", "malformed host range in 'db[1:'"),
])
def test_structures_ansible_refuses_fail_naming_the_file(tmp_path: Path, text: str,
                                                       message: str) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    with pytest.raises(InventoryError, match=str(path).replace(".", r"\.") + ": "):
        load_inventory(str(path))
    with pytest.raises(InventoryError) as caught:
        load_inventory(str(path))
    assert message in str(caught.value)
    (tmp_path / "ref").mkdir()
    r = Ansible(tmp_path / "ref").run("ansible-inventory", "-i", str(path), "--list")
    assert r.returncode != 0 or b"Failed to parse" in r.stderr or b"[WARNING]" in r.stderr
