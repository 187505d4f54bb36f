"""The inventory model: hosts, groups and the `Inventory`, with Ansible's variable merging.

An `Inventory` is what reading a source gives (see `ini.py`): hosts and groups
in file order, `all` and `ungrouped` included, the group tree, each host's and
group's own variables. It answers what Ansible would: the groups of a host,
the hosts of a group, a host's merged variables (`host_vars()`, what
`ansible-inventory --host` prints), the hosts a pattern selects (through
`patterns.py`) and the `ansible-inventory --list/--graph` views (through
`output.py`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from installer.fleet.inventory.output import ansible_graph, ansible_list
from installer.fleet.inventory.patterns import match_hosts, select_hosts

__all__ = [
    "INTERNAL_VARS",
    "PRIORITY_VAR",
    "Group",
    "Host",
    "Inventory",
    "localhost_inventory",
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

#: Not a variable: set on a group, it is kept in `Group.priority`, as Ansible does.
PRIORITY_VAR = "ansible_group_priority"

_LOCALHOST_PATH = "<implicit localhost>"


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
        #: variables from group_vars/ and host_vars/ files (varsfiles), per group and host
        self.group_file_vars: dict[str, dict[str, Any]] = {}
        self.host_file_vars: dict[str, dict[str, Any]] = {}
        #: -e/--extra-vars (extravars): above every other variable, in every host's
        self.extra_vars: dict[str, Any] = {}

    def set_file_vars(self, groups: dict[str, dict[str, Any]],
                      hosts: dict[str, dict[str, Any]]) -> None:
        """Take the group_vars/ and host_vars/ files' variables (empty ones left out)."""
        self.group_file_vars = {g: v for g, v in groups.items() if v}
        self.host_file_vars = {h: v for h, v in hosts.items() if v}

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

        Order (later wins), as Ansible's VariableManager: the inventory's `all` vars, then
        the host's other groups' sorted by (depth, ansible_group_priority, name), so
        children beat parents and same-depth groups merge alphabetically; then the
        group_vars/ files in the same order (`all` first); then the host's own inventory
        vars, then its host_vars/ files; extra vars last. The result is what
        `ansible-inventory -i FILE [-e ...] --host NAME` prints.
        """
        if name not in self.hosts:
            raise KeyError(name)
        merged: dict[str, Any] = dict(self.groups["all"].vars)
        groups = [self.groups[g] for g in self.host_groups(name) if g != "all"]
        ordered = sorted(groups, key=lambda g: (g.depth, g.priority, g.name))
        for group in ordered:
            merged.update(group.vars)
        for group_name in ["all", *(g.name for g in ordered)]:
            merged.update(self.group_file_vars.get(group_name, {}))
        merged.update(self.hosts[name].vars)
        merged.update(self.host_file_vars.get(name, {}))
        merged.update(self.extra_vars)
        return {k: copy.deepcopy(v) for k, v in merged.items() if k not in INTERNAL_VARS}

    def own_host_vars(self, name: str) -> dict[str, Any]:
        """A host's own variables (no group's; its host_vars/ files' included) as
        `ansible-inventory --export` shows them."""
        own = {**self.hosts[name].vars, **self.host_file_vars.get(name, {})}
        return {k: copy.deepcopy(v) for k, v in own.items() if k not in INTERNAL_VARS}

    def group_vars(self, name: str) -> dict[str, Any]:
        """A group's own variables (its group_vars/ files' included) as
        `ansible-inventory --export` shows them."""
        group = self.groups[name]
        own = {**group.vars, **self.group_file_vars.get(name, {})}
        result = {k: copy.deepcopy(v) for k, v in own.items() if k not in INTERNAL_VARS}
        if group.priority != 1:
            result[PRIORITY_VAR] = group.priority
        return result

    # -- ansible-inventory views (output.py) -----------------------------------

    def to_ansible_list(self, limit: str | None = None, export: bool = False) -> dict[str, Any]:
        """The structure `ansible-inventory -i FILE --list [--limit L] [--export]` prints.

        Values are JSON-ready (dict keys converted to strings as Ansible's
        encoder does), so this equals `json.loads()` of Ansible's output.
        """
        return ansible_list(self, limit, export)

    def graph(self, group: str = "all", show_vars: bool = False) -> str:
        """The tree `ansible-inventory -i FILE --graph [--vars] [GROUP]` prints."""
        return ansible_graph(self, group, show_vars)

    # -- host patterns (patterns.py) -------------------------------------------

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
        return select_hosts(self, pattern)

    def match(self, patterns: str | list[str]) -> list[str]:
        """Hosts matching host patterns, in the order Ansible evaluates them.

        This is `ansible -i FILE PATTERN --list-hosts` (minus the implicit
        localhost); `select()` is the `--limit` view of it.
        """
        return match_hosts(self, patterns)


def localhost_inventory() -> Inventory:
    """The implicit inventory used without -i: one host, `localhost`, reached locally."""
    hosts = {"localhost": Host("localhost", {"ansible_connection": "local"})}
    groups = {
        "all": Group("all", children=["ungrouped"]),
        "ungrouped": Group("ungrouped", hosts=["localhost"], depth=1),
    }
    return Inventory(_LOCALHOST_PATH, hosts, groups)
