"""Run the steps on one host, and on many hosts at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from installer.config import HostConfig
from installer.errors import ChatalotError, UnreachableError
from installer.output import Display, HostReport, StepRecord
from installer.steps import HostContext, Status, Step, apply_steps
from installer.steps.base import StepResult
from installer.transport.base import Transport
from installer.transport.local import LocalTransport


@dataclass(frozen=True)
class RunOptions:
    check: bool = False
    diff: bool = False
    forks: int = 5
    accept_new_host_keys: bool = False
    become_password: str | None = None
    connect_timeout: float = 15.0


def make_transport(name: str, hostvars: Mapping[str, Any], opts: RunOptions) -> Transport:
    """Local when ansible_connection=local, SSH otherwise."""
    if str(hostvars.get("ansible_connection", "ssh")) == "local":
        return LocalTransport(name)
    from installer.transport.ssh import SSHTransport

    return SSHTransport.from_hostvars(
        name, hostvars, accept_new_host_keys=opts.accept_new_host_keys,
        become_password=opts.become_password, connect_timeout=opts.connect_timeout,
    )


def run_host(
    name: str,
    hostvars: Mapping[str, Any],
    opts: RunOptions,
    display: Display,
    steps: Callable[[], list[Step]] = apply_steps,
    transport_factory: Callable[[str, Mapping[str, Any], RunOptions], Transport] = make_transport,
) -> HostReport:
    """Run every step on one host; a failure stops that host only."""
    report = HostReport(name)
    try:
        config = HostConfig.from_vars(hostvars)
    except ChatalotError as e:
        _record(report, display, "check variables", StepResult(Status.FAILED, str(e)), 0.0)
        return report
    try:
        transport = transport_factory(name, hostvars, opts)
    except UnreachableError as e:
        report.unreachable, report.error = True, str(e)
        display.unreachable(name, str(e))
        return report
    except ChatalotError as e:  # reached, but cannot work there (e.g. sudo refused)
        _record(report, display, "connect", StepResult(Status.FAILED, str(e)), 0.0)
        report.error = str(e)
        return report
    with transport:
        ctx = HostContext(name, transport, config, check=opts.check, diff=opts.diff)
        for step in steps():
            title = step.name
            start = time.monotonic()
            try:
                title = step.title(ctx)
                result = step.run(ctx)
            except UnreachableError as e:
                report.unreachable, report.error = True, str(e)
                display.unreachable(name, str(e))
                break
            except ChatalotError as e:
                result = StepResult(Status.FAILED, str(e))
            except Exception as e:  # a bug of ours: report it on this host, keep the others going
                result = StepResult(Status.FAILED, f"internal error: {type(e).__name__}: {e}")
            _record(report, display, title, result, time.monotonic() - start)
            if result.status == Status.FAILED:
                report.error = result.reason
                break
        else:
            if not opts.check:
                report.notes.append(
                    f"DATABASE_URL written to {config.env_file} (mode 0600)"
                    if any(s.name.startswith("write ") and s.status == Status.CHANGED
                           for s in report.steps)
                    else f"DATABASE_URL is in {config.env_file} (mode 0600)"
                )
    return report


def _record(report: HostReport, display: Display, title: str, result: StepResult,
            seconds: float) -> None:
    rec = StepRecord(title, str(result.status), result.reason, result.diff, seconds)
    report.steps.append(rec)
    display.step(report.name, rec)


def run_fleet(
    hosts: Mapping[str, Mapping[str, Any]], opts: RunOptions, display: Display
) -> list[HostReport]:
    """Run hosts in parallel (`forks` at once); reports in inventory order."""
    names = list(hosts)
    if len(names) == 1:
        return [run_host(names[0], hosts[names[0]], opts, display)]
    with ThreadPoolExecutor(max_workers=max(1, opts.forks)) as pool:
        futures = [pool.submit(run_host, n, hosts[n], opts, display) for n in names]
        return [f.result() for f in futures]
