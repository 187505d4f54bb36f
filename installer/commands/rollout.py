"""What every command that changes hosts shares (apply, upgrade): the rollout options
(--serial, the stop rules, logs, retry file, host lock, -v) and the run itself, from the
inventory to the recap, the retry hint, the JSON report and the exit code."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Callable, Mapping
from typing import Any

from installer.commands.targets import become_password, inventory_inputs, list_hosts
from installer.errors import ChatalotError, UsageError
from installer.fleet.display import Display, HostLogs
from installer.fleet.hosts import load_hosts, with_migrations
from installer.fleet.report import HostReport, exit_code, write_json
from installer.fleet.rollout import StopPolicy, parse_percentage, parse_serial
from installer.fleet.runner import RunControl, RunOptions, run_fleet
from installer.steps.base import Step


def add_rollout_options(a: argparse.ArgumentParser) -> None:
    """--serial, --max-fail-percentage, --any-errors-fatal, --log-dir, --retry-file,
    --lock-timeout and -v, as apply takes them."""
    a.add_argument("--serial", metavar="N[%][,...]",
                   help="rolling batches, as Ansible's serial: a host count (2), a percentage "
                   "of the hosts (25%%) or a list whose last item repeats (1,20%%); a batch "
                   "starts when the previous one has ended")
    a.add_argument("--max-fail-percentage", metavar="PCT",
                   help="stop the run once the hosts that failed in a batch are more than PCT "
                   "percent of it (0: at the first failure); unreachable hosts do not count, "
                   "as in Ansible")
    a.add_argument("--any-errors-fatal", action="store_true",
                   help="stop the run at the first host that fails or is unreachable")
    a.add_argument("--log-dir", metavar="DIR",
                   help="append each host's step lines and the commands run to DIR/HOST.log "
                   "(never their input or output); default: no log files")
    a.add_argument("--retry-file", metavar="FILE",
                   help="when hosts fail or are unreachable, write their names to FILE (one "
                   "per line) and say to rerun with --limit @FILE, as Ansible's retry files")
    a.add_argument("--lock-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="how long a host waits for another chatalot-db run on it to end (the "
                   "host lock, /run/lock/chatalot-db.lock) before that host fails "
                   "(default: 300)")
    a.add_argument("-v", "--verbose", action="count", default=0,
                   help="log every command run (never their input or output)")


def _retry_hint(display: Display, reports: list[HostReport], retry_file: str | None) -> None:
    """Hosts that failed or were unreachable: how to rerun only those (and, with
    --retry-file, their names in that file, one per line, as Ansible's retry files)."""
    left = [r.name for r in reports if r.failed or r.unreachable]
    if not left:
        return
    if retry_file:
        try:
            with open(retry_file, "w", encoding="utf-8") as f:
                f.write("".join(f"{n}\n" for n in left))
        except OSError as e:
            display.message(f"--retry-file {retry_file}: cannot write it: {e.strerror}")
        else:
            display.message(f"to retry the {len(left)} failed or unreachable host(s): "
                            f"--limit @{retry_file}")
            return
    display.message(f"to retry the {len(left)} failed or unreachable host(s): "
                    f"--limit {shlex.quote(','.join(left))}")


def run_control(args: argparse.Namespace) -> RunControl:
    """--serial, --max-fail-percentage and --any-errors-fatal (bad values: exit 5)."""
    if args.forks < 1:
        raise UsageError("--forks must be at least 1")
    if not args.lock_timeout >= 0:
        raise UsageError("--lock-timeout must be 0 or more seconds")
    serial = parse_serial(args.serial) if args.serial is not None else []
    pct = (parse_percentage(args.max_fail_percentage)
           if args.max_fail_percentage is not None else None)
    return RunControl(serial, StopPolicy(max_fail_percentage=pct,
                                         any_errors_fatal=args.any_errors_fatal))


def _verbose_logging(display: Display, level: int) -> None:
    """-v: each command run, on stderr or above the live view; -vv: library debug too."""
    handler: logging.Handler = (
        _DisplayHandler(display) if display.live else logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    logging.getLogger("chatalot_db").setLevel(logging.DEBUG)
    if level > 1:
        root.setLevel(logging.DEBUG)


class _DisplayHandler(logging.Handler):
    def __init__(self, display: Display) -> None:
        super().__init__()
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        self.display.message(self.format(record))


def run_rollout(args: argparse.Namespace, command: str, steps: Callable[[], list[Step]], *,
                check: bool, diff: bool = False, banner: str | None = None,
                host_vars: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
                ) -> int:
    """The whole run of a command that changes hosts: --list-hosts, or every host's
    `steps` under the rollout options, then the recap; the exit code. `host_vars`
    rewrites each host's variables before its run (upgrade's `--to`)."""
    control = run_control(args)
    if args.list_hosts:
        return list_hosts(args, command, control.serial)
    become = become_password(args)  # asked first, then the vault's: Ansible's order
    hosts = with_migrations(load_hosts(args.inventory, args.limit, *inventory_inputs(args)))
    if host_vars is not None:
        hosts = {n: host_vars(v) for n, v in hosts.items()}
    opts = RunOptions(check=check, diff=diff, forks=args.forks,
                      accept_new_host_keys=args.accept_new_host_keys,
                      become_password=become, lock_timeout=args.lock_timeout)
    try:
        logs = HostLogs(args.log_dir) if args.log_dir else None
    except OSError as e:
        raise ChatalotError(f"--log-dir {args.log_dir}: cannot create it: {e.strerror}") from None
    display = Display(multi_host=len(hosts) > 1, show_diff=diff, logs=logs)
    if args.verbose:
        _verbose_logging(display, args.verbose)
    app_log = logging.getLogger("chatalot_db")
    log_handler = logs.handler() if logs is not None else None
    if log_handler is not None:
        app_log.addHandler(log_handler)
        app_log.setLevel(logging.DEBUG)
    try:
        if check:
            display.message("CHECK MODE: nothing will be changed")
        if banner:
            display.message(banner)
        with control.sigint():
            reports = run_fleet(hosts, opts, display, control, steps=steps)
    finally:
        if log_handler is not None and logs is not None:
            app_log.removeHandler(log_handler)
            logs.close()
    display.recap(reports, stopped=control.stopped, interrupted=control.interrupted)
    if logs is not None:
        display.message(f"logs: {logs.directory}/<host>.log")
    _retry_hint(display, reports, args.retry_file)
    if args.json:
        write_json(args.json, reports, check=check, interrupted=control.interrupted,
                   stopped=control.stopped, batches=control.batches)
    return exit_code(reports, interrupted=control.interrupted)
