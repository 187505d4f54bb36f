"""Table tests for verify, status and psql: parsing, checks and their messages, command lines."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from installer.commands import psql as psql_cmd
from installer.commands import status as status_cmd
from installer.commands import verify as verify_cmd
from installer.desired.config import HostConfig
from installer.desired.tuning import TuningInputs, compute
from installer.fleet.hosts import Connection
from installer.host import applogin, queries
from installer.host.distros import select
from installer.host.facts import Facts
from installer.sqlx.rules import AppliedMigration, LedgerState, Migration, checksum
from installer.verify import checks
from installer.verify.conftest import inventory_vars, parse_var_options
from installer.verify.observe import expected_settings, parse_sql, verify_sql
from installer.verify.plugin import HostTally, _param_id

# -- sockets ---------------------------------------------------------------------------------

SS = """State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
LISTEN 0      128      0.0.0.0:2024 0.0.0.0:*
LISTEN 0      244    127.0.0.1:5432 0.0.0.0:* users:(("postgres",pid=31835,fd=5))
LISTEN 0      244        [::1]:5432    [::]:* users:(("postgres",pid=31835,fd=6))
LISTEN 0      244            *:5433       *:* users:(("postgres",pid=2,fd=6))
LISTEN 0      244   [fe80::1%eth0]:5432  [::]:*
"""


def test_parse_ss() -> None:
    assert checks.parse_ss(SS) == [
        checks.Socket("0.0.0.0", 2024, None),
        checks.Socket("127.0.0.1", 5432, "postgres"),
        checks.Socket("::1", 5432, "postgres"),
        checks.Socket("0.0.0.0", 5433, "postgres"),
        checks.Socket("fe80::1", 5432, None),
    ]


PROC = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   1: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101
   2: 0100007F:1538 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   101
   0: 00000000000000000000000001000000:1538 00000000000000000000000000000000:0000 0A 0
   1: 00000000000000000000000000000000:1538 00000000000000000000000000000000:0000 0A 0
"""


def test_parse_proc_net_tcp() -> None:
    assert checks.parse_proc_net_tcp(PROC) == [
        checks.Socket("0.0.0.0", 2024), checks.Socket("127.0.0.1", 5432),
        checks.Socket("::1", 5432), checks.Socket("::", 5432),
    ]


def _s(addr: str, port: int = 5432) -> checks.Socket:
    return checks.Socket(addr, port, "postgres")


@pytest.mark.parametrize(
    ("sockets", "pg_listen", "live", "expected"),
    [
        ([_s("127.0.0.1"), _s("::1")], "localhost", "localhost", []),
        ([_s("127.0.0.1"), _s("0.0.0.0", 2024)], "localhost", "localhost", []),
        ([_s("0.0.0.0"), _s("::")], "localhost", "*", [
            "postgresql listens on 0.0.0.0:5432 (pg_listen is 'localhost': loopback only)",
            "postgresql listens on [::]:5432 (pg_listen is 'localhost': loopback only)",
            "listen_addresses is '*', pg_listen is 'localhost': loopback only"]),
        ([_s("0.0.0.0"), _s("::")], "*", "*", []),
        ([_s("127.0.0.1"), _s("10.0.0.5")], "localhost,10.0.0.5", "localhost,10.0.0.5", []),
        ([_s("10.0.0.5"), _s("10.0.0.6")], "10.0.0.5", "10.0.0.5",
         ["postgresql listens on 10.0.0.6:5432 (pg_listen is '10.0.0.5')"]),
        ([_s("::ffff:127.0.0.1")], "localhost", "localhost", []),
        ([], "localhost", "localhost", ["postgresql listens on no TCP address on port 5432 "
                                        "(pg_listen is 'localhost': loopback only): is it "
                                        "running, and on that port?"]),
        # as apply compares it: another spelling is another value (apply would set it)
        (None, "localhost", "127.0.0.1,::1",
         ["listen_addresses is '127.0.0.1,::1', pg_listen is 'localhost': loopback only"]),
        (None, "localhost", None, []),
        # another program on 0.0.0.0:5432 is not postgresql's doing
        ([_s("127.0.0.1"), checks.Socket("0.0.0.0", 5432, "haproxy")], "localhost",
         "localhost", []),
    ],
)
def test_listen_problems(sockets: list[checks.Socket] | None, pg_listen: str, live: str | None,
                         expected: list[str]) -> None:
    assert checks.listen_problems(sockets, 5432, pg_listen, live) == expected


# -- role, database, grants, hba ----------------------------------------------------------------

GOOD_ROLE = {"rolcanlogin": True, "rolsuper": False, "rolcreatedb": False,
             "rolcreaterole": False, "rolreplication": False, "rolbypassrls": False}


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (GOOD_ROLE, []),
        (None, ["role chatalot does not exist"]),
        ({**GOOD_ROLE, "rolsuper": True}, ["role chatalot is a superuser"]),
        ({**GOOD_ROLE, "rolcanlogin": False, "rolcreatedb": True},
         ["role chatalot cannot log in (NOLOGIN)",
          "role chatalot may create databases (CREATEDB)"]),
        ({**GOOD_ROLE, "rolcreaterole": True}, ["role chatalot may create roles (CREATEROLE)"]),
    ],
)
def test_role_problems(role: dict[str, bool] | None, expected: list[str]) -> None:
    assert checks.role_problems(role, "chatalot") == expected


