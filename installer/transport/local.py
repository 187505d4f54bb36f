"""Local mode: run commands on this machine, with the same interface as SSH."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time

from installer.transport.base import HeldCommand, Result, Transport


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


def _text(b: bytes | str | None) -> str:
    if b is None:
        return ""
    if isinstance(b, str):
        return b
    return b.decode("utf-8", errors="replace")
