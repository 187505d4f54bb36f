"""The `chatalot-db` command line."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from installer import __version__
from installer.errors import (
    EXIT_BAD_OPTIONS,
    EXIT_INTERRUPTED,
    EXIT_OWN_ERROR,
    ChatalotError,
        UsageError,
)

#: the commands, in the order --help lists them; each module has `register(subparsers)`
COMMAND_MODULES = ("installer.commands.apply", "installer.commands.inventory",
                   "installer.commands.tune", "installer.commands.migrate",
                   "installer.commands.verify", "installer.commands.status",
                   "installer.commands.upgrade", "installer.commands.backup",
                   "installer.commands.psql")


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
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return p


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
    except ChatalotError as e:  # InventoryError among them: file and line in the message
        print(f"chatalot-db: error: {e}", file=sys.stderr)
        return EXIT_OWN_ERROR
