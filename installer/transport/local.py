"""Local mode: run commands on this machine, with the same interface as SSH."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from typing import IO

from installer.transport.base import CHUNK, HeldCommand, Result, Transport


class LocalTransport(Transport):
    """Runs commands with /bin/sh on the machine the tool runs on."""

    def __init__(self, name: str = "localhost") -> None:
        super().__init__()
        self.name = name

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        try:
            p = subprocess.run(
                ["/bin/sh", "-c", command],
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout,
                check=False,
                # its own session: a Ctrl-C on the terminal reaches only chatalot-db, which
                # lets the running command end (never a migration cut half-way)
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as e:
            return Result(124, _text(e.stdout), _text(e.stderr) + f"\ntimed out after {timeout}s")
        return Result(p.returncode, _text(p.stdout), _text(p.stderr))

    def _stream(self, command: str, stdin: Iterable[bytes], sink: Callable[[bytes], None],
                timeout: float | None) -> Result:
        p = subprocess.Popen(
            ["/bin/sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
        assert p.stdin is not None and p.stdout is not None and p.stderr is not None
        err: list[bytes] = []
        feeder = threading.Thread(target=_feed, args=(p.stdin, stdin), daemon=True)
        drainer = threading.Thread(target=_drain, args=(p.stderr, err), daemon=True)
        feeder.start()
        drainer.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        fd = p.stdout.fileno()
        try:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait()
                    drainer.join(5)
                    return Result(124, "", _text(b"".join(err)) + f"\ntimed out after {timeout}s")
                ready, _, _ = select.select([fd], [], [], left)
                if not ready:
                    continue
                data = os.read(fd, CHUNK)
                if not data:
                    break
                sink(data)
            code = p.wait()
            drainer.join()
            return Result(code, "", _text(b"".join(err)))
        finally:
            p.stdout.close()
            p.stderr.close()

    def _spawn(self, command: str, stdin: bytes) -> HeldCommand:
        p = subprocess.Popen(
            ["/bin/sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
        if stdin and p.stdin is not None:
            p.stdin.write(stdin)
            p.stdin.flush()
        return _LocalHeld(p)


class _LocalHeld(HeldCommand):
    """A subprocess whose stdin pipe we hold; our process dying closes it too."""

    def __init__(self, p: subprocess.Popen[bytes]) -> None:
        self.p = p
        self.buf = b""
        self.eof = False

    def readline(self, timeout: float) -> str | None:
        assert self.p.stdout is not None
        fd = self.p.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                data = os.read(fd, 4096)
                self.buf += data
                self.eof = not data
        if not self.buf:
            return None
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8", errors="replace")

    def finish(self, timeout: float) -> tuple[int | None, str]:
        try:
            code: int | None = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        err = b""
        if code is not None and self.p.stderr is not None:
            err = self.p.stderr.read()
        return code, _text(err)

    def release(self, abort: bool = False) -> None:
        with contextlib.suppress(OSError):
            if self.p.stdin is not None:
                self.p.stdin.close()
        if abort:  # still waiting in flock: end its whole session (sudo, sh, flock)
            with contextlib.suppress(OSError):
                os.killpg(self.p.pid, signal.SIGTERM)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        for f in (self.p.stdout, self.p.stderr):
            if f is not None:
                f.close()


def _feed(pipe: IO[bytes], pieces: Iterable[bytes]) -> None:
    """Write `pieces` to a command's stdin, then close it (it ended early: stop)."""
    try:
        for piece in pieces:
            pipe.write(piece)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        pipe.close()


def _drain(pipe: IO[bytes], into: list[bytes]) -> None:
    into.append(pipe.read())


def _text(b: bytes | str | None) -> str:
    if b is None:
        return ""
    if isinstance(b, str):
        return b
    return b.decode("utf-8", errors="replace")
