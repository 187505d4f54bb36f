"""Run the steps on one host, and on many hosts at once (forks, serial batches, stops).

Each host keeps one transport (one SSH connection) for its whole run and runs its
steps in order until the first failure (one that keeps going, as a tuning conflict, lets
the steps after it run, and the host fails at the end). Hosts run in worker threads, `forks` at
a time, batch after batch; the main thread only schedules, applies the stop rules
(installer.fleet.rollout) and handles Ctrl-C. Stopping is cooperative: a host checks
the run's stop event *between* steps, so a step that has started (a migration
transaction, a package install) always ends on its own terms.

Two runs on one host never interleave: once connected, a host's run holds an exclusive
flock on the host (HOST_LOCK) until its last step has ended; a second run waits for it,
at most `lock_timeout` seconds. Check mode takes it too, so that what it reads is not a
half-done run's state.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Any, Protocol

from installer.desired.config import HostConfig
from installer.errors import ChatalotError, HostLockError, UnreachableError
from installer.fleet import aliases
from installer.fleet.display import Display
from installer.fleet.report import (
    DONE,
    FAILED,
    STOPPED,
    UNREACHABLE,
    HostReport,
    StepRecord,
)
from installer.fleet.rollout import DEFAULT_FORKS, SerialItem, StopPolicy, split_batches
from installer.steps.base import HostContext, MachineClaims, Status, Step, StepResult
from installer.transport.base import Transport
from installer.transport.local import LocalTransport

#: how often the main thread wakes to redraw the live view and notice Ctrl-C
TICK = 0.2

#: on each host, the lock that serialises chatalot-db runs there (flock; /run is tmpfs)
HOST_LOCK = "/run/lock/chatalot-db.lock"


@dataclass(frozen=True)
class RunOptions:
    check: bool = False
    diff: bool = False
    forks: int = DEFAULT_FORKS
    accept_new_host_keys: bool = False
    become_password: str | None = None
    connect_timeout: float = 15.0
    #: how long a run waits for another run's host lock before that host fails
    lock_timeout: float = 300.0


TransportFactory = Callable[[str, Mapping[str, Any], RunOptions], Transport]


class StopSignal(Protocol):
    """What run_host checks between steps: a threading.Event, or a RunControl."""

    def is_set(self) -> bool: ...


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
    steps: Callable[[], list[Step]],
    transport_factory: TransportFactory = make_transport,
    stop: StopSignal | None = None,
    *,
    machines: MachineClaims | None = None,
    refused: str | None = None,
) -> HostReport:
    """Run every step on one host; a failure stops that host only.

    `stop` is checked before the host starts and between steps: once set, the host
    starts no further step (state STOPPED, or NOT_STARTED if it had not begun).
    `machines`: the run's machine-ids taken (a second name for one machine is refused);
    `refused`: why this host may not run at all (installer.fleet.aliases), as a failed
    "check variables".
    """
    report = HostReport(name)
    if stop is not None and stop.is_set():
        return report
    started = time.monotonic()
    display.host_started(name)
    try:
        _run_steps(report, hostvars, opts, display, steps, transport_factory, stop,
                   machines, refused)
    except Exception as e:  # a bug of ours: report it on this host, keep the others going
        _record(report, display, "internal", StepResult(
            Status.FAILED, f"internal error: {type(e).__name__}: {e}"), 0.0)
        report.error = report.steps[-1].reason
    if report.unreachable:
        report.state = UNREACHABLE
    elif report.failed:
        report.state = FAILED
    elif report.stopped_before:
        report.state = STOPPED
    else:
        report.state = DONE
    report.seconds = time.monotonic() - started
    display.host_done(report)
    return report


def _run_steps(report: HostReport, hostvars: Mapping[str, Any], opts: RunOptions,
               display: Display, steps: Callable[[], list[Step]],
               transport_factory: TransportFactory, stop: StopSignal | None,
               machines: MachineClaims | None = None, refused: str | None = None) -> None:
    name = report.name
    try:
        config = HostConfig.from_vars(hostvars)
    except ChatalotError as e:
        refused = str(e)
    if refused is not None:
        _record(report, display, "check variables", StepResult(Status.FAILED, refused), 0.0)
        report.error = refused
        return
    try:
        transport = transport_factory(name, hostvars, opts)
    except UnreachableError as e:
        report.unreachable, report.error = True, str(e)
        display.unreachable(name, str(e))
        return
    except ChatalotError as e:  # reached, but cannot work there (e.g. sudo refused)
        _record(report, display, "connect", StepResult(Status.FAILED, str(e)), 0.0)
        report.error = str(e)
        return
    with transport, ExitStack() as held:
        todo = steps()
        first = todo[0] if todo else None
        taken = _take_host_lock(report, transport, opts, display, stop, held,
                                first.name if first else "",
                                first.read_under_lock() if first else None)
        if taken is False:
            return
        ctx = HostContext(name, transport, config, check=opts.check, diff=opts.diff,
                          machines=machines)
        ctx.under_lock = taken if isinstance(taken, str) else None
        if isinstance(stop, RunControl):
            stop.enter(name, ctx)
            held.callback(stop.leave, name)
        notes: list[str] = []
        for index, step in enumerate(todo, 1):
            if stop is not None and stop.is_set():
                report.stopped_before = step.name
                return
            title = step.name
            start = time.monotonic()
            began = time.time()
            try:
                title = step.title(ctx)
                display.step_started(name, title, index, len(todo))
                ctx.progress = partial(display.step_progress, name)
                result = step.run(ctx)
            except UnreachableError as e:
                report.unreachable, report.error = True, str(e)
                display.unreachable(name, str(e))
                return
            except ChatalotError as e:
                result = StepResult(Status.FAILED, str(e))
            except Exception as e:  # a bug of ours: report it on this host, keep the others going
                result = StepResult(Status.FAILED, f"internal error: {type(e).__name__}: {e}")
            _record(report, display, title, result, time.monotonic() - start, began)
            if result.status == Status.FAILED:
                report.error = report.error or result.reason
                if not result.keep_going:
                    return
                continue
            if result.note and not opts.check:
                notes.append(result.note)
        if not report.failed:
            report.notes.extend(notes)


def _take_host_lock(report: HostReport, transport: Transport, opts: RunOptions,
                    display: Display, stop: StopSignal | None, held: ExitStack,
                    first_step: str, then: str | None = None) -> str | bool | None:
    """Take the host lock into `held`: the output of `then` (run under the lock, in its
    round trip; None without it), or False (the report says why) when the host must not
    go on: the lock timed out, the run was stopped while waiting, the host dropped, or it
    refused the lock's session (sshd's MaxSessions 1)."""
    name = report.name
    start = time.monotonic()
    began = time.time()
    waited = False

    def on_wait() -> None:
        nonlocal waited
        waited = True
        display.message(f"{name}: waiting for another chatalot-db run on this host "
                        f"(lock {HOST_LOCK}, up to {opts.lock_timeout:g}s: --lock-timeout)")

    try:
        out = held.enter_context(transport.hold_lock(
            HOST_LOCK, opts.lock_timeout, on_wait=on_wait,
            cancel=stop.is_set if stop is not None else None, then=then))
    except UnreachableError as e:
        report.unreachable, report.error = True, str(e)
        display.unreachable(name, str(e))
        return False
    except ChatalotError as e:  # the lock timed out, or the host refused its session
        if isinstance(e, HostLockError) and stop is not None and stop.is_set():
            report.stopped_before = first_step
            return False
        _record(report, display, "take the host lock",
                StepResult(Status.FAILED, str(e)), time.monotonic() - start, began)
        report.error = str(e)
        return False
    if waited:
        report.lock_wait = time.monotonic() - start
        report.notes.append(f"waited {report.lock_wait:.1f}s for another chatalot-db run on "
                            f"this host (lock {HOST_LOCK})")
    return out


def _record(report: HostReport, display: Display, title: str, result: StepResult,
            seconds: float, started: float = 0.0) -> None:
    rec = StepRecord(title, str(result.status), result.reason, result.diff, seconds,
                     started or time.time() - seconds)
    report.steps.append(rec)
    display.step(report.name, rec)


class RunControl:
    """How a fleet run is scheduled and stopped, and afterwards what happened.

    `serial` and `policy` shape the run (installer.fleet.rollout); `stop` is the event
    every host checks between steps. After run_fleet: `batches` as run,
    `interrupted` (Ctrl-C) and `stopped` (why the stop rules ended the run early).
    It is the StopSignal its hosts check between steps.
    """

    def __init__(self, serial: Sequence[SerialItem] = (),
                 policy: StopPolicy | None = None) -> None:
        self.serial = list(serial)
        self.policy = policy or StopPolicy()
        self.stop = threading.Event()
        self.interrupted = False
        self.stopped: str | None = None
        self.batches: list[list[str]] = []
        self.signals = 0
        #: the running hosts' contexts, for their interrupt hooks (Ctrl-C)
        self.active: dict[str, HostContext] = {}
        self._active_lock = threading.Lock()

    def enter(self, name: str, ctx: HostContext) -> None:
        with self._active_lock:
            self.active[name] = ctx

    def leave(self, name: str) -> None:
        with self._active_lock:
            self.active.pop(name, None)

    def run_interrupt_hooks(self, display: Display) -> None:
        """First Ctrl-C: each running step's hooks (in a thread each; what they did said)."""
        with self._active_lock:
            hooks = [(n, h) for n, c in self.active.items() for h in list(c.interrupt_hooks)]

        def one(name: str, hook: Callable[[], str | None]) -> None:
            try:
                said = hook()
            except Exception as e:  # a host gone meanwhile: its own step reports it
                said = f"could not act on Ctrl-C ({type(e).__name__}: {e})"
            if said:
                display.message(f"{name}: {said}")

        for name, hook in hooks:
            threading.Thread(target=one, args=(name, hook), daemon=True).start()

    def interrupt(self) -> None:
        """Ctrl-C. Only plain flags here: a signal handler must not take a lock the main
        thread may hold (Event.set does); the main loop sets `stop` within a tick."""
        self.signals += 1
        self.interrupted = True

    def is_set(self) -> bool:
        """Whether hosts must stop (a StopSignal): the stop rules tripped, or Ctrl-C."""
        return self.interrupted or self.stop.is_set()

    def _take_interrupt(self) -> None:
        if self.interrupted and not self.stop.is_set():
            self.stop.set()

    def halt(self, why: str) -> None:
        """The stop rules ended the run: no host starts, running ones stop between steps."""
        if self.stopped is None and not self.interrupted:
            self.stopped = why
        self.stop.set()

    @contextmanager
    def sigint(self) -> Iterator[None]:
        """While inside, Ctrl-C (SIGINT) calls interrupt() instead of raising
        KeyboardInterrupt. Only the main thread can do this; elsewhere it does nothing."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            del signum, frame
            self.interrupt()

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def run_fleet(
    hosts: Mapping[str, Mapping[str, Any]],
    opts: RunOptions,
    display: Display,
    control: RunControl | None = None,
    *,
    steps: Callable[[], list[Step]],
    transport_factory: TransportFactory = make_transport,
) -> list[HostReport]:
    """Run hosts `forks` at a time, batch after batch; reports in inventory order.

    A host that never started (an earlier batch stopped the run, or Ctrl-C) has a
    report in state NOT_STARTED with no steps.
    """
    control = control or RunControl()
    names = list(hosts)
    refused = aliases.same_host(hosts)
    machines = MachineClaims()
    batches = split_batches(names, control.serial)
    control.batches = batches
    reports: dict[str, HostReport] = {}
    display.start(names, batches)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(opts.forks, len(names) or 1)),
                                thread_name_prefix="host") as pool:
            for index, batch in enumerate(batches, 1):
                control._take_interrupt()
                if control.stop.is_set():
                    break
                display.batch(index, len(batches), batch)
                futures = {
                    pool.submit(run_host, n, hosts[n], opts, display, steps, transport_factory,
                                control, machines=machines, refused=refused.get(n)): n
                    for n in batch
                }
                failed, unreachable = _wait_batch(futures, reports, control, display)
                if index < len(batches) and not control.stop.is_set():
                    why = control.policy.after_batch(len(batch), failed, unreachable)
                    if why:
                        control.halt(why)
    finally:
        display.finish()
    return [reports.get(n) or HostReport(n) for n in names]


def _wait_batch(futures: dict[Future[HostReport], str], reports: dict[str, HostReport],
                control: RunControl, display: Display) -> tuple[int, int]:
    """Collect a batch's reports as hosts finish, applying the stop rules and Ctrl-C."""
    failed = unreachable = 0
    pending = set(futures)
    told = 0  # Ctrl-C presses already answered
    size = len(futures)
    while pending:
        done, pending = wait(pending, timeout=TICK, return_when=FIRST_COMPLETED)
        control._take_interrupt()
        for future in done:
            name = futures[future]
            try:
                report = future.result()
            except Exception as e:  # run_host catches everything; this is a safety net
                report = HostReport(name, [StepRecord("internal", str(Status.FAILED),
                                                      f"{type(e).__name__}: {e}")],
                                    state=FAILED, error=str(e))
            reports[name] = report
            failed += report.failed
            unreachable += report.unreachable
            if not control.stop.is_set():
                why = control.policy.abort_batch(size, failed, unreachable)
                if why:
                    control.halt(why)
                    busy = display.running()
                    display.message(
                        f"STOPPING: {why}; no other host starts"
                        + (f", running hosts stop after their current step: "
                           f"{_listing(busy)}" if busy else ""))
        if control.signals > told:
            busy = display.running()
            if told == 0:
                display.message(
                    "INTERRUPTED: no new host starts"
                    + (f"; waiting for the running steps to end safely: {_listing(busy)}"
                       if busy else ""))
                control.run_interrupt_hooks(display)
            elif busy:
                display.message(f"still waiting for the running steps to end safely: "
                                f"{_listing(busy)} (they are never cut short)")
            told = control.signals
        display.tick()
    return failed, unreachable


def _listing(busy: Mapping[str, str]) -> str:
    return ", ".join(f"{host} ({step})" for host, step in busy.items())


__all__ = [
    "HOST_LOCK",
    "RunControl",
    "RunOptions",
    "make_transport",
    "run_fleet",
    "run_host",
]
