"""The hosts a command works on: chosen from the inventory (or this machine), and reached."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from installer.errors import ChatalotError, UnreachableError, UsageError
from installer.fleet.inventory.vault import VaultSecret
from installer.fleet.rollout import DEFAULT_FORKS
from installer.fleet.runner import RunOptions, make_transport
from installer.transport.base import Transport

LOCALHOST_VARS: dict[str, Any] = {"ansible_connection": "local"}


#: what -i gives: one source or several (None: local mode)
Sources = str | Sequence[str] | None


def sources_text(inventory: Sources) -> str:
    """The -i sources for messages: `hosts.ini` or `a.ini, b/`."""
    return inventory if isinstance(inventory, str) else ", ".join(inventory or ())


def load_hosts(inventory: Sources, limit: str | None,
               vault: list[VaultSecret] | None = None,
               extra_vars: dict[str, Any] | None = None, *,
               allow_empty: bool = False) -> dict[str, dict[str, Any]]:
    """name -> variables of the hosts to work on, in Ansible's order: the inventory's
    (limited), or localhost. No host → ChatalotError (exit 1), as ansible-playbook
    ("Specified inventory, host pattern and/or --limit leaves us with no hosts to target")."""
    if not inventory:
        if limit and limit not in ("localhost", "all", "*"):
            raise ChatalotError(f"--limit {limit!r} leaves no host to target: without -i "
                                "the only host is localhost")
        return {"localhost": {**LOCALHOST_VARS, **(extra_vars or {})}}
    from installer.fleet.inventory import load_inventory  # not needed in local mode
    from installer.fleet.inventory.patterns import unmatched

    inv = load_inventory(inventory, vault, extra_vars)
    limit = expand_limit_files(limit)
    try:
        names = inv.select(limit)
        for missing in unmatched(inv, limit):  # a typo in a list: said, as Ansible says it
            print(f"chatalot-db: warning: Could not match supplied host pattern, ignoring: "
                  f"{missing}", file=sys.stderr)
    except UsageError as e:  # a pattern Ansible cannot use either: its exit code is 1
        raise ChatalotError(f"--limit {limit!r}: {e}") from None
    if not names and not allow_empty:  # (--list-hosts lists none, as ansible-playbook)
        raise ChatalotError(f"--limit {limit!r} leaves no host of {sources_text(inventory)} to "
                            "target" if limit else f"{sources_text(inventory)} has no hosts")
    return {n: inv.host_vars(n) for n in names}


def with_migrations(hosts: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The hosts with their migrations_source fetched on this machine (git, archives),
    progress on stderr; ChatalotError naming the source before any host is contacted.
    Hosts that leave migrations to the server (the default) or name the bundled set cost
    nothing here (not even the fetcher's imports)."""
    from installer.desired.sources import BUNDLED, NONE, parse_source

    def fetched_here(value: object) -> bool:
        try:
            return parse_source(value).kind not in (NONE, BUNDLED)
        except ChatalotError:  # named by the host's check of its variables
            return False

    if not any(fetched_here(hv.get("migrations_source")) for hv in hosts.values()):
        return dict(hosts)
    from installer.fleet.sources import fetch_migration_sources

    return fetch_migration_sources(
        hosts, say=lambda line: print(f"chatalot-db: {line}", file=sys.stderr, flush=True))


def expand_limit_files(limit: str | None) -> str | None:
    """`--limit @FILE` (anywhere in a pattern list): the host names in FILE, one per line,
    as Ansible reads a retry file. ChatalotError when it is missing or a directory."""
    if not limit or "@" not in limit:
        return limit
    from installer.fleet.inventory.patterns import split_host_pattern

    out: list[str] = []
    for item in split_host_pattern(limit):
        if not item.startswith("@"):
            out.append(item)
            continue
        path = item[1:]
        if not os.path.exists(path):
            raise ChatalotError(f"Unable to find limit file {path}")
        if not os.path.isfile(path):
            raise ChatalotError(f'Limit starting with "@" must be a file, not a directory: '
                                f"{path}")
        with open(path, encoding="utf-8") as f:
            out.extend(line.strip() for line in f.read().split("\n") if line.strip())
    return ",".join(out)


def one_host(inventory: Sources, name: str, vault: list[VaultSecret] | None = None,
             extra_vars: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The single host `name` (a name or a pattern matching exactly one host)."""
    if not inventory:
        if name not in ("localhost", "127.0.0.1", "::1"):
            raise UsageError(f"{name}: without -i the only host is localhost")
        return "localhost", {**LOCALHOST_VARS, **(extra_vars or {})}
    from installer.fleet.inventory import load_inventory  # not needed in local mode

    inv = load_inventory(inventory, vault, extra_vars)
    names = inv.select(name)
    if len(names) != 1:
        found = "no host" if not names else f"{len(names)} hosts ({', '.join(names[:5])})"
        raise UsageError(f"{name} matches {found} in {sources_text(inventory)}: name exactly "
                         "one host")
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
                forks: int = DEFAULT_FORKS, become_password: str | None = None) -> list[Connection]:
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