@pytest.mark.parametrize(
    ("db", "expected"),
    [
        ({"owner": "chatalot", "encoding": "UTF8", "public_connect": False}, []),
        (None, ["database chatalot does not exist"]),
        ({"owner": "postgres", "encoding": "SQL_ASCII"},
         ["database chatalot is owned by postgres, not chatalot",
          "database chatalot has encoding SQL_ASCII, not UTF8"]),
    ],
)
def test_database_problems(db: dict[str, Any] | None, expected: list[str]) -> None:
    assert checks.database_problems(db, "chatalot", "chatalot") == expected


def test_public_connect_problems() -> None:
    assert checks.public_connect_problems({"public_connect": False}, "chatalot") == []
    assert checks.public_connect_problems({"public_connect": True}, "chatalot") == [
        "PUBLIC may connect to database chatalot (REVOKE CONNECT ON DATABASE chatalot FROM "
        "PUBLIC)"]


@pytest.mark.parametrize(
    ("privs", "expected"),
    [
        (["CREATE", "USAGE"], []),
        (["USAGE"], ["role chatalot lacks CREATE on schema public in database chatalot"]),
        ([], ["role chatalot lacks USAGE on schema public in database chatalot",
              "role chatalot lacks CREATE on schema public in database chatalot"]),
        (None, ["database chatalot does not exist: no schema grants to check"]),
    ],
)
def test_schema_problems(privs: list[str] | None, expected: list[str]) -> None:
    assert checks.schema_problems(privs, "chatalot", "chatalot") == expected


@pytest.mark.parametrize(
    ("unreadable", "expected"),
    [
        ([], []),
        # the role or the database does not exist: their own checks say so, not this one
        (None, []),
        (["_sqlx_migrations"],
         ["role chatalot lacks SELECT on table _sqlx_migrations in schema public of database "
          "chatalot"]),
        (["users", "_sqlx_migrations"],
         ["role chatalot lacks SELECT on 2 tables in schema public of database chatalot: "
          "_sqlx_migrations, users"]),
        ([f"t{n:02d}" for n in range(12)],
         ["role chatalot lacks SELECT on 12 tables in schema public of database chatalot: "
          "t00, t01, t02, t03, t04, t05, t06, t07, t08, t09 and 2 more"]),
    ],
    ids=["all readable", "no role", "the ledger", "two", "many"],
)
def test_table_read_problems(unreadable: list[str] | None, expected: list[str]) -> None:
    assert checks.table_read_problems(unreadable, "chatalot", "chatalot") == expected


def test_unreadable_tables_fragment_asks_has_table_privilege_for_the_app_role() -> None:
    key, expr = queries.unreadable_tables_fragment(HostConfig(db_user="it's"))
    assert key == "unreadable_tables"
    assert "WHERE rolname = 'it''s'" in expr
    assert "NOT has_table_privilege(r.oid, c.oid, 'SELECT')" in expr
    assert "c.relkind IN ('r', 'p')" in expr and "n.nspname = 'public'" in expr
    assert "CASE WHEN r.oid IS NULL THEN NULL" in expr  # no role: null, not "every table"
    assert "_sqlx_migrations" not in expr  # the ledger is one of the tables checked
    inside = verify_sql(HostConfig(), []).split("\\c chatalot\n", 1)[1]
    assert "'unreadable_tables', " in inside


def _rule(line: int, kind: str, method: str, address: str | None = None,
          **extra: Any) -> dict[str, Any]:
    return {"line_number": line, "type": kind, "database": ["all"], "user_name": ["all"],
            "address": address, "netmask": None, "auth_method": method, "error": None,
            **extra}


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([_rule(1, "host", "scram-sha-256", "127.0.0.1"), _rule(2, "local", "peer")], []),
        ([_rule(3, "host", "trust", "192.0.2.1", netmask="255.255.255.255")],
         ["pg_hba line 3 uses trust (host all all 192.0.2.1/32): anyone matching it logs in "
          "without a password"]),
        ([_rule(7, "local", "trust")],
         ["pg_hba line 7 uses trust (local all all): anyone matching it logs in without a "
          "password"]),
        ([_rule(9, "host", "trust", "10.0.0.0", netmask="255.0.0.0",
                file_name="/etc/postgresql/16/main/pg_hba.conf")],
         ["/etc/postgresql/16/main/pg_hba.conf line 9 uses trust (host all all "
          "10.0.0.0/8): anyone matching it logs in without a password"]),
        ([{"line_number": 4, "error": "invalid authentication method \"trsut\""}],
         ["pg_hba line 4 is invalid: invalid authentication method \"trsut\""]),
        (None, ["pg_hba_file_rules could not be read"]),
    ],
)
def test_hba_problems(rules: list[dict[str, Any]] | None, expected: list[str]) -> None:
    assert checks.hba_problems(rules) == expected


