"""group_vars/ and host_vars/ beside the inventory: compared with the real ansible-core.

Each layout below is a small Ansible project written to a temporary folder; for every one
`ansible-inventory --list`, `--list --export` and `--host` for each host are run with the
ansible-core of the test extra, and what chatalot-db reads must be equal after JSON
parsing. Files that cannot be used (broken YAML, vaulted) fail in both, ours naming the
file and the line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from installer.errors import InventoryError
from installer.fleet.inventory import load_inventory
from tests.unit.test_inventory import Ansible

INI = """\
[web]
web1 ansible_host=10.0.0.1 colour=inline
web2

[db]
db1 db_name=from_ini
db2

[eu:children]
web
db

[eu:vars]
colour=eu_ini
db_name=eu_ini

[all:vars]
colour=all_ini
pg_profile=all_ini
"""

#: name -> {relative path: content}; "hosts.ini" is the inventory unless given
LAYOUTS: dict[str, dict[str, str]] = {
    "all file beats every inventory group var": {
        "group_vars/all.yml": "colour: all_file\ndb_name: all_file\npg_profile: all_file\n"},
    "group file beats a child group's inventory var": {
        "group_vars/eu.yml": "db_name: eu_file\n", "group_vars/all.yml": "db_name: all_f\n"},
    "child group file beats parent group file": {
        "group_vars/eu.yml": "colour: eu_file\n", "group_vars/web.yml": "colour: web_file\n"},
    "host file beats inline host var": {
        "host_vars/web1.yml": "colour: host_file\nansible_host: 10.9.9.9\n",
        "host_vars/db1": "db_name: bare_name_file\n"},
    "folder beats files of the same name": {
        "group_vars/web/main.yml": "colour: folder\n", "group_vars/web.yml": "colour: file\n"},
    "folder files sorted, nested, hidden and backups skipped": {
        "group_vars/db/10-base.yml": "a: 1\nb: 1\n", "group_vars/db/20-over.yaml": "b: 2\n",
        "group_vars/db/sub/30.json": '{"c": 3, "b": 3}', "group_vars/db/.hidden.yml": "a: x\n",
        "group_vars/db/40.yml~": "a: backup\n", "group_vars/db/notes.txt": "a: text\n",
        "group_vars/db/50": "d: no_extension\n", "group_vars/db/sub.d/60.yml": "e: dotted\n"},
    "json and yaml extensions in Ansible's order": {
        "group_vars/web.yaml": "x: yaml\n", "group_vars/web.json": '{"x": "json"}',
        "host_vars/db2.json": '{"n": 1.5, "list": [1, "a", null], "t": true}'},
    "yaml 1.1 typing": {
        "group_vars/all.yml": (
            "b1: yes\nb2: No\nb3: on\nb4: OFF\noct: 0022\nhex: 0x1F\nsci: 1e3\nsci2: 1.0e3\n"
            "under: 1_000\nnull1: ~\nnull2:\nquoted: '0022'\nspace: hello world\n"
            "multi: |\n  line one\n  line two\nfolded: >\n  a\n  b\nneg: -0\ninf: .inf\n"
            "list: [1, two, 3.0]\nmapping: {k: v, n: 2}\n")},
    "dicts are replaced, not merged": {
        "group_vars/all.yml": "pg_settings:\n  work_mem: 8MB\n  shared_buffers: 1GB\n",
        "group_vars/db.yml": "pg_settings:\n  work_mem: 16MB\n"},
    "anchors and merge keys": {
        "group_vars/all.yml": "base: &b\n  x: 1\n  y: 2\nderived:\n  <<: *b\n  y: 3\n"},
    "empty and comment-only files": {
        "group_vars/all.yml": "", "group_vars/web.yml": "# nothing here\n",
        "host_vars/web2.yml": "---\n", "group_vars/db.yml": "kept: true\n"},
    "same-depth groups by priority then name": {
        "hosts.ini": ("[a]\nh1\n[b]\nh1\n[c]\nh1\n[a:vars]\nansible_group_priority=3\n"),
        "group_vars/a.yml": "v: a\n", "group_vars/b.yml": "v: b\n", "group_vars/c.yml": "v: c\n",
        "group_vars/ungrouped.yml": "u: 1\n"},
    "group priority inside a file is a plain variable": {
        "hosts.ini": "[a]\nh1\n[b]\nh1\n",
        "group_vars/a.yml": "ansible_group_priority: 9\nv: a\n", "group_vars/b.yml": "v: b\n"},
    "unsafe tag and unicode": {
        "group_vars/all.yml": "u: !unsafe '{{ not_templated }}'\nname: Zoë ✓\n"},
}


def _write(root: Path, files: dict[str, str]) -> Path:
    files = {"hosts.ini": INI, **files}
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "hosts.ini"


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Ansible]]:
    ansible = Ansible(tmp_path_factory.mktemp("ansible-varsfiles"))
    out: dict[str, tuple[Path, Ansible]] = {}
    calls: list[tuple[str, ...]] = []
    for i, (name, files) in enumerate(LAYOUTS.items()):
        inv = _write(tmp_path_factory.mktemp(f"layout{i}"), files)
        out[name] = (inv, ansible)
        calls.append(("ansible-inventory", "-i", str(inv), "--list"))
        calls.append(("ansible-inventory", "-i", str(inv), "--list", "--export"))
        for host in load_inventory(str(inv)).hosts:
            calls.append(("ansible-inventory", "-i", str(inv), "--host", host))
    ansible.prefetch(calls)
    return out


def _json(ansible: Ansible, *call: str) -> Any:
    r = ansible.run(*call)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def test_there_are_enough_layouts() -> None:
    assert len(LAYOUTS) >= 12


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_list_and_export_equal_ansible(projects: dict[str, tuple[Path, Ansible]],
                                       name: str) -> None:
    inv, ansible = projects[name]
    ours = load_inventory(str(inv))
    assert ours.to_ansible_list() == _json(ansible, "ansible-inventory", "-i", str(inv), "--list")
    assert ours.to_ansible_list(export=True) == _json(
        ansible, "ansible-inventory", "-i", str(inv), "--list", "--export")


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_host_vars_equal_ansible(projects: dict[str, tuple[Path, Ansible]], name: str) -> None:
    inv, ansible = projects[name]
    ours = load_inventory(str(inv))
    for host in ours.hosts:
        theirs = _json(ansible, "ansible-inventory", "-i", str(inv), "--host", host)
        assert json.loads(json.dumps(ours.host_vars(host), default=str)) == theirs, host


def test_group_vars_beside_a_symlinked_inventory_are_the_links(tmp_path: Path) -> None:
    """Ansible looks beside the path given (then takes its real path), not the target's."""
    real = _write(tmp_path / "real", {"group_vars/all.yml": "where: target\n"})
    link_dir = tmp_path / "project"
    (link_dir / "group_vars").mkdir(parents=True)
    (link_dir / "group_vars" / "all.yml").write_text("where: link\n")
    os.symlink(real, link_dir / "hosts.ini")
    assert load_inventory(str(link_dir / "hosts.ini")).host_vars("web1")["where"] == "link"


