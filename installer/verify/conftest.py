"""Options and fixtures of the Chatalot host suite (test_chatalot_host.py).

Run by `chatalot-db verify` (hosts and variables from the inventory), or by
plain pytest-testinfra:

    pytest --hosts=ssh://root@db01 "$(chatalot-db verify --print-suite-path)"

Then each host's variables (db_name, db_user, pg_listen, pg_settings,
pg_memory, ...) come from `--chatalot-inventory FILE` (a host is matched by
its inventory name or its ansible_host; with `--chatalot-vault-id`,
`--chatalot-vault-password-file` and `--chatalot-extra-vars` as ansible-playbook's
vault and -e options) and
`--chatalot-var NAME=VALUE` (every host, after the inventory), else the defaults apply
uses.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from typing import Any

import paramiko
import pytest

from installer.desired.config import HostConfig
from installer.errors import ChatalotError
from installer.fleet.inventory import Inventory, load_inventory, parse_inventory
from installer.fleet.inventory.extravars import load_extra_vars
from installer.fleet.sources import SourceFetcher, fetch_migration_sources
from installer.fleet.vaultpass import read_vault_secrets
from installer.verify.hosts import TransportBackend, host_name, transport_for
from installer.verify.observe import Observed, observe

#: one per test session: every host of a run checks against the same commit
_FETCHER = SourceFetcher()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chatalot-db", "Chatalot database host checks")
    group.addoption(
        "--chatalot-inventory", metavar="FILE|DIR", action="append", default=[],
        help="take each host's variables (db_name, pg_listen, pg_settings, ...) from this "
        "Ansible inventory (INI or YAML, a file or a directory, with its group_vars/ and "
        "host_vars/; repeatable, as -i); a host is matched by inventory name or ansible_host",
    )
    group.addoption(
        "--chatalot-vault-id", metavar="[LABEL@]SOURCE", action="append", default=[],
        help="a vault password for the inventory's vaulted values, as ansible-playbook's "
        "--vault-id (SOURCE a file, an executable or `prompt`; repeatable)",
    )
    group.addoption(
        "--chatalot-vault-password-file", metavar="FILE", action="append", default=[],
        help="a vault password file, as ansible-playbook's --vault-password-file (also "
        "ANSIBLE_VAULT_PASSWORD_FILE)",
    )
    group.addoption(
        "--chatalot-extra-vars", metavar="VARS", action="append", default=[],
        help="extra variables above the inventory's, as ansible-playbook's -e: key=value "
        "..., a YAML/JSON mapping, or @FILE (repeatable)",
    )
    group.addoption(
        "--chatalot-var", metavar="NAME=VALUE", action="append", default=[],
        help="a variable for every host, written as on an inventory [all:vars] line, e.g. "
        "pg_listen=* or \"pg_settings={'work_mem': '8MB'}\" (repeatable; wins over the "
        "inventory)",
    )


def parse_var_options(items: Sequence[str]) -> dict[str, Any]:
    """`NAME=VALUE` options, each read exactly as an inventory `[all:vars]` line."""
    for item in items:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise pytest.UsageError(f"--chatalot-var {item!r}: expected NAME=VALUE")
    text = "[all:vars]\n" + "\n".join(items) + "\n"
    try:
        inv = parse_inventory(text, "--chatalot-var")
    except ChatalotError as e:
        raise pytest.UsageError(str(e)) from None
    return dict(inv.groups["all"].vars)


def inventory_vars(inv: Inventory, name: str, local: bool) -> dict[str, Any]:
    """The variables of the inventory host a testinfra host stands for.

    Matched by inventory name, then by ansible_host; the local backend matches
    `localhost` or the one host with ansible_connection=local. No match: the
    inventory's `all` variables.
    """
    if name in inv.hosts:
        return inv.host_vars(name)
    for candidate in inv.hosts:
        hv = inv.host_vars(candidate)
        if str(hv.get("ansible_host", "")) == name:
            return hv
        if local and str(hv.get("ansible_connection", "")) == "local":
            return hv
    return dict(inv.groups["all"].vars)


def _ask(prompt: str) -> str:
    """A vault password from the terminal (`prompt` sources)."""
    return getpass.getpass(prompt)


def host_variables(host: Any, config: pytest.Config) -> dict[str, Any]:
    """This host's variables: the inventory's under `chatalot-db verify`, else from options."""
    backend = host.backend
    if isinstance(backend, TransportBackend):
        return dict(backend.hostvars)
    hostvars: dict[str, Any] = {}
    paths = list(config.getoption("chatalot_inventory") or [])
    if paths:
        try:
            secrets = read_vault_secrets(
                list(config.getoption("chatalot_vault_id") or []),
                list(config.getoption("chatalot_vault_password_file") or []),
                ask=_ask)
            extra = load_extra_vars(list(config.getoption("chatalot_extra_vars") or []),
                                    secrets)
            inv = load_inventory(paths, secrets, extra)
        except ChatalotError as e:
            raise pytest.UsageError(str(e)) from None
        hostvars = inventory_vars(inv, host_name(host), backend.get_connection_type() == "local")
    hostvars.update(parse_var_options(config.getoption("chatalot_var") or []))
    return hostvars


@pytest.fixture(scope="module")
def chatalot_vars(host: Any, pytestconfig: pytest.Config) -> Mapping[str, Any]:
    """The host's inventory variables (see the module docstring)."""
    return host_variables(host, pytestconfig)


@pytest.fixture(scope="module")
def chatalot(host: Any, chatalot_vars: Mapping[str, Any]) -> Observed:
    """What the checks look at, read once per host."""
    name = host_name(host)
    try:
        fetched = fetch_migration_sources({name: chatalot_vars}, fetcher=_FETCHER)[name]
        config = HostConfig.from_vars(fetched)
    except ChatalotError as e:
        problem = f"bad variables for {name}: {e}"
    else:
        try:
            return observe(transport_for(host), name, config)
        except (ChatalotError, OSError, RuntimeError, paramiko.SSHException) as e:
            problem = f"cannot read {name}: {_brief(e)}"
    pytest.fail(problem, pytrace=False)  # outside `except`: no chained traceback


def _brief(e: BaseException) -> str:
    """A connection error's gist (testinfra's ssh backend raises its whole CommandResult)."""
    result: Any = e.args[0] if e.args else None
    status = getattr(result, "exit_status", None)
    if status is not None:
        out = (str(getattr(result, "stderr", "")) or str(getattr(result, "stdout", ""))).strip()
        return f"the connection failed (exit {status}): {out or 'no output'}"
    return str(e) or type(e).__name__
