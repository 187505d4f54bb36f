"""installer.transport.base: what every command goes through, shown with real processes on
this machine (LocalTransport shares `wrap` with the SSH transport)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from installer.transport.base import LOCALE_PREAMBLE, Result
from installer.transport.local import LocalTransport

GERMAN = {"LANG": "de_DE.UTF-8", "LC_ALL": "de_DE.UTF-8", "LC_MESSAGES": "de_DE.UTF-8",
          "LANGUAGE": "de"}


@pytest.mark.parametrize("become", [None, "root"])
def test_every_command_runs_in_the_c_locale(monkeypatch: pytest.MonkeyPatch,
                                            become: str | None) -> None:
    """A German session (as a host set up in German gives sshd's commands) changes nothing
    of what we parse: LC_ALL is C in the command, whatever the caller's environment."""
    for key, value in GERMAN.items():
        monkeypatch.setenv(key, value)
    t = LocalTransport()
    r = t.run('printf "%s|%s" "$LC_ALL" "$(locale 2>/dev/null | sed -n s/^LC_MESSAGES=//p)"',
              become=become)
    assert r.ok, r.stderr
    assert r.stdout == 'C|"C"', r.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="runuser needs root")
def test_a_command_run_as_another_user_gets_the_c_locale_too(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    r = LocalTransport().run('printf %s "$LC_ALL"', become="nobody")
    assert (r.ok, r.stdout) == (True, "C"), r.stderr


def test_the_preamble_comes_first_and_leaves_the_command_as_written() -> None:
    real, preamble = LocalTransport().wrap("set -e\necho 'a b'", None)
    assert real == LOCALE_PREAMBLE + "set -e\necho 'a b'" and preamble == b""


# -- stream: binary output of any size to a sink, stdin from a file in pieces -------------


def test_stream_carries_every_byte_both_ways_and_keeps_stderr(tmp_path: Path) -> None:
    """What `backups --fetch` and `restore --upload` rest on: 3 MB holding every byte value
    (NUL, newlines, invalid UTF-8) sent on stdin from a file and read back on stdout, byte
    for byte, in pieces; stderr and the exit code as `run` gives them."""
    blob = bytes(range(256)) * (3 * 4096) + b"\xff\xfe tail"
    src = tmp_path / "in.bin"
    src.write_bytes(blob)
    got: list[bytes] = []
    with src.open("rb") as f:
        r = LocalTransport().stream("cat; echo done >&2; exit 3", sink=got.append, source=f)
    assert (r.exit_code, r.stdout, r.stderr) == (3, "", "done\n")
    assert b"".join(got) == blob
    assert len(got) > 1  # handed over as it came, not whole at the end


def test_stream_without_a_source_sees_stdin_end_and_times_out_cleanly() -> None:
    got: list[bytes] = []
    r = LocalTransport().stream("wc -c; printf 'x\\000y'", sink=got.append)
    assert r.ok and b"".join(got) == b"0\nx\x00y"
    started = time.monotonic()
    r = LocalTransport().stream("sleep 30", sink=got.append, timeout=0.5)
    assert r.exit_code == 124 and "timed out after 0.5s" in r.stderr
    assert time.monotonic() - started < 10


# -- tethered: a long command ends with its reader ------------------------------------------


def test_tethered_keeps_stdin_stdout_and_exit_code_and_drops_heartbeats() -> None:
    from installer.transport.base import HEARTBEAT, tethered, untethered

    start = time.monotonic()
    p = subprocess.run(["/bin/sh", "-c", tethered("cat; sleep 1.3; echo err >&2; exit 3",
                                                  every=0.5)],
                       input="in\n", capture_output=True, text=True, timeout=30, check=False)
    took = time.monotonic() - start
    assert p.returncode == 3 and p.stdout == "in\n"
    assert p.stderr.count(HEARTBEAT) >= 2  # the watchdog wrote while the command ran
    assert untethered(Result(p.returncode, p.stdout, p.stderr)) == Result(3, "in\n", "err\n")
    assert took < 2.5, took  # ends with the command, not a heartbeat later


def test_tethered_ends_with_its_command_even_when_sighup_is_ignored() -> None:
    """Run under nohup (SIGHUP ignored, inherited by everything), the watchdog is still
    ended with the command: a watchdog left behind holds stderr open, and the caller
    waits for that pipe's end forever."""
    from installer.transport.base import tethered

    def ignore_hup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    start = time.monotonic()
    p = subprocess.run(["/bin/sh", "-c", tethered("echo done", every=0.3)],
                       capture_output=True, text=True, timeout=20, check=False,
                       preexec_fn=ignore_hup)
    assert p.returncode == 0 and p.stdout == "done\n"
    assert time.monotonic() - start < 2


def _reader_gone(command: str, grace: float) -> subprocess.Popen[bytes]:
    from installer.transport.base import tethered

    p = subprocess.Popen(["/bin/sh", "-c", tethered(command, every=0.3, grace=grace)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    assert p.stderr is not None and p.stdout is not None
    assert p.stderr.readline()  # a heartbeat: the watchdog runs
    p.stderr.close()  # the reader goes away (our process died, the connection dropped)
    p.stdout.close()
    return p


def _group_left(p: subprocess.Popen[bytes], within: float) -> str:
    """The processes of the command's session still running (zombies aside: this machine's
    PID 1 may be slow to reap the orphans), after up to `within` s."""
    p.wait(within)
    deadline = time.monotonic() + within
    while True:
        ps = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-s", str(p.pid)],
                            capture_output=True, text=True)
        left = "\n".join(ln for ln in ps.stdout.splitlines() if ln.split()[1][0] != "Z")
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def test_tethered_command_gets_sigint_once_its_reader_is_gone(tmp_path: Path) -> None:
    """A program that handles SIGINT (psql: it cancels its statement) gets it first."""
    marker = tmp_path / "interrupted"
    program = ("import signal, sys, time\n"
               f"def on_int(*_):\n    open({str(marker)!r}, 'w').write('INT')\n"
               "    sys.exit(130)\n"
               "signal.signal(signal.SIGINT, on_int)\ntime.sleep(60)\n")
    p = _reader_gone(f"exec {sys.executable} -c {shlex.quote(program)}", grace=5)
    assert _group_left(p, 10) == ""
    assert marker.read_text() == "INT"


def test_tethered_command_deaf_to_sigint_is_ended_too() -> None:
    """`sleep` in a background job ignores SIGINT: SIGTERM (2 s), then SIGKILL, end it; the
    watchdog ends with it; nothing of the session is left."""
    start = time.monotonic()
    p = _reader_gone("sleep 60", grace=4)
    assert _group_left(p, 10) == ""
    assert time.monotonic() - start < 8
