"""Read Ansible INI inventories exactly as ansible-core's `ini` inventory plugin does.

An inventory that works with `ansible-playbook -i FILE` works here unchanged and
means the same thing: the same hosts, groups, group tree and variables, with
the same Python types (host-line and `:vars` values go through
`ast.literal_eval`, as in ansible-core 2.19). `Inventory.to_ansible_list()` is
what `ansible-inventory -i FILE --list` prints, `Inventory.host_vars()` what
`ansible-inventory --host NAME` prints, and `Inventory.select()` the hosts an
`ansible-playbook --limit PATTERN` run targets, in the same order.

Value typing, as Ansible does it: on a host line the value is a shlex token
(quotes already removed, ` #` starts a comment), so `port=2222` is an int,
`v=true` the string "true", `v=True` a bool, and keeping `'042'` a string or
passing a dict takes double quoting: `v="'042'"`, `s="{'work_mem': '8MB'}"`.
In a `:vars` section the value is the rest of the line, quotes included, so
`s={'work_mem': '8MB'}` is a dict and `v='042'` a string. Strings that are not
Python literals stay as written.

Ansible quirks kept on purpose, because an inventory must mean the same thing
to both tools: a host line whose host has the name of an existing group puts
its variables on that group; `a*` as a pattern matches the group `all`; names
with dashes or dots are accepted as group names (Ansible's default setting).

Where Ansible would print a warning and carry on with an empty inventory (any
line it cannot parse makes it drop the whole file), this module raises
`InventoryError` naming the file and the line. It also refuses non-UTF-8 bytes
outside comments, which Ansible would show as '?'.

This is pure logic: the only I/O is reading the file in `load_inventory`.
Ansible itself is not imported; it is only used by the tests, as the reference.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import json
import os
import re
import shlex
import string
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from installer.errors import InventoryError, UsageError

__all__ = [
    "INTERNAL_VARS",
    "Group",
    "Host",
    "Inventory",
    "InventoryError",
    "UntrustedStr",
    "jsonable",
    "load_inventory",
    "localhost_inventory",
    "parse_inventory",
]

#: Variables ansible-inventory never prints (magic and play variables; ansible's
#: constants.INTERNAL_STATIC_VARS). Set in an inventory, they are dropped from
#: `--list` and `--host` output, so `host_vars()` drops them too.
INTERNAL_VARS = frozenset(
    {
        "ansible_async_path",
        "ansible_collection_name",
        "ansible_config_file",
        "ansible_dependent_role_names",
        "ansible_diff_mode",
        "ansible_facts",
        "ansible_forks",
        "ansible_inventory_sources",
        "ansible_limit",
        "ansible_play_batch",
        "ansible_play_hosts",
        "ansible_play_hosts_all",
        "ansible_play_role_names",
        "ansible_playbook_python",
        "ansible_role_name",
        "ansible_role_names",
        "ansible_run_tags",
        "ansible_skip_tags",
        "ansible_verbosity",
        "ansible_version",
        "inventory_dir",
        "inventory_file",
        "inventory_hostname",
        "inventory_hostname_short",
        "groups",
        "group_names",
        "hostvars",
        "playbook_dir",
        "play_hosts",
        "role_name",
        "role_names",
        "role_path",
        "role_uuid",
    }
)

_PRIORITY_VAR = "ansible_group_priority"
_COMMENT_MARKERS = ("#", ";")
_LOCALHOST_PATH = "<implicit localhost>"


# ---------------------------------------------------------------------------
# Public data model
# ---------------------------------------------------------------------------


@dataclass
class Host:
    """One inventory host and the variables set on its own lines.

    `vars` holds host-line variables, plus `ansible_port` from `name:port`.
    Group variables are merged in by `Inventory.host_vars()`.
    """

    name: str
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class Group:
    """One group: its direct hosts and child groups (in file order) and its own vars.

    `ansible_group_priority` is not a variable: it is kept in `priority`, as
    Ansible does. `depth` is the longest path from `all` (0 for `all`).
    """

    name: str
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    priority: int = 1
    depth: int = 0


class Inventory:
    """A parsed inventory: hosts and groups in file order, `all` and `ungrouped` included."""

    def __init__(self, path: str, hosts: dict[str, Host], groups: dict[str, Group]) -> None:
        self.path = path
        self.hosts = hosts
        self.groups = groups
        self._parents: dict[str, list[str]] = {name: [] for name in groups}
        for group in groups.values():
            for child in group.children:
                self._parents[child].append(group.name)
        self._member_of: dict[str, list[str]] = {name: [] for name in hosts}
        for group in groups.values():
            for host in group.hosts:
                self._member_of[host].append(group.name)

    def __repr__(self) -> str:
        return f"Inventory({self.path!r}, {len(self.hosts)} hosts, {len(self.groups)} groups)"

    # -- group tree -------------------------------------------------------

    def ancestors(self, group: str) -> set[str]:
        """Every group `group` is (transitively) a child of."""
        seen: set[str] = set()
        todo = list(self._parents[group])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self._parents[name])
        return seen

    def host_groups(self, name: str) -> list[str]:
        """The groups a host belongs to, directly or through child groups, `all` included.

        In inventory order (the order groups first appear in the file).
        """
        mine: set[str] = set()
        for group in self._member_of[name]:
            mine.add(group)
            mine |= self.ancestors(group)
        return [group for group in self.groups if group in mine]

    def group_hosts(self, group: str) -> list[str]:
        """The hosts of a group and of all its descendants, in Ansible's order.

        Ansible walks the child groups breadth first, starting with the group
        itself and its direct children in file order. Where two groups on the
        same level both have children, Ansible visits them in Python set order
        (which changes from run to run); this walks them in file order.
        """
        ordered = [group, *self.groups[group].children]
        seen: dict[str, None] = {}
        level = list(dict.fromkeys(self.groups[group].children))
        while level:
            seen.update(dict.fromkeys(level))
            following: dict[str, None] = {}
            for name in level:
                for child in self.groups[name].children:
                    following[child] = None
                    if child not in seen:
                        ordered.append(child)
            level = [name for name in following if name not in seen]
        hosts: dict[str, None] = {}
        for name in ordered:
            for host in self.groups[name].hosts:
                hosts.setdefault(host)
        return list(hosts)

    # -- variables ----------------------------------------------------------

    def host_vars(self, name: str) -> dict[str, Any]:
        """A host's variables merged as Ansible merges inventory variables.

        Order (later wins): `all`, then the host's other groups sorted by
        (depth, ansible_group_priority, name), so children beat parents and
        same-depth groups merge alphabetically, then the host's own vars.
        The result is what `ansible-inventory -i FILE --host NAME` prints.
        """
        if name not in self.hosts:
            raise KeyError(name)
        merged: dict[str, Any] = dict(self.groups["all"].vars)
        groups = [self.groups[g] for g in self.host_groups(name) if g != "all"]
        for group in sorted(groups, key=lambda g: (g.depth, g.priority, g.name)):
            merged.update(group.vars)
        merged.update(self.hosts[name].vars)
        return {k: copy.deepcopy(v) for k, v in merged.items() if k not in INTERNAL_VARS}

    def group_vars(self, name: str) -> dict[str, Any]:
        """A group's own variables as `ansible-inventory --export` shows them."""
        group = self.groups[name]
        result = {k: copy.deepcopy(v) for k, v in group.vars.items() if k not in INTERNAL_VARS}
        if group.priority != 1:
            result[_PRIORITY_VAR] = group.priority
        return result

    # -- ansible-inventory views ---------------------------------------------

    def to_ansible_list(self, limit: str | None = None, export: bool = False) -> dict[str, Any]:
        """The structure `ansible-inventory -i FILE --list [--limit L] [--export]` prints.

        Values are JSON-ready (dict keys converted to strings as Ansible's
        encoder does), so this equals `json.loads()` of Ansible's output.
        """
        available = set(self.select(limit)) if limit else set(self.hosts)
        results: dict[str, Any] = {}
        seen: set[str] = set()

        def visit(name: str) -> None:
            group = self.groups[name]
            entry: dict[str, Any] = {}
            if name != "all":
                entry["hosts"] = [h for h in group.hosts if h in available]
            entry["children"] = list(group.children)
            for child in group.children:
                if child not in seen:
                    seen.add(child)
                    visit(child)
            if export:
                entry["vars"] = jsonable(self.group_vars(name), mark_untrusted=True)
            entry = {k: v for k, v in entry.items() if v}
            if entry:
                results[name] = entry

        visit("all")
        hostvars: dict[str, Any] = {}
        for host in self.select(limit):
            if export:
                hvars = {
                    k: copy.deepcopy(v)
                    for k, v in self.hosts[host].vars.items()
                    if k not in INTERNAL_VARS
                }
            else:
                hvars = self.host_vars(host)
            if hvars:
                hostvars[host] = jsonable(hvars, mark_untrusted=True)
        results["_meta"] = {"hostvars": hostvars, "profile": "inventory_legacy"}
        return results

    def graph(self, group: str = "all", show_vars: bool = False) -> str:
        """The tree `ansible-inventory -i FILE --graph [--vars] [GROUP]` prints."""
        if group not in self.groups:
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
            for child in self.groups[name].children:
                visit(child, depth)
            if name != "all":
                for host in self.groups[name].hosts:
                    lines.append(name_at(host, depth))
                    if show_vars:
                        show(self.host_vars(host), depth + 1)
            if show_vars:
                show(self.group_vars(name), depth)

        visit(group, 0)
        return "\n".join(lines)

    # -- host patterns -------------------------------------------------------

    def select(self, pattern: str | None) -> list[str]:
        """The hosts an `ansible-playbook --limit PATTERN` run targets, in run order.

        PATTERN is Ansible's: host or group names, fnmatch globs, `~regex`,
        separated by `,` (or `:`), with `!` exclusion, `&` intersection and
        `group[0]`, `group[-1]`, `group[1:3]`, `group[2:]` subscripts.
        `None` or an empty pattern selects every host. The order is the order
        of `all`, as in a play on `hosts: all` limited by `--limit`. No match
        gives `[]`; a bad regex or an out-of-range subscript raises UsageError.
        The implicit localhost is never added.
        """
        every = self.group_hosts("all")
        if pattern is None or not pattern.strip():
            return every
        patterns = _split_host_pattern(pattern)
        for item in patterns:
            if item.startswith("@"):
                raise UsageError(
                    f"limit files ({item}) are not supported: read the file and pass its hosts"
                )
        matched = set(self.match(patterns))
        return [h for h in every if h in matched]

    def match(self, patterns: str | list[str]) -> list[str]:
        """Hosts matching host patterns, in the order Ansible evaluates them.

        This is `ansible -i FILE PATTERN --list-hosts` (minus the implicit
        localhost); `select()` is the `--limit` view of it.
        """
        if isinstance(patterns, str):
            patterns = _split_host_pattern(patterns)
        hosts: list[str] = []
        for item in _order_patterns(patterns):
            if item in self.hosts:  # a plain host name, never a pattern
                hosts.append(item)
                continue
            found = self._match_one(item)
            if item[0] == "!":
                excluded = set(found)
                hosts = [h for h in hosts if h not in excluded]
            elif item[0] == "&":
                kept = set(found)
                hosts = [h for h in hosts if h in kept]
            else:
                present = set(hosts)
                hosts.extend(h for h in found if h not in present)
        return list(dict.fromkeys(hosts))

    def _match_one(self, pattern: str) -> list[str]:
        if pattern[0] in "&!":
            pattern = pattern[1:]
        expr, subscript = _split_subscript(pattern)
        hosts = self._enumerate(expr)
        if not hosts or subscript is None:
            return hosts
        start, end = subscript
        try:
            if end:
                if end == -1:
                    end = len(hosts) - 1
                return hosts[start : end + 1]
            return [hosts[start]]
        except IndexError:
            raise UsageError(f"No hosts matched the subscripted pattern '{pattern}'") from None

    def _enumerate(self, pattern: str) -> list[str]:
        results: list[str] = []
        groups = _match_list(self.groups, pattern)
        for group in groups:
            results.extend(self.group_hosts(group))
        if not groups or pattern[0] == "~" or any(c in pattern for c in ".?*["):
            results.extend(_match_list(self.hosts, pattern))
        return results


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def load_inventory(path: str) -> Inventory:
    """Read and parse an INI inventory file. Raises InventoryError on any problem."""
    if os.path.splitext(path)[1] == ".toml":
        raise InventoryError(path, None, "TOML inventories are not supported; use the INI format")
    if os.path.isdir(path):
        raise InventoryError(path, None, "is a directory; give the path of an INI inventory file")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InventoryError(path, None, f"cannot read the inventory: {exc.strerror}") from exc
    return _Parser(path).parse(_decode_lines(data))


