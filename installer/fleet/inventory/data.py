"""Building an inventory the way Ansible's inventory plugins do (ansible/inventory/data.py).

`InventoryData` is an inventory while a source is being read: a reader adds
groups and hosts, makes groups children of others and sets variables, in the
order it meets them, then `reconcile()` applies Ansible's `reconcile_inventory`
(every group under `all`, hosts in no group under `ungrouped`, group depths)
and returns the `Inventory`. The INI parser is one such reader.

Errors are `InventoryError`s naming the source and the line being read, which
the reader keeps in `InventoryData.line`.

Ansible quirk kept on purpose: a variable set on a host whose name is also the
name of a group goes to that group (a group of the same name wins).
"""

from __future__ import annotations

from typing import Any

from installer.errors import InventoryError
from installer.fleet.inventory.model import PRIORITY_VAR, Group, Host, Inventory

__all__ = ["InventoryData"]


class _DraftGroup:
    """A group while reading (ansible's inventory.group.Group): parents known, no depth yet."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hosts: list[str] = []
        self.children: list[_DraftGroup] = []
        self.parents: list[_DraftGroup] = []
        self.vars: dict[str, Any] = {}
        self.priority = 1

    def ancestors(self) -> set[_DraftGroup]:
        """Every group this one is (transitively) a child of."""
        seen: set[_DraftGroup] = set()
        todo = list(self.parents)
        while todo:
            group = todo.pop()
            if group not in seen:
                seen.add(group)
                todo.extend(group.parents)
        return seen


class InventoryData:
    """An inventory being read from `path`; starts with the groups `all` and `ungrouped`."""

    def __init__(self, path: str) -> None:
        self.path = path
        #: The line being read (1-based; 0 before the first), blamed in errors.
        self.line = 0
        self.hosts: dict[str, Host] = {}
        self._groups: dict[str, _DraftGroup] = {}
        for name in ("all", "ungrouped"):
            self.add_group(name)
        self.add_child("all", "ungrouped")

    def error(self, message: str, line: int | None = None) -> InventoryError:
        """An InventoryError at `line` (default: the line being read)."""
        return InventoryError(self.path, self.line if line is None else line, message)

    def has_group(self, name: str) -> bool:
        """Whether the group `name` has been declared."""
        return name in self._groups

    def add_group(self, name: str) -> None:
        """Declare a group (no-op if it exists)."""
        if name not in self._groups:
            self._groups[name] = _DraftGroup(name)

    def add_host(self, name: str, group: str, port: int | None) -> None:
        """Add a host (once) and make it a direct member of `group` (once)."""
        if not name:
            raise self.error("Invalid empty host name provided")
        if name not in self.hosts:
            host = Host(name)
            if port:
                host.vars["ansible_port"] = port
            self.hosts[name] = host
        if name not in self._groups[group].hosts:
            self._groups[group].hosts.append(name)

    def set_variable(self, entity: str, key: str, value: Any) -> None:
        """Set a variable on the group `entity`, or else on the host `entity`."""
        # Like Ansible: a group of the same name wins over a host.
        if entity in self._groups:
            group = self._groups[entity]
            if key == PRIORITY_VAR:
                try:
                    group.priority = int(value)
                except (TypeError, ValueError, OverflowError):
                    raise self.error(f"{PRIORITY_VAR} must be an integer, got {value!r}") from None
            else:
                group.vars[key] = value
        else:
            self.hosts[entity].vars[key] = value

    def add_child(self, parent: str, child: str, line: int | None = None) -> None:
        """Make `child` a child group of `parent`; a loop is an error at `line`."""
        group, kid = self._groups[parent], self._groups[child]
        if group is kid:
            raise self.error(f"group '{parent}' cannot be a child of itself", line)
        if kid in group.children:
            return
        if kid in group.ancestors():
            raise self.error(
                f"Adding group '{child}' as child to '{parent}' creates a recursive "
                "dependency loop.",
                line,
            )
        group.children.append(kid)
        if group not in kid.parents:
            kid.parents.append(group)

    def reconcile(self) -> Inventory:
        """The finished Inventory, after Ansible's reconcile_inventory."""
        all_group, ungrouped = self._groups["all"], self._groups["ungrouped"]
        for group in list(self._groups.values()):
            if group is not all_group and not group.parents:
                self.add_child("all", group.name)
        for name in self.hosts:
            direct = [g for g in self._groups.values() if name in g.hosts]
            mine: set[_DraftGroup] = set(direct)
            for group in direct:
                mine |= group.ancestors()
            if ungrouped in mine:
                if mine - {all_group, ungrouped} and name in ungrouped.hosts:
                    ungrouped.hosts.remove(name)
            elif not mine - {all_group}:
                if name in self._groups:  # Ansible's add_child prefers the group of that name
                    self.add_child("ungrouped", name)
                else:
                    ungrouped.hosts.append(name)
        depths = self._depths()
        groups = {
            g.name: Group(
                g.name,
                hosts=list(g.hosts),
                children=[c.name for c in g.children],
                vars=g.vars,
                priority=g.priority,
                depth=depths[g.name],
            )
            for g in self._groups.values()
        }
        return Inventory(self.path, self.hosts, groups)

    def _depths(self) -> dict[str, int]:
        """Longest path from `all`: Ansible's Group.depth once every group is under `all`."""
        depths: dict[str, int] = {}

        def depth(group: _DraftGroup) -> int:
            if group.name not in depths:
                depths[group.name] = max((depth(p) + 1 for p in group.parents), default=0)
            return depths[group.name]

        for group in self._groups.values():
            depth(group)
        return depths
