"""A sudo user who needs a password: one message saying to rerun with -K (BecomeError's,
from apply's SSH connection, `status` and `psql`), -K on `psql -c`, and `status` showing
only the error of a host it could not read."""

from __future__ import annotations

import getpass
import io
import os
import re
import shlex
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from installer.cli import main
from installer.commands import psql as psql_cmd
from installer.commands import status as status_cmd
from installer.desired.config import HostConfig
from installer.errors import BecomeError, UnreachableError
from installer.fleet import hosts as fleet_hosts
from installer.fleet.runner import RunOptions
from installer.transport.base import Result, Transport
from installer.transport.ssh import SSHTransport

INVENTORY = "[db]\ndb01 ansible_host=192.0.2.1 ansible_user=ops\n"
NEEDS = ("cannot become root on db01 as ops: sudo needs a password: rerun with "
         "--ask-become-pass (-K) (sudo: a password is required)")
REFUSED = ("cannot become root on db01 as ops: the sudo password was refused "
           "(sudo: 1 incorrect password attempt)")


@pytest.fixture
def inv(tmp_path: Path) -> str:
    path = tmp_path / "hosts.ini"
    path.write_text(INVENTORY)
    return str(path)


# -- the message, as apply's SSH connection gives it ---------------------------------------------


class _SudoHost(SSHTransport):
    """An SSH transport whose commands a table answers: not root, sudo says `sudo_said`."""

    def __init__(self, password: str | None, sudo_said: str) -> None:
        super().__init__("db01", SimpleNamespace(user="ops"), password)
        self.sudo_said = sudo_said
        self.ran: list[tuple[str, bytes | None]] = []

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        self.ran.append((command, stdin))
        if command == "id -u":
            return Result(0, "1000\n", "")
        return Result(1, "", self.sudo_said)


@pytest.mark.parametrize(("password", "sudo_said", "message"), [
    (None, "sudo: a password is required\n", NEEDS),
    ("wrong", "Sorry, try again.\nsudo: 1 incorrect password attempt\n", REFUSED),
], ids=["no -K", "-K, wrong password"])
def test_sudo_checked_once_at_connect_says_what_to_do(password: str | None, sudo_said: str,
                                                      message: str) -> None:
    t = _SudoHost(password, sudo_said)
    with pytest.raises(BecomeError, match=f"^{re.escape(message)}$"):
        t._check_become()
    command, stdin = t.ran[-1]
    assert command.startswith("sudo -n " if password is None else "sudo -S -p '' ")
    assert stdin == (None if password is None else b"wrong\n")
    assert str(BecomeError.sudo_failed("db01", "ops", password_given=password is not None,
                                       sudo_output=sudo_said)) == message


# -- status: a host it could not read shows the error, no rows -----------------------------------


