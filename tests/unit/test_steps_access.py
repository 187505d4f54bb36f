"""The access steps' run(): AppRole, AppDatabase, SchemaGrants, EnvFile, LoginCheck.

The server's answers (role, database, schema privileges) and the env file come in the
probed state; asserted: the SQL sent to psql as postgres (on stdin, never in argv), the
file written, the login command, status and reason, and that the app role's password
appears in no command line, no reason and no diff (only in a SCRAM verifier, the env
file's content and the login's stdin).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from installer.desired import envfile, scram
from installer.desired.config import HostConfig
from installer.errors import CommandError
from installer.host.applogin import LoginOutcome
from installer.steps.access import (
    CONNECT_SCRIPT,
    AppDatabase,
    AppRole,
    EnvFile,
    LoginCheck,
    SchemaGrants,
)
from installer.steps.base import StepFailed
from installer.transport.base import Result
from installer.transport.shell import sh
from tests.unit.stepkit import WRITE_FILE, Harness, err, harness, out, said, state

#: URL-special characters: the env file holds it percent-encoded
PASSWORD = "s3cr/et:p@ss"
QUOTED = "s3cr%2Fet%3Ap%40ss"
URL = f"postgres://chatalot:{QUOTED}@localhost:5432/chatalot"
ENV = envfile.render(URL)
ENV_FILE = "/etc/chatalot/database.env"
PSQL = "/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 -p 5432 -d {db} -At"


def role(password: str | None = PASSWORD, **columns: bool | str | None) -> dict[str, Any]:
    """pg_authid's row for the app role: LOGIN only, a SCRAM verifier of `password`."""
    row: dict[str, Any] = {"rolname": "chatalot", "rolsuper": False, "rolcreatedb": False,
                           "rolcreaterole": False, "rolcanlogin": True,
                           "rolreplication": False, "rolbypassrls": False,
                           "rolpassword": str(scram.make_verifier(password))
                           if password is not None else None}
    row.update(columns)
    return row


def access(sql: dict[str, Any] | None, *, env_file: str | None = ENV, check: bool = False,
           diff: bool = False, db_password: str | None = None,
           env_meta: str | None = "", login: LoginOutcome | None = None) -> Harness:
    """The probed state; `env_meta`: the env file's stat line (default: a root-owned 0600
    regular file, or none when `env_file` is None)."""
    config = HostConfig(migrations_source=None, db_password=db_password)
    if env_meta == "":
        env_meta = "600 root root regular file" if env_file is not None else None
    h = harness("debian12", state(sql=sql, env_file=env_file, env_meta=env_meta, login=login),
                check=check, diff=diff, config=config)
    h.host.on("psql")  # every statement succeeds unless a test says otherwise
    return h


def no_secret(h: Harness, *texts: str | None, secret: str = PASSWORD) -> None:
    """The password is in no command line and none of `texts` (reason, diff, message)."""
    for text in (h.host.command_lines(), *texts):
        assert secret not in (text or "")
        assert quote(secret, safe="") not in (text or "")


# --- AppRole ---------------------------------------------------------------------------------

CREATE_ROLE = re.compile(r"""^CREATE ROLE "chatalot" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE """
                         r"""NOREPLICATION NOBYPASSRLS PASSWORD '(SCRAM-SHA-256\$4096:[^']+)';$""")
ALTER_PASSWORD = re.compile(r"""PASSWORD '(SCRAM-SHA-256\$4096:[^']+)';$""")


def test_role_created_with_a_verifier_of_the_env_files_password() -> None:
    h = access({"role": None})
    result = h.run(AppRole())
    assert said(result) == (
        "changed", "created role chatalot (LOGIN, no superuser/createdb/createrole)")
    [call] = h.host.calls
    assert (call.become, call.command) == ("postgres", PSQL.format(db="postgres"))
    m = CREATE_ROLE.match(call.stdin or "")
    assert m is not None, call.stdin
    assert scram.matches(m.group(1), PASSWORD)
    no_secret(h, result.reason, call.stdin)  # only its verifier travels
    assert h.invalidated


