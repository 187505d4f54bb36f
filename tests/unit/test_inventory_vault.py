"""ansible-vault files and values, made by the real ansible-vault, read as ansible-core reads
them: whole vaulted vars files (format 1.1, and 1.2 with a vault id), inline `!vault`
values of another vault id, passwords from a file, from an executable and by label.
`inventory --list/--host` equal `ansible-inventory`'s with the same --vault-id options;
the run gets the plaintext; a wrong or missing password fails naming the file and the
vault id, printing neither ciphertext nor plaintext."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from installer.cli import main
from installer.desired.config import HostConfig
from installer.errors import InventoryError
from installer.fleet.inventory import load_inventory
from installer.fleet.inventory.vault import VaultError, VaultSecret, decrypt
from tests.unit.test_inventory import Ansible

BIN = Path(sys.executable).parent
INI = "[web]\nweb1\nweb2\n[db]\ndb1\n[eu:children]\nweb\ndb\n"
PASSWORDS = {"default": "correct horse", "prod": "prod-pass-1", "dev": "script-pass-2"}


def _vault(*args: str, cwd: Path) -> str:
    r = subprocess.run([str(BIN / "ansible-vault"), *args], capture_output=True, text=True,
                       cwd=cwd, check=False, env={"PATH": "/usr/bin:/bin",
                                                  "ANSIBLE_CONFIG": str(cwd / "ansible.cfg")})
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("vaulted")
    (root / "ansible.cfg").write_text("")
    (root / "pw_default").write_text(PASSWORDS["default"] + "\n")
    (root / "pw_prod").write_text(PASSWORDS["prod"] + "\n")
    script = root / "pw_dev.sh"
    script.write_text(f"#!/bin/sh\necho '{PASSWORDS['dev']}'\n")
    script.chmod(0o755)
    (root / "hosts.ini").write_text(INI)
    gv = root / "group_vars"
    (gv / "eu").mkdir(parents=True)
    (gv / "eu" / "main.yml").write_text("db_name: eu_app\n")
    (gv / "eu" / "vault.yml").write_text("db_password: eu-secret\nvault_only: 1\n")
    _vault("encrypt", "--vault-id", f"prod@{root / 'pw_prod'}", str(gv / "eu" / "vault.yml"),
           cwd=root)
    (root / "host_vars").mkdir()
    (root / "host_vars" / "db1.yml").write_text("db_password: db1-secret\nport: 5433\n")
    _vault("encrypt", "--vault-password-file", str(root / "pw_default"),
           str(root / "host_vars" / "db1.yml"), cwd=root)
    inline = _vault("encrypt_string", "--vault-id", f"dev@{script}", "web-secret",
                    "--name", "db_password", cwd=root)
    (gv / "web.yml").write_text("colour: blue\n" + inline)
    options = ["--vault-id", f"prod@{root / 'pw_prod'}", "--vault-id", f"dev@{script}",
               "--vault-password-file", str(root / "pw_default")]
    secrets = [VaultSecret("prod", PASSWORDS["prod"].encode()),
               VaultSecret("dev", PASSWORDS["dev"].encode()),
               VaultSecret("default", PASSWORDS["default"].encode())]
    (root / "ref").mkdir()
    return {"root": root, "inv": root / "hosts.ini", "options": options, "secrets": secrets,
            "ansible": Ansible(root / "ref")}


def _theirs(project: dict[str, Any], *call: str) -> Any:
    r = project["ansible"].run("ansible-inventory", "-i", str(project["inv"]),
                               *project["options"], *call)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def test_the_files_are_really_vaulted(project: dict[str, Any]) -> None:
    eu = (project["root"] / "group_vars" / "eu" / "vault.yml").read_text()
    db1 = (project["root"] / "host_vars" / "db1.yml").read_text()
    assert eu.startswith("$ANSIBLE_VAULT;1.2;AES256;prod\n") and "eu-secret" not in eu
    assert db1.startswith("$ANSIBLE_VAULT;1.1;AES256\n") and "db1-secret" not in db1


@pytest.mark.parametrize("export", [False, True], ids=["list", "export"])
def test_list_equals_ansible(project: dict[str, Any], export: bool) -> None:
    ours = load_inventory(str(project["inv"]), project["secrets"])
    extra = ("--list", "--export") if export else ("--list",)
    assert ours.to_ansible_list(export=export) == _theirs(project, *extra)


@pytest.mark.parametrize("host", ["web1", "web2", "db1"])
def test_host_equals_ansible_and_the_command_prints_the_same(
        project: dict[str, Any], host: str, capsys: pytest.CaptureFixture[str]) -> None:
    theirs = _theirs(project, "--host", host)
    assert main(["inventory", "-i", str(project["inv"]), *project["options"],
                 "--host", host]) == 0
    assert json.loads(capsys.readouterr().out) == theirs


def test_the_run_gets_the_plaintext(project: dict[str, Any]) -> None:
    inv = load_inventory(str(project["inv"]), project["secrets"])
    assert HostConfig.from_vars(inv.host_vars("web1")).db_password == "web-secret"
    assert HostConfig.from_vars(inv.host_vars("db1")).db_password == "db1-secret"
    assert inv.host_vars("db1")["port"] == 5433
    assert HostConfig.from_vars(inv.host_vars("web2")).db_password == "web-secret"


@pytest.mark.parametrize(("secrets", "message"), [
    ([], r"group_vars/web\.yml:2: a !vault value encrypted with ansible-vault \(vault id "
         r"'dev'\) and no vault password was given"),
    ([VaultSecret("prod", b"wrong"), VaultSecret("dev", PASSWORDS["dev"].encode()),
      VaultSecret("default", PASSWORDS["default"].encode())],
     r"group_vars/eu/vault\.yml: no vault password given fits \(vault id 'prod'; tried prod, "
     r"dev, default\); nothing was run$"),
    ([VaultSecret("prod", PASSWORDS["prod"].encode()),
      VaultSecret("default", PASSWORDS["default"].encode())],
     r"group_vars/web\.yml:2: a !vault value no vault password given fits \(vault id 'dev'; "
     r"tried prod, default\); nothing was run$"),
], ids=["none", "wrong prod", "no dev"])
def test_a_missing_or_wrong_password_fails_naming_file_and_vault_id(
        project: dict[str, Any], secrets: list[VaultSecret], message: str) -> None:
    with pytest.raises(InventoryError, match=message) as caught:
        load_inventory(str(project["inv"]), secrets)
    for secret in ("eu-secret", "db1-secret", "web-secret", "$ANSIBLE_VAULT;", "6637"):
        assert secret not in str(caught.value)


def test_the_command_reads_passwords_from_env_and_fails_cleanly(
        project: dict[str, Any], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(project["root"] / "pw_default"))
    assert main(["inventory", "-i", str(project["inv"]), "--host", "db1"]) == 1
    err = capsys.readouterr().err
    assert "vault id 'dev'" in err and "web-secret" not in err
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(project["root"] / "missing"))
    assert main(["inventory", "-i", str(project["inv"]), "--host", "db1"]) == 5
    assert "vault password file" in capsys.readouterr().err


def test_a_damaged_vault_text_is_named_not_shown() -> None:
    with pytest.raises(VaultError, match=r"^the vault text is damaged"):
        decrypt("$ANSIBLE_VAULT;1.1;AES256\nzz-not-hex\n", [VaultSecret("default", b"x")])
