"""The host lock (Transport.hold_lock) through LocalTransport on a temporary lock file:
a second holder waits for the first, gives up clearly after its timeout, can be
cancelled while waiting, and a holder killed outright releases the lock."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from installer.errors import HostLockError
from installer.transport.base import lock_script
from installer.transport.local import LocalTransport

pytestmark = pytest.mark.skipif(shutil.which("flock") is None, reason="needs util-linux flock")


def test_second_holder_waits_until_the_first_releases(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "chatalot-db.lock")
    order: list[str] = []
    waits: list[float] = []
    first_in = threading.Event()

    def second() -> None:
        first_in.wait(10)
        with LocalTransport("b").hold_lock(path, 30, on_wait=lambda: waits.append(1.0)):
            order.append("b in")
        order.append("b out")

    t = threading.Thread(target=second)
    t.start()
    with LocalTransport("a").hold_lock(path, 30):
        order.append("a in")
        first_in.set()
        time.sleep(1.0)
        order.append("a out")
    t.join(20)
    assert order == ["a in", "a out", "b in", "b out"]
    assert waits == [1.0]  # on_wait once, when the wait began


def test_timeout_names_the_lock_and_the_option(tmp_path: Path) -> None:
    path = str(tmp_path / "chatalot-db.lock")
    with LocalTransport("a").hold_lock(path, 30):
        start = time.monotonic()
        with pytest.raises(HostLockError, match="^" + re.escape(
                f"another chatalot-db run holds the host lock {path} on db01: gave up after "
                "waiting 1s (--lock-timeout). Let it finish, or check that no such run is "
                f"left (fuser -v {path} on the host), then rerun") + "$"), \
                LocalTransport("db01").hold_lock(path, 1):
            pass
        assert 0.9 < time.monotonic() - start < 10
    with LocalTransport("c").hold_lock(path, 1):  # released by the holder leaving
        pass


def test_cancel_while_waiting(tmp_path: Path) -> None:
    path = str(tmp_path / "chatalot-db.lock")
    stop = threading.Event()
    with LocalTransport("a").hold_lock(path, 30):
        threading.Timer(0.5, stop.set).start()
        start = time.monotonic()
        with pytest.raises(HostLockError, match="stopped while waiting"), \
                LocalTransport("b").hold_lock(path, 30, cancel=stop.is_set):
            pass
        assert time.monotonic() - start < 5


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    """SIGKILL of the process holding the lock: its pipe closes, `cat` ends, lock free."""
    path = str(tmp_path / "chatalot-db.lock")
    code = ("import sys, time\n"
            "from installer.transport.local import LocalTransport\n"
            f"with LocalTransport('k').hold_lock({path!r}, 10):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2])))
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    p.stdout.close()
    start = time.monotonic()
    with LocalTransport("b").hold_lock(path, 10):
        pass
    assert time.monotonic() - start < 5


def test_lock_script_quotes_the_path() -> None:
    script = lock_script("/run/lock/a b;rm -rf x.lock", 7.2)
    assert "'/run/lock/a b;rm -rf x.lock'" in script and "flock -w 8 -x 9" in script


def test_then_runs_only_once_the_lock_is_held_and_its_output_comes_back(tmp_path: Path) -> None:
    """The first step's reads ride on the lock's command: `then` runs after the lock is
    taken (a second run's `then` waits for the first to release), its output reaches the
    block, and it holds neither the lock's descriptor nor its stdin."""
    path = str(tmp_path / "chatalot-db.lock")
    stamps = tmp_path / "stamps"
    then = (f"echo \"$1\" >> {stamps}; date +%s.%N\nprintf 'line two\\n'\n"
            "ls -l /proc/self/fd | grep -c ' 9 -> ' || true; cat; echo after-cat")
    got: dict[str, str | None] = {}
    first_in = threading.Event()

    def second() -> None:
        first_in.wait(10)
        with LocalTransport("b").hold_lock(path, 30, then=then.replace('"$1"', "b")) as out:
            got["b"] = out

    t = threading.Thread(target=second)
    t.start()
    with LocalTransport("a").hold_lock(path, 30, then=then.replace('"$1"', "a")) as out:
        got["a"] = out
        first_in.set()
        time.sleep(1.0)
        assert stamps.read_text() == "a\n"  # b's `then` waits for the lock
    t.join(20)
    assert stamps.read_text() == "a\nb\n"
    for name in ("a", "b"):
        lines = (got[name] or "").splitlines()
        assert lines[1:] == ["line two", "0", "after-cat"], lines  # no fd 9; stdin empty
        float(lines[0])
    assert float((got["b"] or "").split()[0]) >= float((got["a"] or "").split()[0]) + 1.0


def test_without_then_the_block_gets_none(tmp_path: Path) -> None:
    with LocalTransport("a").hold_lock(str(tmp_path / "x.lock"), 5) as out:
        assert out is None
