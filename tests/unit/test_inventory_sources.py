"""Several inventory sources (`-i` given several times) and directory sources, compared
with the real ansible-core (the test extra's `ansible-inventory`).

Each layout is a folder of files; `sources` are the -i arguments in order. For every
layout `ansible-inventory -i A -i B ... --list`, `--list --export` and `--host` of each
host are run, and what chatalot-db reads must be equal after JSON parsing: the same
hosts in the same order, groups, children and variables (a later source's inventory
variables and group_vars/host_vars win), the same files of a directory read (sorted,
sub-directories too, hidden files, vars folders and INVENTORY_IGNORE_EXTS left out).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from installer.cli import main
from installer.errors import InventoryError
from installer.fleet.inventory import load_inventory
from installer.fleet.inventory.ini import inventory_files
from tests.unit.test_inventory import Ansible

FIRST = """\
[web]
web1 ansible_host=10.0.0.1 colour=first
web2

[db]
db1 db_name=first

[all:vars]
pg_profile=first
"""

SECOND = """\
[web]
web3
web1 colour=second

[cache]
redis1

[db]
db2

[db:vars]
db_name=second_group

[all:vars]
pg_profile=second
"""

YAML = """\
all:
  children:
    web:
      hosts:
        web4:
          colour: yaml
      vars:
        tier: front
    queue:
      hosts:
        mq1:
