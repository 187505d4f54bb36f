"""testinfra hosts and our transports, each usable as the other.

- `TransportBackend`: a testinfra backend running commands over one of our
  transports (`chatalot-db verify` connects with apply's transports, so the
  same host-key policy, users, keys and sudo handling apply).
- `HostTransport`: our Transport interface over any testinfra host (plain
  `pytest --hosts=ssh://...`), so the probes apply uses run unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import testinfra.backend.base
import testinfra.host

from installer.errors import ChatalotError
from installer.transport.base import Result, Transport


class TransportBackend(testinfra.backend.base.BaseBackend):  # type: ignore[misc]
    """A testinfra backend over a connected installer Transport (local or SSH)."""

    NAME = "chatalot-db"

    def __init__(self, name: str, transport: Transport, hostvars: Mapping[str, Any]) -> None:
        super().__init__(name)
        self.transport = transport
        self.hostvars = dict(hostvars)

    def get_pytest_id(self) -> str:
        return str(self.hostname)

    def run(self, command: str, *args: str, **kwargs: Any) -> Any:
        cmd = self.get_command(command, *args)
        r = self.transport.run(cmd)
        return self.result(r.exit_code, self.encode(cmd), r.stdout.encode(), r.stderr.encode())


def make_host(name: str, transport: Transport, hostvars: Mapping[str, Any]) -> Any:
    """A testinfra Host (host.file, host.package, ...) over an installer transport."""
    backend = TransportBackend(name, transport, hostvars)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host


class HostTransport(Transport):
    """Our Transport over a testinfra host: commands go through `host.run`.

    testinfra's run() has no stdin, so neither has this transport: nothing
    verify runs needs one (scripts travel as here-documents, and no secret
    is sent at all).
    """

    def __init__(self, host: Any) -> None:
        super().__init__()
        self.host = host
        self.name = str(host.backend.get_hostname())

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        if stdin:
            raise ChatalotError("internal: a testinfra host takes no standard input")
        r = self.host.run("/bin/sh -c %s", command)
        return Result(int(r.rc), str(r.stdout), str(r.stderr))


def transport_for(host: Any) -> Transport:
    """The transport under a testinfra host: ours if verify made it, else one over host.run."""
    backend = host.backend
    if isinstance(backend, TransportBackend):
        return backend.transport
    return HostTransport(host)


def host_name(host: Any) -> str:
    """The name a host goes by in messages: the inventory name, or testinfra's hostname."""
    backend = host.backend
    if isinstance(backend, TransportBackend):
        return str(backend.hostname)
    name = str(backend.get_hostname())
    return "localhost" if name == "local" else name
