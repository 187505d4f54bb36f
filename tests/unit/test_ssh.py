"""installer.transport.ssh: ansible_ssh_args options and ansible_port read."""

from __future__ import annotations

import pytest

from installer.errors import UsageError
from installer.transport.ssh import _port, ssh_options


@pytest.mark.parametrize(
    ("args", "expected"),
    [("-o UserKnownHostsFile=/tmp/kh", {"userknownhostsfile": "/tmp/kh"}),
     ("-oStrictHostKeyChecking=no -o Port=2222", {"stricthostkeychecking": "no", "port": "2222"}),
     ("", {}), ("-C -o 'IdentityFile /k'", {"identityfile": "/k"})],
)
def test_ssh_options(args: str, expected: dict[str, str]) -> None:
    assert ssh_options(args) == expected


@pytest.mark.parametrize(("value", "port"), [
    (None, None), ("", None), (22, 22), ("2222", 2222), (" 22 ", 22), (65535, 65535)])
def test_ssh_port_accepted(value: object, port: int | None) -> None:
    assert _port(value) == port


@pytest.mark.parametrize("value", ["twentytwo", "0", "65536", "-1", "22x", "2.5"])
def test_ssh_port_refused_with_a_clear_message(value: str) -> None:
    """A port that is no port fails that host at `connect`, naming the variable (it was an
    internal ValueError)."""
    with pytest.raises(UsageError, match=r"ansible_port must be a port number \(1-65535\)"):
        _port(value)