@pytest.mark.parametrize(("found", "config_password", "env", "sql", "why"), [
    (role(rolsuper=True, rolcreatedb=True), None, ENV, 'ALTER ROLE "chatalot" NOSUPERUSER '
     "NOCREATEDB;", "NOSUPERUSER NOCREATEDB"),
    (role(rolcanlogin=False, rolbypassrls=True), None, ENV,
     'ALTER ROLE "chatalot" LOGIN NOBYPASSRLS;', "LOGIN NOBYPASSRLS"),
    (role("another"), None, ENV, None, "password reset to the env file's"),
    (role(None), None, ENV, None, "password reset to the env file's"),
    (role(rolpassword="md5" + "0" * 32), None, ENV, None, "password reset to the env file's"),
    (role(), "from-the-inventory", ENV, None, "password set to db_password"),
    (role(), None, None, None, "new password (no env file held it)"),
    (role(rolcreaterole=True, rolpassword=None), None, ENV, None,
     "NOCREATEROLE; password reset to the env file's"),
], ids=["flags", "login", "other password", "no password", "md5", "db_password", "no env file",
        "flags and password"])
def test_role_altered_where_it_differs(found: dict[str, Any], config_password: str | None,
                                       env: str | None, sql: str | None, why: str) -> None:
    h = access({"role": found}, env_file=env, db_password=config_password)
    result = h.run(AppRole())
    assert said(result) == ("changed", f"altered role chatalot: {why}")
    [statement] = h.host.sql()
    if sql is not None:
        assert statement == sql
    else:  # a new verifier, of the password this run wants
        m = ALTER_PASSWORD.search(statement)
        assert m is not None and statement.startswith('ALTER ROLE "chatalot" ')
        assert scram.matches(m.group(1), h.ctx.password)
        assert h.ctx.password_is_new is (env is None)
    no_secret(h, result.reason, statement, secret=h.ctx.password)
    assert h.invalidated


@pytest.mark.parametrize(("sql", "expected"), [
    ({"role": role()}, ("ok", "role chatalot exists, LOGIN only, password matches the env file")),
    (None, ("changed", "would create role chatalot")),
    ({"role": None}, ("changed", "would create role chatalot (LOGIN, no "
                                 "superuser/createdb/createrole)")),
    ({"role": role("other", rolsuper=True)},
     ("changed", "would alter role chatalot: NOSUPERUSER; password reset to the env file's")),
], ids=["in place", "check, server down", "check, no role", "check, differs"])
def test_role_in_place_or_in_check_mode_runs_nothing(
        sql: dict[str, Any] | None, expected: tuple[str, str]) -> None:
    h = access(sql, check=expected[0] == "changed")
    result = h.run(AppRole())
    assert said(result) == expected
    assert h.host.calls == [] and not h.invalidated


def test_role_creation_failure_names_what_failed() -> None:
    h = access({"role": None})
    h.host.on("psql", err(1, 'ERROR:  permission denied to create role'))
    with pytest.raises(CommandError, match=r"^creating role chatalot failed \(exit 1\): ERROR:  "
                                           r"permission denied"):
        h.run(AppRole())


# --- AppDatabase -----------------------------------------------------------------------------

GOOD_DB = {"datname": "chatalot", "owner": "chatalot", "encoding": "UTF8",
           "public_connect": False}
REVOKE = ('REVOKE CONNECT, TEMPORARY ON DATABASE "chatalot" FROM PUBLIC;\n'
          'GRANT ALL PRIVILEGES ON DATABASE "chatalot" TO "chatalot";')


def test_database_created_utf8_owned_by_the_app_role_and_closed_to_public() -> None:
    h = access({"role": role(), "database": None})
    assert said(h.run(AppDatabase())) == (
        "changed", "created database chatalot OWNER chatalot, UTF8, no CONNECT for PUBLIC")
    assert h.host.sql() == [
        """CREATE DATABASE "chatalot" OWNER "chatalot" ENCODING 'UTF8' TEMPLATE template0;""",
        REVOKE,
    ]
    assert {c.command for c in h.host.calls} == {PSQL.format(db="postgres")}
    assert h.invalidated


@pytest.mark.parametrize(("db", "sql", "fixed"), [
    ({**GOOD_DB, "owner": "postgres"}, 'ALTER DATABASE "chatalot" OWNER TO "chatalot";',
     "owner postgres -> chatalot"),
    ({**GOOD_DB, "public_connect": True}, REVOKE, "revoke CONNECT from PUBLIC"),
    ({**GOOD_DB, "owner": "postgres", "public_connect": True},
     f'ALTER DATABASE "chatalot" OWNER TO "chatalot";\n{REVOKE}',
     "owner postgres -> chatalot; revoke CONNECT from PUBLIC"),
], ids=["owner", "public connect", "both"])
def test_database_fixed_in_one_psql_run(db: dict[str, Any], sql: str, fixed: str) -> None:
    h = access({"database": db})
    assert said(h.run(AppDatabase())) == ("changed", f"fixed: {fixed}")
    assert h.host.sql() == [sql]
    assert h.invalidated


