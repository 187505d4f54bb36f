"""Hosts for every command working on them (apply, migrate -i, verify, status, psql):
the options choosing and reaching them, the loader, -K's password, connections."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from installer.errors import ChatalotError, UnreachableError, UsageError
from installer.fleet.runner import RunOptions, make_transport
from installer.transport.base import Transport

LOCALHOST_VARS: dict[str, Any] = {"ansible_connection": "local"}


INVENTORY_HELP = "Ansible INI inventory; default: this machine only (local mode)"


def add_target_options(p: argparse.ArgumentParser, *, inventory: str = INVENTORY_HELP,
                       limit: bool = True, forks: str | None = None, json: str | None = None,
                       become: bool = True, scope: str = "") -> None:
    """The options that choose and reach hosts, the same for every command working on hosts.

    -i/--inventory (help: `inventory`), -l/--limit (`limit`), -f/--forks N when `forks`
    says what the hosts do at once ("provisioned": "hosts provisioned at once"), --json FILE
    when `json` is its help, --accept-new-host-keys, and -K/--ask-become-pass (`become`).
    `scope` starts every help but -i's (migrate's "with -i: ").
    """
    p.add_argument("-i", "--inventory", metavar="FILE", help=inventory)
    if limit:
        p.add_argument("-l", "--limit", metavar="PATTERN",
                       help=f"{scope}only hosts matching this Ansible host pattern")
    if forks is not None:
        p.add_argument("-f", "--forks", type=int, default=5, metavar="N",
                       help=f"{scope}hosts {forks} at once (default: 5)")
    if json is not None:
        p.add_argument("--json", metavar="FILE", help=f"{scope}{json}")
    p.add_argument("--accept-new-host-keys", action="store_true",
                   help=f"{scope}accept and record SSH host keys not yet in known_hosts (like "
                   "OpenSSH's StrictHostKeyChecking=accept-new); a changed key is always refused")
    if become:
        p.add_argument("-K", "--ask-become-pass", action="store_true",
                       help=f"{scope}ask for the sudo password (read from the terminal, or the "
                       "first line of stdin when it is not one); it goes to sudo on stdin, never "
                       "in argv")


def ask_become_pass() -> str:
    """From the terminal; or the first line of stdin when it is not a terminal (scripts, CI)."""
    if sys.stdin.isatty():
        return getpass.getpass("BECOME password: ")
    return sys.stdin.readline().rstrip("\r\n")


def become_password(args: argparse.Namespace) -> str | None:
    """-K's password (asked now), else None: sudo without one, or ansible_become_password."""
    return ask_become_pass() if args.ask_become_pass else None


def load_hosts(inventory: str | None, limit: str | None) -> dict[str, dict[str, Any]]:
    """name -> variables of the hosts to work on, in Ansible's order: the inventory's
    (limited), or localhost. No host → ChatalotError (exit 1), as ansible-playbook
    ("Specified inventory, host pattern and/or --limit leaves us with no hosts to target")."""
    if not inventory:
        if limit and limit not in ("localhost", "all", "*"):
            raise ChatalotError(f"--limit {limit!r} leaves no host to target: without -i "
                                "the only host is localhost")
        return {"localhost": dict(LOCALHOST_VARS)}
    from installer.fleet.inventory import load_inventory

    inv = load_inventory(inventory)
    try:
        names = inv.select(limit)
    except UsageError as e:  # a pattern Ansible cannot use either: its exit code is 1
        raise ChatalotError(f"--limit {limit!r}: {e}") from None
    if not names:
        raise ChatalotError(f"--limit {limit!r} leaves no host of {inventory} to target"
                            if limit else f"{inventory} has no hosts")
    return {n: inv.host_vars(n) for n in names}


def one_host(inventory: str | None, name: str) -> tuple[str, dict[str, Any]]:
    """The single host `name` (a name or a pattern matching exactly one host)."""
    if not inventory:
        if name not in ("localhost", "127.0.0.1", "::1"):
            raise UsageError(f"{name}: without -i the only host is localhost")
        return "localhost", dict(LOCALHOST_VARS)
    from installer.fleet.inventory import load_inventory

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
                forks: int = 5, become_password: str | None = None) -> list[Connection]:
    """Connect to every host at once (at most `forks` at a time), in inventory order;
    `become_password` goes to sudo as apply's (-K)."""
    opts = RunOptions(accept_new_host_keys=accept_new_host_keys,
                      become_password=become_password)

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