"""

#: name -> ({relative path: content}, the -i sources relative to the layout's folder)
LAYOUTS: dict[str, tuple[dict[str, str], list[str]]] = {
    "two files, the second's variables win": (
        {"a/hosts.ini": FIRST, "b/hosts.ini": SECOND}, ["a/hosts.ini", "b/hosts.ini"]),
    "two files in the other order": (
        {"a/hosts.ini": FIRST, "b/hosts.ini": SECOND}, ["b/hosts.ini", "a/hosts.ini"]),
    "each file's group_vars and host_vars, the later source's winning": (
        {"a/hosts.ini": FIRST, "a/group_vars/web.yml": "colour: a_file\nonly_a: 1\n",
         "a/host_vars/web1.yml": "h: a\n", "a/group_vars/all.yml": "x: a\n",
         "b/hosts.ini": SECOND, "b/group_vars/web.yml": "colour: b_file\n",
         "b/host_vars/web1.yml": "h: b\n", "b/group_vars/cache.yml": "only_b: 2\n"},
        ["a/hosts.ini", "b/hosts.ini"]),
    "an INI file and a YAML file": (
        {"a/hosts.ini": FIRST, "b/hosts.yml": YAML}, ["a/hosts.ini", "b/hosts.yml"]),
    "a directory: sorted files, sub-directories, ignored names": (
        {"inv/20-second.ini": SECOND, "inv/10-first.ini": FIRST, "inv/30-more.yml": YAML,
         "inv/README.md": "not an inventory\n", "inv/notes.txt": "nor this\n",
         "inv/.hidden.ini": "[web]\nhidden1\n", "inv/old.ini~": "[web]\nbackup1\n",
         "inv/site.retry": "retry1\n", "inv/x.bak": "[web]\nbak1\n", "inv/x.orig": "o\n",
         "inv/ansible.cfg": "[defaults]\n", "inv/sub/40-deeper.ini": "[deep]\ndeep1\n",
         "inv/group_vars/web.yml": "dir_var: 1\n", "inv/host_vars/db1.yml": "h: dir\n"},
        ["inv"]),
    "a directory's own group_vars, not its sub-directory's": (
        {"inv/hosts.ini": FIRST, "inv/group_vars/all.yml": "top: 1\n",
         "inv/sub/more.ini": "[web]\nweb9\n", "inv/sub/group_vars/all.yml": "nested: 1\n"},
        ["inv"]),
    "a directory then a file": (
        {"inv/hosts.ini": FIRST, "inv/group_vars/web.yml": "colour: dir\n",
         "extra/hosts.ini": SECOND, "extra/group_vars/web.yml": "colour: extra\n"},
        ["inv", "extra/hosts.ini"]),
    "the same file twice": (
        {"a/hosts.ini": FIRST, "a/group_vars/db.yml": "twice: true\n"},
        ["a/hosts.ini", "a/hosts.ini"]),
    "a group in one file made a child in another": (
        {"a/hosts.ini": "[web]\nweb1\n[web:vars]\nregion=web\n",
         "b/hosts.ini": "[eu:children]\nweb\n[eu:vars]\nregion=eu\nzone=b\n"},
        ["a/hosts.ini", "b/hosts.ini"]),
}


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _args(root: Path, sources: list[str]) -> list[str]:
    return [a for s in sources for a in ("-i", str(root / s))]


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory
             ) -> dict[str, tuple[list[str], Ansible]]:
    ansible = Ansible(tmp_path_factory.mktemp("ansible-sources"))
    out: dict[str, tuple[list[str], Ansible]] = {}
    calls: list[tuple[str, ...]] = []
    for i, (name, (files, sources)) in enumerate(LAYOUTS.items()):
        root = tmp_path_factory.mktemp(f"sources{i}")
        _write(root, files)
        paths = [str(root / s) for s in sources]
        out[name] = (paths, ansible)
        args = tuple(a for p in paths for a in ("-i", p))
        calls.append(("ansible-inventory", *args, "--list"))
        calls.append(("ansible-inventory", *args, "--list", "--export"))
        for host in load_inventory(paths).hosts:
            calls.append(("ansible-inventory", *args, "--host", host))
    ansible.prefetch(calls)
    return out


def _json(ansible: Ansible, *call: str) -> Any:
    r = ansible.run(*call)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_list_and_export_equal_ansible(projects: dict[str, tuple[list[str], Ansible]],
                                       name: str) -> None:
    paths, ansible = projects[name]
    args = [a for p in paths for a in ("-i", p)]
    ours = load_inventory(paths)
    assert ours.to_ansible_list() == _json(ansible, "ansible-inventory", *args, "--list")
    assert ours.to_ansible_list(export=True) == _json(
        ansible, "ansible-inventory", *args, "--list", "--export")


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_host_vars_equal_ansible(projects: dict[str, tuple[list[str], Ansible]],
                                 name: str) -> None:
    paths, ansible = projects[name]
    args = [a for p in paths for a in ("-i", p)]
    ours = load_inventory(paths)
    assert ours.hosts, name
    for host in ours.hosts:
        theirs = _json(ansible, "ansible-inventory", *args, "--host", host)
        assert json.loads(json.dumps(ours.host_vars(host), default=str)) == theirs, host


def test_a_directory_is_read_in_ansibles_order(tmp_path: Path) -> None:
    files, _ = LAYOUTS["a directory: sorted files, sub-directories, ignored names"]
    _write(tmp_path, files)
    got = [str(Path(f).relative_to(tmp_path / "inv")) for f in inventory_files(
        str(tmp_path / "inv"))]
    assert got == ["10-first.ini", "20-second.ini", "30-more.yml", "sub/40-deeper.ini"]


def test_a_missing_source_and_a_broken_file_in_a_directory_name_the_file(
        tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"nope\.ini.*No such file or directory"):
        load_inventory([str(tmp_path / "nope.ini")])
    _write(tmp_path, {"inv/a.ini": "[web]\nweb1\n", "inv/b.ini": "[web\nbroken\n"})
    with pytest.raises(InventoryError, match=r"inv/b\.ini:1"):
        load_inventory(str(tmp_path / "inv"))


def test_the_cli_takes_i_several_times_and_a_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, {"a/hosts.ini": FIRST, "b/hosts.ini": SECOND})
    assert main(["inventory", "-i", str(tmp_path / "a/hosts.ini"), "-i",
                 str(tmp_path / "b/hosts.ini"), "--host", "web1"]) == 0
    web1 = json.loads(capsys.readouterr().out)
    assert (web1["colour"], web1["ansible_host"]) == ("second", "10.0.0.1")  # both read
    assert main(["apply", "-i", str(tmp_path / "a"), "-i", str(tmp_path / "b"),
                 "--list-hosts"]) == 0
    out = capsys.readouterr().out
    assert "hosts (6):" in out and "redis1" in out


LIMITS = [None, "web", "all:!db1"]


@pytest.fixture(scope="module")
def play(projects: dict[str, tuple[list[str], Ansible]],
         tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The play `ansible-playbook --list-hosts` lists for; every case fetched at once."""
    from tests.unit.test_list_hosts import PLAY

    path = tmp_path_factory.mktemp("sources-play") / "play.yml"
    path.write_text(PLAY)
    calls = []
    for paths, _ in projects.values():
        args = tuple(a for p in paths for a in ("-i", p))
        calls += [("ansible-playbook", *args, str(path), "--list-hosts",
                   *(("--limit", limit) if limit else ())) for limit in LIMITS]
    next(iter(projects.values()))[1].prefetch(calls)
    return path


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_list_hosts_as_ansible_playbook_lists_them(
        projects: dict[str, tuple[list[str], Ansible]], play: Path, name: str,
        limit: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_list_hosts import _hosts

    paths, ansible = projects[name]
    args = [a for p in paths for a in ("-i", p)]
    extra = ["--limit", limit] if limit else []
    r = ansible.run("ansible-playbook", *args, str(play), "--list-hosts", *extra)
    assert r.returncode == 0, r.stderr.decode()
    assert main(["apply", *args, "--list-hosts", *extra]) == 0
    ours = _hosts(capsys.readouterr().out)
    theirs = _hosts(r.stdout.decode())
    assert sorted(ours) == sorted(theirs) and len(ours) == len(theirs)
