"""What `ansible-inventory` prints: the `--list` structure, the `--graph` tree, JSON values.

`ansible_list()` is `ansible-inventory -i FILE --list [--limit L] [--export]`
(as data: `json.loads()` of Ansible's output), `ansible_graph()` is
`ansible-inventory --graph [--vars] [GROUP]` (as text), and `jsonable()` turns
a variable value into what Ansible's JSON encoder writes (`--host NAME` prints
`jsonable(inventory.host_vars(NAME))`).

The functions work on any `InventoryView` (the `Inventory` is one), so this
module does not depend on the inventory model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from installer.errors import UsageError
from installer.fleet.inventory.values import UntrustedStr
from installer.fleet.inventory.vault import VaultText

__all__ = ["InventoryView", "ansible_graph", "ansible_list", "jsonable"]


class _GroupView(Protocol):
    """What `ansible-inventory` shows of a group: its members."""

    @property
    def hosts(self) -> list[str]:
        """The group's direct hosts, in file order."""
        ...

    @property
    def children(self) -> list[str]:
        """The group's child groups, in file order."""
        ...


class InventoryView(Protocol):
    """What `ansible-inventory` shows of an inventory."""

    @property
    def hosts(self) -> Mapping[str, object]:
        """Hosts by name, in inventory order."""
        ...

    @property
    def groups(self) -> Mapping[str, _GroupView]:
        """Groups by name, in inventory order."""
        ...

    def select(self, pattern: str | None) -> list[str]:
        """The hosts `--limit PATTERN` selects, in run order."""
        ...

    def host_vars(self, name: str) -> dict[str, Any]:
        """A host's merged variables (`--host NAME`)."""
        ...

    def own_host_vars(self, name: str) -> dict[str, Any]:
        """A host's own variables (`--list --export`)."""
        ...

    def group_vars(self, name: str) -> dict[str, Any]:
        """A group's own variables (`--list --export`)."""
        ...


def ansible_list(
    inventory: InventoryView, limit: str | None = None, export: bool = False
) -> dict[str, Any]:
    """The structure `ansible-inventory -i FILE --list [--limit L] [--export]` prints.

    Values are JSON-ready (dict keys converted to strings as Ansible's
    encoder does), so this equals `json.loads()` of Ansible's output.
    """
    available = set(inventory.select(limit)) if limit else set(inventory.hosts)
    results: dict[str, Any] = {}
    seen: set[str] = set()

    def visit(name: str) -> None:
        group = inventory.groups[name]
        entry: dict[str, Any] = {}
        if name != "all":
            entry["hosts"] = [h for h in group.hosts if h in available]
        entry["children"] = list(group.children)
        for child in group.children:
            if child not in seen:
                seen.add(child)
                visit(child)
        if export:
            entry["vars"] = jsonable(inventory.group_vars(name), mark_untrusted=True)
        entry = {k: v for k, v in entry.items() if v}
        if entry:
            results[name] = entry

    visit("all")
    hostvars: dict[str, Any] = {}
    for host in inventory.select(limit):
        hvars = inventory.own_host_vars(host) if export else inventory.host_vars(host)
        if hvars:
            hostvars[host] = jsonable(hvars, mark_untrusted=True)
    results["_meta"] = {"hostvars": hostvars, "profile": "inventory_legacy"}
    return results


def ansible_graph(inventory: InventoryView, group: str = "all", show_vars: bool = False) -> str:
    """The tree `ansible-inventory -i FILE --graph [--vars] [GROUP]` prints."""
    if group not in inventory.groups:
        raise UsageError(f"Pattern must be valid group name when using --graph: {group!r}")
    lines: list[str] = []

    def name_at(text: str, depth: int) -> str:
        return "  |" * depth + "--" + text if depth else text

    def show(values: dict[str, Any], depth: int) -> None:
        for key, value in sorted(values.items()):
            lines.append(name_at(f"{{{key} = {value}}}", depth))

    def visit(name: str, depth: int) -> None:
        lines.append(name_at(f"@{name}:", depth))
        depth += 1
        for child in inventory.groups[name].children:
            visit(child, depth)
        if name != "all":
            for host in inventory.groups[name].hosts:
                lines.append(name_at(host, depth))
                if show_vars:
                    show(inventory.host_vars(host), depth + 1)
        if show_vars:
            show(inventory.group_vars(name), depth)

    visit(group, 0)
    return "\n".join(lines)


def jsonable(value: Any, *, mark_untrusted: bool = False) -> Any:
    """A variable value as Ansible's JSON encoder sees it.

    Dict keys become strings (`1` → `"1"`, `None` → `"null"`, `True` → `"true"`).
    With `mark_untrusted` (the `--list` view), an `UntrustedStr` becomes
    `{"__ansible_unsafe": "..."}`.
    """
    if isinstance(value, VaultText):  # shown as ansible-inventory shows it: still encrypted
        return {"__ansible_vault": value.vaulttext}
    if mark_untrusted and isinstance(value, UntrustedStr):
        return {"__ansible_unsafe": str(value)}
    if isinstance(value, dict):
        return {_json_key(k): jsonable(v, mark_untrusted=mark_untrusted) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v, mark_untrusted=mark_untrusted) for v in value]
    return value


def _json_key(key: Any) -> str:
    """A dict key as JSON writes it."""
    return key if isinstance(key, str) else json.dumps(key)
