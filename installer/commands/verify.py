"""`chatalot-db verify`: run the Chatalot host suite (pytest-testinfra) against hosts.

Each host is reached with apply's own transports (known_hosts checked, an
unknown key refused unless --accept-new-host-keys, a changed key always
refused) and checked with the suite in installer/verify, with that host's
inventory variables. pytest prints one line per check and host; a failure
says what is wrong. `--junitxml FILE` writes a JUnit report for CI systems.

Exit codes (as apply's): 0 every check passed, 2 a check failed on a host,
4 a host was unreachable (and nothing failed elsewhere), 1 an error of the
tool's own, 5 bad options, 99 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from installer.commands.targets import (
    add_target_options,
    become_password,
    inventory_inputs,
    list_hosts,
)
from installer.errors import (
    EXIT_BAD_OPTIONS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OWN_ERROR,
    EXIT_UNREACHABLE,
    UsageError,
)
from installer.fleet.hosts import (
    Connection,
    close_all,
    connect_all,
    load_hosts,
    with_migrations,
)
from installer.verify import SUITE_FILE, suite_path

if TYPE_CHECKING:  # pytest and testinfra load only when verify runs
    from installer.verify.plugin import HostTally


#: pytest-testinfra's plugin, replaced by ours (its entry point name, and older ones)
TESTINFRA_PLUGIN_NAMES = ("pytest11.testinfra", "testinfra")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check hosts with the Chatalot testinfra suite (read-only)",
        description="Check that each host is a working Chatalot database host: PostgreSQL "
        "installed, enabled and running, listening only where configured, the app role and "
        "database as apply makes them, no trust in pg_hba, the tuned settings in force, "
        "every migration applied, the env file 0600, nightly backups scheduled and the "
        "newest one recent, the dumps readable by postgres only. Changes nothing. The same "
        "suite runs under plain pytest: pytest --hosts=ssh://root@HOST \"$(chatalot-db verify "
        "--print-suite-path)\"",
    )
    add_target_options(p, forks="connected to")
    p.add_argument("--junitxml", metavar="FILE", help="write a JUnit XML report to FILE")
    p.add_argument("-k", dest="keyword", metavar="EXPRESSION",
                   help="only checks matching this pytest -k expression (e.g. 'settings')")
    p.add_argument("--print-suite-path", action="store_true",
                   help="print the folder of the suite (for plain pytest) and exit")
    p.set_defaults(func=run)


def pytest_args(junitxml: str | None = None, keyword: str | None = None) -> list[str]:
    """The pytest command line verify runs the suite with."""
    folder = suite_path()
    args = [str(folder / SUITE_FILE), f"--rootdir={folder}", f"--confcutdir={folder}",
            "-p", "no:cacheprovider", "-v", "-rfE", "--tb=short", "--no-header",
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    for name in TESTINFRA_PLUGIN_NAMES:
        args += ["-p", f"no:{name}"]
    if junitxml:
        args.append(f"--junitxml={junitxml}")
    if keyword:
        args += ["-k", keyword]
    return args


def run(args: argparse.Namespace) -> int:
    if args.print_suite_path:
        print(suite_path())
        return EXIT_OK
    if args.forks < 1:
        raise UsageError("--forks must be at least 1")
    import pytest

    from installer.verify import plugin as plugin_module
    from installer.verify.plugin import VerifyPlugin

    if args.list_hosts:
        return list_hosts(args, "verify")
    become = become_password(args)  # asked first, then the vault's: Ansible's order
    hosts = with_migrations(load_hosts(args.inventory, args.limit, *inventory_inputs(args)))
    conns = connect_all(hosts, accept_new_host_keys=args.accept_new_host_keys,
                        forks=args.forks, become_password=become)
    for c in conns:
        if c.transport is None:
            kind = "UNREACHABLE!" if c.unreachable else "FAILED!"
            print(f"{kind} {c.name}: {c.error}", file=sys.stderr)
    plugin = VerifyPlugin(conns)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        rc = int(pytest.main(pytest_args(args.junitxml, args.keyword),
                             plugins=[plugin_module, plugin]))
    finally:
        close_all(conns)
    if rc == 5:
        print(f"chatalot-db: error: -k {args.keyword!r} matches no check", file=sys.stderr)
    print(recap(conns, plugin.tally))
    return exit_code(rc, conns, plugin.tally)


def recap(conns: Sequence[Connection], tally: dict[str, HostTally]) -> str:
    """One line per host, in apply's PLAY RECAP layout."""
    from installer.verify.plugin import HostTally

    lines = ["VERIFY RECAP " + "*" * 59]
    for c in conns:
        t = tally.get(c.name, HostTally())
        state = "unreachable" if c.unreachable else "failed" if (t.failed or c.error) else "ok"
        lines.append(f"{c.name:<26} : passed={t.passed:<4} failed={t.failed:<4} "
                     f"skipped={t.skipped:<4} {state}")
        if c.error:
            lines.append(f"    {c.error}")
            continue
        for check in t.failures:
            message = t.messages.get(check, "").replace("\n", "\n" + " " * 8)
            lines.append(f"    {check}: {message}" if message else f"    {check}")
    return "\n".join(lines)


def exit_code(pytest_rc: int, conns: Sequence[Connection], tally: dict[str, HostTally]) -> int:
    """apply's exit codes from pytest's and the per-host outcomes."""
    from installer.verify.plugin import HostTally

    if pytest_rc == 2:  # interrupted
        return EXIT_INTERRUPTED
    if pytest_rc == 4:  # pytest usage error
        return EXIT_BAD_OPTIONS
    if pytest_rc == 5:  # no tests collected: -k matched no check
        return EXIT_BAD_OPTIONS
    if pytest_rc not in (0, 1):  # pytest's internal error
        return EXIT_OWN_ERROR
    reached_failed = any(tally.get(c.name, HostTally()).failed for c in conns
                         if not c.unreachable)
    if reached_failed or (pytest_rc == 1 and not any(c.unreachable for c in conns)):
        return EXIT_FAILED
    if any(c.unreachable for c in conns):
        return EXIT_UNREACHABLE
    return EXIT_OK
