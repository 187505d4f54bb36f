"""Two inventory names for one host: found before any host is contacted.

Two names with one SSH target (ansible_host, or the name; ansible_port, 22 by default;
addresses compared as addresses, names as written, no DNS lookup), or two local
connections, provision the same cluster. As two apps of it (installer.desired.sharing:
each its own database, role and env file, the same cluster-wide values) they may; else
each would rewrite the shared drop-in with its own tuning (a restart each run) or, with
one env file, rotate the other's password, and the run refuses every such name before any
change. Names that turn out to be one machine only once connected (another name or
address of it, another port) are caught by their machine-id
(installer.steps.base.MachineClaims).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping
from typing import Any

from installer.desired import sharing
from installer.desired.config import HostConfig
from installer.errors import ChatalotError


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
    another name of the run and is not another app of that cluster
    (installer.desired.sharing). In inventory order. Names whose variables are broken are
    left to "check variables"."""
    targets = {n: target(n, v) for n, v in hosts.items()}
    configs: dict[str, HostConfig] = {}
    for n, v in hosts.items():
        with contextlib.suppress(ChatalotError):
            configs[n] = HostConfig.from_vars(v)
    by_target: dict[tuple[str, str], list[str]] = {}
    for n, t in targets.items():
        by_target.setdefault(t, []).append(n)
    refused: dict[str, str] = {}
    for n, (host, port) in targets.items():
        others = [o for o in by_target[(host, port)] if o != n]
        if not others or n not in configs:
            continue
        why = next((w for o in others if o in configs
                    for w in [sharing.conflict(n, configs[n], o, configs[o])] if w), None)
        if why is None:
            continue
        where = "this machine (ansible_connection=local)" if host == "local" else \
            f"{host}:{port}"
        refused[n] = sharing.refusal(n, others, where, why)
    return refused