@pytest.mark.parametrize(("sql", "check", "expected"), [
    ({"database": GOOD_DB}, False,
     ("ok", "database chatalot exists, UTF8, owned by chatalot")),
    (None, True, ("changed", "would create database chatalot owned by chatalot")),
    ({"database": None}, True, ("changed", "would create database chatalot OWNER chatalot, "
                                           "UTF8")),
    ({"database": {**GOOD_DB, "owner": "postgres", "public_connect": True}}, True,
     ("changed", "would fix: owner postgres -> chatalot; revoke CONNECT from PUBLIC")),
], ids=["in place", "check, server down", "check, none", "check, differs"])
def test_database_in_place_or_in_check_mode_runs_nothing(
        sql: dict[str, Any] | None, check: bool, expected: tuple[str, str]) -> None:
    h = access(sql, check=check)
    assert said(h.run(AppDatabase())) == expected
    assert h.host.calls == []


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_a_database_of_another_encoding_is_left_untouched(check: bool) -> None:
    h = access({"database": {**GOOD_DB, "encoding": "LATIN1", "owner": "postgres"}},
               check=check)
    with pytest.raises(StepFailed, match=r"^database chatalot exists with encoding LATIN1; "
                                         r"Chatalot needs UTF8. Left untouched"):
        h.run(AppDatabase())
    assert h.host.calls == []


# --- SchemaGrants ----------------------------------------------------------------------------

@pytest.mark.parametrize("privileges", [[], ["USAGE"], ["CREATE"]])
def test_schema_grant_runs_inside_the_app_database(privileges: list[str]) -> None:
    h = access({"database": GOOD_DB, "schema_privileges": privileges})
    assert said(h.run(SchemaGrants())) == (
        "changed", "granted ALL ON SCHEMA public TO chatalot")
    assert h.host.ran() == [("postgres", PSQL.format(db="chatalot"))]
    assert h.host.sql() == ['GRANT ALL ON SCHEMA public TO "chatalot";']
    assert h.invalidated


@pytest.mark.parametrize(("sql", "check", "expected"), [
    ({"schema_privileges": ["CREATE", "USAGE"]}, False,
     ("ok", "chatalot has USAGE, CREATE on schema public")),
    ({"schema_privileges": ["USAGE"]}, True,
     ("changed", "would GRANT ALL ON SCHEMA public TO chatalot")),
    ({"database": None}, True, ("changed", "would GRANT ALL ON SCHEMA public TO chatalot")),
    (None, True, ("changed", "would GRANT ALL ON SCHEMA public TO chatalot")),
], ids=["in place", "check", "check, no database yet", "check, server down"])
def test_schema_grant_in_place_or_in_check_mode_runs_nothing(
        sql: dict[str, Any] | None, check: bool, expected: tuple[str, str]) -> None:
    h = access(sql, check=check)
    assert said(h.run(SchemaGrants())) == expected
    assert h.host.calls == []


# --- EnvFile ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "meta", "db_password"), [
    (None, None, PASSWORD),
    (ENV, "644 root root regular file", None),
    (envfile.render(URL.replace(QUOTED, "old")), "600 root root regular file", PASSWORD),
    ("DATABASE_URL=" + URL + "\n", "600 root root regular file", None),
], ids=["missing", "mode", "other password", "no header"])
def test_env_file_written_root_only_with_the_url_on_stdin(
        env: str | None, meta: str | None, db_password: str | None) -> None:
    h = access({}, env_file=env, env_meta=meta, db_password=db_password)
    h.host.on(WRITE_FILE)
    result = h.run(EnvFile())
    assert said(result) == ("changed", f"wrote DATABASE_URL to {ENV_FILE} (mode 0600, root)")
    assert result.note == f"DATABASE_URL written to {ENV_FILE} (mode 0600)"
    written = h.host.written()
    assert list(written) == [ENV_FILE]
    f = written[ENV_FILE]
    assert (f.content, f.mode, f.owner, f.backup, f.become) == (
        ENV, "0600", "root:root", False, "root")
    no_secret(h, result.reason, result.note)
    assert h.invalidated