# -- settings -------------------------------------------------------------------------------------


def _live(value: str, unit: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"value": value, "unit": unit, "pending_restart": False, "source": "configuration file",
            "sourcefile": None, "sourceline": None, **extra}


@pytest.mark.parametrize(
    ("wanted", "live", "expected"),
    [
        ({"work_mem": "4MB", "shared_buffers": "256MB"},
         {"work_mem": _live("4MB", "kB"), "shared_buffers": _live("256MB", "8kB")}, []),
        ({"wal_buffers": "7864kB"}, {"wal_buffers": _live("7864kB", "8kB")}, []),
        ({"checkpoint_completion_target": "0.9", "jit": "off"},
         {"checkpoint_completion_target": _live("0.9"), "jit": _live("off")}, []),
        ({"work_mem": "4MB"},
         {"work_mem": _live("1MB", "kB", source="configuration file",
                            sourcefile="/var/lib/postgresql/15/main/postgresql.auto.conf",
                            sourceline=3)},
         ["work_mem is 1MB (set in /var/lib/postgresql/15/main/postgresql.auto.conf line 3), "
          "the tuning calculator gives 4MB for INPUTS"]),
        ({"shared_buffers": "1GB"}, {"shared_buffers": _live("128MB", "8kB",
                                                             pending_restart=True)},
         ["shared_buffers is 128MB (source: configuration file), the tuning calculator gives "
          "1GB for INPUTS; a restart is pending"]),
        ({"no_such_setting": "1", "pg_stat_statements.max": "1000"}, {},
         ["no_such_setting is not a setting this server knows"]),
    ],
)
def test_settings_problems(wanted: dict[str, str], live: dict[str, dict[str, Any]],
                           expected: list[str]) -> None:
    assert checks.settings_problems(wanted, live, "INPUTS") == expected


def _facts(memory_kb: int = 4 * 1024 * 1024, cpus: int = 2, systemd: bool = True,
           raw: dict[str, str] | None = None) -> Facts:
    return Facts("debian", (), "12", "bookworm", "Debian GNU/Linux 12 (bookworm)", memory_kb,
                 cpus, "systemd" if systemd else "bash", True, "ssd", raw or {})


def _computed(memory_kb: int, cpus: int, major: int = 15, lz4: bool = True,
              **kw: Any) -> dict[str, str]:
    return {"password_encryption": "scram-sha-256",
            **compute(TuningInputs(memory_kb=memory_kb, cpus=cpus, disk=kw.pop("disk", "ssd"),
                                   pg_major=major, lz4=lz4, **kw))}


GB = 1024 * 1024


@pytest.mark.parametrize(
    ("facts", "hostvars", "caps", "expected", "inputs"),
    [
        (_facts(), {}, None, _computed(4 * GB, 2),
         "4GB RAM, 2 CPUs, ssd, PostgreSQL 15, profile chatalot"),
        # the cgroup limit, not the host's RAM
        (_facts(24 * GB, 8, raw={"cgroup-v2-memory": str(2 * 1024**3)}), {}, None,
         _computed(2 * GB, 8), "2GB RAM, 8 CPUs, ssd, PostgreSQL 15, profile chatalot"),
        # inventory overrides and the user's pg_settings, as apply renders them
        (_facts(), {"pg_memory": "8GB", "pg_cpus": 4, "pg_disk": "hdd",
                    "pg_settings": {"work_mem": "8MB", "log_min_duration_statement": "250ms"}},
         None, {**_computed(8 * GB, 4, disk="hdd"), "work_mem": "8MB",
                "log_min_duration_statement": "250ms"},
         "8GB RAM, 4 CPUs, hdd, PostgreSQL 15, profile chatalot"),
        # a server without lz4 gets pglz, as apply decides from pg_settings.enumvals
        (_facts(), {}, {"wal_compression": ["pglz", "on", "off"]},
         _computed(4 * GB, 2, lz4=False), "4GB RAM, 2 CPUs, ssd, PostgreSQL 15, profile chatalot"),
        (_facts(), {"pg_version": 17, "pg_profile": "web"}, None,
         _computed(4 * GB, 2, major=17, profile="web"),
         "4GB RAM, 2 CPUs, ssd, PostgreSQL 17, profile web"),
    ],
)
def test_expected_settings_are_apply_s(facts: Facts, hostvars: dict[str, Any],
                                       caps: dict[str, list[str]] | None,
                                       expected: dict[str, str], inputs: str) -> None:
    config = HostConfig.from_vars(hostvars)
    wanted, described = expected_settings(facts, config, select(facts, config), caps)
    assert "listen_addresses" not in wanted  # the listening check owns it
    assert wanted == expected
    assert described == inputs


# -- migrations ------------------------------------------------------------------------------------