def parse_inventory(text: str, path: str = "<string>") -> Inventory:
    """Parse INI inventory text; `path` is only used in error messages."""
    return _Parser(path).parse(text.splitlines())


def localhost_inventory() -> Inventory:
    """The implicit inventory used without -i: one host, `localhost`, reached locally."""
    hosts = {"localhost": Host("localhost", {"ansible_connection": "local"})}
    groups = {
        "all": Group("all", children=["ungrouped"]),
        "ungrouped": Group("ungrouped", hosts=["localhost"], depth=1),
    }
    return Inventory(_LOCALHOST_PATH, hosts, groups)


def _decode_lines(data: bytes) -> list[str]:
    """Decode as Ansible does: UTF-8, undecodable bytes kept as surrogate escapes.

    The parser accepts such bytes in comments (as Ansible does) and rejects
    them anywhere else.
    """
    return data.decode("utf-8", "surrogateescape").splitlines()


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


class _ValueError(Exception):
    """A value Ansible would choke on; the parser adds file and line."""


def _parse_value(text: str) -> Any:
    """A value as Ansible reads it: a Python literal where it parses, else the string.

    Tuples and sets become lists, bytes become (untrusted) str, complex numbers
    and Ellipsis stay strings.
    """
    value: Any = text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    except Exception as exc:  # Ansible gives up on the whole file here
        raise _ValueError(f"cannot evaluate the value {text!r}: {exc}") from None
    return _coerce(value, text)