def test_env_file_with_a_new_password_when_there_was_none() -> None:
    h = access({}, env_file=None, env_meta=None)
    h.host.on(WRITE_FILE)
    h.run(EnvFile())
    assert h.ctx.password_is_new and len(h.ctx.password) >= 32
    assert h.host.written()[ENV_FILE].content == envfile.render(h.ctx.database_url())
    no_secret(h, secret=h.ctx.password)


def test_env_file_in_place_runs_nothing() -> None:
    h = access({})
    result = h.run(EnvFile())
    assert said(result) == ("ok", "DATABASE_URL in place (mode 0600, root)")
    assert result.note == f"DATABASE_URL is in {ENV_FILE} (mode 0600)"
    assert h.host.calls == [] and not h.invalidated


@pytest.mark.parametrize("diff", [False, True], ids=["no diff", "diff"])
def test_env_file_in_check_mode_masks_the_password_in_its_diff(diff: bool) -> None:
    h = access({}, env_file=envfile.render(URL.replace(QUOTED, "old")), db_password=PASSWORD,
               check=True, diff=diff)
    result = h.run(EnvFile())
    assert said(result) == ("changed", f"would write DATABASE_URL to {ENV_FILE} (mode 0600, "
                                       "root)")
    if diff:
        assert result.diff is not None
        assert "+DATABASE_URL=postgres://chatalot:********@localhost:5432/chatalot" in result.diff
        # the previous password is masked too
        assert "-DATABASE_URL=postgres://chatalot:********@localhost" in result.diff
        assert ":old@" not in result.diff
    else:
        assert result.diff is None
    no_secret(h, result.diff)
    assert h.host.calls == []


def test_env_file_write_failure_names_the_file_not_the_secret() -> None:
    h = access({}, env_file=None, db_password=PASSWORD)
    h.host.on(WRITE_FILE, err(1, "mkdir: cannot create directory '/etc/chatalot': "
                                 "Read-only file system"))
    with pytest.raises(CommandError, match="^" + re.escape(
            f"writing {ENV_FILE} failed (exit 1): mkdir: cannot create directory "
            "'/etc/chatalot': Read-only file system") + "$") as e:
        h.run(EnvFile())
    no_secret(h, str(e.value))


# --- LoginCheck ------------------------------------------------------------------------------

LOGGED_IN = LoginOutcome("chatalot@localhost:5432/chatalot", "chatalot", "chatalot", True, 0, "")
LOGIN_CMD = (f"sh -c {sh(CONNECT_SCRIPT)} chatalot-login-check "
             "'host=localhost port=5432 dbname=chatalot user=chatalot' "
             "/usr/lib/postgresql/15/bin/psql")
OK_REASON = "chatalot@localhost:5432/chatalot logs in over TCP (scram-sha-256)"


def test_login_trusts_the_first_probes_login_when_nothing_changed_since() -> None:
    h = access({"role": role()}, login=LOGGED_IN)
    assert said(h.run(LoginCheck())) == ("ok", OK_REASON)
    assert h.host.calls == [] and h.probes.count == 0


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_login_logs_in_itself_with_the_password_on_stdin(check: bool) -> None:
    """After a change (state invalidated) the env file is read again, then psql logs in."""
    h = access({"role": role()}, check=check)
    h.ctx.invalidate()
    h.probes.states.append(state(sql={"role": role()}, env_file=ENV))
    h.host.on("chatalot-login-check", out("1\n"))
    assert said(h.run(LoginCheck())) == ("ok", OK_REASON)
    [call] = h.host.calls
    assert (call.become, call.command, call.stdin, call.timeout) == (
        None, LOGIN_CMD, PASSWORD + "\n", 60)
    no_secret(h)
    assert h.probes.count == 1


@pytest.mark.parametrize("login", [
    None,
    LoginOutcome("t", None, None, False, 2, "password authentication failed"),
    LoginOutcome("t", "chatalot", "chatalot", False, 0, ""),  # over the socket, not TCP
], ids=["not tried", "failed", "not over TCP"])
def test_login_does_not_trust_a_probe_that_proved_nothing(login: LoginOutcome | None) -> None:
    h = access({"role": role()}, login=login)
    h.host.on("chatalot-login-check", out("1\n"))
    assert said(h.run(LoginCheck())) == ("ok", OK_REASON)
    assert [c.command for c in h.host.calls] == [LOGIN_CMD]


