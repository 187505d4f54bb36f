"""Hosts for every command working on them (apply, migrate -i, verify, status, psql):
the options choosing and reaching them, the loader, -K's password, connections."""

from __future__ import annotations

import argparse
import getpass
import sys

INVENTORY_HELP = "Ansible INI inventory; default: this machine only (local mode)"


def add_target_options(p: argparse.ArgumentParser, *, inventory: str = INVENTORY_HELP,
                       limit: bool = True, forks: str | None = None, json: str | None = None,
                       become: bool = True, scope: str = "") -> None:
    """The options that choose and reach hosts, the same for every command working on hosts.

    -i/--inventory (help: `inventory`), -l/--limit (`limit`), -f/--forks N when `forks`
    says what the hosts do at once ("provisioned": "hosts provisioned at once"), --json FILE
    when `json` is its help, --accept-new-host-keys, and -K/--ask-become-pass (`become`).
    `scope` starts every help but -i's (migrate's "with -i: ").
    """
    p.add_argument("-i", "--inventory", metavar="FILE", help=inventory)
    if limit:
        p.add_argument("-l", "--limit", metavar="PATTERN",
                       help=f"{scope}only hosts matching this Ansible host pattern")
    if forks is not None:
        p.add_argument("-f", "--forks", type=int, default=5, metavar="N",
                       help=f"{scope}hosts {forks} at once (default: 5)")
    if json is not None:
        p.add_argument("--json", metavar="FILE", help=f"{scope}{json}")
    p.add_argument("--accept-new-host-keys", action="store_true",
                   help=f"{scope}accept and record SSH host keys not yet in known_hosts (like "
                   "OpenSSH's StrictHostKeyChecking=accept-new); a changed key is always refused")
    if become:
        p.add_argument("-K", "--ask-become-pass", action="store_true",
                       help=f"{scope}ask for the sudo password (read from the terminal, or the "
                       "first line of stdin when it is not one); it goes to sudo on stdin, never "
                       "in argv")


def ask_become_pass() -> str:
    """From the terminal; or the first line of stdin when it is not a terminal (scripts, CI)."""
    if sys.stdin.isatty():
        return getpass.getpass("BECOME password: ")
    return sys.stdin.readline().rstrip("\r\n")


def become_password(args: argparse.Namespace) -> str | None:
    """-K's password (asked now), else None: sudo without one, or ansible_become_password."""
    return ask_become_pass() if args.ask_become_pass else None
