"""Local mode: run commands on this machine, with the same interface as SSH."""

from __future__ import annotations

import subprocess

from installer.transport.base import Result, Transport


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


def _text(b: bytes | str | None) -> str:
    if b is None:
        return ""
    if isinstance(b, str):
        return b
    return b.decode("utf-8", errors="replace")
