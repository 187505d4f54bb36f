"""`chatalot-db psql HOST [-c SQL]`: psql on the host, logged in as the app role.

The login is the env file's DATABASE_URL, read on the host (installer.host.applogin):
the password goes from the file into PGPASSWORD inside a root shell there and
never into any command line, here or on the host. Interactive sessions get a
terminal: on this machine psql inherits ours, over SSH the system `ssh -t`
runs it, with apply's host-key policy (known_hosts and the inventory's
UserKnownHostsFile; unknown keys refused unless --accept-new-host-keys,
changed keys always refused).

Not root on the host: sudo, which asks for its password on the terminal when there is
one (`ssh -t`, or this machine's). Without one (`-c`, or SQL piped in) sudo cannot ask:
it runs when sudo needs no password, else the message says to rerun with -K, the one
apply's SSH connection gives (BecomeError.sudo_failed). With -K (for -c only) the
password goes to sudo on its stdin, never in an argv: over SSH the command runs on
apply's own connection (installer.fleet.hosts.connect_all, sudo checked once as there);
on this machine through `sudo -S`.

Exit codes: psql's (over the system ssh client, ssh's 255 when it cannot connect); 2 when
sudo would not make the user root; with -K over SSH, 4 when the host is unreachable.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from installer.commands.targets import add_target_options, become_password, inventory_inputs
from installer.desired.config import HostConfig
from installer.errors import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    BecomeError,
    UnreachableError,
    UsageError,
)
from installer.fleet.hosts import close_all, connect_all, one_host
from installer.host import applogin
from installer.transport.shell import sh
from installer.transport.ssh import ssh_options


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "psql",
        help="open psql on a host as the app role (or run one query with -c)",
        description="Open psql on HOST as the application role, with the DATABASE_URL of the "
        "host's env file (the password never appears in a command line). Over SSH this runs "
        "the system ssh client with a terminal. Needs root on the host, or sudo (with -c, "
        "-K gives its password).",
    )
    p.add_argument("host", metavar="HOST", help="an inventory host (localhost without -i)")
    add_target_options(p, limit=False)
    p.add_argument("-c", "--command", dest="sql", metavar="SQL",
                   help="run this one SQL command, print its result and exit")
    p.set_defaults(func=run)


def psql_args(sql: str | None) -> list[str]:
    """psql's options: none for a session (the user's psqlrc applies), -X -c SQL for a query."""
    return ["-X", "-v", "ON_ERROR_STOP=1", "-c", sql] if sql is not None else []


#: stand-ins for the user and sudo's output in BecomeError's message, filled in on the host
_USER, _SUDO_SAID = "\x01", "\x02"


def become_root(script: str, host: str) -> str:
    """/bin/sh text running `script` with /bin/sh as root: directly when already root;
    through sudo when there is a terminal (sudo asks for its password there); without one,
    only when sudo needs no password, else BecomeError's message (rerun with -K), exit 2."""
    message = str(BecomeError.sudo_failed(host, _USER, password_given=False,
                                          sudo_output=_SUDO_SAID))
    before_user, rest = message.split(_USER)
    before_said, after_said = rest.split(_SUDO_SAID)
    return "\n".join([
        f"s={shlex.quote(script)}",
        'if [ "$(id -u)" -eq 0 ]; then exec /bin/sh -c "$s"; fi',
        'if (: </dev/tty) 2>/dev/null; then exec sudo /bin/sh -c "$s"; fi',
        'if e=$(sudo -n true 2>&1); then exec sudo -n /bin/sh -c "$s"; fi',
        "e=$(printf '%s\\n' \"$e\" | tail -n 1)",
        f"printf '%s\\n' {sh('chatalot-db: error: ' + before_user)}\"$(id -un)\""
        f'{sh(before_said)}"${{e:-no output}}"{sh(after_said)} >&2',
        f"exit {EXIT_FAILED}",
    ]) + "\n"


