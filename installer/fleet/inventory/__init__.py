"""Ansible inventories, read exactly as ansible-core 2.19 reads them.

An inventory that works with `ansible-playbook -i FILE` works here unchanged and
means the same thing: the same hosts, groups, group tree and variables, with
the same Python types. `Inventory.to_ansible_list()` is what
`ansible-inventory -i FILE --list` prints, `Inventory.host_vars()` what
`ansible-inventory --host NAME` prints, and `Inventory.select()` the hosts an
`ansible-playbook --limit PATTERN` run targets, in the same order.

The modules, each importing only those listed before it:

- `values`    value typing: what Python value an INI value becomes (`UntrustedStr`)
- `vault`     ansible-vault texts decrypted (`VaultSecret`, `VaultText`)
- `addresses` host names, IP addresses and `host:port`, as Ansible recognises them
- `ranges`    host ranges `db[01:10]` and the first token of a host line
- `patterns`  host patterns (`--limit`): globs, `~regex`, `!`, `&`, subscripts
- `output`    what `ansible-inventory --list/--graph/--host` prints (`jsonable`)
- `model`     `Host`, `Group`, `Inventory` (variable merging), `localhost_inventory`
- `data`      `InventoryData`: an inventory being read, reconciled as Ansible does
- `varsfiles` group_vars/ and host_vars/ beside the inventory, as host_group_vars reads them
- `extravars` `-e/--extra-vars` in their three forms, as load_extra_vars reads them
- `yamlinv`   YAML inventories, as the yaml inventory plugin reads them
- `ini`       the INI parser: `load_inventory` (with the vars files), `parse_inventory`

Ansible quirks are kept on purpose, because an inventory must mean the same
thing to both tools; each module names those it keeps. Where Ansible would
warn and drop a file it cannot parse, this raises `InventoryError` naming the
file and the line.

This is pure logic: the only I/O is reading the inventory and its vars files in
`load_inventory`.
Ansible itself is not imported; it is only used by the tests, as the reference.
"""

from __future__ import annotations

from installer.errors import InventoryError
from installer.fleet.inventory.ini import load_inventory, parse_inventory
from installer.fleet.inventory.model import (
    INTERNAL_VARS,
    Group,
    Host,
    Inventory,
    localhost_inventory,
)
from installer.fleet.inventory.output import jsonable
from installer.fleet.inventory.values import UntrustedStr

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
