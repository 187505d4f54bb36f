"""One exception hierarchy, rooted in ChatalotError.

Every message says what was tried and, where it can, what to do next.
"""

from __future__ import annotations


class ChatalotError(Exception):
    """Base of every error this tool raises on purpose."""


class UsageError(ChatalotError):
    """Bad command-line options or variables (exit code 5)."""


class InventoryError(ChatalotError):
    """A broken inventory file; the message names the file and the line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.detail = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class UnreachableError(ChatalotError):
    """The host could not be reached (connection refused, timeout, auth, host key)."""


class HostKeyError(UnreachableError):
    """The host's SSH key is unknown or has changed."""


class BecomeError(ChatalotError):
    """Connected, but could not become root (sudo refused or needs a password)."""

    @classmethod
    def sudo_failed(cls, host: str, user: str, *, password_given: bool,
                    sudo_output: str) -> BecomeError:
        """sudo would not make `user` root on `host`: with no password given, say to rerun
        with -K; with one, that it was refused; sudo's own last line in parentheses."""
        hint = SUDO_PASSWORD_REFUSED if password_given else SUDO_NEEDS_PASSWORD
        lines = sudo_output.strip().splitlines()
        return cls(f"cannot become root on {host} as {user}: {hint} "
                   f"({lines[-1] if lines else 'no output'})")


#: BecomeError's hints: sudo wants a password none was given for; the one given was refused
SUDO_NEEDS_PASSWORD = "sudo needs a password: rerun with --ask-become-pass (-K)"
SUDO_PASSWORD_REFUSED = "the sudo password was refused"


class HostLockError(ChatalotError):
    """The host lock (one chatalot-db run per host at a time) could not be taken."""


class CommandError(ChatalotError):
    """A command on the host failed where failure was not expected."""

    def __init__(self, what: str, exit_code: int, stderr: str) -> None:
        self.what = what
        self.exit_code = exit_code
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-5:]
        detail = ("; ".join(tail)) if tail else "no error output"
        super().__init__(f"{what} failed (exit {exit_code}): {detail}")


class UnsupportedDistroError(ChatalotError):
    """The host runs a distribution no strategy supports."""


class MigrationError(ChatalotError):
    """The migration set or the ledger is inconsistent (sqlx's own messages)."""


class TuningError(ChatalotError):
    """Tuning inputs that cannot give a working server (e.g. too few connections)."""


# Exit codes, ansible-playbook's where it has one
EXIT_OK = 0
#: an error of the tool's own: a broken inventory, a --limit that leaves no host
EXIT_OWN_ERROR = 1
#: a host failed (or, for verify, a check failed)
EXIT_FAILED = 2
#: a host was unreachable, none failed
EXIT_UNREACHABLE = 4
#: bad command-line options
EXIT_BAD_OPTIONS = 5
EXIT_INTERRUPTED = 99
