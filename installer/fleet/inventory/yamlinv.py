"""YAML inventories (`hosts.yml`), read as ansible-core 2.19's `yaml` inventory plugin.

    all:
      vars: {...}
      hosts:
        db[01:03].example.net:        # ranges, host:port, as on an INI host line
          pg_memory: 8GB
      children:
        chat_eu:
          hosts: {db01.example.net: }

Top-level keys are groups; each group's `vars`, `hosts` and `children` must be mappings
(a bare string stands for a one-key mapping), other keys and non-mapping values are
skipped as Ansible skips them (with its warning on stderr). Values are typed as YAML 1.1
types them (installer.fleet.inventory.varsfiles), `!vault` values decrypted. The result is
reconciled as an INI inventory is (installer.fleet.inventory.data).
"""

from __future__ import annotations

import sys
from typing import Any

from installer.errors import InventoryError
from installer.fleet.inventory import varsfiles
from installer.fleet.inventory.data import InventoryData
from installer.fleet.inventory.model import Inventory
from installer.fleet.inventory.ranges import HostPatternError, expand_host_pattern
from installer.fleet.inventory.vault import VaultSecret

__all__ = ["EXTENSIONS", "parse_yaml_inventory", "read_yaml_inventory"]

EXTENSIONS = (".yml", ".yaml", ".json")


def _warn(message: str) -> None:
    print(f"[WARNING]: {message}", file=sys.stderr)


def parse_yaml_inventory(text: str, path: str,
                         secrets: list[VaultSecret] | None = None) -> Inventory:
    """A YAML inventory's text as an Inventory; InventoryError naming the file."""
    inv = InventoryData(path)
    read_yaml_inventory(inv, text, path, secrets)
    return inv.reconcile()


def read_yaml_inventory(inv: InventoryData, text: str, path: str,
                        secrets: list[VaultSecret] | None = None) -> None:
    """Add a YAML inventory's hosts, groups and variables to `inv` (one of several
    sources, as Ansible's InventoryData takes them); InventoryError naming the file."""
    inv.path, inv.line = path, 0
    data = varsfiles.parse_vars_text(text, path, secrets)
    if not data:  # Ansible's ini plugin then reads it: an inventory without hosts
        return
    if not isinstance(data, dict):
        raise InventoryError(path, None, "YAML inventory has invalid structure, it should be "
                             f"a dictionary, got: {type(data).__name__}")
    if data.get("plugin"):
        raise InventoryError(path, None, "Plugin configuration YAML file, not YAML inventory")
    for group, group_data in data.items():
        _group(inv, str(group), group_data)


def _group(inv: InventoryData, group: str, data: Any) -> str:
    if not isinstance(data, dict | None):
        _warn(f"Skipping '{group}' as this is not a valid group definition")
        return group
    inv.add_group(group)
    if data is None:
        return group
    for section in ("vars", "children", "hosts"):
        if isinstance(data.get(section), str):
            data[section] = {data[section]: None}
        if section in data and not isinstance(data[section], dict | None):
            raise InventoryError(inv.path, None, f'Invalid "{section}" entry for "{group}" '
                                 f'group, requires a dictionary, found '
                                 f'"{type(data[section]).__name__}" instead.')
    for key, value in data.items():
        if not isinstance(value, dict | None):
            _warn(f"Skipping key ({key}) in group ({group}) as it is not a mapping, it is a "
                  f"{type(value).__name__}")
            continue
        if value is None:
            continue
        if key == "vars":
            for var, v in value.items():
                inv.set_variable(group, str(var), v)
        elif key == "children":
            for sub, sub_data in value.items():
                child = _group(inv, str(sub), sub_data)
                inv.add_child(group, child)
        elif key == "hosts":
            for pattern, host_vars in value.items():
                try:
                    names, port = expand_host_pattern(str(pattern))
                except HostPatternError as e:
                    raise InventoryError(inv.path, None, str(e)) from None
                for name in names:
                    inv.add_host(name, group, port)
                    for var, v in (host_vars or {}).items():
                        inv.set_variable(name, str(var), v)
        else:
            _warn(f'Skipping unexpected key ({key}) in group ({group}), only "vars", '
                  '"children" and "hosts" are valid')
    return group