def _coerce(value: Any, text: str) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_coerce(v, text) for v in value]
    if isinstance(value, dict):
        for key in value:
            if key is not None and not isinstance(key, (str, int, float)):
                raise _ValueError(
                    f"dict keys must be strings, numbers, booleans or None, got "
                    f"{type(key).__name__} {key!r} in {text!r} (Ansible cannot print it either)"
                )
        return {k: _coerce(v, text) for k, v in value.items()}
    if value is Ellipsis:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        return UntrustedStr(value.decode("utf-8", "surrogateescape"))
    return value


class UntrustedStr(str):
    """A string from a bytes literal (`b'x'`): Ansible marks it as not to be templated.

    It is an ordinary `str` everywhere; only `to_ansible_list()` shows it the way
    `ansible-inventory --list` does, as `{"__ansible_unsafe": "x"}`.
    """

    __slots__ = ()


def _json_key(key: Any) -> str:
    return key if isinstance(key, str) else json.dumps(key)


def jsonable(value: Any, *, mark_untrusted: bool = False) -> Any:
    """A variable value as Ansible's JSON encoder sees it.

    Dict keys become strings (`1` → `"1"`, `None` → `"null"`, `True` → `"true"`).
    With `mark_untrusted` (the `--list` view), an `UntrustedStr` becomes
    `{"__ansible_unsafe": "..."}`.
    """
    if mark_untrusted and isinstance(value, UntrustedStr):
        return {"__ansible_unsafe": str(value)}
    if isinstance(value, dict):
        return {_json_key(k): jsonable(v, mark_untrusted=mark_untrusted) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v, mark_untrusted=mark_untrusted) for v in value]
    return value


