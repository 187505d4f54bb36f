"""-e/--extra-vars in every form, compared with the real ansible-core: `inventory --host`
and `--list` with the same -e options print what `ansible-inventory` prints, and the bad
forms fail with Ansible's exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from installer.cli import main
from installer.fleet.inventory.extravars import parse_kv
from tests.unit.test_inventory import Ansible

INI = "[db]\ndb1 db_name=from_ini pg_port=5433\ndb2\n[db:vars]\ncolour=red\n"

#: (id, -e options; {FILE}: the project folder)
CASES: list[tuple[str, list[str]]] = [
    ("key=value", ["db_name=cli pg_port=6000"]),
    ("quotes and escapes", ["a='quoted value' b=\"dq value\" c=x\\ty d=e=f"]),
    ("raw words", ["loose words k=v more"]),
    ("json", ['{"db_name": "json", "n": 1, "l": [1, 2], "t": true, "z": null}']),
    ("yaml", ["{db_name: yaml, b: yes, o: 0022, f: 1.5, s: '0022'}"]),
    ("file yml", ["@{FILE}/extra.yml"]),
    ("file json", ["@{FILE}/extra.json"]),
    ("later wins", ["db_name=first colour=blue", '{"db_name": "second"}', "db_name=third"]),
    ("empty option", ["", "db_name=x"]),
]

BAD: list[tuple[str, list[str]]] = [
    ("a path without @", ["{FILE}/extra.yml"]),
    ("a relative path without @", ["./extra.yml"]),
    ("a list", ["[1, 2]"]),
    ("a missing file", ["@{FILE}/missing.yml"]),
    ("an empty file", ["@{FILE}/empty.yml"]),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("extra")
    (root / "hosts.ini").write_text(INI)
    (root / "extra.yml").write_text("db_name: from_file\nnested:\n  k: [1, two]\nb: on\n")
    (root / "extra.json").write_text('{"db_name": "from_json", "pg_port": 7000}')
    (root / "empty.yml").write_text("")
    (root / "ref").mkdir()
    return {"root": root, "inv": root / "hosts.ini", "ansible": Ansible(root / "ref")}


def _options(project: dict[str, Any], options: list[str]) -> list[str]:
    out: list[str] = []
    for o in options:
        out += ["-e", o.replace("{FILE}", str(project["root"]))]
    return out


@pytest.mark.parametrize(("name", "options"), CASES, ids=[c[0] for c in CASES])
def test_host_and_list_equal_ansible(project: dict[str, Any], name: str, options: list[str],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    opts = _options(project, options)
    for action in (["--host", "db1"], ["--host", "db2"], ["--list"]):
        r = project["ansible"].run("ansible-inventory", "-i", str(project["inv"]), *opts,
                                   *action)
        assert r.returncode == 0, r.stderr.decode()
        assert main(["inventory", "-i", str(project["inv"]), *opts, *action]) == 0
        assert json.loads(capsys.readouterr().out) == json.loads(r.stdout), action


@pytest.mark.parametrize(("name", "options"), BAD, ids=[b[0] for b in BAD])
def test_bad_forms_fail_as_ansible_fails(project: dict[str, Any], name: str,
                                         options: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    opts = _options(project, options)
    r = project["ansible"].run("ansible-inventory", "-i", str(project["inv"]), *opts,
                               "--host", "db1")
    assert r.returncode != 0
    code = main(["inventory", "-i", str(project["inv"]), *opts, "--host", "db1"])
    assert code == r.returncode, (code, r.returncode, r.stderr.decode())
    err = capsys.readouterr().err
    assert err.startswith("chatalot-db: error: "), err


KV_CASES = ["a=1 b=2", "a='x y' b=\"z\"", "a=\\n", "k=v=w", "solo", "a\\=b",
            "a=1   b=2", " lead=1 trail=2 ", "q='it''s' r=\"a'b\"", "u=\\u00e9 x=\\x41",
            "t=tab\\there", "e= spaced ", "k='=' j=\"a=b\"", "x=1 loose y=2 words",
            "path=/etc/chatalot/db.env", "dict={'a': 1}", "n=\\N{BULLET}",
            "a  b", "x  ", " lead", "a\tb=1", "a=1\nb=2", "w1\nw2 w3", "q='a  b' r=1"]


@pytest.mark.parametrize("text", KV_CASES)
def test_parse_kv_equals_ansibles(text: str) -> None:
    from ansible.parsing.splitter import parse_kv as ansible_parse_kv  # type: ignore[import-untyped]

    assert parse_kv(text) == dict(ansible_parse_kv(text))


def test_extra_vars_reach_the_run_and_beat_every_file(tmp_path: Path) -> None:
    from installer.fleet.hosts import load_hosts

    (tmp_path / "hosts.ini").write_text(INI)
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "db1.yml").write_text("db_name: from_host_file\n")
    hosts = load_hosts(str(tmp_path / "hosts.ini"), None, [], {"db_name": "cli"})
    assert hosts["db1"]["db_name"] == "cli" and hosts["db2"]["db_name"] == "cli"
    local = load_hosts(None, None, [], {"db_name": "cli"})
    assert local["localhost"] == {"ansible_connection": "local", "db_name": "cli"}
