"""installer.transport.base: what every command goes through, shown with real processes on
this machine (LocalTransport shares `wrap` with the SSH transport)."""

from __future__ import annotations

import os

import pytest

from installer.transport.base import LOCALE_PREAMBLE
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
