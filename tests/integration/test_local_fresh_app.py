"""A fresh app role and database on this machine's cluster, created, rerun, and checked.

The default `chatalot` app may already exist on a reused CI machine; this test drops its
own `ci_app` role and database first, so the creation path really runs every time.
Local mode, no systemd (the CI machine): needs root.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from installer.desired import envfile
from tests.integration.helpers import as_postgres_sql, cli, remove_hba_block

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(os.geteuid() != 0, reason="apply on this machine needs root"),
]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("fresh")
    # make sure the cluster runs (the first local apply may not have run yet)
    first = cli("apply")
    assert first.returncode == 0, first.stdout + first.stderr
    as_postgres_sql("DROP DATABASE IF EXISTS ci_app;")
    as_postgres_sql("DROP ROLE IF EXISTS ci_app;")
    remove_hba_block("ci_app", "ci_app")
    env_file = tmp / "ci_app.env"
    inv = tmp / "local.ini"
    inv.write_text(
        "[local]\n"
        f"localhost ansible_connection=local db_name=ci_app db_user=ci_app "
        f"db_env_file={env_file}\n"
    )
    out: dict[str, Any] = {"env_file": env_file, "inv": inv}
    out["check"] = cli("apply", "-i", str(inv), "--check")
    out["role_after_check"] = as_postgres_sql(
        "select count(*) from pg_roles where rolname = 'ci_app'")
    out["env_after_check"] = env_file.exists()
    out["run1"] = cli("apply", "-i", str(inv))
    out["run2"] = cli("apply", "-i", str(inv))
    return out


def test_check_mode_changes_nothing(fresh: dict[str, Any]) -> None:
    p = fresh["check"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert "would create role ci_app" in p.stdout
    assert fresh["role_after_check"] == "0"
    assert fresh["env_after_check"] is False


def test_first_run_creates_role_database_grants_and_env_file(fresh: dict[str, Any]) -> None:
    p = fresh["run1"]
    assert p.returncode == 0, p.stdout + p.stderr
    for line in ("TASK [create role ci_app]", "TASK [create database ci_app]",
                 "TASK [grant schema public]", "TASK [configure pg_hba.conf]",
                 f"TASK [write {fresh['env_file']}]"):
        row = next(r for r in p.stdout.splitlines() if r.startswith(line))
        assert " changed " in row, row


def test_second_run_changes_nothing(fresh: dict[str, Any]) -> None:
    p = fresh["run2"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert "changed=0" in p.stdout and " changed " not in p.stdout


def test_the_written_url_logs_in_and_the_role_is_plain(fresh: dict[str, Any]) -> None:
    url = envfile.read_url(Path(fresh["env_file"]).read_text())
    assert url and "ci_app:" in url and url.endswith("@localhost:5432/ci_app")
    r = subprocess.run(["psql", url, "-XAtc", "create table t(i int); drop table t; select 1"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["CREATE", "TABLE", "DROP", "TABLE", "1"]
    assert as_postgres_sql("select rolsuper::text || rolcreatedb::text || rolcreaterole::text "
                           "from pg_roles where rolname = 'ci_app'") == "falsefalsefalse"


def test_drift_is_corrected(fresh: dict[str, Any]) -> None:
    """Someone gives the role superuser and changes its password: the next run undoes both."""
    as_postgres_sql("ALTER ROLE ci_app SUPERUSER CREATEDB PASSWORD 'changed-by-hand';")
    p = cli("apply", "-i", str(fresh["inv"]))
    assert p.returncode == 0, p.stdout + p.stderr
    row = next(r for r in p.stdout.splitlines() if r.startswith("TASK [create role ci_app]"))
    assert "NOSUPERUSER" in row and "NOCREATEDB" in row and "password reset" in row
    assert "changed-by-hand" not in p.stdout
    url = envfile.read_url(Path(fresh["env_file"]).read_text())
    assert url
    r = subprocess.run(["psql", url, "-XAtc", "select 1"], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    again = cli("apply", "-i", str(fresh["inv"]))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "changed=0" in again.stdout, again.stdout


def test_invalid_setting_leaves_server_running_on_old_config(fresh: dict[str, Any],
                                                             tmp_path: Path) -> None:
    inv = tmp_path / "bad.ini"
    inv.write_text(Path(fresh["inv"]).read_text().replace(
        "db_env_file", "pg_settings=\"{'work_mem': 'lots'}\" db_env_file"))
    before = as_postgres_sql("select pg_postmaster_start_time()")
    p = cli("apply", "-i", str(inv))
    assert p.returncode == 2, p.stdout + p.stderr
    assert "work_mem" in p.stdout and "previous configuration restored" in p.stdout
    assert as_postgres_sql("show work_mem") != "lots"
    assert as_postgres_sql("select pg_postmaster_start_time()") == before
    assert "lots" not in Path("/etc/postgresql/15/main/conf.d/50-chatalot.conf").read_text()