# ---------------------------------------------------------------------------
# Host names, ports and ranges (ansible/parsing/utils/addresses.py semantics)
# ---------------------------------------------------------------------------

_NUMERIC_RANGE = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_HEX_RANGE = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]"
_ALNUM_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_IPV6_PART = rf"(?:[0-9a-f]{{1,4}}|{_HEX_RANGE})"
_IPV4_PART = rf"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{_NUMERIC_RANGE})"
_LABEL = rf"(?:[\w]|{_ALNUM_RANGE})(?:[\w_-]|{_ALNUM_RANGE})*(?<![_-])"

_BRACKETED_HOSTPORT = re.compile(r"^\[(.+)\]:([0-9]+)$")
_HOSTPORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_IPV4 = re.compile(rf"^(?:{_IPV4_PART}\.){{3}}{_IPV4_PART}$", re.I)
_IPV6 = re.compile(
    "^("
    + "|".join(
        [
            rf"(?:{_IPV6_PART}:){{7}}{_IPV6_PART}",
            rf"(?:{_IPV6_PART}:){{1,6}}:",
            rf"(?:{_IPV6_PART}:)(?::{_IPV6_PART}){{1,6}}",
            rf"(?:{_IPV6_PART}:){{2}}(?::{_IPV6_PART}){{1,5}}",
            rf"(?:{_IPV6_PART}:){{3}}(?::{_IPV6_PART}){{1,4}}",
            rf"(?:{_IPV6_PART}:){{4}}(?::{_IPV6_PART}){{1,3}}",
            rf"(?:{_IPV6_PART}:){{5}}(?::{_IPV6_PART}){{1,2}}",
            rf"(?:{_IPV6_PART}:){{6}}(?::{_IPV6_PART})",
            rf":(?::{_IPV6_PART}){{1,6}}",
            rf"{_IPV6_PART}?::",
            rf"(?:0:){{6}}(?:{_IPV6_PART}\.){{3}}{_IPV6_PART}",
            rf"::(?:ffff:)?(?:{_IPV6_PART}\.){{3}}{_IPV6_PART}",
            rf"(?:0:){{5}}ffff:(?:{_IPV6_PART}\.){{3}}{_IPV6_PART}",
        ]
    )
    + ")$",
    re.I,
)
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.I)


