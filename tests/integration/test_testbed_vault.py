"""A vaulted db_password from group_vars, on two real hosts.

The project: `hosts.ini` names debian12 and debian13 in group `db`;
`group_vars/db/vault.yml` holds db_password, encrypted by the real `ansible-vault` (vault
id `prod`); the vault password is in a file given with `--vault-id prod@FILE`. `apply
--diff --log-dir --json` provisions both: the app logs in with the vaulted password (its
env file's DATABASE_URL); neither that password nor the vault password is in the output,
the JSON report or the log files; the rerun changes nothing.

Needs root and the test bed: CI runs it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.desired import envfile
from tests.integration.conftest import host_of_kind
from tests.integration.helpers import inventory, run_apply

pytestmark = pytest.mark.testbed

DB_PASSWORD = "Vaulted-db-pass-8871"
VAULT_PASSWORD = "the-vault-password-5512"


@pytest.fixture(scope="module")
def vaulted(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("vaulted")
    hosts = [host_of_kind(bed, "debian12"), host_of_kind(bed, "debian13")]
    inv = inventory(bed, tmp / "hosts.ini", {h: "root" for h in hosts})
    inv.write_text(inv.read_text().replace("[db:vars]", "[db:vars]\nmigrations_source=none"))
    (tmp / "group_vars" / "db").mkdir(parents=True)
    secret = tmp / "group_vars" / "db" / "vault.yml"
    secret.write_text(f"db_password: {DB_PASSWORD}\n")
    pw = tmp / "vault-pass"
    pw.write_text(VAULT_PASSWORD + "\n")
    (tmp / "ansible.cfg").write_text("")
    r = subprocess.run([str(Path(sys.executable).parent / "ansible-vault"), "encrypt",
                        "--vault-id", f"prod@{pw}", str(secret)], capture_output=True, text=True,
                       check=False, cwd=tmp, env={"PATH": "/usr/bin:/bin",
                                                  "ANSIBLE_CONFIG": str(tmp / "ansible.cfg")})
    assert r.returncode == 0, r.stderr
    assert DB_PASSWORD not in secret.read_text()
    logs = tmp / "logs"
    out: dict[str, Any] = {"hosts": hosts, "logs": logs}
    out["run"] = run_apply(inv, tmp / "run.json", "--diff", "--log-dir", str(logs),
                           "--vault-id", f"prod@{pw}")
    out["rerun"] = run_apply(inv, tmp / "rerun.json", "--vault-id", f"prod@{pw}")
    out["no_password"] = run_apply(inv, tmp / "none.json")
    out["env"] = {h: bed.ssh(h, "cat /etc/chatalot/database.env", check=True).stdout
                  for h in hosts}
    out["login"] = {h: bed.ssh(h, "set -a; . /etc/chatalot/database.env; "
                                  'psql "$DATABASE_URL" -X -At -c "SELECT current_user"')
                    for h in hosts}
    try:
        yield out
    finally:
        for h in hosts:
            bed.reset(h)


def test_both_hosts_use_the_vaulted_password(vaulted: dict[str, Any]) -> None:
    p, _ = vaulted["run"]
    assert p.returncode == 0, p.stdout + p.stderr
    for h in vaulted["hosts"]:
        url = envfile.read_url(vaulted["env"][h])
        assert envfile.password_from_url(url, "chatalot") == DB_PASSWORD
        login = vaulted["login"][h]
        assert login.returncode == 0 and login.stdout.strip() == "chatalot", login.stderr


def test_no_secret_is_printed_reported_or_logged(vaulted: dict[str, Any]) -> None:
    for key in ("run", "rerun", "no_password"):
        p, doc = vaulted[key]
        text = p.stdout + p.stderr + repr(doc)
        if key == "run":
            text += "".join(f.read_text() for f in vaulted["logs"].rglob("*") if f.is_file())
        for secret in (DB_PASSWORD, VAULT_PASSWORD):
            assert secret not in text, key


def test_the_rerun_changes_nothing_and_no_password_fails_before_contact(
        vaulted: dict[str, Any]) -> None:
    p, doc = vaulted["rerun"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert all(h["changed"] == 0 for h in doc["hosts"].values())
    p2, doc2 = vaulted["no_password"]
    assert p2.returncode == 1, p2.stdout + p2.stderr
    assert "group_vars/db/vault.yml: encrypted with ansible-vault (vault id 'prod') and no " \
           "vault password was given" in p2.stderr
    assert doc2 == {}  # nothing ran: no report
