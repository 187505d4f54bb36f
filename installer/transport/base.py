"""The transport interface: one `run()` for every way of reaching a host.

A command is a shell string run by `/bin/sh -c` on the host. Build it with
`shlex.quote` (see `sh()`); never put a secret in it: secrets travel on stdin.
`become` names the user to run as; the transport wraps the command with
runuser (when already root) or sudo (otherwise).
"""

from __future__ import annotations

import logging
import posixpath
import shlex
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from installer.errors import CommandError, HostLockError
from installer.transport.shell import sh

log = logging.getLogger("chatalot_db.transport")


@dataclass(frozen=True)
class Result:
    """What a command did: its exit code and output (decoded as UTF-8)."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


#: the size of the pieces a stream reads and sends
CHUNK = 1 << 16


def chunks(preamble: bytes, source: BinaryIO | None) -> Iterator[bytes]:
    """`preamble` (a sudo password's line, or nothing), then `source` read to its end in
    CHUNK pieces: what a stream sends on stdin, never whole in memory."""
    if preamble:
        yield preamble
    while source is not None:
        data = source.read(CHUNK)
        if not data:
            return
        yield data


#: the host lock's exit codes (lock_script): cannot open the file; gave up waiting
LOCK_CANNOT_OPEN = 71
LOCK_TIMED_OUT = 75


#: the line after the output of the script a lock runs once it holds the lock (`then`)
THEN_DONE = "chatalot-db: then done"


def lock_script(path: str, timeout: float, then: str | None = None) -> str:
    """A shell script that takes an exclusive flock on `path` and holds it until its stdin
    closes: it prints `waiting` when another holder has it, then `locked` once it has it,
    and keeps the lock in `cat`, which exits on EOF (we closed it, our connection dropped
    or our process died), releasing the lock. Exit 75 when `timeout` seconds passed.
    `then`: a script run once the lock is held (stdin /dev/null, never holding the lock's
    descriptor), its output followed by THEN_DONE: what the run reads first, in the same
    round trip as the lock."""
    q = shlex.quote(path)
    after = ([f"( {then}\n) </dev/null 9>&-", f"echo {shlex.quote(THEN_DONE)}"]
             if then is not None else [])
    return "; ".join([
        f"mkdir -p {shlex.quote(posixpath.dirname(path) or '/')} || exit {LOCK_CANNOT_OPEN}",
        f"exec 9>>{q} || exit {LOCK_CANNOT_OPEN}",
        "if ! flock -n -x 9; then echo waiting; "
        f"flock -w {max(0, int(timeout + 0.999))} -x 9 || exit {LOCK_TIMED_OUT}; fi",
        "echo locked",
        *after,
        "exec cat >/dev/null",
    ])


#: the line a tethered command's watchdog writes to stderr each second (untethered drops it)
HEARTBEAT = "chatalot-db: alive"


def tethered(command: str, every: float = 1.0, grace: float = 5.0) -> str:
    """`command` tied to whoever reads its output: a watchdog writes HEARTBEAT to stderr
    each `every` s; once that write fails (our SSH connection dropped, or our process
    died, so the pipe's reader is gone) it sends SIGINT to the command's process group
    (psql cancels its running statement, its transaction rolls back), SIGTERM 2 s later,
    SIGKILL after `grace` s, and ends once the command has. Nothing of ours outlives the
    run on the host. The command runs in a subshell with our stdin; the watchdog holds no
    pipe but stderr and ends with the command (SIGKILL: whatever signals our caller
    ignores, e.g. SIGHUP under nohup, the watchdog, which holds stderr, must not outlive
    it). Use for long commands (migrations, pg_dump); read their result through
    `untethered`."""
    quiet = "</dev/null >/dev/null 2>&1"
    alive = "kill -0 $chatalot_cmd 2>/dev/null"
    ticks = max(1, int(grace / 0.2))
    dog = ("( trap '' PIPE INT TERM\n"
           f"while sleep {every:g} {quiet}; do\n"
           f"  printf '%s\\n' {shlex.quote(HEARTBEAT)} >&2 && continue\n"
           "  kill -INT 0 2>/dev/null; i=0\n"
           f"  while {alive} && [ $i -lt {ticks} ]; do\n"
           "    [ $i -eq 10 ] && kill -TERM 0 2>/dev/null\n"
           f"    sleep 0.2 {quiet}; i=$((i + 1))\n"
           "  done\n"
           f"  {alive} && kill -KILL 0\n"
           "  exit 0\n"
           "done ) </dev/null >/dev/null &\n")
    return ("exec 3<&0\n"
            f"(\n{command}\n) <&3 3<&- &\n"
            "chatalot_cmd=$!\n"
            "exec 3<&-\n"
            + dog +
            "chatalot_dog=$!\n"
            "wait $chatalot_cmd\nchatalot_rc=$?\n"
            "kill -KILL $chatalot_dog 2>/dev/null\n"
            "exit $chatalot_rc")


def untethered(result: Result) -> Result:
    """A tethered command's result without the watchdog's heartbeat lines."""
    if HEARTBEAT not in result.stderr:
        return result
    kept = [ln for ln in result.stderr.splitlines(keepends=True) if ln.rstrip("\n") != HEARTBEAT]
    return Result(result.exit_code, result.stdout, "".join(kept))


class HeldCommand(ABC):
    """A long-running command on the host whose stdin stays open until `release()`."""

    @abstractmethod
    def readline(self, timeout: float) -> str | None:
        """The next line of stdout (without its newline); None once the command has
        exited and its output is read; raises TimeoutError after `timeout` seconds."""

    @abstractmethod
    def finish(self, timeout: float) -> tuple[int | None, str]:
        """Wait up to `timeout` seconds for the command to exit: its exit code (None if
        it has not) and its stderr."""

    @abstractmethod
    def release(self, abort: bool = False) -> None:
        """Close its stdin, let it end, free what it holds; `abort`: end it now (it has
        not reached the point where it waits on stdin). Never raises."""


#: first line of every command we run on a host: C messages and formats, whatever the
#: host's or the SSH session's locale
LOCALE_PREAMBLE = "LC_ALL=C; export LC_ALL\n"


class Transport(ABC):
    """Runs commands on one host. Subclasses implement `_exec` and `close`."""

    #: a short name for messages ("localhost", "db01")
    name: str = "host"

    def __init__(self) -> None:
        self._uid: int | None = None
        self.commands_run = 0

    # -- subclass interface -------------------------------------------------
    @abstractmethod
    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        """Run `command` with /bin/sh -c as the connected user."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection (if any)."""

    def _stream(self, command: str, stdin: Iterable[bytes], sink: Callable[[bytes], None],
                timeout: float | None) -> Result:
        """Like `_exec`, stdin sent piece by piece and stdout's bytes handed to `sink` as
        they arrive (Result.stdout stays empty)."""
        raise NotImplementedError(f"{type(self).__name__} cannot stream")

    def _spawn(self, command: str, stdin: bytes) -> HeldCommand:
        """Start `command` with /bin/sh -c, write `stdin` to it and keep its stdin open."""
        raise NotImplementedError(f"{type(self).__name__} cannot hold a long-running command")

    def _become_prefix(self, user: str) -> str:
        """The command prefix that switches to `user` (connected user is not root)."""
        return sh("sudo", "-n", "-H", "-u", user, "--")

    def _stdin_preamble(self) -> bytes:
        """Bytes that must precede stdin when becoming (a sudo password, say)."""
        return b""

    # -- public API ---------------------------------------------------------
    @property
    def is_root(self) -> bool:
        if self._uid is None:
            r = self._exec("id -u", None, 30)
            self._uid = int(r.stdout.strip() or "-1") if r.ok else -1
        return self._uid == 0

    def wrap(self, command: str, become: str | None) -> tuple[str, bytes]:
        """Return the command as it is really run, and the stdin preamble.

        Every command runs in the C locale (LOCALE_PREAMBLE): what we parse (apt-cache
        policy, pg_lsclusters, error messages) reads the same on a host set up in German."""
        command = LOCALE_PREAMBLE + command
        if become is None:
            return command, b""
        if become == "root" and self.is_root:
            return command, b""
        if self.is_root:
            return f"{sh('runuser', '-u', become, '--', '/bin/sh', '-c', command)}", b""
        return (
            f"{self._become_prefix(become)} /bin/sh -c {shlex.quote(command)}",
            self._stdin_preamble(),
        )

    def run(
        self,
        command: str,
        *,
        become: str | None = None,
        stdin: str | bytes | None = None,
        timeout: float | None = 600,
    ) -> Result:
        """Run a shell command on the host; never raises on a non-zero exit."""
        real, preamble = self.wrap(command, become)
        data = stdin.encode() if isinstance(stdin, str) else stdin
        if preamble:
            data = preamble + (data or b"")
        self.commands_run += 1
        log.debug("%s: run%s: %s", self.name, f" as {become}" if become else "", command)
        return self._exec(real, data, timeout)

    def stream(
        self,
        command: str,
        *,
        sink: Callable[[bytes], None],
        become: str | None = None,
        source: BinaryIO | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run a shell command whose stdout is binary and of any size (a dump fetched from
        the host): its bytes go to `sink` as they come, and stdin is `source` read in
        pieces (a dump sent to the host). Result.stdout is empty; never raises on a
        non-zero exit."""
        real, preamble = self.wrap(command, become)
        self.commands_run += 1
        log.debug("%s: stream%s: %s", self.name, f" as {become}" if become else "", command)
        return self._stream(real, chunks(preamble, source), sink, timeout)

    def check(
        self,
        command: str,
        *,
        what: str,
        become: str | None = None,
        stdin: str | bytes | None = None,
        timeout: float | None = 600,
    ) -> Result:
        """Like `run`, but raise CommandError (naming `what`) on a non-zero exit."""
        r = self.run(command, become=become, stdin=stdin, timeout=timeout)
        if not r.ok:
            raise CommandError(what, r.exit_code, r.stderr or r.stdout)
        return r

    @contextmanager
    def hold_lock(
        self,
        path: str,
        timeout: float,
        *,
        on_wait: Callable[[], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        then: str | None = None,
    ) -> Iterator[str | None]:
        """Hold an exclusive flock on `path` on the host (as root) while inside.

        Another holder (another chatalot-db run on this host) makes us wait, at most
        `timeout` seconds: `on_wait` is called once when that starts, `cancel` is polled
        while waiting. The lock lives in a command on the host whose stdin we keep open:
        leaving the block, a dropped connection or our process dying releases it.
        Raises HostLockError when it cannot be taken (timed out, cancelled, no flock).
        `then` (a script, run as root once the lock is held) gives what the block gets: its
        output, read in the lock's own round trip (None without `then`).
        """
        real, preamble = self.wrap(lock_script(path, timeout, then), "root")
        self.commands_run += 1
        log.debug("%s: hold the host lock %s (up to %gs)", self.name, path, timeout)
        held = self._spawn(real, preamble)
        locked = False
        try:
            started = time.monotonic()
            deadline = started + timeout + 30  # the host's flock -w gives up first
            while True:
                if cancel is not None and cancel():
                    raise HostLockError(f"stopped while waiting for the host lock {path} on "
                                        f"{self.name}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HostLockError(f"no answer from the host lock command on {self.name} "
                                        f"after {timeout + 30:g}s ({path})")
                try:
                    line = held.readline(min(0.5, left))
                except TimeoutError:
                    continue
                if line == "locked":
                    locked = True
                    break
                if line == "waiting":
                    if on_wait is not None:
                        on_wait()
                    continue
                if line is None:
                    code, err = held.finish(10)
                    raise HostLockError(_lock_failure(self.name, path, timeout, code, err))
            log.debug("%s: holding the host lock %s (after %.1fs)", self.name, path,
                      time.monotonic() - started)
            yield self._read_then(held, path) if then is not None else None
        finally:
            held.release(abort=not locked)

    @staticmethod
    def _read_then(held: HeldCommand, path: str, timeout: float = 120) -> str:
        """The output of the lock's `then` script, up to THEN_DONE."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HostLockError(f"the script run under the host lock {path} gave no end "
                                    f"after {timeout:g}s")
            try:
                line = held.readline(left)
            except TimeoutError:
                continue
            if line is None:
                code, err = held.finish(10)
                raise HostLockError(f"the host lock's command ended (exit {code}) before its "
                                    f"script did: {err.strip()[-300:]}")
            if line == THEN_DONE:
                return "".join(f"{ln}\n" for ln in lines)
            lines.append(line)

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock_failure(host: str, path: str, timeout: float, code: int | None, err: str) -> str:
    if code == LOCK_TIMED_OUT:
        return (f"another chatalot-db run holds the host lock {path} on {host}: gave up after "
                f"waiting {timeout:g}s (--lock-timeout). Let it finish, or check that no "
                f"such run is left (fuser -v {path} on the host), then rerun")
    tail = "; ".join(err.strip().splitlines()[-3:]) or "no error output"
    if code == 127 or "flock: not found" in err or "flock: command not found" in err:
        return (f"cannot take the host lock {path} on {host}: flock (util-linux) is not "
                f"installed there ({tail})")
    return (f"cannot take the host lock {path} on {host} (exit {code}): {tail}")
