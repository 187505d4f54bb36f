"""The test bed's exceptions, rooted in one error.

Every message says what was tried and what to do next.
"""

from __future__ import annotations


class TestbedError(Exception):
    """Base of every error the test bed raises on purpose."""

    __test__ = False  # not a pytest test class


class UnavailableError(TestbedError):
    """This machine cannot run the test bed (not root, a tool missing, no overlayfs)."""


class CommandFailed(TestbedError):
    """A command on this machine failed where failure was not expected."""

    def __init__(self, argv: list[str], exit_code: int, stderr: str) -> None:
        self.argv = argv
        self.exit_code = exit_code
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-8:]
        detail = "; ".join(tail) if tail else "no error output"
        super().__init__(f"`{' '.join(argv)}` failed (exit {exit_code}): {detail}")


class ImageBuildError(TestbedError):
    """An image could not be built; the message names the kind and the build log."""


class BootError(TestbedError):
    """A host did not come up in time; the message carries the tail of its boot log."""


class HostsFailed(TestbedError):
    """Several hosts failed; one message per host, none hiding another."""

    def __init__(self, action: str, errors: dict[str, Exception]) -> None:
        self.errors = errors
        lines = [f"{action} failed for {len(errors)} host(s):"]
        for name, error in errors.items():
            lines.append(f"--- {name}: {error}")
        super().__init__("\n".join(lines))