def test_login_failure_is_reported_without_the_password() -> None:
    h = access({"role": role()})
    h.host.on("chatalot-login-check", err(2, 'psql: error: FATAL:  password authentication '
                                             f'failed for user "chatalot" ({PASSWORD})\n'))
    with pytest.raises(StepFailed, match="^" + re.escape(
            'login as chatalot over TCP failed: psql: error: FATAL:  password authentication '
            'failed for user "chatalot" (********)') + "$") as e:
        h.run(LoginCheck())
    no_secret(h, str(e.value))


@pytest.mark.parametrize(("sql", "answer", "expected"), [
    (None, None, "would connect as DATABASE_URL once the role exists"),
    ({"role": None}, None, "would connect as DATABASE_URL once the role exists"),
    ({"role": role()}, err(2, "FATAL:  no pg_hba.conf entry"),
     "would connect once the role and pg_hba changes are made"),
], ids=["server down", "no role", "login refused"])
def test_login_in_check_mode_says_it_would_connect(
        sql: dict[str, Any] | None, answer: Result | None, expected: str) -> None:
    h = access(sql, check=True)
    if answer is not None:
        h.host.on("chatalot-login-check", answer)
    assert said(h.run(LoginCheck())) == ("changed", expected)
    assert [c.command for c in h.host.calls] == ([LOGIN_CMD] if answer is not None else [])


# --- a server that does not answer ----------------------------------------------------------

@pytest.mark.parametrize("step", [AppRole(), AppDatabase(), SchemaGrants()],
                         ids=["role", "database", "grants"])
def test_a_silent_server_fails_a_real_run_and_is_only_planned_in_check_mode(step: Any) -> None:
    """In check mode a server not running yet would have been started: say what would be
    done. In a real run "start postgresql" has run, so a silent server fails the step
    (never "would ..." reported as a change that was not made)."""
    planned = access(None, check=True)
    status, reason = said(planned.run(step))
    assert status == "changed" and reason.startswith("would "), reason
    real = harness("debian12", state(sql=None, sql_error="psql: error: connection refused\n"),
                   config=HostConfig(migrations_source=None))
    with pytest.raises(StepFailed, match=r"^PostgreSQL is not answering: psql: error: "
                                         r"connection refused$"):
        real.run(step)
    assert real.host.calls == []


# --- an env file that is not ours ------------------------------------------------------------

PASSWD = "root:x:0:0:root:/root:/bin/bash\nsshd:x:105:65534::/run/sshd:/usr/sbin/nologin\n"


@pytest.mark.parametrize(("text", "meta", "problem"), [
    (PASSWD, "644 root root regular file", "holds no postgres:// DATABASE_URL"),
    (None, "777 root root symbolic link", "is a symbolic link"),
    (ENV, "600 chatalot chatalot regular file", "belongs to chatalot, not root"),
    ("API_KEY=k\n" + ENV, "600 root root regular file", "holds API_KEY besides DATABASE_URL"),
], ids=["passwd-like", "symlink", "app's own", "more variables"])
@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("db_password", [None, "given"], ids=["kept", "db_password"])
@pytest.mark.parametrize("step", [AppRole(), EnvFile()], ids=["role", "env file"])
def test_a_foreign_env_file_fails_before_the_role_or_the_file_changes(
        step: Any, db_password: str | None, check: bool, text: str | None, meta: str,
        problem: str) -> None:
    """Never replaced, its password never trusted nor rotated, its content never shown:
    the first step that needs the password fails, naming the path and what was found."""
    h = access({"role": role("some other password")}, env_file=text, env_meta=meta,
               check=check, diff=True, db_password=db_password)
    # the path and what was found (its start: the detail may go on), then what to do
    with pytest.raises(StepFailed, match="^" + re.escape(f"{ENV_FILE} {problem}") + ".*"
                       + re.escape("; chatalot-db leaves it alone and changes nothing of the "
                                   "role: set db_env_file to a path of its own (e.g. "
                                   "/etc/chatalot/database.env), or move that file away")
                       + "$") as e:
        h.run(step)
    message = str(e.value)
    assert h.host.calls == []  # no ALTER ROLE, no write
    for secret in ("root:x:0:0", "sshd:x", "API_KEY=k", PASSWORD, QUOTED):
        assert secret not in message
