"""`chatalot-db apply`: bring each host to the wanted state (the steps of installer.steps)."""

from __future__ import annotations

import argparse

from installer.commands.rollout import add_rollout_options, run_rollout
from installer.commands.targets import add_target_options
from installer.steps import apply_steps


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser(
        "apply",
        help="provision hosts (this machine when no inventory is given)",
        description="Bring each host to the wanted state; a second run changes nothing. "
        "Without -i, provisions this machine in local mode.",
    )
    add_target_options(a, forks="provisioned", json="write a machine-readable report to FILE")
    a.add_argument("-C", "--check", action="store_true",
                   help="change nothing; report what would change")
    a.add_argument("-D", "--diff", action="store_true",
                   help="show file and setting differences (secrets masked)")
    a.add_argument("--no-backup", action="store_true",
                   help="apply pending migrations without the pg_dump backup before them")
    add_rollout_options(a)
    a.set_defaults(func=cmd_apply)


def cmd_apply(args: argparse.Namespace) -> int:
    return run_rollout(args, "apply", lambda: apply_steps(backup=not args.no_backup),
                       check=args.check, diff=args.diff)