def _parse_address(address: str) -> tuple[str, int | None] | None:
    """Split `host`, `host:port`, `[host]:port`; None if not a recognisable host.

    Like Ansible, both port forms are tried in turn, and IPv6 addresses take a
    port only in the bracketed form.
    """
    port: int | None = None
    for regex in (_BRACKETED_HOSTPORT, _HOSTPORT):
        m = regex.match(address)
        if m:
            address, port = m.group(1), int(m.group(2))
    if any(regex.match(address) for regex in (_IPV4, _IPV6, _HOSTNAME)):
        return address, port
    return None


class _RangeError(Exception):
    """A malformed host range; the parser adds file and line."""


def _expand_hostname_range(pattern: str) -> list[str]:
    """Expand `db[01:03]x`, `db[a:c]`, `db[1:9:2]` (several ranges allowed)."""
    parts = pattern.replace("[", "|", 1).replace("]", "|", 1).split("|")
    if len(parts) != 3:
        raise _RangeError(
            f"malformed host range in {pattern!r}: expected name[begin:end] or "
            "name[begin:end:step], and no '|' in host names"
        )
    head, inner, tail = parts
    bounds = inner.split(":")
    if len(bounds) not in (2, 3):
        raise _RangeError(f"host range must be begin:end or begin:end:step, got [{inner}]")
    begin, end = bounds[0] or "0", bounds[1]
    step = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise _RangeError(f"host range must specify end value, got [{inner}]")
    width = 0
    if begin[0] == "0" and len(begin) > 1:
        width = len(begin)
        if width != len(end):
            raise _RangeError(
                "host range must specify equal-length begin and end formats: "
                f"[{inner}] ('{begin}' has {len(begin)} characters, '{end}' has {len(end)}); "
                f"write [{begin}:{end.zfill(width)}] or drop the leading zeros"
            )
    seq: Iterable[str | int]
    try:
        i_begin = string.ascii_letters.index(begin)
        i_end = string.ascii_letters.index(end)
        if i_begin > i_end:
            raise _RangeError(f"host range must have begin <= end, got [{inner}]")
        seq = list(string.ascii_letters[i_begin : i_end + 1 : int(step)])
    except ValueError:  # not a letter range
        try:
            seq = range(int(begin), int(end) + 1, int(step))
        except ValueError as exc:
            raise _RangeError(
                f"invalid host range [{inner}]: begin and end must be numbers or single "
                f"letters and step a number other than 0 ({exc})"
            ) from None
    names: list[str] = []
    for item in seq:
        text = str(item).zfill(width) if width else str(item)
        name = head + text + tail
        if "[" in name:
            names.extend(_expand_hostname_range(name))
        else:
            names.append(name)
    return names


def _expand_hostpattern(pattern: str) -> tuple[list[str], int | None]:
    """Hostnames and port of a host line's first token, as the ini plugin reads it."""
    parsed = _parse_address(pattern)
    name, port = parsed if parsed is not None else (pattern, None)
    names = _expand_hostname_range(name) if "[" in name else [name]
    if pattern.strip().endswith(":") and port is None:
        raise _RangeError(
            f"Invalid host pattern '{pattern}' supplied, ending in ':' is not allowed, "
            "this character is reserved to provide a port."
        )
    for host in names:
        if host.strip() == "---":
            raise _RangeError(
                f"Invalid host pattern '{pattern}' supplied, '---' is normally a sign "
                "this is a YAML file."
            )
    return names, port