def _m(v: int) -> Migration:
    data = f"-- {v}\n".encode()
    return Migration(v, f"m{v}", data.decode(), checksum(data), False, f"{v:03d}_m{v}.sql")


LOCAL = [_m(v) for v in range(1, 13)]


def _ledger(*versions: int, bad: int | None = None, dirty: int | None = None) -> LedgerState:
    rows = tuple(AppliedMigration(v, checksum(b"other") if v == bad else _m(v).checksum,
                                  v != dirty) for v in versions)
    return LedgerState(True, "chatalot", rows)


ALL = tuple(range(1, 13))


@pytest.mark.parametrize(
    ("ledger", "expected"),
    [
        (_ledger(*ALL), []),
        (_ledger(*(v for v in ALL if v != 12)), ["migration 12 is missing from the ledger"]),
        (_ledger(1, 2, 3, 5, 9), ["migrations 4, 6-8, 10-12 are missing from the ledger"]),
        (_ledger(*ALL, bad=7),
         ["migration 7 was applied with a different checksum than the local file"]),
        (_ledger(*ALL, dirty=12),
         ["migration 12 is dirty (success = false in _sqlx_migrations): partially applied"]),
        (_ledger(*ALL, 13, 14),
         ["migrations 13-14 are in the ledger but not among the 12 local migrations"]),
        (LedgerState(False, None, ()),
         ["the _sqlx_migrations ledger does not exist in database chatalot: none of the 12 "
          "migrations is applied"]),
        (None, ["database chatalot does not exist: no migration ledger to check"]),
    ],
)
def test_migration_problems(ledger: LedgerState | None, expected: list[str]) -> None:
    assert checks.migration_problems(LOCAL, ledger, "chatalot") == expected


UNREADABLE = ("_sqlx_migrations in database chatalot (owner other) could not be read: "
              "ERROR: permission denied for table _sqlx_migrations")


@pytest.mark.parametrize(("ledger", "error", "expected"), [
    (None, "", []),  # no database yet: the server has not started
    (LedgerState(False, None, ()), "", []),  # no ledger yet
    (_ledger(*ALL), "", []),
    (_ledger(*ALL, 13, 14), "", []),  # the server's own versions: not ours to compare
    (_ledger(*ALL, dirty=12), "",
     ["migration 12 is dirty (success = false in _sqlx_migrations): a migration of the "
      "Chatalot server failed half-way; the server will not start until it is fixed"]),
    (_ledger(1, 2, 3, dirty=2), "", ["migration 2 is dirty (success = false in "
                                      "_sqlx_migrations): a migration of the Chatalot server "
                                      "failed half-way; the server will not start until it "
                                      "is fixed"]),
    (None, "UNREADABLE", ["UNREADABLE"]),
], ids=["no database", "no ledger", "clean", "server's own", "dirty", "dirty early",
        "unreadable"])
def test_server_ledger_problems(ledger: LedgerState | None, error: str,
                                expected: list[str]) -> None:
    """migrations_source none: the server's ledger is readable and not dirty, no more."""
    assert checks.server_ledger_problems(ledger, error) == expected


@pytest.mark.parametrize("ledger", [None, LedgerState(True, "other", ())], ids=["none", "empty"])
def test_an_unreadable_ledger_is_the_migration_problem(ledger: LedgerState | None) -> None:
    """Not `migrations 1-12 are missing`, nor `database does not exist`: the read failed."""
    assert checks.migration_problems(LOCAL, ledger, "chatalot", UNREADABLE) == [UNREADABLE]


@pytest.mark.parametrize(
    ("ledger", "applied", "pending", "notes"),
    [
        (_ledger(*ALL), 12, 0, 0),
        (_ledger(1, 2, 3), 3, 9, 0),
        (_ledger(*ALL, bad=2), 11, 0, 1),
        (LedgerState(False, None, ()), 0, 12, 0),
        (None, 0, 12, 0),
    ],
)
def test_migration_counts(ledger: LedgerState | None, applied: int, pending: int,
                          notes: int) -> None:
    counts = checks.migration_counts(LOCAL, ledger)
    assert (counts.applied, counts.pending, len(counts.notes)) == (applied, pending, notes)


# -- env file and login ----------------------------------------------------------------------------

ENV = "/etc/chatalot/database.env"


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ("600 root root", []),
        (None, [f"env file {ENV} does not exist"]),
        ("644 root root", [f"env file {ENV} has mode 0644, not 0600: others can read the "
                           "database password"]),
        ("600 chatalot root", [f"env file {ENV} is owned by chatalot:root, not root:root"]),
    ],
)
def test_env_file_problems(meta: str | None, expected: list[str]) -> None:
    assert checks.env_file_problems(meta, ENV) == expected


