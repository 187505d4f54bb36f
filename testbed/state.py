"""The state file: which hosts a test bed made, where, and which nspawn runs each.

It is written before anything is created and after every change, so a run
that is killed leaves enough behind for the next `up` or `down` to clear it.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_VERSION = 1


@dataclass
class HostRecord:
    name: str
    kind: str
    index: int
    address: str
    image: str = ""
    pid: int | None = None
    running: bool = False


@dataclass
class State:
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    nat_device: str | None = None


def load(path: Path) -> State:
    """The state in path; an empty state if there is none (or it is unreadable)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return State()
    if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
        return State()
    hosts = {name: HostRecord(**record) for name, record in raw.get("hosts", {}).items()}
    return State(hosts=hosts, nat_device=raw.get("nat_device"))


def save(path: Path, state: State) -> None:
    """Write state atomically (temporary file, then rename)."""
    data = {
        "version": STATE_VERSION,
        "nat_device": state.nat_device,
        "hosts": {name: asdict(record) for name, record in state.hosts.items()},
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