# ---------------------------------------------------------------------------
# The parser: one pass, as ansible's ini plugin and InventoryData
# ---------------------------------------------------------------------------

_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes kept by the surrogateescape decoding
_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:\#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:\#.*)?$")


class _G:
    """A group while parsing (ansible's inventory.group.Group)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hosts: list[str] = []
        self.children: list[_G] = []
        self.parents: list[_G] = []
        self.vars: dict[str, Any] = {}
        self.priority = 1

    def ancestors(self) -> set[_G]:
        seen: set[_G] = set()
        todo = list(self.parents)
        while todo:
            group = todo.pop()
            if group not in seen:
                seen.add(group)
                todo.extend(group.parents)
        return seen


@dataclass
class _Pending:
    """A group referenced before its section (ansible's pending_declarations)."""

    kind: str  # "vars" or "children"
    line: int
    parents: list[tuple[str, int]] = field(default_factory=list)


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path
        self.line = 0
        self.groups: dict[str, _G] = {}
        self.hosts: dict[str, Host] = {}
        for name in ("all", "ungrouped"):
            self.groups[name] = _G(name)
        self._add_child("all", "ungrouped")

    def error(self, message: str, line: int | None = None) -> InventoryError:
        return InventoryError(self.path, self.line if line is None else line, message)

    # -- InventoryData operations ------------------------------------------

    def _add_host(self, name: str, group: str, port: int | None) -> None:
        if not name:
            raise self.error("Invalid empty host name provided")
        if name not in self.hosts:
            host = Host(name)
            if port:
                host.vars["ansible_port"] = port
            self.hosts[name] = host
        if name not in self.groups[group].hosts:
            self.groups[group].hosts.append(name)

    def _set_variable(self, entity: str, key: str, value: Any) -> None:
        # Like Ansible: a group of the same name wins over a host.
        if entity in self.groups:
            group = self.groups[entity]
            if key == _PRIORITY_VAR:
                try:
                    group.priority = int(value)
                except (TypeError, ValueError, OverflowError):
                    raise self.error(f"{_PRIORITY_VAR} must be an integer, got {value!r}") from None
            else:
                group.vars[key] = value
        else:
            self.hosts[entity].vars[key] = value

    def _add_child(self, parent: str, child: str, line: int | None = None) -> None:
        group, kid = self.groups[parent], self.groups[child]
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

    def _check_utf8(self, *texts: str) -> None:
        """Reject bytes that are not UTF-8 outside comments (Ansible would print '?')."""
        for text in texts:
            if _UNDECODABLE.search(text):
                raw = text.encode("utf-8", "surrogateescape")
                raise self.error(f"{raw!r} is not valid UTF-8: save the inventory as UTF-8")

    # -- the file -------------------------------------------------------------

    def parse(self, lines: list[str]) -> Inventory:
        pending: dict[str, _Pending] = {}
        group, state = "ungrouped", "hosts"
        for self.line, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line[0] in _COMMENT_MARKERS:
                continue
            m = _SECTION.match(line)
            if m:
                self._check_utf8(m.group(1), m.group(2) or "")
                group, state = m.group(1), m.group(2) or "hosts"
                if state not in ("hosts", "children", "vars"):
                    raise self.error(
                        f"Section [{group}:{state}] has unknown type: {state} "
                        "(use [group], [group:vars] or [group:children])"
                    )
                if group not in self.groups:
                    if state == "vars" and group not in pending:
                        pending[group] = _Pending("vars", self.line)
                    self.groups[group] = _G(group)
                if group in pending and state != "vars":
                    if pending[group].kind == "children":
                        self._add_pending_children(group, pending)
                    else:
                        del pending[group]
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
                self._set_variable(group, key, value)
            else:
                self._child_line(line, group, pending)
        for name, decl in pending.items():
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
        return self._finish()

    def _add_pending_children(self, group: str, pending: dict[str, _Pending]) -> None:
        for parent, line in pending[group].parents:
            self._add_child(parent, group, line)
            if parent in pending and pending[parent].kind == "children":
                self._add_pending_children(parent, pending)
        del pending[group]

    def _host_line(self, line: str, group: str) -> None:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise self.error(f"Error parsing host definition '{line}': {exc}") from None
        if not tokens:
            raise self.error(f"Expected a host name, got: {line}")
        self._check_utf8(*tokens)
        try:
            names, port = _expand_hostpattern(tokens[0])
        except _RangeError as exc:
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
            self._add_host(name, group, port)
            for key, value in variables.items():
                self._set_variable(name, key, copy.deepcopy(value))

    def _variable_line(self, line: str) -> tuple[str, Any]:
        if "=" not in line:
            raise self.error(f"Expected key=value, got: {line}")
        key, text = (part.strip() for part in line.split("=", 1))
        self._check_utf8(key, text)
        return key, self._value(text)

    def _value(self, text: str) -> Any:
        try:
            return _parse_value(text)
        except _ValueError as exc:
            raise self.error(str(exc)) from None

    def _child_line(self, line: str, group: str, pending: dict[str, _Pending]) -> None:
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
        if child in self.groups:
            self._add_child(group, child)
        elif child in pending:
            pending[child].parents.append((group, self.line))
        else:
            pending[child] = _Pending("children", self.line, [(group, self.line)])

    # -- reconcile_inventory ------------------------------------------------

    def _finish(self) -> Inventory:
        all_group, ungrouped = self.groups["all"], self.groups["ungrouped"]
        for group in list(self.groups.values()):
            if group is not all_group and not group.parents:
                self._add_child("all", group.name)
        for name in self.hosts:
            direct = [g for g in self.groups.values() if name in g.hosts]
            mine: set[_G] = set(direct)
            for group in direct:
                mine |= group.ancestors()
            if ungrouped in mine:
                if mine - {all_group, ungrouped} and name in ungrouped.hosts:
                    ungrouped.hosts.remove(name)
            elif not mine - {all_group}:
                if name in self.groups:  # Ansible's add_child prefers the group of that name
                    self._add_child("ungrouped", name)
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
            for g in self.groups.values()
        }
        return Inventory(self.path, self.hosts, groups)

    def _depths(self) -> dict[str, int]:
        """Longest path from `all`: Ansible's Group.depth once every group is under `all`."""
        depths: dict[str, int] = {}

        def depth(group: _G) -> int:
            if group.name not in depths:
                depths[group.name] = max((depth(p) + 1 for p in group.parents), default=0)
            return depths[group.name]

        for group in self.groups.values():
            depth(group)
        return depths


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