T = "chatalot-login: target chatalot@localhost:5432/chatalot\n"


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (T + "chatalot-login: result chatalot chatalot true\nchatalot-login-exit: 0\n", []),
        (T + "psql: error: connection to server at \"localhost\" (127.0.0.1), port 5432 failed:"
         " FATAL:  password authentication failed for user \"chatalot\"\nchatalot-login-exit: 2\n",
         ["DATABASE_URL in /etc/chatalot/database.env (chatalot@localhost:5432/chatalot) does "
          "not log in: psql: error: connection to server at \"localhost\" (127.0.0.1), port 5432 "
          "failed: FATAL:  password authentication failed for user \"chatalot\""]),
        ("chatalot-db: /etc/chatalot/database.env does not exist\nchatalot-login-exit: 90\n",
         ["/etc/chatalot/database.env does not exist"]),
        (T + "chatalot-login: result chatalot other false\nchatalot-login-exit: 0\n",
         ["DATABASE_URL in /etc/chatalot/database.env connects to database other, not chatalot",
          "DATABASE_URL in /etc/chatalot/database.env (chatalot@localhost:5432/chatalot) "
          "connects over a Unix socket, not TCP"]),
    ],
)
def test_login_problems(section: str, expected: list[str]) -> None:
    outcome = applogin.parse_probe_section(section)
    assert checks.login_problems(outcome, ENV, "chatalot", "chatalot") == expected


def test_failure_text_is_one_problem_per_line() -> None:
    assert checks.fail_text(["a is wrong", "b is wrong"]) == "a is wrong\nb is wrong"


# -- the login script, run by /bin/sh against a stand-in psql --------------------------------------

FAKE_PSQL = """#!/bin/sh
printf 'argv:'; for a in "$@"; do printf ' [%s]' "$a"; done; echo
echo "pgpassword:[$PGPASSWORD] passfile:[$PGPASSFILE]"
"""


@pytest.mark.parametrize(
    ("content", "rc", "argv_tail", "password"),
    [
        ("DATABASE_URL=postgres://chatalot:s3cr%2Ft%40%3A%25x@localhost:5432/chatalot\n", 0,
         "[postgres://chatalot@localhost:5432/chatalot]", "s3cr/t@:%x"),
        ("# c\n  DATABASE_URL = 'postgresql://app:p%20w@[::1]:6432/db?sslmode=disable'\n"
         "DATABASE_URL=postgres://later:x@h/d\n", 0,
         "[postgres://app@[::1]:6432/db?sslmode=disable]", "p w"),
        ("DATABASE_URL=postgres://chatalot@localhost/chatalot\n", 90, None, None),
        ("DATABASE_URL=mysql://a:b@h/d\n", 90, None, None),
        ("OTHER=1\n", 90, None, None),
    ],
)
def test_login_script_keeps_the_password_out_of_argv(
        tmp_path: Path, content: str, rc: int, argv_tail: str | None,
        password: str | None) -> None:
    env = tmp_path / "database.env"
    env.write_text(content)
    psql = tmp_path / "bin" / "psql"
    psql.parent.mkdir()
    psql.write_text(FAKE_PSQL)
    psql.chmod(psql.stat().st_mode | stat.S_IXUSR)
    script = applogin.script(str(env), ["-X", "-c", "select 1"], announce=True)
    p = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=False,
                       env={"PATH": f"{psql.parent}:{os.environ['PATH']}"})
    assert p.returncode == rc, p.stderr
    if argv_tail is None:
        assert "chatalot-db:" in p.stderr and "argv:" not in p.stdout
        return
    assert password is not None
    argv_line = next(ln for ln in p.stdout.splitlines() if ln.startswith("argv:"))
    assert argv_line == f"argv: [-X] [-c] [select 1] {argv_tail}"
    assert f"pgpassword:[{password}] passfile:[/dev/null]" in p.stdout
    assert password not in script
    target = next(ln for ln in p.stdout.splitlines() if ln.startswith(applogin.TARGET_MARKER))
    assert password not in target and "?" not in target


def test_script_text_holds_no_secret() -> None:
    # the script is the same for every host: it names the file, never a password
    text = applogin.script("/etc/chatalot/database.env", [])
    assert "PGPASSWORD=$(" in text and 'exec psql "postgres://$user@$hostport$path"' in text


# -- the probe's psql output ----------------------------------------------------------------------


def test_parse_sql_splits_json_ledger_and_errors() -> None:
    text = ('{"server_version": "15.8"}\n{"schema_privileges": ["CREATE", "USAGE"]}\n'
            "chatalot-ledger: owner chatalot\n"
            f"chatalot-ledger: row 1 {_m(1).checksum.hex()} t\n"
            "chatalot-ledger: end\n")
    sql, ledger, errors, ledger_error = parse_sql(text)
    assert sql == {"server_version": "15.8", "schema_privileges": ["CREATE", "USAGE"]}
    assert ledger == LedgerState(True, "chatalot", (AppliedMigration(1, _m(1).checksum),))
    assert (errors, ledger_error) == ("", "")
    sql, ledger, errors, ledger_error = parse_sql("psql: error: connection refused\n")
    assert (sql, ledger, errors, ledger_error) == (
        None, None, "psql: error: connection refused", "")


