"""Command line: `python -m testbed up|down|status|ssh|reset|stop`."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from testbed.core import Testbed, default_state_dir, testbed_available
from testbed.errors import TestbedError
from testbed.images import default_cache_dir
from testbed.recipes import RECIPES
from testbed.sweep import clear_machine, machine_leftovers


def _parser() -> argparse.ArgumentParser:
    kinds = ", ".join(
        f"{k} ({r.description}" + (f", PostgreSQL {r.pg_major})" if r.pg_major else ")")
        for k, r in RECIPES.items()
    )
    parser = argparse.ArgumentParser(
        prog="python -m testbed",
        description="Real Debian test hosts (systemd-nspawn, one network namespace each).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"where keys, inventory, logs and overlays live (default {default_state_dir()})",
    )
    common.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"image cache (default {default_cache_dir()})",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        parents=[common],
        help="boot fresh hosts (clears an earlier run first)",
        description="Boot fresh hosts, building missing images first, and write the inventory."
        f" A host name is a kind or kind-suffix. Kinds: {kinds}.",
    )
    up.add_argument("names", nargs="+", metavar="NAME", help="host names, e.g. debian12 debian13")
    up.add_argument(
        "--boot-timeout", type=float, default=180.0, help="seconds per host (default 180)"
    )
    up.add_argument(
        "--add",
        action="store_true",
        help="keep the hosts already up in this state dir and boot these beside them",
    )
    up.add_argument(
        "--upper-on-disk",
        action="store_true",
        help="keep each host's writable layer in the state dir on disk, not on a 4g tmpfs",
    )

    down = sub.add_parser(
        "down",
        parents=[common],
        help="remove every process, mount, netns, veth and NAT rule of the test bed",
        description="Stop the hosts and remove everything the test bed made.",
    )
    down.add_argument(
        "--all",
        action="store_true",
        help="also clear test bed hosts of other (or lost) state dirs on this machine",
    )

    sub.add_parser(
        "status",
        parents=[common],
        help="show the hosts and anything the test bed left on this machine",
        description="Show the hosts of the state dir and every test bed mark on this machine.",
    )

    ssh = sub.add_parser(
        "ssh",
        parents=[common],
        help="run a command on a host (or print the ssh command line)",
        description="Run a command on a host as --user, with strict host key checking.",
    )
    ssh.add_argument("name")
    ssh.add_argument(
        "remote",
        nargs="*",
        help="command, best after `--` (omit it to print the ssh command line)",
    )
    ssh.add_argument("--user", default="root")

    for verb, text in (
        ("reset", "throw a host away and boot a fresh copy"),
        ("stop", "power one host off"),
    ):
        one = sub.add_parser(verb, parents=[common], help=text, description=text + ".")
        one.add_argument("name")
    remove = sub.add_parser(
        "remove",
        parents=[common],
        help="remove some hosts, keep the others running",
        description="Stop and remove the named hosts; the other hosts keep running.",
    )
    remove.add_argument("names", nargs="+", metavar="NAME")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    remote: list[str] = []
    if "--" in argv:  # `ssh NAME [--user U] -- COMMAND...`: the command is never parsed
        cut = argv.index("--")
        argv, remote = argv[:cut], argv[cut + 1 :]
    args = _parser().parse_args(argv)
    if remote and args.command != "ssh":
        _parser().error("`--` followed by a command only goes with `ssh`")
    if args.command == "ssh":
        args.remote = [*args.remote, *remote]
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    started = time.monotonic()

    def report(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    bed = Testbed(
        args.state_dir,
        cache_dir=args.cache_dir,
        report=report,
        boot_timeout=getattr(args, "boot_timeout", 180.0),
        tmpfs_size=None if getattr(args, "upper_on_disk", False) else "4g",
    )
    try:
        if args.command == "up":
            bed.up(args.names, add=args.add)
            print(bed.inventory_path)
        elif args.command == "down":
            return _down(bed, args.all, report)
        elif args.command == "status":
            return _status(bed)
        elif args.command == "ssh":
            if not args.remote:
                print(" ".join(bed.ssh_argv(args.name, args.user)))
                return 0
            done = bed.ssh(args.name, " ".join(args.remote), args.user, timeout=None)
            sys.stdout.write(done.stdout)
            sys.stderr.write(done.stderr)
            return done.returncode
        elif args.command == "reset":
            bed.reset(args.name)
        elif args.command == "stop":
            bed.stop(args.name)
            report(f"{args.name}: powered off")
        elif args.command == "remove":
            bed.remove(args.names)
            report(f"removed {', '.join(args.names)}")
    except TestbedError as exc:
        print(f"testbed {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _down(bed: Testbed, everything: bool, report: object) -> int:
    ok, why = testbed_available()
    if not ok:
        print(f"testbed down: {why}", file=sys.stderr)
        return 1
    names = sorted(bed.hosts)
    bed.down()
    if everything:
        clear_machine(bed.cache_dir)
    left = bed.leftovers()
    if everything:
        left += machine_leftovers(bed.cache_dir)
    print(f"down: {', '.join(names) or 'no hosts'} removed from {bed.state_dir}")
    if left:
        print("left behind:\n  " + "\n  ".join(left), file=sys.stderr)
        return 1
    print("nothing left behind")
    return 0


def _status(bed: Testbed) -> int:
    print(f"state dir: {bed.state_dir}")
    if not bed.hosts:
        print("hosts: none")
    for name, host in sorted(bed.hosts.items(), key=lambda item: item[1].index):
        state = "running" if bed.is_running(name) else "stopped"
        print(
            f"  {name:<16} {host.address:<14} {host.kind} ({host.suite}, pg {host.pg_major})"
            f"  {state}"
        )
    if bed.hosts:
        print(f"inventory: {bed.inventory_path}")
    marks = machine_leftovers(bed.cache_dir)
    print("test bed marks on this machine:" + ("" if marks else " none"))
    for mark in marks:
        print(f"  {mark}")
    return 0