def root_shell(script: str, host: str) -> str:
    """A command (for the login shell of an SSH user) running `script` with /bin/sh as root,
    as `become_root` does."""
    return f"/bin/sh -c {shlex.quote(become_root(script, host))}"


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
    script = login_script(hostvars, sql)
    if is_local(hostvars):
        return ["/bin/sh", "-c", script if is_root else become_root(script, name)]
    return ssh_argv(name, hostvars, root_shell(script, name), tty=tty,
                    accept_new_host_keys=accept_new_host_keys)


def login_script(hostvars: Mapping[str, Any], sql: str | None) -> str:
    """The login script (installer.host.applogin) for the host's env file, run as root."""
    return applogin.script(HostConfig.from_vars(hostvars).env_file, psql_args(sql))


def is_local(hostvars: Mapping[str, Any]) -> bool:
    return str(hostvars.get("ansible_connection", "ssh")) == "local"


def run_with_password(name: str, hostvars: Mapping[str, Any], sql: str, password: str, *,
                      accept_new_host_keys: bool, is_root: bool) -> int:
    """-c SQL as root with -K's password for sudo: over SSH on apply's connection (sudo
    checked once there, BecomeError when it refuses), on this machine through `sudo -S`.
    The output is printed once psql has ended; its exit code is returned."""
    script = login_script(hostvars, sql)
    if is_local(hostvars):
        return _local_with_password(name, script, password, is_root=is_root)
    conns = connect_all({name: dict(hostvars)}, accept_new_host_keys=accept_new_host_keys,
                        become_password=password)
    try:
        [c] = conns
        if c.transport is None:
            print(f"chatalot-db: error: {c.error}", file=sys.stderr)
            return EXIT_UNREACHABLE if c.unreachable else EXIT_FAILED
        try:
            r = c.transport.run(script, become="root", timeout=None)
        except UnreachableError as e:
            print(f"chatalot-db: error: {e}", file=sys.stderr)
            return EXIT_UNREACHABLE
    finally:
        close_all(conns)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    return r.exit_code


#: sudo reading its password from stdin, no prompt (as apply's SSH transport runs it)
SUDO_S = ["sudo", "-S", "-p", ""]


def _local_with_password(name: str, script: str, password: str, *, is_root: bool) -> int:
    """On this machine: sudo checked once with the password (BecomeError's message and
    exit 2 when refused), then the script through `sudo -S`, the password on its stdin."""
    secret = (password + "\n").encode()
    if not is_root:
        check = subprocess.run([*SUDO_S, "--", "/bin/sh", "-c", "true"], input=secret,
                               capture_output=True, check=False)
        if check.returncode != 0:
            e = BecomeError.sudo_failed(name, getpass.getuser(), password_given=True,
                                        sudo_output=check.stderr.decode(errors="replace"))
            print(f"chatalot-db: error: {e}", file=sys.stderr)
            return EXIT_FAILED
    sys.stdout.flush()
    sys.stderr.flush()
    # sudo may not read the password (its credentials cached by the check): the script
    # then starts with it unread on stdin, so stdin is closed before anything can read it
    guarded = f"exec </dev/null\n{script}"
    argv = ["/bin/sh", "-c", script] if is_root else [*SUDO_S, "--", "/bin/sh", "-c", guarded]
    return subprocess.run(argv, input=b"" if is_root else secret, check=False).returncode


def run(args: argparse.Namespace) -> int:
    name, hostvars = one_host(args.inventory, args.host, *inventory_inputs(args))
    if args.ask_become_pass:
        if args.sql is None:
            raise UsageError("-K goes with -c SQL: give the SQL with -c (an interactive "
                             "session has sudo ask for its password on the terminal)")
        return run_with_password(name, hostvars, args.sql, become_password(args) or "",
                                 accept_new_host_keys=args.accept_new_host_keys,
                                 is_root=os.geteuid() == 0)
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