#: what the probe printed when the app role may not read the ledger: the JSON lines, the
#: owner line, then psql's error (ON_ERROR_STOP: no row, no end line)
DENIED_OUT = ('{"server_version": "15.8"}\n{"schema_privileges": ["CREATE", "USAGE"], '
              '"unreadable_tables": ["_sqlx_migrations"]}\n'
              "chatalot-ledger: owner other\n"
              "psql:<stdin>:40: ERROR:  permission denied for table _sqlx_migrations\n")


def test_parse_sql_names_an_unreadable_ledger_and_does_not_raise() -> None:
    sql, ledger, errors, ledger_error = parse_sql(DENIED_OUT, "chatalot")
    assert sql is not None and sql["unreadable_tables"] == ["_sqlx_migrations"]
    assert ledger is None
    assert ledger_error == UNREADABLE
    assert errors == "psql:<stdin>:40: ERROR:  permission denied for table _sqlx_migrations"


# -- suite options ---------------------------------------------------------------------------------


def test_chatalot_var_options_read_like_inventory_vars() -> None:
    assert parse_var_options(["pg_listen=*", "db_name=app",
                              "pg_settings={'work_mem': '8MB'}", "pg_cpus=4"]) == {
        "pg_listen": "*", "db_name": "app", "pg_settings": {"work_mem": "8MB"}, "pg_cpus": 4}
    with pytest.raises(pytest.UsageError, match="NAME=VALUE"):
        parse_var_options(["pg_listen"])


def test_inventory_vars_match_name_address_or_local() -> None:
    from installer.fleet.inventory import parse_inventory

    inv = parse_inventory("[db]\ndb01 ansible_host=10.0.0.1 db_name=one\n"
                          "me ansible_connection=local db_name=mine\n[db:vars]\npg_listen=*\n")
    assert inventory_vars(inv, "db01", False)["db_name"] == "one"
    assert inventory_vars(inv, "10.0.0.1", False)["db_name"] == "one"
    assert inventory_vars(inv, "localhost", True)["db_name"] == "mine"
    assert inventory_vars(inv, "elsewhere", False) == {}


class _Backend:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_hostname(self) -> str:
        return self.name

    def get_connection_type(self) -> str:
        return "ssh"


class _Host:
    def __init__(self, name: str) -> None:
        self.backend = _Backend(name)


class _Config:
    def __init__(self, **options: Any) -> None:
        self.options = options

    def getoption(self, name: str) -> Any:
        return self.options.get(name)


def test_plain_pytest_reads_vaulted_directories_and_extra_vars() -> None:
    """`pytest --chatalot-inventory DIR --chatalot-vault-id ... --chatalot-extra-vars ...`:
    the worked example project's vaulted password, and -e above the inventory."""
    from installer.verify.conftest import host_variables

    project = Path(__file__).resolve().parents[2] / "docs" / "example-project"
    config = _Config(
        chatalot_inventory=[str(project)],
        chatalot_vault_id=[f"prod@{project / 'vault-password.example'}"],
        chatalot_vault_password_file=[], chatalot_extra_vars=["pg_memory=4GB"],
        chatalot_var=["db_user=from_var"])
    hv = host_variables(_Host("db02.eu.example.net"), config)  # type: ignore[arg-type]
    assert hv["db_password"] == "eu-app-password-change-me"
    assert hv["pg_memory"] == "4GB"  # -e beats host_vars' 32GB
    assert hv["db_user"] == "from_var" and hv["pg_max_connections"] == 200
    missing = _Config(chatalot_inventory=[str(project)], chatalot_vault_id=[],
                      chatalot_vault_password_file=[], chatalot_extra_vars=[], chatalot_var=[])
    with pytest.raises(pytest.UsageError, match=r"vault\.yml.*prod"):
        host_variables(_Host("db01.eu.example.net"), missing)  # type: ignore[arg-type]


# -- verify: command line, recap, exit codes -------------------------------------------------------


def test_pytest_args_replace_testinfra_and_pass_options() -> None:
    args = verify_cmd.pytest_args("out.xml", "settings")
    assert args[0].endswith("installer/verify/test_chatalot_host.py")
    i = args.index("no:pytest11.testinfra")
    assert args[i - 1] == "-p"
    assert "--junitxml=out.xml" in args and args[-2:] == ["-k", "settings"]


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [("test_chatalot_host.py::test_x[db01]", "db01"), ("a.py::test_y", None),
     ("installer/verify/test_chatalot_host.py::test_x[web-1.example.com]", "web-1.example.com")],
)
def test_param_id(nodeid: str, expected: str | None) -> None:
    assert _param_id(nodeid) == expected


def _conn(name: str, unreachable: bool = False) -> Connection:
    return Connection(name, {}, None, "down" if unreachable else "", unreachable)