def test_status_of_a_sudo_user_without_k_shows_only_the_sudo_message(
        inv: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Was: "PostgreSQL  <the error>" then "last backup  none (nothing in )"."""
    def make_transport(name: str, hostvars: dict[str, Any], opts: RunOptions) -> Any:
        assert opts.become_password is None
        raise BecomeError.sudo_failed(name, "ops", password_given=False,
                                      sudo_output="sudo: a password is required\n")

    monkeypatch.setattr(fleet_hosts, "make_transport", make_transport)
    assert main(["status", "-i", inv]) == 2
    out, err = capsys.readouterr()
    assert out == f"db01: FAILED: {NEEDS}\n"
    assert err == ""


class _Answers(Transport):
    """A transport answering every command with one result."""

    def __init__(self, result: Result) -> None:
        super().__init__()
        self.result = result
        self._uid = 0

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        return self.result


@pytest.mark.parametrize(("read", "expected"), [
    (lambda: status_cmd.read_status(
        "db01", _Answers(Result(1, "", "sudo: a password is required\n")), HostConfig(), None),
     "db01: FAILED: sudo: a password is required"),
    (lambda: status_cmd.read_status("db01", _Answers(Result(126, "", "")), HostConfig(), None),
     "db01: FAILED: status script failed (exit 126)"),
    (lambda: status_cmd._status_of(
        fleet_hosts.Connection("db01", {}, _Answers(Result(0, "", ""))),
        "pg_port must be a number", None),
     "db01: FAILED: bad variables: pg_port must be a number"),
], ids=["script refused", "script failed silently", "bad variables"])
def test_status_of_a_host_not_read_is_its_error_alone(
        read: Callable[[], status_cmd.HostStatus], expected: str) -> None:
    st = read()
    assert not st.read and st.backup_dir == ""
    assert status_cmd.format_status(st, now=0.0) == expected


def test_status_of_a_silent_server_still_shows_the_backup_it_read() -> None:
    st = status_cmd.parse_status("db01", {"sql": "psql: error: boom\n", "backup": "MISSING\n"},
                                 HostConfig(), None)
    assert st.read
    assert status_cmd.format_status(st, now=0.0).splitlines() == [
        "db01",
        "  PostgreSQL   PostgreSQL does not answer: psql: error: boom",
        "  last backup  none (/var/backups/chatalot does not exist)",
        "  schedule     none (backup=pg_dump: apply schedules it)"]


# -- psql without -K: no terminal, sudo needs a password -> the same message ---------------------

FAKE_ID = '#!/bin/sh\ncase "$1" in -u) echo "$FAKE_UID" ;; -un) echo ops ;; esac\n'
FAKE_SUDO = """#!/bin/sh
if [ "$1" = "-n" ]; then
  shift
  if [ -n "$NOPASSWD" ]; then exec "$@"; fi
  echo "sudo: a password is required" >&2; exit 1
fi
echo "sudo: a terminal is required to read the password; either use the -S option to read \
from standard input or configure an askpass helper" >&2
exit 1
"""


def _become_root(tmp_path: Path, uid: int, nopasswd: bool) -> subprocess.CompletedProcess[str]:
    """become_root's text run by /bin/sh with no controlling terminal (as over `ssh -T`), a
    fake `id` and `sudo` first in PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for name, text in (("id", FAKE_ID), ("sudo", FAKE_SUDO)):
        f = bindir / name
        f.write_text(text)
        f.chmod(f.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "FAKE_UID": str(uid),
           "NOPASSWD": "1" if nopasswd else ""}
    text = psql_cmd.become_root("echo ran as root; exit 3", "db01")
    return subprocess.run(["/bin/sh", "-c", text], env=env, capture_output=True, text=True,
                          check=False, start_new_session=True, stdin=subprocess.DEVNULL)


def test_psql_without_a_terminal_says_to_rerun_with_k(tmp_path: Path) -> None:
    """Was sudo's "a terminal is required to read the password" from `ssh -T`."""
    r = _become_root(tmp_path, 1000, nopasswd=False)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"chatalot-db: error: {NEEDS}\n"


@pytest.mark.parametrize(("uid", "nopasswd"), [(0, False), (1000, True)],
                         ids=["root", "sudo without a password"])
def test_psql_without_a_terminal_runs_when_no_password_is_needed(
        tmp_path: Path, uid: int, nopasswd: bool) -> None:
    r = _become_root(tmp_path, uid, nopasswd)
    assert (r.returncode, r.stdout, r.stderr) == (3, "ran as root\n", "")


def test_psql_over_ssh_and_locally_use_the_same_root_shell() -> None:
    script = psql_cmd.login_script({}, "select 1")
    argv = psql_cmd.command_for("db01", {}, "select 1", tty=False, accept_new_host_keys=False,
                                is_root=False)
    assert argv[-1] == f"/bin/sh -c {shlex.quote(psql_cmd.become_root(script, 'db01'))}"
    argv = psql_cmd.command_for("localhost", {"ansible_connection": "local"}, "select 1",
                                tty=False, accept_new_host_keys=False, is_root=False)
    assert argv == ["/bin/sh", "-c", psql_cmd.become_root(script, "localhost")]


# -- psql -K -c SQL: over SSH on apply's connection ----------------------------------------------


class _Host(Transport):
    """The host as apply's connection reaches it: records what runs, answers like psql."""

    def __init__(self, result: Result) -> None:
        super().__init__()
        self.result = result
        self.ran: list[tuple[str, str | None]] = []
        self.timeout: float | None = 600
        self.closed = False

    def run(self, command: str, *, become: str | None = None,
            stdin: str | bytes | None = None, timeout: float | None = 600) -> Result:
        self.ran.append((command, become))
        self.timeout = timeout
        return self.result

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        raise AssertionError("not reached")

    def close(self) -> None:
        self.closed = True


def _k(monkeypatch: pytest.MonkeyPatch, answer: Result | Exception,
       seen: list[RunOptions]) -> list[_Host]:
    made: list[_Host] = []

    def make_transport(name: str, hostvars: dict[str, Any], opts: RunOptions) -> Any:
        seen.append(opts)
        if isinstance(answer, Exception):
            raise answer
        made.append(_Host(answer))
        return made[-1]

    monkeypatch.setattr(fleet_hosts, "make_transport", make_transport)
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret\n"))
    return made


def test_psql_k_runs_the_query_as_root_on_apply_s_connection(
        inv: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[RunOptions] = []
    made = _k(monkeypatch, Result(1, " ?column? \n----------\n        1\n", "a notice\n"), seen)
    assert main(["psql", "db01", "-i", inv, "-K", "-c", "select 1",
                 "--accept-new-host-keys"]) == 1  # psql's own exit code
    [opts] = seen
    assert (opts.become_password, opts.accept_new_host_keys) == ("s3cret", True)
    [host] = made
    assert host.ran == [(psql_cmd.login_script({}, "select 1"), "root")]
    assert host.timeout is None and host.closed
    out, err = capsys.readouterr()
    assert (out, err) == (" ?column? \n----------\n        1\n", "a notice\n")
    assert "s3cret" not in out + err + host.ran[0][0]


@pytest.mark.parametrize(("error", "code", "message"), [
    (BecomeError(REFUSED), 2, REFUSED),
    (UnreachableError("cannot connect to ops@192.0.2.1:22: timed out"), 4,
     "cannot connect to ops@192.0.2.1:22: timed out"),
], ids=["sudo refused the password", "unreachable"])
def test_psql_k_says_why_the_host_could_not_be_worked_on(
        error: Exception, code: int, message: str, inv: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[RunOptions] = []
    _k(monkeypatch, error, seen)
    assert main(["psql", "db01", "-i", inv, "-K", "-c", "select 1"]) == code
    assert capsys.readouterr() == ("", f"chatalot-db: error: {message}\n")


def test_psql_k_without_c_is_refused_before_asking(
        inv: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[RunOptions] = []
    _k(monkeypatch, Result(0, "", ""), seen)
    assert main(["psql", "db01", "-i", inv, "-K"]) == 5
    assert capsys.readouterr().err == (
        "chatalot-db: error: -K goes with -c SQL: give the SQL with -c (an interactive "
        "session has sudo ask for its password on the terminal)\n")
    assert seen == [] and sys.stdin.read() == "s3cret\n"  # not asked, nothing connected


# -- psql -K -c SQL on this machine: sudo -S, the password on its stdin ---------------------------


@pytest.fixture
def local_sudo(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], bytes | None]]:
    """subprocess.run as psql calls it, recorded; sudo accepts only "s3cret"."""
    calls: list[tuple[list[str], bytes | None]] = []

    def run(argv: list[str], *, input: bytes | None = None,
            **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        calls.append((argv, input))
        if argv[0] == "sudo" and input != b"s3cret\n":
            return subprocess.CompletedProcess(argv, 1, b"", b"Sorry, try again.\n"
                                               b"sudo: 1 incorrect password attempt\n")
        return subprocess.CompletedProcess(argv, 0 if argv[-1] == "true" else 3, b"", b"")

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(getpass, "getuser", lambda: "ops")
    return calls


def test_psql_k_locally_gives_the_password_to_sudo_on_stdin(
        local_sudo: list[tuple[list[str], bytes | None]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret\n"))
    assert main(["psql", "localhost", "-K", "-c", "select 1"]) == 3
    script = psql_cmd.login_script({}, "select 1")
    assert local_sudo == [
        (["sudo", "-S", "-p", "", "--", "/bin/sh", "-c", "true"], b"s3cret\n"),
        (["sudo", "-S", "-p", "", "--", "/bin/sh", "-c", f"exec </dev/null\n{script}"],
         b"s3cret\n")]
    assert not any("s3cret" in " ".join(argv) for argv, _ in local_sudo)


def test_a_password_sudo_left_unread_never_reaches_the_script() -> None:
    """sudo with cached credentials does not read -K's line: the script's stdin is closed
    first, so nothing it runs can read (or print) the password. Run for real, as sudo
    would run it, with `cat` as the script."""
    import subprocess
    r = subprocess.run(["/bin/sh", "-c", "exec </dev/null\ncat; echo end"],
                       input=b"s3cret\n", capture_output=True, check=False)
    assert (r.returncode, r.stdout) == (0, b"end\n")


def test_psql_k_locally_with_a_wrong_password_says_so(
        local_sudo: list[tuple[list[str], bytes | None]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("wrong\n"))
    assert main(["psql", "localhost", "-K", "-c", "select 1"]) == 2
    assert capsys.readouterr().err == (
        "chatalot-db: error: cannot become root on localhost as ops: the sudo password was "
        "refused (sudo: 1 incorrect password attempt)\n")
    assert len(local_sudo) == 1  # the check only: the script never ran
