"""`chatalot-db inventory`: show an inventory as Ansible sees it.

`--list` prints exactly what `ansible-inventory -i FILE --list` prints (same
JSON, same formatting), `--host NAME` what `ansible-inventory --host NAME`
prints, `--graph` what `ansible-inventory --graph` prints. Use it to check that
an inventory means what you think before running a fleet.

Exit codes: 0 done, 1 broken inventory, 5 bad options.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from installer.commands.targets import add_extra_vars_option, add_vault_options, inventory_inputs
from installer.errors import InventoryError, UsageError
from installer.fleet.inventory import Inventory, jsonable, load_inventory, localhost_inventory

PROG = "chatalot-db"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `inventory` subcommand; its `func` takes the Namespace and returns an exit code."""
    parser = subparsers.add_parser(
        "inventory",
        help="show the inventory as Ansible sees it (like ansible-inventory)",
        description=(
            "Show an inventory (INI or YAML, with its group_vars/ and host_vars/) the way "
            "ansible-inventory does: --list prints the "
            "same JSON, --host the merged variables of one host, --graph the group tree."
        ),
    )
    # SUPPRESS: never overwrite a top-level -i/--limit the main parser may define.
    parser.add_argument(
        "-i",
        "--inventory",
        metavar="FILE|DIR",
        action="append",
        default=argparse.SUPPRESS,
        help="Ansible inventory, INI or YAML, a file or a directory; may be given several "
        "times, read in order (default: the implicit localhost)",
    )
    add_vault_options(parser)
    add_extra_vars_option(parser)
    parser.add_argument(
        "-l",
        "--limit",
        metavar="PATTERN",
        default=argparse.SUPPRESS,
        help="with --list: only hosts matching this Ansible host pattern",
    )
    parser.add_argument(
        "--list",
        dest="inventory_list",
        action="store_true",
        help="print all hosts and groups as JSON (ansible-inventory --list)",
    )
    parser.add_argument(
        "--host",
        dest="inventory_host",
        metavar="NAME",
        default=None,
        help="print one host's merged variables as JSON (ansible-inventory --host)",
    )
    parser.add_argument(
        "--graph",
        dest="inventory_graph",
        action="store_true",
        help="print the group tree (ansible-inventory --graph)",
    )
    parser.add_argument(
        "--vars",
        dest="inventory_show_vars",
        action="store_true",
        help="with --graph: show variables too",
    )
    parser.add_argument(
        "--export",
        dest="inventory_export",
        action="store_true",
        help="with --list: show group vars under each group and only each host's own vars",
    )
    parser.add_argument(
        "inventory_group",
        metavar="GROUP",
        nargs="?",
        default=None,
        help="with --graph: the group to start from (default: all)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Carry out `chatalot-db inventory`; returns the exit code."""
    try:
        action = _action(args)
        path: list[str] | None = getattr(args, "inventory", None)
        inventory = (load_inventory(path, *inventory_inputs(args)) if path
                     else localhost_inventory())
        return _emit(_render(inventory, action, args))
    except InventoryError as exc:
        return _fail(str(exc), 1)
    except UsageError as exc:
        return _fail(str(exc), 5)


def _action(args: argparse.Namespace) -> str:
    chosen = [
        name
        for name, on in (
            ("list", args.inventory_list),
            ("host", args.inventory_host is not None),
            ("graph", args.inventory_graph),
        )
        if on
    ]
    if not chosen:
        raise UsageError("no action selected: give one of --list, --host NAME or --graph")
    if len(chosen) > 1:
        raise UsageError(
            "conflicting options: only one of --list, --host or --graph can be used, got "
            + ", ".join("--" + name for name in chosen)
        )
    return chosen[0]


def _render(inventory: Inventory, action: str, args: argparse.Namespace) -> str:
    if action == "host":
        return _dump(jsonable(inventory.host_vars(_one_host(inventory, args.inventory_host))))
    if action == "graph":
        return inventory.graph(args.inventory_group or "all", args.inventory_show_vars)
    limit: str | None = getattr(args, "limit", None)
    if limit and not inventory.select(limit):
        _warn(f"no host in {inventory.path} matches --limit {limit!r}")
    return _dump(inventory.to_ansible_list(limit=limit, export=args.inventory_export))


def _one_host(inventory: Inventory, pattern: str) -> str:
    """The single host `--host PATTERN` names (Ansible accepts any pattern matching one host)."""
    if not pattern:
        raise UsageError("--host needs a host name")
    hosts = inventory.match(pattern)
    if len(hosts) == 1:
        return hosts[0]
    if not hosts:
        raise UsageError(f"--host {pattern}: no such host in {inventory.path}")
    shown = ", ".join(hosts[:5]) + (", ..." if len(hosts) > 5 else "")
    raise UsageError(f"--host {pattern} matches {len(hosts)} hosts ({shown}): give a single host")


def _dump(data: Any) -> str:
    """JSON exactly as ansible-inventory prints it: sorted keys, 4-space indent, raw UTF-8."""
    return json.dumps(data, sort_keys=True, indent=4, ensure_ascii=False)


def _emit(text: str) -> int:
    data = (text + "\n").encode("utf-8", "surrogateescape")
    stream = getattr(sys.stdout, "buffer", None)
    if stream is not None:
        sys.stdout.flush()
        stream.write(data)
        stream.flush()
    else:  # a text-only stream (tests, redirection wrappers)
        sys.stdout.write(data.decode("utf-8", "replace"))
    return 0


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code
