"""The worked example project in docs/example-project (docs/inventory.md): what
chatalot-db reads from it, vaulted file included, equals what ansible-inventory reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer.cli import main
from tests.unit.test_inventory import Ansible

PROJECT = Path(__file__).resolve().parents[2] / "docs" / "example-project"
VAULT = f"prod@{PROJECT / 'vault-password.example'}"
HOSTS = ["db01.eu.example.net", "db02.eu.example.net", "db01.us.example.net"]


@pytest.fixture(scope="module")
def ansible(tmp_path_factory: pytest.TempPathFactory) -> Ansible:
    a = Ansible(tmp_path_factory.mktemp("ansible-example"))
    base = ("ansible-inventory", "-i", str(PROJECT / "hosts.ini"), "--vault-id", VAULT)
    a.prefetch([(*base, "--list"), *((*base, "--host", h) for h in HOSTS)])
    return a


def _ours(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    assert main(["inventory", "-i", str(PROJECT / "hosts.ini"), "--vault-id", VAULT,
                 *args]) == 0
    return json.loads(capsys.readouterr().out)


def _theirs(ansible: Ansible, *args: str) -> object:
    r = ansible.run("ansible-inventory", "-i", str(PROJECT / "hosts.ini"), "--vault-id", VAULT,
                    *args)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def test_the_list_equals_ansibles(ansible: Ansible,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert _ours(capsys, "--list") == _theirs(ansible, "--list")


@pytest.mark.parametrize("host", HOSTS)
def test_each_hosts_variables_equal_ansibles(ansible: Ansible, host: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ours = _ours(capsys, "--host", host)
    assert ours == _theirs(ansible, "--host", host)
    assert isinstance(ours, dict)
    assert ("db_password" in ours) == host.endswith(".eu.example.net")  # the vaulted file


def test_the_vaulted_file_is_encrypted_for_the_prod_id() -> None:
    text = (PROJECT / "group_vars/chat_eu/vault.yml").read_text()
    assert text.startswith("$ANSIBLE_VAULT;1.2;AES256;prod\n")
    assert "change-me" not in text
