"""Hosts for the read-only commands (verify, status, psql): chosen and reached as apply does."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from installer.errors import ChatalotError, UnreachableError, UsageError
from installer.runner import RunOptions, make_transport
from installer.transport.base import Transport

LOCALHOST_VARS: dict[str, Any] = {"ansible_connection": "local"}


def add_host_options(p: argparse.ArgumentParser, *, limit: bool = True) -> None:
    """-i/--inventory, -l/--limit and --accept-new-host-keys, as apply has them."""
    p.add_argument("-i", "--inventory", metavar="FILE",
                   help="Ansible INI inventory; default: this machine only (local mode)")
    if limit:
        p.add_argument("-l", "--limit", metavar="PATTERN",
                       help="only hosts matching this Ansible host pattern")
    p.add_argument("--accept-new-host-keys", action="store_true",
                   help="accept and record SSH host keys not yet in known_hosts (like OpenSSH's "
                   "StrictHostKeyChecking=accept-new); a changed key is always refused")


def load_hosts(inventory: str | None, limit: str | None) -> dict[str, dict[str, Any]]:
    """name -> variables of the hosts to work on: the inventory's (limited), or localhost."""
    if not inventory:
        if limit and limit not in ("localhost", "all", "*"):
            raise UsageError(f"--limit {limit!r} matches nothing: without -i the only host "
                             "is localhost")
        return {"localhost": dict(LOCALHOST_VARS)}
    from installer.inventory import load_inventory

    inv = load_inventory(inventory)
    names = inv.select(limit) if limit else list(inv.hosts)
    if not names:
        raise UsageError(f"no hosts matched in {inventory}"
                         + (f" for --limit {limit!r}" if limit else ""))
    return {n: inv.host_vars(n) for n in names}


def one_host(inventory: str | None, name: str) -> tuple[str, dict[str, Any]]:
    """The single host `name` (a name or a pattern matching exactly one host)."""
    if not inventory:
        if name not in ("localhost", "127.0.0.1", "::1"):
            raise UsageError(f"{name}: without -i the only host is localhost")
        return "localhost", dict(LOCALHOST_VARS)
    from installer.inventory import load_inventory

    inv = load_inventory(inventory)
    names = inv.select(name)
    if len(names) != 1:
        found = "no host" if not names else f"{len(names)} hosts ({', '.join(names[:5])})"
        raise UsageError(f"{name} matches {found} in {inventory}: name exactly one host")
    return names[0], inv.host_vars(names[0])


@dataclass
class Connection:
    """A host reached (transport) or not (error, and whether it was unreachable)."""

    name: str
    hostvars: dict[str, Any]
    transport: Transport | None = None
    error: str = ""
    unreachable: bool = False


def connect_all(hosts: Mapping[str, dict[str, Any]], *, accept_new_host_keys: bool,
                forks: int = 5) -> list[Connection]:
    """Connect to every host at once (at most `forks` at a time), in inventory order."""
    opts = RunOptions(accept_new_host_keys=accept_new_host_keys)

    def one(name: str) -> Connection:
        c = Connection(name, dict(hosts[name]))
        try:
            c.transport = make_transport(name, hosts[name], opts)
        except ChatalotError as e:
            c.error, c.unreachable = str(e), isinstance(e, UnreachableError)
        return c

    names = list(hosts)
    if len(names) == 1:
        return [one(names[0])]
    with ThreadPoolExecutor(max_workers=max(1, forks)) as pool:
        return list(pool.map(one, names))


def close_all(conns: list[Connection]) -> None:
    for c in conns:
        if c.transport is not None:
            c.transport.close()
