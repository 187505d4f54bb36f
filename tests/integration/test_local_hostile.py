"""Hostile input on this machine's cluster: a password full of shell and SQL metacharacters,
names that are not identifiers, and a postgresql.conf value with quotes, `#` and a backslash.

The tests use their own `hostile_app` role, database and env file (dropped first and
afterwards), and put the shared drop-in back as a plain `apply` leaves it.
Local mode, no systemd (the CI machine): needs root.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from installer.desired import envfile
from tests.integration.helpers import as_postgres_sql, cli, remove_hba_block

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(os.geteuid() != 0, reason="apply on this machine needs root"),
]

#: quotes, a backslash pair, `$`, spaces, non-ASCII, a semicolon and a shell command
PASSWORD = "q'\"\\\\$ x é€ ;rm -rf /"
APP = "hostile_app"
HOST_LINE = "localhost ansible_connection=local"


def _inventory(path: Path, env_file: Path, *vars_lines: str, host_vars: str = "") -> Path:
    app = f"db_name={APP} db_user={APP} db_env_file={env_file}"
    path.write_text(f"[local]\n{HOST_LINE} {app} {host_vars}\n\n[local:vars]\n"
                    + "".join(f"{line}\n" for line in vars_lines))
    return path


def _drop_app() -> None:
    as_postgres_sql(f"DROP DATABASE IF EXISTS {APP};")
    as_postgres_sql(f"DROP ROLE IF EXISTS {APP};")
    remove_hba_block(APP, APP)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hostile")
    first = cli("apply")  # the cluster runs, the drop-in is the default one
    assert first.returncode == 0, first.stdout + first.stderr
    _drop_app()
    env_file = tmp / "hostile.env"
    inv = _inventory(tmp / "hostile.ini", env_file, f"db_password={PASSWORD}")
    out: dict[str, Any] = {"tmp": tmp, "env_file": env_file, "inv": inv}
    out["shown"] = cli("inventory", "-i", str(inv), "--host", "localhost")
    report = tmp / "run1.json"
    out["run1"] = cli("apply", "-i", str(inv), "--diff", "--json", str(report),
                      "--log-dir", str(tmp / "logs"))
    out["report1"] = report.read_text() if report.exists() else ""
    out["run2"] = cli("apply", "-i", str(inv), "--diff")
    try:
        yield out
    finally:
        _drop_app()
        restore = cli("apply")
        assert restore.returncode == 0, restore.stdout + restore.stderr


def test_inventory_keeps_the_password_as_written(hostile: dict[str, Any]) -> None:
    p = hostile["shown"]
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["db_password"] == PASSWORD


def test_hostile_password_logs_in_over_tcp(hostile: dict[str, Any]) -> None:
    p = hostile["run1"]
    assert p.returncode == 0, p.stdout + p.stderr
    env = dict(os.environ, PGPASSWORD=PASSWORD)
    r = subprocess.run(["psql", "-X", "-At", "-h", "localhost", "-U", APP, "-d", APP, "-w",
                        "-c", "select current_user"], env=env, capture_output=True, text=True,
                       check=False)
    assert (r.returncode, r.stdout.strip()) == (0, APP), r.stderr
    # the app reads the env file: its URL carries exactly that password, and logs in
    url = envfile.read_url(Path(hostile["env_file"]).read_text())
    assert envfile.password_from_url(url, APP) == PASSWORD
    r = subprocess.run(["psql", str(url), "-XAtc", "select 1"], capture_output=True, text=True,
                       check=False)
    assert (r.returncode, r.stdout.strip()) == (0, "1"), r.stderr
    wrong = subprocess.run(["psql", "-X", "-h", "localhost", "-U", APP, "-d", APP, "-w",
                            "-c", "select 1"], env=dict(os.environ, PGPASSWORD=PASSWORD[:-1]),
                           capture_output=True, text=True, check=False)
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr


def test_password_is_in_no_output(hostile: dict[str, Any]) -> None:
    tmp: Path = hostile["tmp"]
    texts = {"stdout": hostile["run1"].stdout, "stderr": hostile["run1"].stderr,
             "json": hostile["report1"], "rerun": hostile["run2"].stdout,
             **{f"log {f.name}": f.read_text() for f in (tmp / "logs").iterdir()}}
    assert hostile["report1"] and len(texts) > 4
    for form in (PASSWORD, quote(PASSWORD, safe=""), json.dumps(PASSWORD)[1:-1]):
        for where, text in texts.items():
            assert form not in text, f"the password ({form!r}) is in {where}"


def test_rerun_with_the_password_changes_nothing(hostile: dict[str, Any]) -> None:
    p = hostile["run2"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert "changed=0" in p.stdout, p.stdout


def test_changing_db_password_resets_the_role(hostile: dict[str, Any], tmp_path: Path) -> None:
    inv = _inventory(tmp_path / "new.ini", hostile["env_file"], "db_password=an other one")
    p = cli("apply", "-i", str(inv))
    assert p.returncode == 0, p.stdout + p.stderr
    row = next(r for r in p.stdout.splitlines() if r.startswith(f"TASK [create role {APP}]"))
    assert "password set to db_password" in row
    assert "an other one" not in p.stdout
    url = envfile.read_url(Path(hostile["env_file"]).read_text())
    assert envfile.password_from_url(url, APP) == "an other one"
    back = cli("apply", "-i", str(hostile["inv"]))  # the hostile one again, for other tests
    assert back.returncode == 0, back.stdout + back.stderr


BAD_INPUT = [
    # (host variables, the message's key words)
    ("db_user=\"x'; DROP ROLE postgres; --\"", "db_user"),
    ("db_user='a b'", "db_user"),
    ("db_user=Chatalot", "db_user"),
    ("db_user=1app", "db_user"),
    ("db_user='x;rm -rf /'", "db_user"),
    ("db_user='a\"b'", "db_user"),
    ("db_user=é", "db_user"),
    ("db_user=" + "a" * 64, "db_user"),
    ("db_name='$(reboot)'", "db_name"),
    ("db_name='app`id`'", "db_name"),
    ("db_name=\"a\\\\b\"", "db_name"),
    ("db_name=''", "db_name"),
    ("pg_listen='*'", "pg_allowed_cidrs is not set"),
    ("pg_listen=0.0.0.0", "pg_allowed_cidrs is not set"),
    ("pg_listen='localhost;rm -rf /'", "pg_listen"),
    ("pg_listen='*' pg_allowed_cidrs=10.0.0.1/8", "pg_allowed_cidrs"),
    ("pg_listen='*' pg_allowed_cidrs=everyone", "pg_allowed_cidrs"),
    ("pg_ssl_cert=/etc/x.crt pg_allowed_cidrs=10.0.0.0/8", "pg_ssl_key"),
    ("pg_ssl_cert=cert.pem pg_ssl_key=key.pem pg_allowed_cidrs=10.0.0.0/8", "absolute path"),
    ("\"pg_settings={'work_mem': '8MB\\nlisten_addresses = *'}\"", "line break"),
    ("\"pg_settings={'work_mem; x': '8MB'}\"", "not a PostgreSQL setting name"),
    ("db_env_file=relative/db.env", "absolute path"),
    ("pg_max_connections=20", "pg_max_connections 20 is too low"),
]


@pytest.mark.parametrize(("host_vars", "message"), BAD_INPUT)
def test_bad_input_is_refused_before_anything_runs(host_vars: str, message: str,
                                                   tmp_path: Path) -> None:
    # hostile_app's names and a scratch env file first, so that a value the inventory
    # reader turned into a valid one could only touch the scratch app (later keys win)
    safe = f"db_name={APP} db_user={APP} db_env_file={tmp_path / 'scratch.env'}"
    inv = tmp_path / "bad.ini"
    inv.write_text(f"[local]\n{HOST_LINE} {safe} {host_vars}\n")
    roles = as_postgres_sql("select count(*) from pg_roles")
    dbs = as_postgres_sql("select count(*) from pg_database")
    report = tmp_path / "r.json"
    p = cli("apply", "-i", str(inv), "--json", str(report))
    assert p.returncode == 2, p.stdout + p.stderr
    steps = json.loads(report.read_text())["hosts"]["localhost"]["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [("check variables", "failed")]
    assert message in steps[0]["reason"], steps[0]["reason"]
    assert as_postgres_sql("select count(*) from pg_roles") == roles
    assert as_postgres_sql("select count(*) from pg_database") == dbs


LINE_PREFIX = "%m [%p] q'x #y \\ "


def test_quoted_setting_reaches_the_server_as_written(hostile: dict[str, Any],
                                                      tmp_path: Path) -> None:
    """log_line_prefix with a quote, `#` and a backslash: SHOW gives it back unchanged."""
    dropin = Path("/etc/postgresql/15/main/conf.d/50-chatalot.conf")
    inv = _inventory(tmp_path / "prefix.ini", hostile["env_file"],
                     f"db_password={PASSWORD}",
                     "pg_settings={'log_line_prefix': " + json.dumps(LINE_PREFIX) + "}")
    try:
        p = cli("apply", "-i", str(inv))
        assert p.returncode == 0, p.stdout + p.stderr
        assert "log_line_prefix = '%m [%p] q''x #y \\\\ '" in dropin.read_text()
        assert as_postgres_sql("show log_line_prefix") + " " == LINE_PREFIX
        assert as_postgres_sql(
            "select setting from pg_settings where name = 'log_line_prefix'") + " " == LINE_PREFIX
        again = cli("apply", "-i", str(inv))
        assert again.returncode == 0, again.stdout + again.stderr
        assert "changed=0" in again.stdout, again.stdout
    finally:
        back = cli("apply", "-i", str(hostile["inv"]))
        assert back.returncode == 0, back.stdout + back.stderr
    assert "log_line_prefix" not in dropin.read_text()
    assert "q'x" not in as_postgres_sql("show log_line_prefix")