@pytest.mark.parametrize(
    ("rc", "conns", "failed", "expected"),
    [
        (0, [_conn("a"), _conn("b")], {}, 0),
        (1, [_conn("a"), _conn("b")], {"b": 1}, 2),
        (1, [_conn("a"), _conn("b", unreachable=True)], {"b": 13}, 4),
        (1, [_conn("a"), _conn("b", unreachable=True)], {"a": 1, "b": 13}, 2),
        (2, [_conn("a")], {}, 99),
        (5, [_conn("a")], {}, 5),
        (3, [_conn("a")], {}, 1),
    ],
)
def test_verify_exit_code(rc: int, conns: list[Connection], failed: dict[str, int],
                          expected: int) -> None:
    tally = {c.name: HostTally(failed=failed.get(c.name, 0)) for c in conns}
    assert verify_cmd.exit_code(rc, conns, tally) == expected


def test_verify_recap_names_failed_checks() -> None:
    tally = {"a": HostTally(passed=12, skipped=1),
             "b": HostTally(passed=11, failed=2, failures=["test_settings_match_tuning",
                                                            "test_env_file_is_0600_root"],
                            messages={"test_settings_match_tuning": "work_mem is 1MB\nshared"})}
    text = verify_cmd.recap([_conn("a"), _conn("b"), _conn("c", unreachable=True)], tally)
    assert text.splitlines()[1:] == [
        "a                          : passed=12   failed=0    skipped=1    ok",
        "b                          : passed=11   failed=2    skipped=0    failed",
        "    test_settings_match_tuning: work_mem is 1MB",
        "        shared",
        "    test_env_file_is_0600_root",
        "c                          : passed=0    failed=0    skipped=0    unreachable",
        "    down"]


# -- status ----------------------------------------------------------------------------------------

STATUS_SQL_OUT = (
    '{"server_version": "15.8 (Debian 15.8-0+deb12u1)", "uptime_seconds": 273065, "connections": 6,'
    ' "max_connections": 100, "database_size": "9861 kB"}\n'
    "chatalot-ledger: owner chatalot\n"
    + "".join(f"chatalot-ledger: row {v} {_m(v).checksum.hex()} t\n" for v in range(1, 11))
    + "chatalot-ledger: end\n")


DUMP = "/var/backups/chatalot/chatalot-20231114T221320Z-scheduled.dump"
TIMER = "/etc/systemd/system/chatalot-db-backup-chatalot.timer"
SYSTEMD_SCHEDULE = {"pid1": "systemd\n",
                    f"backup {TIMER}": "[Timer]\nOnCalendar=*-*-* 03:00:00\n",
                    "backup-timer": "UnitFileState=enabled\nActiveState=active\n"}


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"sql": STATUS_SQL_OUT, **SYSTEMD_SCHEDULE,
          "backup": f"1700000000 104857600 {DUMP}\n"
                    "1690000000 1024 /var/backups/chatalot/chatalot-20230722T043000Z-before-9"
                    ".dump\n"
                    "1699990000 1024 /var/backups/chatalot/other-20231114T221320Z-manual.dump\n"},
         ["db01",
          "  PostgreSQL   15.8 (up 3 days 3:51:05)",
          "  database     9861 kB",
          "  connections  6 / 100",
          "  migrations   10 applied, 2 pending",
          f"  last backup  {DUMP} (scheduled, 100 MB, STAMP, 0:16:40 ago)",
          "  backups      2 (1 scheduled, 1 before-migration)",
          "  schedule     systemd timer chatalot-db-backup-chatalot.timer (enabled, active, "
          "OnCalendar *-*-* 03:00:00)"]),
        ({"sql": STATUS_SQL_OUT.replace("chatalot-ledger: owner chatalot\n", "")
          .split("\n")[0] + "\nchatalot-ledger: absent\n", "backup": "MISSING\n",
          "pid1": "sh\n", "cron": "no\n"},
         ["db01",
          "  PostgreSQL   15.8 (up 3 days 3:51:05)",
          "  database     9861 kB",
          "  connections  6 / 100",
          "  migrations   0 applied, 12 pending",
          "  last backup  none (/var/backups/chatalot does not exist)",
          "  schedule     none: no systemd and no cron daemon (backup=pg_dump: run cron, or "
          "set backup=none)"]),
        ({"sql": "psql: error: connection to server on socket failed\n", "backup": ""},
         ["db01",
          "  PostgreSQL   PostgreSQL does not answer: psql: error: connection to server on "
          "socket failed",
          "  last backup  none (no dump of chatalot in /var/backups/chatalot)",
          "  schedule     none (backup=pg_dump: apply schedules it)"]),
    ],
)
def test_status_parse_and_format(sections: dict[str, str], expected: list[str]) -> None:
    st = status_cmd.parse_status("db01", sections, HostConfig(), LOCAL)
    text = status_cmd.format_status(st, now=1700001000.0)
    lines = text.splitlines()
    if st.backup is not None:
        stamp = lines[5].split(", ")[2]
        expected = [ln.replace("STAMP", stamp) for ln in expected]
    assert lines == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00:00"), (42, "0:00:42"), (3600 + 61, "1:01:01"), (86400, "1 day 0:00:00"),
     (3 * 86400 + 5, "3 days 0:00:05"), (-5, "0:00:00")],
)
def test_format_duration(seconds: int, text: str) -> None:
    assert checks.format_duration(seconds) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 bytes"), (10239, "10239 bytes"), (10240, "10 kB"), (104857600, "100 MB"),
     (5 * 1024**3, "5120 MB"), (20 * 1024**3, "20 GB")],
)
def test_format_bytes(n: int, text: str) -> None:
    assert status_cmd.format_bytes(n) == text


