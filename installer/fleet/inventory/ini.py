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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from installer.errors import InventoryError
from installer.fleet.inventory import varsfiles, yamlinv
from installer.fleet.inventory.data import InventoryData
from installer.fleet.inventory.model import Inventory
from installer.fleet.inventory.ranges import HostPatternError, expand_host_pattern
from installer.fleet.inventory.values import InvalidValueError, parse_value
from installer.fleet.inventory.vault import VaultSecret

__all__ = ["IGNORED", "inventory_files", "load_inventory", "parse_inventory"]

_COMMENT_MARKERS = ("#", ";")
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes kept by the surrogateescape decoding
_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:\#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:\#.*)?$")


def load_inventory(path: str | Sequence[str], vault: list[VaultSecret] | None = None,
                   extra_vars: dict[str, Any] | None = None) -> Inventory:
    """Read and parse inventory sources as ansible-core does with `-i` given once per
    source: files (INI; YAML when the name ends in .yml, .yaml or .json:
    installer.fleet.inventory.yamlinv) and directories (every inventory file in them,
    `inventory_files`), read in order into one inventory; then each source's group_vars/
    and host_vars/ (varsfiles; a later source's win; vaulted ones decrypted with `vault`),
    and the extra vars given (extravars). Raises InventoryError on any problem."""
    sources = [path] if isinstance(path, str) else list(path)
    if not sources:
        raise InventoryError("-i", None, "no inventory source given")
    data = InventoryData(sources[0])
    for source in sources:
        for file in inventory_files(source):
            _read_source(data, file, vault)
    inventory = data.reconcile()
    inventory.path = ", ".join(sources)
    group_vars: dict[str, dict[str, Any]] = {g: {} for g in inventory.groups}
    host_vars: dict[str, dict[str, Any]] = {h: {} for h in inventory.hosts}
    for source in sources:  # Ansible's get_vars_from_inventory_sources: later sources win
        base = varsfiles.inventory_basedir(source)
        for g in group_vars:
            group_vars[g].update(varsfiles.load_entity_vars(
                os.path.join(base, "group_vars"), g, vault))
        for h in host_vars:
            host_vars[h].update(varsfiles.load_entity_vars(
                os.path.join(base, "host_vars"), h, vault))
    inventory.set_file_vars(group_vars, host_vars)
    inventory.extra_vars = dict(extra_vars or {})
    return inventory


#: what Ansible never reads as an inventory in a directory source: hidden entries, the
#: vars folders, and INVENTORY_IGNORE_EXTS (ansible-core 2.19's defaults)
IGNORED = re.compile("|".join(
    ["^\\.", "^host_vars$", "^group_vars$", "^vars_plugins$"]
    + [re.escape(ext) + "$" for ext in (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md",
                                         ".txt", ".rst", ".orig", ".cfg", ".retry")]))


def inventory_files(source: str) -> list[str]:
    """The files a source stands for, in Ansible's order: the file itself, or a
    directory's entries sorted by name, IGNORED ones left out, sub-directories read the
    same way. A source that does not exist is an InventoryError."""
    if os.path.splitext(source)[1] == ".toml":
        raise InventoryError(source, None,
                             "TOML inventories are not supported; use the INI format")
    if not os.path.isdir(source):
        if not os.path.exists(source):
            raise InventoryError(source, None, "cannot read the inventory: No such file or "
                                 "directory")
        return [source]
    try:
        names = sorted(os.listdir(source))
    except OSError as exc:
        raise InventoryError(source, None,
                             f"cannot read the inventory folder: {exc.strerror}") from exc
    files: list[str] = []
    for name in names:
        if not IGNORED.search(name):
            files += inventory_files(os.path.join(source, name))
    return files


def _read_source(data: InventoryData, path: str, vault: list[VaultSecret] | None) -> None:
    """One inventory file into `data`."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise InventoryError(path, None, f"cannot read the inventory: {exc.strerror}") from exc
    if os.path.splitext(path)[1] in yamlinv.EXTENSIONS:
        yamlinv.read_yaml_inventory(data, raw.decode("utf-8", "replace"), path, vault)
    else:
        _IniParser(path, data).read(_decode_lines(raw))


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

    def __init__(self, path: str, data: InventoryData | None = None) -> None:
        self.data = data if data is not None else InventoryData(path)
        self.data.path, self.data.line = path, 0
        self.pending: dict[str, _Pending] = {}

    def error(self, message: str, line: int | None = None) -> InventoryError:
        return self.data.error(message, line)

    def parse(self, lines: list[str]) -> Inventory:
        self.read(lines)
        return self.data.reconcile()

    def read(self, lines: list[str]) -> None:
        """The file's lines into the inventory data (reconciled by the caller)."""
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
