"""Hosts for every command working on them (apply, migrate -i, verify, status, psql):
the options choosing and reaching them, the loader, -K's password, connections."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from typing import Any

from installer.fleet.inventory.vault import VaultSecret
from installer.fleet.rollout import DEFAULT_FORKS, SerialItem
from installer.fleet.vaultpass import read_vault_secrets

INVENTORY_HELP = ("Ansible inventory (INI, or YAML: .yml/.yaml/.json), with its group_vars/ and "
                  "host_vars/; a directory: every inventory file in it; may be given several "
                  "times, read in order as ansible-playbook reads them; default: this machine "
                  "only (local mode)")


def add_target_options(p: argparse.ArgumentParser, *, inventory: str = INVENTORY_HELP,
                       limit: bool = True, forks: str | None = None, json: str | None = None,
                       become: bool = True, scope: str = "") -> None:
    """The options that choose and reach hosts, the same for every command working on hosts.

    -i/--inventory (help: `inventory`), -l/--limit (`limit`), -f/--forks N when `forks`
    says what the hosts do at once ("provisioned": "hosts provisioned at once"), --json FILE
    when `json` is its help, --accept-new-host-keys, and -K/--ask-become-pass (`become`).
    `scope` starts every help but -i's (migrate's "with -i: ").
    """
    p.add_argument("-i", "--inventory", metavar="FILE|DIR", action="append", help=inventory)
    add_vault_options(p, scope)
    add_extra_vars_option(p, scope)
    if limit:
        p.add_argument("-l", "--limit", metavar="PATTERN",
                       help=f"{scope}only hosts matching this Ansible host pattern")
        p.add_argument("--list-hosts", action="store_true",
                       help=f"{scope}print the hosts the run would work on, in run order (its "
                       "--serial batches too), and exit; no host is contacted")
    if forks is not None:
        p.add_argument("-f", "--forks", type=int, default=DEFAULT_FORKS, metavar="N",
                       help=f"{scope}hosts {forks} at once (default: {DEFAULT_FORKS})")
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
    return _ask("BECOME password: ")


def become_password(args: argparse.Namespace) -> str | None:
    """-K's password (asked now), else None: sudo without one, or ansible_become_password."""
    return ask_become_pass() if args.ask_become_pass else None


# -- ansible-vault passwords ---------------------------------------------------------------



def add_vault_options(p: argparse.ArgumentParser, scope: str = "") -> None:
    """The vault password options, as ansible-playbook takes them (several --vault-id)."""
    p.add_argument("--vault-password-file", "--vault-pass-file", action="append", default=[],
                   metavar="FILE", help=f"{scope}the ansible-vault password in FILE (an "
                   "executable is run and its output used); also ANSIBLE_VAULT_PASSWORD_FILE")
    p.add_argument("--vault-id", action="append", default=[], metavar="[LABEL@]SOURCE",
                   help=f"{scope}a vault password with its label: SOURCE is a file, an "
                   "executable or `prompt`; may be given several times")
    p.add_argument("-J", "--ask-vault-pass", "--ask-vault-password", action="store_true",
                   help=f"{scope}ask for the vault password (the terminal, or stdin's next line)")


def _ask(prompt: str) -> str:
    """From the terminal; or the next line of stdin when it is not a terminal (scripts, CI)."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\r\n")


def vault_secrets(args: argparse.Namespace) -> list[VaultSecret]:
    """Every vault password the options (and ANSIBLE_VAULT_PASSWORD_FILE) name, read now,
    before any host is contacted; labels as Ansible gives them (`default` unless LABEL@)."""
    return read_vault_secrets(list(getattr(args, "vault_id", []) or []),
                              list(getattr(args, "vault_password_file", []) or []),
                              ask=_ask, ask_vault_pass=bool(getattr(args, "ask_vault_pass",
                                                                    False)))


def add_extra_vars_option(p: argparse.ArgumentParser, scope: str = "") -> None:
    p.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                   help=f"{scope}variables above every other, as ansible-playbook takes them: "
                   "key=value ..., a YAML/JSON mapping, or @FILE; may be given several times")


def extra_vars(args: argparse.Namespace, secrets: list[VaultSecret]) -> dict[str, Any]:
    """-e options merged (installer.fleet.inventory.extravars), read now."""
    from installer.fleet.inventory.extravars import load_extra_vars

    return load_extra_vars(list(getattr(args, "extra_vars", []) or []), secrets)


def inventory_inputs(args: argparse.Namespace) -> tuple[list[VaultSecret], dict[str, Any]]:
    """The vault secrets and the extra vars, read before any host is contacted."""
    secrets = vault_secrets(args)
    return secrets, extra_vars(args, secrets)


def host_listing(command: str, hosts: list[str], batches: list[list[str]] | None = None) -> str:
    """What --list-hosts prints: ansible-playbook's layout for one play (the hosts in run
    order), then the --serial batches when there are several."""
    lines = ["", f"  play #1 (all): chatalot-db {command}", "    pattern: ['all']",
             f"    hosts ({len(hosts)}):", *(f"      {h}" for h in hosts)]
    if batches and len(batches) > 1:
        lines.append(f"    batches ({len(batches)}):")
        lines += [f"      {i}: {', '.join(b)}" for i, b in enumerate(batches, 1)]
    return "\n".join(lines) + "\n"


def list_hosts(args: argparse.Namespace, command: str,
               serial: Sequence[SerialItem] = ()) -> int:
    """--list-hosts: the inventory read (vault and -e as for a run), nothing contacted."""
    from installer.fleet.hosts import load_hosts
    from installer.fleet.rollout import split_batches

    names = list(load_hosts(args.inventory, args.limit, *inventory_inputs(args),
                            allow_empty=True))
    sys.stdout.write(host_listing(command, names, split_batches(names, serial)))
    return 0
