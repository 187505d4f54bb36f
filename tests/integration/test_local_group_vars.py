"""An Ansible project laid out the usual way, provisioning this machine for real.

`hosts.ini` names only the host; its variables live in `group_vars/all.yml`,
`group_vars/local/main.yml` (a folder) and `host_vars/localhost.yml`, with a collision at
every level. `apply` creates the database and role the files name (not the defaults), with
the env file and password the host file names; the rerun changes nothing. Local mode:
needs root (CI runs it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from installer.desired import envfile
from tests.integration.helpers import as_postgres_sql, remove_hba_block, run_apply

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(os.geteuid() != 0, reason="apply on this machine needs root"),
]

APP = "gv_app"
PASSWORD = "from-host-vars-7Qz"


def _drop() -> None:
    for name in (APP, "gv_wrong"):
        as_postgres_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")
        as_postgres_sql(f"DROP ROLE IF EXISTS {name};")
        remove_hba_block(name, name)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("project")
    _drop()
    env = root / "app.env"
    files = {
        "inventory/hosts.ini": "[local]\nlocalhost ansible_connection=local\n",
        "inventory/group_vars/all.yml": f"db_name: gv_wrong\ndb_user: gv_wrong\n"
                                        f"migrations_source: none\ndb_env_file: {root}/x.env\n",
        "inventory/group_vars/local/main.yml": f"db_name: {APP}\ndb_user: gv_wrong\n",
        "inventory/host_vars/localhost.yml": f"db_user: {APP}\ndb_password: {PASSWORD}\n"
                                             f"db_env_file: {env}\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    inv = root / "inventory" / "hosts.ini"
    out: dict[str, Any] = {"env": env}
    out["run"] = run_apply(inv, root / "run.json")
    out["rerun"] = run_apply(inv, root / "rerun.json")
    out["databases"] = as_postgres_sql(
        "SELECT string_agg(datname || ':' || pg_get_userbyid(datdba), ',' ORDER BY datname) "
        "FROM pg_database WHERE datname LIKE 'gv_%'")
    try:
        yield out
    finally:
        _drop()


def test_the_files_variables_are_the_ones_used(project: dict[str, Any]) -> None:
    p, _ = project["run"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert project["databases"] == f"{APP}:{APP}"  # group folder's db_name, host file's user
    url = envfile.read_url(project["env"].read_text())
    assert envfile.password_from_url(url, APP) == PASSWORD
    assert PASSWORD not in p.stdout + p.stderr


def test_the_rerun_changes_nothing(project: dict[str, Any]) -> None:
    p, doc = project["rerun"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert doc["hosts"]["localhost"]["changed"] == 0