@pytest.mark.parametrize(("files", "message"), [
    ({"group_vars/web.yml": "a: 1\nb: [unclosed\nc: 3\n"},
     r"group_vars/web\.yml:3: not valid YAML: expected ',' or '\]', but got ':'$"),
    ({"group_vars/db/x.yml": "- a\n- b\n"},
     r"group_vars/db/x\.yml: a vars file holds a mapping of names to values, not a list$"),
    ({"host_vars/web1.yml": "$ANSIBLE_VAULT;1.1;AES256\n6162636465\n"},
     r"host_vars/web1\.yml: encrypted with ansible-vault \(format 1\.1, vault id 'default'\) "
     r"and no vault password was given: use --vault-password-file FILE, --vault-id "
     r"\[LABEL@\]SOURCE, --ask-vault-pass or ANSIBLE_VAULT_PASSWORD_FILE; nothing was run$"),
    ({"group_vars/all.yml": "db_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  61626364\n"},
     r"group_vars/all\.yml:1: a !vault value encrypted with ansible-vault \(format 1\.1, "
     r"vault id 'default'\) and no vault password was given"),
], ids=["broken yaml", "a list", "vaulted file", "inline vault"])
def test_unusable_files_fail_naming_file_and_line_as_ansible_fails(
        tmp_path: Path, files: dict[str, str], message: str) -> None:
    inv = _write(tmp_path, files)
    with pytest.raises(InventoryError, match=message):
        load_inventory(str(inv))
    (tmp_path / "ansible-ref").mkdir()
    ansible = Ansible(tmp_path / "ansible-ref")
    r = ansible.run("ansible-inventory", "-i", str(inv), "--list")  # every host's vars
    if "!vault" in str(files):  # Ansible lists it still encrypted: a play using it needs
        assert b'"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256' in r.stdout  # the password
    else:  # Ansible cannot use the file either
        assert r.returncode != 0 or b"[WARNING]" in r.stderr, r.stdout


@pytest.mark.parametrize(("name", "marker"), [
    ("all file beats every inventory group var", "all_file"),
    ("folder files sorted, nested, hidden and backups skipped", "no_extension"),
    ("host file beats inline host var", "host_file")])
def test_graph_with_vars_equals_ansible(projects: dict[str, tuple[Path, Ansible]],
                                        name: str, marker: str) -> None:
    inv, ansible = projects[name]
    r = ansible.run("ansible-inventory", "-i", str(inv), "--graph", "--vars")
    assert r.returncode == 0, r.stderr.decode()
    ours = load_inventory(str(inv)).graph("all", True)
    assert ours.rstrip("\n") == r.stdout.decode().rstrip("\n")
    assert marker in ours  # a value from the files
