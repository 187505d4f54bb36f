"""The options every host command shares (installer.commands.targets), and the one SQL
builder apply's probe, verify and status read the server with (installer.host.queries)."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from installer.cli import build_parser, main
from installer.commands import targets
from installer.commands.status import status_sql
from installer.desired.config import HostConfig
from installer.errors import UnreachableError
from installer.fleet import hosts as fleet_hosts
from installer.fleet.runner import RunOptions
from installer.host import queries
from installer.host.state import state_sql
from installer.resources import migrations_dir
from installer.sqlx import rules
from installer.verify.observe import verify_sql

ALL = ["-i", "-l", "-f", "--json", "--accept-new-host-keys", "-K"]

#: command -> (shared options it has, shared options it has not)
HOST_COMMANDS: list[tuple[list[str], list[str], list[str]]] = [
    (["apply"], ALL, []),
    (["migrate", "run"], ALL, []),
    (["migrate", "info"], ALL, []),
    (["verify"], ["-i", "-l", "-f", "--accept-new-host-keys", "-K"], ["--json"]),
    (["status"], ["-i", "-l", "-f", "--accept-new-host-keys", "-K"], ["--json"]),
    (["psql"], ["-i", "--accept-new-host-keys", "-K"], ["-l", "-f", "--json"]),
]

#: the wording shared by all (migrate's starts with "with -i: ")
SHARED_HELP = {
    "-l": "only hosts matching this Ansible host pattern",
    "--accept-new-host-keys": "accept and record SSH host keys not yet in known_hosts (like "
                              "OpenSSH's StrictHostKeyChecking=accept-new); a changed key is "
                              "always refused",
    "-K": "ask for the sudo password (read from the terminal, or the first line of stdin when "
          "it is not one); it goes to sudo on stdin, never in argv",
}


def _subparser(argv: list[str]) -> Any:
    """The argparse parser of a (sub)command."""
    parser: Any = build_parser()
    for word in argv:
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = sub.choices[word]
    return parser


def _helps(argv: list[str]) -> dict[str, str]:
    """option string -> help text, for every option of the command."""
    return {s: a.help or "" for a in _subparser(argv)._actions for s in a.option_strings}


@pytest.mark.parametrize(("argv", "has", "has_not"), HOST_COMMANDS,
                         ids=[" ".join(c[0]) for c in HOST_COMMANDS])
def test_every_host_command_lists_the_shared_options(
        argv: list[str], has: list[str], has_not: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match=r"^0$"):  # --help: exit code 0
        build_parser().parse_args([*argv, "--help"])
    out = capsys.readouterr().out
    usage = out.split("\n\n")[0]
    for option in has:
        assert re.search(rf"\[{re.escape(option)}[ \]]", usage), (option, usage)
    for option in has_not:
        assert not re.search(rf"\[{re.escape(option)}[ \]]", usage), (option, usage)
    helps = _helps(argv)
    for option, text in SHARED_HELP.items():
        if option in has:
            prefix = "with -i: " if argv[0] == "migrate" else ""
            assert helps[option] == prefix + text, option


def test_forks_help_says_what_each_command_does_at_once() -> None:
    assert _helps(["apply"])["-f"] == "hosts provisioned at once (default: 20)"
    assert _helps(["verify"])["-f"] == "hosts connected to at once (default: 20)"
    assert _helps(["status"])["-f"] == "hosts read at once (default: 20)"
    assert _helps(["migrate", "run"])["-f"] == "with -i: hosts worked on at once (default: 20)"
    assert _helps(["apply"])["-i"] == _helps(["verify"])["-i"] == _helps(["psql"])["-i"] \
        == targets.INVENTORY_HELP


INVENTORY = "[db]\ndb01 ansible_host=192.0.2.1\ndb02 ansible_host=192.0.2.2\n"
EMPTY_LIMIT_COMMANDS = [["apply"], ["migrate", "run"], ["migrate", "info"], ["verify"],
                        ["status"]]


@pytest.mark.parametrize("argv", EMPTY_LIMIT_COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("limit", "message"), [
    ("nomatch", "--limit 'nomatch' leaves no host of {inv} to target"),
    ("db01:&web", "--limit 'db01:&web' leaves no host of {inv} to target"),
    ("db[7]", "--limit 'db[7]': "),  # a pattern Ansible cannot use either: exit 1 too
])
def test_a_limit_that_leaves_no_host_exits_1(
        argv: list[str], limit: str, message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text(INVENTORY)
    assert main([*argv, "-i", str(inv), "--limit", limit]) == 1
    assert message.format(inv=inv) in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["apply"], ["verify"], ["status"]], ids=" ".join)
def test_without_inventory_a_limit_other_than_localhost_exits_1(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--limit", "db01"]) == 1
    assert "without -i the only host is localhost" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["apply"], ["migrate", "run"], ["verify"], ["status"]],
                         ids=" ".join)
def test_bad_forks_still_exit_5(argv: list[str], tmp_path: Path) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text(INVENTORY)
    assert main([*argv, "-i", str(inv), "--forks", "0"]) == 5


def test_an_inventory_without_hosts_exits_1(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text("[db]\n")
    assert main(["status", "-i", str(inv)]) == 1
    assert f"{inv} has no hosts" in capsys.readouterr().err


def test_load_hosts_keeps_inventory_order_and_variables(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text(INVENTORY)
    hosts = fleet_hosts.load_hosts(str(inv), None)
    assert list(hosts) == ["db01", "db02"] and hosts["db02"]["ansible_host"] == "192.0.2.2"
    assert list(fleet_hosts.load_hosts(str(inv), "db02")) == ["db02"]
    assert fleet_hosts.load_hosts(None, "localhost") == {
        "localhost": {"ansible_connection": "local"}}


# -- -K: apply's reader, and the password reaching the transports ------------------------------


def test_ask_become_pass_reads_stdin_s_first_line_when_not_a_terminal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret\r\nnext line\n"))
    assert targets.ask_become_pass() == "s3cret"


@pytest.mark.parametrize("command", ["verify", "status"])
def test_k_sends_the_password_to_the_transports(
        command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """-K is accepted; its password goes where apply's goes (RunOptions -> make_transport)."""
    import pytest as pytest_module

    inv = tmp_path / "hosts.ini"
    inv.write_text(INVENTORY)
    seen: list[str | None] = []

    def make_transport(name: str, hostvars: dict[str, Any], opts: RunOptions) -> Any:
        seen.append(opts.become_password)
        raise UnreachableError(f"{name}: not in this test")

    monkeypatch.setattr(fleet_hosts, "make_transport", make_transport)
    monkeypatch.setattr(pytest_module, "main", lambda *a, **k: 0)  # verify's suite: not run
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret\n"))
    assert main([command, "-i", str(inv), "-K"]) == 4  # every host unreachable
    assert seen == ["s3cret", "s3cret"]
    assert "s3cret" not in "".join(capsys.readouterr())
    seen.clear()
    assert main([command, "-i", str(inv), "--limit", "db01"]) == 4
    assert seen == [None]  # without -K: sudo without one (or ansible_become_password)


