"""Two inventory names for one host: found before any host is contacted.

Two names with one SSH target (ansible_host, or the name; ansible_port, 22 by default;
addresses compared as addresses, names as written, no DNS lookup), or two local
connections, would both provision the same cluster: each rewrites the shared drop-in with
its own tuning (a restart each run) and, with the default env file, they rotate each
other's password. The run refuses every such name before any change. Names that turn out
to be one machine only once connected (another name or address of it, another port) are
caught by their machine-id (installer.steps.base.MachineClaims).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping
from typing import Any


def target(name: str, hostvars: Mapping[str, Any]) -> tuple[str, str]:
    """(host, port) that SSH connects to, an address in its canonical form; ("local", "")
    for ansible_connection=local."""
    if str(hostvars.get("ansible_connection", "ssh")) == "local":
        return "local", ""
    host = str(hostvars.get("ansible_host") or name).strip().lower()
    with contextlib.suppress(ValueError):  # an address: its canonical form
        host = str(ipaddress.ip_address(host.strip("[]")))
    return host, str(hostvars.get("ansible_port") or 22).strip()


def same_host(hosts: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Pure: name -> why it is refused, for every name that shares its SSH target with
    another name of the run. In inventory order."""
    targets = {n: target(n, v) for n, v in hosts.items()}
    by_target: dict[tuple[str, str], list[str]] = {}
    for n, t in targets.items():
        by_target.setdefault(t, []).append(n)
    refused: dict[str, str] = {}
    for n, (host, port) in targets.items():
        others = [o for o in by_target[(host, port)] if o != n]
        if not others:
            continue
        where = "this machine (ansible_connection=local)" if host == "local" else \
            f"{host}:{port}"
        refused[n] = (
            f"{n} and {', '.join(others)} are one host ({where}): two inventory names for one "
            "host would provision one cluster twice (each its own tuning, a restart on every "
            "run; with the default env file, each other's password). Nothing was changed: "
            "keep one name per host in the inventory")
    return refused
