"""The transport interface: one `run()` for every way of reaching a host.

A command is a shell string run by `/bin/sh -c` on the host. Build it with
`shlex.quote` (see `sh()`); never put a secret in it: secrets travel on stdin.
`become` names the user to run as; the transport wraps the command with
runuser (when already root) or sudo (otherwise).
"""

from __future__ import annotations

import logging
import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass

from installer.errors import CommandError

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


def sh(*argv: str) -> str:
    """Join arguments into one shell command, each quoted."""
    return " ".join(shlex.quote(a) for a in argv)


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
        """Return the command as it is really run, and the stdin preamble."""
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

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