def test_status_reports_an_unreadable_ledger_as_an_error() -> None:
    sql = (STATUS_SQL_OUT.split("\n")[0] + "\nchatalot-ledger: owner other\n"
           "psql:<stdin>:30: ERROR:  permission denied for table _sqlx_migrations\n")
    st = status_cmd.parse_status("db01", {"sql": sql, "backup": "MISSING\n"}, HostConfig(),
                                 LOCAL)
    assert st.migrations is None
    assert st.migrations_note == UNREADABLE
    assert st.error == UNREADABLE  # the host has a problem: status exits 2
    lines = status_cmd.format_status(st, now=1700001000.0).splitlines()
    assert lines[1] == "  PostgreSQL   15.8 (up 3 days 3:51:05)"
    assert lines[4] == f"  migrations   {UNREADABLE}"
    assert not any("pending" in line for line in lines)


def test_status_names_the_release_its_counts_are_against(tmp_path: Path) -> None:
    from installer.desired.sources import parse_source

    source = parse_source("git+https://h/chatalot.git@v0.19.0").fetched(tmp_path, "ab" * 20)
    config = HostConfig.from_vars({"migrations_source": source})
    st = status_cmd.parse_status("db01", {"sql": STATUS_SQL_OUT, "backup": "MISSING\n"},
                                 config, LOCAL)
    line = status_cmd.format_status(st, now=1700001000.0).splitlines()[4]
    assert line == ("  migrations   10 applied, 2 pending (git+https://h/chatalot.git@v0.19.0 "
                    "(commit abababababab))")
    plain = status_cmd.parse_status("db01", {"sql": STATUS_SQL_OUT, "backup": "MISSING\n"},
                                    HostConfig(migrations_source=tmp_path), LOCAL)
    assert status_cmd.format_status(plain, now=1700001000.0).splitlines()[4] == \
        "  migrations   10 applied, 2 pending"


def test_status_of_unreachable_host() -> None:
    st = status_cmd.HostStatus("db02", error="cannot connect to root@db02:22: timed out",
                               unreachable=True)
    assert status_cmd.format_status(st, 0) == \
        "db02: UNREACHABLE: cannot connect to root@db02:22: timed out"


# -- psql: the commands it execs -------------------------------------------------------------------


def test_psql_local_runs_the_login_script_as_root() -> None:
    argv = psql_cmd.command_for("localhost", {"ansible_connection": "local"}, "select 1",
                                tty=False, accept_new_host_keys=False, is_root=True)
    assert argv[:2] == ["/bin/sh", "-c"]
    assert "exec psql -X -v ON_ERROR_STOP=1 -c 'select 1' \"postgres://" in argv[2]
    argv = psql_cmd.command_for("localhost", {"ansible_connection": "local"}, None,
                                tty=True, accept_new_host_keys=False, is_root=False)
    assert argv[:2] == ["/bin/sh", "-c"]
    assert argv[2] == psql_cmd.become_root(psql_cmd.login_script({}, None), "localhost")
    assert 'exec sudo /bin/sh -c "$s"' in argv[2]


def test_psql_over_ssh_keeps_apply_s_host_key_policy() -> None:
    hostvars = {"ansible_host": "10.0.0.5", "ansible_port": 2222, "ansible_user": "ops",
                "ansible_ssh_private_key_file": "/keys/id",
                "ansible_ssh_common_args": "-o UserKnownHostsFile=/kh -o StrictHostKeyChecking=no"}
    argv = psql_cmd.command_for("db01", hostvars, None, tty=True, accept_new_host_keys=False,
                                is_root=True)
    kh = os.path.expanduser("~/.ssh/known_hosts")
    assert argv[:10] == ["ssh", "-t", "-o", "StrictHostKeyChecking=yes",
                         "-o", f"UserKnownHostsFile=/kh {kh}", "-p", "2222", "-l", "ops"]
    # OpenSSH takes the first value: the inventory's StrictHostKeyChecking=no comes later
    assert argv.index("StrictHostKeyChecking=yes") < argv.index("StrictHostKeyChecking=no")
    assert argv[-2] == "10.0.0.5"
    remote = shlex.split(argv[-1])
    assert remote[:2] == ["/bin/sh", "-c"] and "exec sudo /bin/sh" in remote[2]
    argv = psql_cmd.command_for("db01", {}, "select 1", tty=False, accept_new_host_keys=True,
                                is_root=True)
    assert argv[:4] == ["ssh", "-T", "-o", "StrictHostKeyChecking=accept-new"]
    assert not any(a.startswith("UserKnownHostsFile") for a in argv)  # ssh's own defaults
    assert argv[-2] == "db01"
