"""The `chatalot-db` command line."""

from __future__ import annotations

import argparse
import getpass
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from installer import __version__
from installer.errors import ChatalotError, InventoryError, UsageError
from installer.output import Display, exit_code, write_json
from installer.runner import RunOptions, run_fleet

EXIT_OWN_ERROR = 1
EXIT_BAD_OPTIONS = 5
EXIT_INTERRUPTED = 99

#: subcommand modules with a `register(subparsers)` function
COMMAND_MODULES = ("installer.commands.inventory", "installer.commands.tune")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 5 on bad options, as ansible-playbook does
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_OPTIONS)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="chatalot-db",
        description="Provision PostgreSQL for the Chatalot chat server on this machine or on "
        "a fleet of hosts over SSH: install, start, role, database, pg_hba, tuning, "
        "migrations, and a DATABASE_URL env file.",
    )
    p.add_argument("--version", action="version", version=f"chatalot-db {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    a = sub.add_parser(
        "apply",
        help="provision hosts (this machine when no inventory is given)",
        description="Bring each host to the wanted state; a second run changes nothing. "
        "Without -i, provisions this machine in local mode.",
    )
    a.add_argument("-i", "--inventory", metavar="FILE",
                   help="Ansible INI inventory; default: this machine only (local mode)")
    a.add_argument("-l", "--limit", metavar="PATTERN",
                   help="only hosts matching this Ansible host pattern")
    a.add_argument("-C", "--check", action="store_true",
                   help="change nothing; report what would change")
    a.add_argument("-D", "--diff", action="store_true",
                   help="show file and setting differences (secrets masked)")
    a.add_argument("-f", "--forks", type=int, default=5, metavar="N",
                   help="hosts provisioned at once (default: 5)")
    a.add_argument("--json", metavar="FILE", help="write a machine-readable report to FILE")
    a.add_argument("--accept-new-host-keys", action="store_true",
                   help="accept and record SSH host keys not yet in known_hosts (like OpenSSH's "
                   "StrictHostKeyChecking=accept-new); a changed key is always refused")
    a.add_argument("-K", "--ask-become-pass", action="store_true",
                   help="ask for the sudo password (read from the terminal, or the first line of "
                   "stdin when it is not one); it goes to sudo on stdin, never in argv")
    a.add_argument("-v", "--verbose", action="count", default=0,
                   help="log every command run (never their input or output)")
    a.set_defaults(func=cmd_apply)

    for module in COMMAND_MODULES:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        mod.register(sub)
    return p


def _load_hosts(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    if not args.inventory:
        if args.limit and args.limit not in ("localhost", "all", "*"):
            raise UsageError(f"--limit {args.limit!r} matches nothing: without -i the only "
                             "host is localhost")
        return {"localhost": {"ansible_connection": "local"}}
    from installer.inventory import load_inventory

    inv = load_inventory(args.inventory)
    names = inv.select(args.limit) if args.limit else list(inv.hosts)
    if not names:
        raise UsageError(f"no hosts matched in {args.inventory}"
                         + (f" for --limit {args.limit!r}" if args.limit else ""))
    return {n: inv.host_vars(n) for n in names}


def _ask_become_pass() -> str:
    """From the terminal; or the first line of stdin when it is not a terminal (scripts, CI)."""
    if sys.stdin.isatty():
        return getpass.getpass("BECOME password: ")
    return sys.stdin.readline().rstrip("\r\n")


def cmd_apply(args: argparse.Namespace) -> int:
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(message)s", stream=sys.stderr)
    if args.forks < 1:
        raise UsageError("--forks must be at least 1")
    hosts = _load_hosts(args)
    become_password = _ask_become_pass() if args.ask_become_pass else None
    opts = RunOptions(check=args.check, diff=args.diff, forks=args.forks,
                      accept_new_host_keys=args.accept_new_host_keys,
                      become_password=become_password)
    display = Display(multi_host=len(hosts) > 1, show_diff=args.diff)
    if args.check:
        display.message("CHECK MODE: nothing will be changed")
    reports = run_fleet(hosts, opts, display)
    display.recap(reports)
    if args.json:
        write_json(args.json, reports, check=args.check)
    return exit_code(reports)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("chatalot-db: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as e:
        print(f"chatalot-db: error: {e}", file=sys.stderr)
        return EXIT_BAD_OPTIONS
    except InventoryError as e:
        print(f"chatalot-db: error: {e}", file=sys.stderr)
        return EXIT_OWN_ERROR
    except ChatalotError as e:
        print(f"chatalot-db: error: {e}", file=sys.stderr)
        return EXIT_OWN_ERROR
