"""Run commands on this machine and find, signal and reap processes.

Everything here acts on this machine only. Processes are found through
/proc; a process is only ever signalled after its identity was checked by
the caller (command line, cgroup or network namespace the test bed made).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from testbed.errors import CommandFailed

log = logging.getLogger("testbed")


SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin")


def tool_env() -> dict[str, str]:
    """This process's environment with the sbin directories on PATH (ip, iptables, chroot)."""
    env = dict(os.environ)
    path = [p for p in env.get("PATH", "").split(":") if p]
    env["PATH"] = ":".join(path + [d for d in SBIN_DIRS if d not in path])
    return env


def which(tool: str) -> str | None:
    return shutil.which(tool, path=tool_env()["PATH"])


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | None = None,
    timeout: float | None = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv (no shell), capture text output; raise CommandFailed if check and it fails."""
    argv = list(argv)
    log.debug("run: %s", " ".join(argv))
    try:
        done = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env if env is not None else tool_env(),
            check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(argv, -1, f"timed out after {timeout} s") from exc
    if check and done.returncode != 0:
        raise CommandFailed(argv, done.returncode, done.stderr or done.stdout)
    return done


def cmdline(pid: int) -> list[str]:
    """The argv of a process, or [] if it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # state is the first field after the parenthesised command name
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def pids_in_netns(netns_path: Path) -> list[int]:
    """Processes whose network namespace is the one bound at netns_path (e.g. /run/netns/X)."""
    try:
        target = os.stat(netns_path)
    except OSError:
        return []
    found = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            found.append(pid)
    return found


def pids_using(path: Path) -> list[int]:
    """Processes with path (or something below it) as root, cwd or in their command line."""
    base = str(path).rstrip("/")

    def below(value: str) -> bool:
        return value == base or value.startswith(base + "/")

    found = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        try:
            links = [os.readlink(f"/proc/{pid}/root"), os.readlink(f"/proc/{pid}/cwd")]
        except OSError:
            links = []
        if any(below(link) for link in links) or any(below(arg) for arg in cmdline(pid)):
            found.append(pid)
    return found


def signal_pids(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until none of pids is alive; return those still alive after timeout."""
    pending = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        pending = [pid for pid in pending if alive(pid)]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.1)


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a text file, with terminal escape sequences removed."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r", "", text)
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