# ---------------------------------------------------------------------------
# Host patterns (ansible/inventory/manager.py semantics)
# ---------------------------------------------------------------------------

_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
_COLON_SPLIT = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")


def _split_host_pattern(pattern: str) -> list[str]:
    """`a,b:c` → ['a', 'b', 'c']; a lone host, host:port, IPv6 or range stays whole."""
    if "," in pattern:
        parts = pattern.split(",")
    elif _parse_address(pattern) is not None:
        parts = [pattern]
    else:
        parts = _COLON_SPLIT.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


def _order_patterns(patterns: list[str]) -> list[str]:
    """Plain patterns first, then `&` ones, then `!` ones; `all` if no plain one."""
    regular = [p for p in patterns if p and p[0] not in "!&"]
    intersect = [p for p in patterns if p and p[0] == "&"]
    exclude = [p for p in patterns if p and p[0] == "!"]
    return (regular or ["all"]) + intersect + exclude


def _split_subscript(pattern: str) -> tuple[str, tuple[int, int | None] | None]:
    if pattern[0] == "~":
        return pattern, None
    m = _SUBSCRIPT.match(pattern)
    if not m:
        return pattern, None
    expr, index, start, _sep, end = m.groups()
    if index:
        return expr, (int(index), None)
    return expr, (int(start), int(end) if end else -1)


def _match_list(items: Iterable[str], pattern: str) -> list[str]:
    try:
        if pattern[0] == "~":
            regex = re.compile(pattern[1:])
        else:
            regex = re.compile(fnmatch.translate(pattern))
    except re.error as exc:
        raise UsageError(f"Invalid host list pattern: {pattern} ({exc})") from None
    return [item for item in items if regex.match(item)]
