"""`chatalot-db upgrade`: the app's cluster to a newer PostgreSQL major, with the
distribution's own tooling (installer.steps.upgrade); `--rollback` and `--drop-old`."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from installer.commands.rollout import add_rollout_options, run_rollout
from installer.commands.targets import add_target_options
from installer.desired.upgrade import KNOWN_MAJORS
from installer.errors import UsageError
from installer.steps.upgrade import upgrade_steps

_DESCRIPTION = """\
Move the cluster holding the app's database to a newer PostgreSQL major, host by host,
with the distribution's own tooling (Debian/Ubuntu: pg_upgradecluster, pg_upgrade
underneath; the new cluster takes the old one's port). Before any change: every cluster
of the host is read, the new major must be installable, no client may be connected
(unless --force; who is connected is named), copy mode needs the data's size free; then
a pg_dump of the app's database (named in the output). After: statistics rebuilt, the
tuning rendered for the new major, pg_hba, role, grants, env file and the app's login
checked as apply does; the migration ledger is left as it was. The old cluster is kept,
stopped, until --drop-old; --rollback brings it back while it exists. A failure at any
point leaves the old cluster serving, as before.
"""

_EPILOG = """\
Afterwards set pg_version to the new major in the inventory (or leave it unset where it
is the distribution's own), so that apply manages the new cluster.

Exit status: 0 done (or nothing to do); 2 a host failed; 4 a host unreachable;
5 bad options; 99 interrupted.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser(
        "upgrade", help="upgrade the app's cluster to a newer PostgreSQL major",
        description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_options(a, forks="upgraded", json="write a machine-readable report to FILE")
    what = a.add_mutually_exclusive_group(required=True)
    what.add_argument("--to", type=int, metavar="N",
                      help="the PostgreSQL major to upgrade to (newer than the running one)")
    what.add_argument("--rollback", action="store_true",
                      help="bring back the old cluster an upgrade kept, on its port (writes "
                      "made since the upgrade stay in the stopped new cluster); impossible "
                      "after --link")
    what.add_argument("--drop-old", action="store_true",
                      help="remove the old cluster an upgrade kept (stopped)")
    a.add_argument("-C", "--check", action="store_true",
                   help="change nothing; say per host what would happen and the disk it needs")
    a.add_argument("--link", action="store_true",
                   help="pg_upgrade --link: hard links instead of a copy (fast, no disk "
                   "needed), but the old cluster cannot come back once the new one has run")
    a.add_argument("--force", action="store_true",
                   help="upgrade even when clients are connected (the upgrade ends them)")
    add_rollout_options(a)
    a.set_defaults(func=cmd_upgrade)


def cmd_upgrade(args: argparse.Namespace) -> int:
    to: int | None = args.to
    if to is not None and to not in KNOWN_MAJORS:
        raise UsageError(f"--to {to}: no such PostgreSQL major (known: "
                         f"{KNOWN_MAJORS.start} to {KNOWN_MAJORS.stop - 1})")
    if args.link and to is None:
        raise UsageError("--link goes with --to")
    mode = "upgrade" if to is not None else "rollback" if args.rollback else "drop-old"

    def wanted(hostvars: Mapping[str, Any]) -> dict[str, Any]:
        # the run manages the new major's cluster: pg_version is --to's
        return {**hostvars, "pg_version": to} if to is not None else dict(hostvars)

    return run_rollout(
        args, "upgrade", lambda: upgrade_steps(mode, to=to, link=args.link, force=args.force),
        check=args.check, host_vars=wanted)
