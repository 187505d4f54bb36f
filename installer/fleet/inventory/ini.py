"""The INI inventory parser: ansible-core's `ini` inventory plugin, line by line.

`load_inventory(PATH)` reads a file, `parse_inventory(TEXT)` a string; both
give the `Inventory` that `ansible-playbook -i FILE` would see: `[group]`,
`[group:vars]` and `[group:children]` sections, host lines `name[:port]
[key=value ...]` with host ranges (`ranges.py`), values typed as Ansible types
them (`values.py`), groups used before their section resolved when the file
ends, names with dashes or dots accepted as group names (Ansible's default).

Where Ansible would print a warning and carry on with an empty inventory (any
line it cannot parse makes it drop the whole file), this raises
`InventoryError` naming the file and the line. It also refuses non-UTF-8 bytes
outside comments, which Ansible would show as '?'.

The only I/O of the package is reading the file in `load_inventory`.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from installer.errors import InventoryError
from installer.fleet.inventory import varsfiles, yamlinv
from installer.fleet.inventory.data import InventoryData
from installer.fleet.inventory.model import Inventory
from installer.fleet.inventory.ranges import HostPatternError, expand_host_pattern
from installer.fleet.inventory.values import InvalidValueError, parse_value
from installer.fleet.inventory.vault import VaultSecret

__all__ = ["load_inventory", "parse_inventory"]

_COMMENT_MARKERS = ("#", ";")
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes kept by the surrogateescape decoding
_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:\#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:\#.*)?$")


def load_inventory(path: str, vault: list[VaultSecret] | None = None,
                   extra_vars: dict[str, Any] | None = None) -> Inventory:
    """Read and parse an inventory file (INI; YAML when it ends in .yml, .yaml or .json:
    installer.fleet.inventory.yamlinv), with the group_vars/ and host_vars/ beside it
    (varsfiles; vaulted ones decrypted with `vault`), and the extra vars given (extravars).
    Raises InventoryError on any problem."""
    if os.path.splitext(path)[1] == ".toml":
        raise InventoryError(path, None, "TOML inventories are not supported; use the INI format")
    if os.path.isdir(path):
        raise InventoryError(path, None, "is a directory; give the path of an INI inventory file")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InventoryError(path, None, f"cannot read the inventory: {exc.strerror}") from exc
    if os.path.splitext(path)[1] in yamlinv.EXTENSIONS:
        inventory = yamlinv.parse_yaml_inventory(data.decode("utf-8", "replace"), path, vault)
    else:
        inventory = _IniParser(path).parse(_decode_lines(data))
    base = varsfiles.inventory_basedir(path)
    inventory.set_file_vars(
        {g: varsfiles.load_entity_vars(os.path.join(base, "group_vars"), g, vault)
         for g in inventory.groups},
        {h: varsfiles.load_entity_vars(os.path.join(base, "host_vars"), h, vault)
         for h in inventory.hosts})
    inventory.extra_vars = dict(extra_vars or {})
    return inventory


def parse_inventory(text: str, path: str = "<string>") -> Inventory:
    """Parse INI inventory text; `path` is only used in error messages."""
    return _IniParser(path).parse(text.splitlines())


def _decode_lines(data: bytes) -> list[str]:
    """Decode as Ansible does: UTF-8, undecodable bytes kept as surrogate escapes.

    The parser accepts such bytes in comments (as Ansible does) and rejects
    them anywhere else.
    """
    return data.decode("utf-8", "surrogateescape").splitlines()


@dataclass
class _Pending:
    """A group referenced before its section (ansible's pending_declarations)."""

    kind: str  # "vars" or "children"
    line: int
    parents: list[tuple[str, int]] = field(default_factory=list)


class _IniParser:
    """One pass over the lines, as ansible's ini plugin makes it."""

    def __init__(self, path: str) -> None:
        self.data = InventoryData(path)
        self.pending: dict[str, _Pending] = {}

    def error(self, message: str, line: int | None = None) -> InventoryError:
        return self.data.error(message, line)

    def parse(self, lines: list[str]) -> Inventory:
        group, state = "ungrouped", "hosts"
        for self.data.line, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line[0] in _COMMENT_MARKERS:
                continue
            m = _SECTION.match(line)
            if m:
                group, state = self._section(m.group(1), m.group(2))
                continue
            if line.startswith("[") and line.endswith("]"):
                raise self.error(
                    f"Invalid section entry: '{line}'. Please make sure that there are no "
                    "spaces in the section entry, and that there are no other invalid characters"
                )
            if state == "hosts":
                self._host_line(line, group)
            elif state == "vars":
                key, value = self._variable_line(line)
                self.data.set_variable(group, key, value)
            else:
                self._child_line(line, group)
        self._check_pending()
        return self.data.reconcile()

    def _section(self, group: str, kind: str | None) -> tuple[str, str]:
        """Enter the section `[group]` or `[group:kind]`; returns (group, state)."""
        self._check_utf8(group, kind or "")
        state = kind or "hosts"
        if state not in ("hosts", "children", "vars"):
            raise self.error(
                f"Section [{group}:{state}] has unknown type: {state} "
                "(use [group], [group:vars] or [group:children])"
            )
        pending = self.pending
        if not self.data.has_group(group):
            if state == "vars" and group not in pending:
                pending[group] = _Pending("vars", self.data.line)
            self.data.add_group(group)
        if group in pending and state != "vars":
            if pending[group].kind == "children":
                self._add_pending_children(group)
            else:
                del pending[group]
        return group, state

    def _add_pending_children(self, group: str) -> None:
        pending = self.pending
        for parent, line in pending[group].parents:
            self.data.add_child(parent, group, line)
            if parent in pending and pending[parent].kind == "children":
                self._add_pending_children(parent)
        del pending[group]

    def _check_pending(self) -> None:
        """At the end of the file, a group still pending was never defined."""
        for name, decl in self.pending.items():
            if decl.kind == "vars":
                raise self.error(
                    f"Section [{name}:vars] not valid for undefined group {name!r}: "
                    f"declare it with [{name}] or [{name}:children]",
                    decl.line,
                )
            parent, line_number = decl.parents[0]
            raise self.error(
                f"Section [{parent}:children] includes undefined group {name!r}: "
                f"declare it with [{name}] or [{name}:children]",
                line_number,
            )

    def _host_line(self, line: str, group: str) -> None:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise self.error(f"Error parsing host definition '{line}': {exc}") from None
        if not tokens:
            raise self.error(f"Expected a host name, got: {line}")
        self._check_utf8(*tokens)
        try:
            names, port = expand_host_pattern(tokens[0])
        except HostPatternError as exc:
            raise self.error(str(exc) + _host_line_hint(line)) from None
        variables: dict[str, Any] = {}
        for token in tokens[1:]:
            if "=" not in token:
                raise self.error(
                    f"Expected key=value host variable assignment, got: {token} "
                    "(no spaces around '='; quote values that contain spaces)"
                )
            key, text = token.split("=", 1)
            variables[key] = self._value(text)
        for name in names:
            self.data.add_host(name, group, port)
            for key, value in variables.items():
                self.data.set_variable(name, key, copy.deepcopy(value))

    def _variable_line(self, line: str) -> tuple[str, Any]:
        if "=" not in line:
            raise self.error(f"Expected key=value, got: {line}")
        key, text = (part.strip() for part in line.split("=", 1))
        self._check_utf8(key, text)
        return key, self._value(text)

    def _value(self, text: str) -> Any:
        try:
            return parse_value(text)
        except InvalidValueError as exc:
            raise self.error(str(exc)) from None

    def _child_line(self, line: str, group: str) -> None:
        m = _GROUP_NAME.match(line)
        if not m:
            raise self.error(f"Expected group name, got: {line}")
        child = m.group(1)
        self._check_utf8(child)
        if child == "all":
            raise self.error(
                f"Adding group 'all' as child to '{group}' creates a recursive dependency "
                "loop: every group is already under 'all'"
            )
        if self.data.has_group(child):
            self.data.add_child(group, child)
        elif child in self.pending:
            self.pending[child].parents.append((group, self.data.line))
        else:
            self.pending[child] = _Pending("children", self.data.line, [(group, self.data.line)])

    def _check_utf8(self, *texts: str) -> None:
        """Reject bytes that are not UTF-8 outside comments (Ansible would print '?')."""
        for text in texts:
            if _UNDECODABLE.search(text):
                raw = text.encode("utf-8", "surrogateescape")
                raise self.error(f"{raw!r} is not valid UTF-8: save the inventory as UTF-8")


def _host_line_hint(line: str) -> str:
    """Point at the likely mistake when a host line is really a broken header."""
    if line.startswith("\ufeff"):
        return " (the file starts with a UTF-8 byte order mark: save it without one)"
    if line.startswith("["):
        return (
            " (if this is meant as a section header: nothing but a '# comment' may "
            "follow the closing ']')"
        )
    return ""
