"""The env file's login as a section of the first state probe, and when the login check
may rely on it instead of running a command of its own.

The section's shell runs for real here (/bin/sh) with a fake psql that answers as the
server would; the real server login is covered by the integration tests (a no-op apply
reports the login ok with one command fewer: tests/integration/test_local_apply.py).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from installer.desired import envfile
from installer.desired.config import HostConfig
from installer.host import applogin
from installer.host.distros.base import ServiceState
from installer.host.state import HostState
from installer.steps.access import _logged_in
from installer.steps.base import HostContext
from installer.transport.local import LocalTransport

# answers the login query as PostgreSQL would: user, database, TCP; or refuses the password
FAKE_PSQL = """#!/bin/sh
if [ "$PGPASSWORD" != "$EXPECTED" ]; then
  echo 'psql: error: FATAL:  password authentication failed for user "chatalot"' >&2
  exit 2
fi
for last; do :; done
echo "chatalot-login: result chatalot chatalot true"
echo "url: $last" >&2
"""


def _run_section(tmp_path: Path, env_text: str | None, expected: str) -> tuple[str, str]:
    env = tmp_path / "database.env"
    if env_text is not None:
        env.write_text(env_text)
    psql = tmp_path / "psql"
    psql.write_text(FAKE_PSQL)
    psql.chmod(psql.stat().st_mode | stat.S_IXUSR)
    section = (f"if [ -f '{env}' ]; then "
               f"{applogin.probe_section(str(env), str(psql))}\nfi")
    p = subprocess.run(["/bin/sh", "-c", section], capture_output=True, text=True, check=True,
                       env={"PATH": os.environ["PATH"], "EXPECTED": expected})
    return section, p.stdout


URL = envfile.database_url("chatalot", "p@ss w%rd/é", "localhost", 5432, "chatalot")


@pytest.mark.parametrize(("env_text", "expected", "exit_code", "user", "tcp"), [
    (envfile.render(URL), "p@ss w%rd/é", 0, "chatalot", True),  # percent-decoded on the host
    (envfile.render(URL), "another", 2, None, False),           # the server refuses it
    ("OTHER=1\n", "x", applogin.EXIT_BAD_ENV, None, False),     # no DATABASE_URL at all
])
def test_section_logs_in_with_the_env_files_password(
        tmp_path: Path, env_text: str, expected: str, exit_code: int, user: str | None,
        tcp: bool) -> None:
    section, out = _run_section(tmp_path, env_text, expected)
    assert "p@ss" not in section and "%rd" not in section  # the script names no secret
    login = applogin.parse_probe_section(out)
    assert (login.exit_code, login.user, login.tcp) == (exit_code, user, tcp)
    assert "p@ss" not in out and "w%25rd" not in out        # nor does its output
    if exit_code == 0:
        assert login.target == "chatalot@localhost:5432/chatalot"


def test_section_is_silent_without_an_env_file(tmp_path: Path) -> None:
    _, out = _run_section(tmp_path, None, "x")
    assert out.strip() == ""


def _ctx(env_text: str | None, login: applogin.LoginOutcome | None,
         db_password: str | None = None) -> tuple[HostContext, HostState]:
    config = HostConfig(db_password=db_password)
    ctx = HostContext("h", LocalTransport(), config, check=False, diff=False)
    st = HostState(ServiceState([], True, True), env_text, "600 root root regular file", None,
                   None, {}, login=login)
    ctx.set_state(st)
    return ctx, st


GOOD = applogin.LoginOutcome("chatalot@localhost:5432/chatalot", "chatalot", "chatalot", True,
                             0, "")


@pytest.mark.parametrize(("env_text", "login", "db_password", "trusted"), [
    (envfile.render(URL), GOOD, None, True),
    # the run wants another password: the env file changes, so the probe proved nothing
    (envfile.render(URL), GOOD, "new-password", False),
    (envfile.render(URL), None, None, False),                          # not tried
    (envfile.render(URL), GOOD.__class__("t", None, None, False, 2, "refused"), None, False),
    (envfile.render(URL), GOOD.__class__("t", "chatalot", "chatalot", False, 0, ""), None,
     False),                                                           # not over TCP
    (envfile.render(URL), GOOD.__class__("t", "other", "chatalot", True, 0, ""), None, False),
    (envfile.render(URL.replace(":5432/", ":6432/")), GOOD, None, False),  # another port
])
def test_login_check_trusts_the_probe_only_for_this_runs_url(
        env_text: str, login: applogin.LoginOutcome | None, db_password: str | None,
        trusted: bool) -> None:
    ctx, st = _ctx(env_text, login, db_password)
    assert _logged_in(ctx, st) is trusted
