"""`chatalot-db psql HOST [-c SQL]`: psql on the host, logged in as the app role.

The login is the env file's DATABASE_URL, read on the host (installer.host.applogin):
the password goes from the file into PGPASSWORD inside a root shell there and
never into any command line, here or on the host. Interactive sessions get a
terminal: on this machine psql inherits ours, over SSH the system `ssh -t`
runs it, with apply's host-key policy (known_hosts and the inventory's
UserKnownHostsFile; unknown keys refused unless --accept-new-host-keys,
changed keys always refused).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping
from typing import Any

from installer.commands.targets import add_target_options
from installer.desired.config import HostConfig
from installer.fleet.hosts import one_host
from installer.host import applogin
from installer.transport.ssh import ssh_options


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "psql",
        help="open psql on a host as the app role (or run one query with -c)",
        description="Open psql on HOST as the application role, with the DATABASE_URL of the "
        "host's env file (the password never appears in a command line). Over SSH this runs "
        "the system ssh client with a terminal. Needs root on the host (or sudo).",
    )
    p.add_argument("host", metavar="HOST", help="an inventory host (localhost without -i)")
    add_target_options(p, limit=False, become=False)
    p.add_argument("-c", "--command", dest="sql", metavar="SQL",
                   help="run this one SQL command, print its result and exit")
    p.set_defaults(func=run)


def psql_args(sql: str | None) -> list[str]:
    """psql's options: none for a session (the user's psqlrc applies), -X -c SQL for a query."""
    return ["-X", "-v", "ON_ERROR_STOP=1", "-c", sql] if sql is not None else []


def root_shell(script: str) -> str:
    """A command (for the login shell of an SSH user) running `script` with /bin/sh as root:
    directly when already root, else through sudo (which may ask on the terminal)."""
    inner = (f"s={shlex.quote(script)}\n"
             'if [ "$(id -u)" -eq 0 ]; then exec /bin/sh -c "$s"; '
             'else exec sudo /bin/sh -c "$s"; fi\n')
    return f"/bin/sh -c {shlex.quote(inner)}"


def known_hosts_files(hostvars: Mapping[str, Any]) -> list[str]:
    """The known_hosts files apply's SSH transport reads: the inventory's first, then ~/.ssh's."""
    opts = ssh_options(str(hostvars.get("ansible_ssh_common_args", "")))
    files = []
    if opts.get("userknownhostsfile"):
        files.extend(opts["userknownhostsfile"].split())
    files.append("~/.ssh/known_hosts")
    out: list[str] = []
    for f in files:
        path = os.path.expanduser(f)
        if path not in out:
            out.append(path)
    return out


def ssh_argv(name: str, hostvars: Mapping[str, Any], remote: str, *, tty: bool,
             accept_new_host_keys: bool) -> list[str]:
    """The system ssh command line reaching the host as apply's SSH transport does."""
    common = str(hostvars.get("ansible_ssh_common_args", "") or "")
    opts = ssh_options(common)
    # first value wins in OpenSSH: the host-key policy goes before anything from the inventory
    argv = ["ssh", "-t" if tty else "-T",
            "-o", f"StrictHostKeyChecking={'accept-new' if accept_new_host_keys else 'yes'}"]
    if opts.get("userknownhostsfile"):
        files = " ".join(known_hosts_files(hostvars))
        argv += ["-o", f"UserKnownHostsFile={files}"]
    port = hostvars.get("ansible_port") or opts.get("port")
    if port:
        argv += ["-p", str(port)]
    user = hostvars.get("ansible_user") or opts.get("user")
    if user:
        argv += ["-l", str(user)]
    key = hostvars.get("ansible_ssh_private_key_file")
    if key:
        argv += ["-i", os.path.expanduser(str(key))]
    argv += shlex.split(common)
    argv += [str(hostvars.get("ansible_host", name)), remote]
    return argv


def command_for(name: str, hostvars: Mapping[str, Any], sql: str | None, *, tty: bool,
                accept_new_host_keys: bool, is_root: bool) -> list[str]:
    """The argv to exec: a local shell (or sudo) running the login script, or ssh."""
    config = HostConfig.from_vars(hostvars)
    script = applogin.script(config.env_file, psql_args(sql))
    if str(hostvars.get("ansible_connection", "ssh")) == "local":
        shell = ["/bin/sh", "-c", script]
        return shell if is_root else ["sudo", *shell]
    return ssh_argv(name, hostvars, root_shell(script), tty=tty,
                    accept_new_host_keys=accept_new_host_keys)


def run(args: argparse.Namespace) -> int:
    name, hostvars = one_host(args.inventory, args.host)
    argv = command_for(name, hostvars, args.sql, tty=sys.stdin.isatty() and args.sql is None,
                       accept_new_host_keys=args.accept_new_host_keys,
                       is_root=os.geteuid() == 0)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        print(f"chatalot-db: cannot run {argv[0]}: {e.strerror}", file=sys.stderr)
        return 1
    return 0  # not reached