# -- the SQL builder -----------------------------------------------------------------------------


def _keys(sql: str) -> list[list[str]]:
    """The JSON keys of each jsonb_build_object line the script prints, in order."""
    return [re.findall(r"^  '(\w+)', ", m, re.M)
            for m in re.findall(r"^SELECT jsonb_build_object\(\n(.*?)\n\);$", sql, re.M | re.S)]


#: a host whose migrations this tool applies (the bundled set): apply and status read the
#: ledger then; verify reads it always (with none, the server's own may not be dirty)
MIGRATING = HostConfig(migrations_source=migrations_dir())


@pytest.mark.parametrize(("sql", "server", "in_database"), [
    (state_sql(MIGRATING, ["work_mem"]),
     ["server_version_num", "data_directory", "postmaster_start", "role", "database",
      "settings", "caps", "hba_rules"],
     ["schema_privileges", "schema_owner", "public_tables"]),
    (verify_sql(HostConfig(), ["work_mem"]),
     ["server_version", "listen_addresses", "role", "database", "settings", "caps",
      "hba_rules", "archiver"],
     ["schema_privileges", "unreadable_tables"]),
    (status_sql(MIGRATING),
     ["server_version", "uptime_seconds", "connections", "max_connections", "database_size"],
     None),
], ids=["apply", "verify", "status"])
def test_each_reader_picks_its_fragments(sql: str, server: list[str],
                                         in_database: list[str] | None) -> None:
    assert sql.startswith("\\pset format unaligned\n\\pset tuples_only on\n")
    assert _keys(sql) == [server] + ([in_database] if in_database else [])
    inside = sql.split("\\c chatalot\n", 1)[1]
    assert rules.LEDGER_PROBE in inside and 'SET ROLE "chatalot";' in inside
    assert sql.rstrip().endswith("\\endif")


def test_only_apply_reads_the_role_s_password_verifier() -> None:
    assert "rolpassword" in state_sql(HostConfig(), [])
    assert "pg_authid" in state_sql(HostConfig(), [])
    for sql in (verify_sql(HostConfig(), []), status_sql(HostConfig())):
        assert "rolpassword" not in sql and "pg_authid" not in sql


def test_script_reads_the_ledger_only_when_migrating() -> None:
    without = HostConfig(migrations_source=None)
    sql = state_sql(without, [])
    assert rules.LEDGER_PROBE not in sql and sql.rstrip().endswith("\\endif")
    # verify and status read it all the same: the server's own ledger (counted, not dirty)
    assert rules.LEDGER_PROBE in verify_sql(without, [])
    assert rules.LEDGER_PROBE in status_sql(without)


def test_fragments_quote_names_as_literals() -> None:
    key, expr = queries.settings_fragment(["work_mem", "it's"])
    assert key == "settings" and "IN ('work_mem', 'it''s')" in expr
    assert "IN (NULL)" in queries.settings_fragment([])[1]
    assert queries.setting_fragment("max_connections", "int") == (
        "max_connections", "current_setting('max_connections')::int")
    assert queries.json_line([("a", "1"), ("b's", "2")]) == \
        "SELECT jsonb_build_object(\n  'a', 1,\n  'b''s', 2\n);\n"


def test_parse_output_splits_json_ledger_and_errors() -> None:
    merged, ledger, errors = queries.parse_output(
        '{"a": 1}\n  {"b": [1, 2]}\nchatalot-ledger: absent\n{broken\n\n'
        "psql: error: connection refused\n")
    assert merged == {"a": 1, "b": [1, 2]}
    assert ledger == ["chatalot-ledger: absent"]
    assert errors == ["{broken", "psql: error: connection refused"]
