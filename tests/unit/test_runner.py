"""run_fleet's scheduling with stand-in steps and transports: batches, forks, stop rules,
one connection per host, and a cooperative stop between steps (Ctrl-C)."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from installer.errors import ChatalotError, HostLockError, UnreachableError
from installer.fleet.display import Display
from installer.fleet.report import DONE, FAILED, NOT_STARTED, STOPPED, UNREACHABLE
from installer.fleet.rollout import StopPolicy
from installer.fleet.runner import RunControl, RunOptions, run_fleet
from installer.steps import HostContext, Step, StepFailed, StepResult
from installer.steps.base import ok
from installer.transport.base import Result, Transport


class FakeTransport(Transport):
    def __init__(self, name: str, log: Fleet) -> None:
        super().__init__()
        self.name = name
        self.log = log

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        return Result(0, "", "")

    @contextmanager
    def hold_lock(self, path: str, timeout: float, *,
                  on_wait: Callable[[], None] | None = None,
                  cancel: Callable[[], bool] | None = None,
                  then: str | None = None) -> Iterator[str | None]:
        with self.log.lock:
            self.log.locked.append(self.name)
        yield None

    def close(self) -> None:
        with self.log.lock:
            self.log.closed.append(self.name)


class Fleet:
    """Hosts that fail, are unreachable or are slow at given steps; records what ran."""

    def __init__(self, fail: Mapping[str, str] | None = None,
                 unreachable: set[str] | None = None,
                 hook: Callable[[str, str], None] | None = None) -> None:
        self.fail = dict(fail or {})
        self.unreachable = unreachable or set()
        self.hook = hook
        self.lock = threading.Lock()
        self.connected: list[str] = []
        self.closed: list[str] = []
        self.locked: list[str] = []
        self.ran: list[tuple[str, str]] = []
        self.busy = 0
        self.most_busy = 0

    def connect(self, name: str, hostvars: Mapping[str, Any], opts: RunOptions) -> Transport:
        del hostvars, opts
        with self.lock:
            self.connected.append(name)
        if name in self.unreachable:
            raise UnreachableError(f"cannot connect to {name}: no route to host")
        return FakeTransport(name, self)

    def steps(self) -> list[Step]:
        return [FakeStep(self, s) for s in ("one", "two", "three")]


class FakeStep(Step):
    def __init__(self, fleet: Fleet, name: str) -> None:
        self.fleet = fleet
        self.name = name

    def run(self, ctx: HostContext) -> StepResult:
        f = self.fleet
        with f.lock:
            f.busy += 1
            f.most_busy = max(f.most_busy, f.busy)
            f.ran.append((ctx.name, self.name))
        try:
            if f.hook:
                f.hook(ctx.name, self.name)
            else:
                time.sleep(0.01)
            if f.fail.get(ctx.name) == self.name:
                raise StepFailed(f"{self.name} broke")
            return ok("fine")
        finally:
            with f.lock:
                f.busy -= 1


def run(fleet: Fleet, names: list[str], control: RunControl | None = None,
        forks: int = 5) -> tuple[dict[str, Any], RunControl]:
    control = control or RunControl()
    reports = run_fleet({n: {} for n in names}, RunOptions(forks=forks),
                        Display(io.StringIO(), multi_host=True), control,
                        steps=fleet.steps, transport_factory=fleet.connect)
    assert [r.name for r in reports] == names  # inventory order
    return {r.name: r for r in reports}, control


HOSTS = ["a", "b", "c", "d"]


def test_every_host_runs_every_step_on_one_connection() -> None:
    fleet = Fleet()
    reports, control = run(fleet, HOSTS)
    assert {n: r.state for n, r in reports.items()} == dict.fromkeys(HOSTS, DONE)
    assert sorted(fleet.connected) == HOSTS and sorted(fleet.closed) == HOSTS
    assert sorted(fleet.locked) == HOSTS  # the host lock: once per host, not per step
    assert all(len(r.steps) == 3 for r in reports.values())
    assert control.batches == [HOSTS] and not control.interrupted and control.stopped is None


@pytest.mark.parametrize("forks", [1, 2, 3])
def test_forks_bound_the_hosts_at_work(forks: int) -> None:
    fleet = Fleet(hook=lambda h, s: time.sleep(0.02))
    run(fleet, HOSTS * 1, forks=forks)
    assert fleet.most_busy == forks


def test_failure_and_unreachable_never_stop_the_others_by_default() -> None:
    fleet = Fleet(fail={"a": "one"}, unreachable={"b"})
    reports, control = run(fleet, HOSTS)
    assert reports["a"].state == FAILED and reports["b"].state == UNREACHABLE
    assert reports["c"].state == reports["d"].state == DONE
    assert control.stopped is None


def test_serial_runs_batch_after_batch() -> None:
    order: list[str] = []
    fleet = Fleet(hook=lambda h, s: order.append(h))
    _, control = run(fleet, HOSTS, RunControl([1, "50%"]))
    assert control.batches == [["a"], ["b", "c"], ["d"]]
    assert order[:3] == ["a"] * 3 and sorted(order[3:9]) == ["b"] * 3 + ["c"] * 3
    assert order[9:] == ["d"] * 3


def test_max_fail_zero_stops_before_the_second_batch() -> None:
    fleet = Fleet(fail={"a": "one"})
    reports, control = run(fleet, HOSTS, RunControl([2], StopPolicy(max_fail_percentage=0)))
    assert reports["a"].state == FAILED
    # b stops after its current step (as Ansible), or never started if a failed first
    assert reports["b"].state in (DONE, STOPPED, NOT_STARTED)
    assert reports["c"].state == reports["d"].state == NOT_STARTED
    assert reports["c"].steps == [] and "c" not in fleet.connected and "d" not in fleet.connected
    assert control.stopped is not None and "1 of 2" in control.stopped


def test_max_fail_counts_failed_hosts_only() -> None:
    fleet = Fleet(unreachable={"a"})
    reports, control = run(fleet, HOSTS, RunControl([2], StopPolicy(max_fail_percentage=0)))
    assert reports["d"].state == DONE and control.stopped is None


def test_running_hosts_stop_between_steps_when_the_rule_trips() -> None:
    gate, b_inside = threading.Event(), threading.Event()

    def hook(host: str, step: str) -> None:
        if host == "b" and step == "one":
            b_inside.set()
            gate.wait(5)  # b is inside its first step when a fails
        if host == "a" and step == "two":
            b_inside.wait(5)
            threading.Timer(0.2, gate.set).start()

    fleet = Fleet(fail={"a": "two"}, hook=hook)
    reports, _ = run(fleet, ["a", "b"], RunControl([], StopPolicy(any_errors_fatal=True)))
    b = reports["b"]
    assert b.state == STOPPED and [s.name for s in b.steps] == ["one"]  # its step ended
    assert b.steps[0].status == "ok" and b.stopped_before == "two"


def test_any_errors_fatal_on_unreachable() -> None:
    fleet = Fleet(unreachable={"a"}, hook=lambda h, s: time.sleep(0.05))
    reports, control = run(fleet, HOSTS, RunControl([1], StopPolicy(any_errors_fatal=True)))
    assert reports["a"].state == UNREACHABLE
    assert {reports[h].state for h in "bcd"} == {NOT_STARTED}
    assert control.stopped == "--any-errors-fatal: 1 unreachable"


def test_a_batch_that_entirely_failed_ends_the_run() -> None:
    fleet = Fleet(fail={"a": "one"}, unreachable={"b"})
    reports, control = run(fleet, HOSTS, RunControl([2]))
    assert reports["c"].state == reports["d"].state == NOT_STARTED
    assert control.stopped == "every host of the batch failed or was unreachable"


def test_the_last_batch_failing_entirely_is_not_a_stop() -> None:
    fleet = Fleet(fail={"a": "one", "b": "two"})
    reports, control = run(fleet, ["a", "b"])
    assert control.stopped is None and {r.state for r in reports.values()} == {FAILED}


def test_sigint_stops_cooperatively_in_the_main_thread() -> None:
    """A real SIGINT to this process while a step runs: the step ends, nothing else starts."""
    inside = threading.Event()

    def hook(host: str, step: str) -> None:
        if host == "a" and step == "two":
            inside.set()
            time.sleep(0.5)  # SIGINT arrives meanwhile; this step still ends normally

    fleet = Fleet(hook=hook)
    control = RunControl()

    def press_ctrl_c() -> None:
        if inside.wait(5):
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    before = signal.getsignal(signal.SIGINT)
    with control.sigint():
        reports, _ = run(fleet, HOSTS, control, forks=1)
    assert signal.getsignal(signal.SIGINT) is before
    assert control.interrupted
    a = reports["a"]
    assert a.state == STOPPED and [s.status for s in a.steps] == ["ok", "ok"]
    assert {reports[h].state for h in "bcd"} == {NOT_STARTED}
    assert fleet.connected == ["a"] and fleet.closed == ["a"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [(["--serial", "two"], 5, "--serial takes numbers"),
     (["--serial", "1,12.5%"], 5, "--serial takes numbers"),
     (["--max-fail-percentage", "150"], 5, "between 0 and 100"),
     (["--forks", "0"], 5, "--forks must be at least 1"),
     (["--limit", "nomatch"], 1, "leaves no host"),          # as ansible-playbook: exit 1
     (["--limit", "db[7]"], 1, "--limit 'db[7]'"),
     (["--limit", "db01:&web"], 1, "leaves no host")],
)
def test_apply_option_errors(tmp_path: Any, capsys: pytest.CaptureFixture[str],
                             args: list[str], code: int, message: str) -> None:
    """Bad run controls exit 5, a --limit that leaves no host exits 1; nothing is run."""
    from installer.cli import main

    inv = tmp_path / "hosts.ini"
    inv.write_text("[db]\ndb01 ansible_host=192.0.2.1\ndb02 ansible_host=192.0.2.2\n")
    assert main(["apply", "-i", str(inv), *args]) == code
    err = capsys.readouterr().err
    assert message in err, err


def test_without_inventory_a_limit_other_than_localhost_exits_1(
        capsys: pytest.CaptureFixture[str]) -> None:
    from installer.cli import main

    assert main(["apply", "--limit", "db01"]) == 1
    assert "without -i the only host is localhost" in capsys.readouterr().err


class LockedTransport(FakeTransport):
    """A host where another chatalot-db run holds the host lock past our timeout."""

    @contextmanager
    def hold_lock(self, path: str, timeout: float, *,
                  on_wait: Callable[[], None] | None = None,
                  cancel: Callable[[], bool] | None = None,
                  then: str | None = None) -> Iterator[str | None]:
        if on_wait is not None:
            on_wait()
        raise HostLockError(f"another chatalot-db run holds the host lock {path} on "
                            f"{self.name}: gave up after waiting {timeout:g}s (--lock-timeout)")
        yield  # pragma: no cover


def test_a_host_whose_lock_times_out_fails_alone_before_any_step() -> None:
    fleet = Fleet()

    def connect(name: str, hostvars: Mapping[str, Any], opts: RunOptions) -> Transport:
        assert opts.lock_timeout == 7
        return LockedTransport(name, fleet) if name == "b" else FakeTransport(name, fleet)

    out = io.StringIO()
    reports = {r.name: r for r in run_fleet(
        {n: {} for n in ("a", "b")}, RunOptions(lock_timeout=7),
        Display(out, multi_host=True), steps=fleet.steps, transport_factory=connect)}
    assert reports["a"].state == DONE and len(reports["a"].steps) == 3
    b = reports["b"]
    assert b.state == FAILED and [s.name for s in b.steps] == ["take the host lock"]
    assert "/run/lock/chatalot-db.lock" in b.error and "--lock-timeout" in b.error
    assert ("b", "one") not in fleet.ran and "b" in fleet.closed
    assert "b: waiting for another chatalot-db run on this host" in out.getvalue()


class OneSessionTransport(FakeTransport):
    """A host whose sshd refuses the lock's session (MaxSessions 1, the previous session
    not yet released)."""

    @contextmanager
    def hold_lock(self, path: str, timeout: float, *,
                  on_wait: Callable[[], None] | None = None,
                  cancel: Callable[[], bool] | None = None,
                  then: str | None = None) -> Iterator[str | None]:
        raise ChatalotError(f"sshd on {self.name} refused another session on the connection")
        yield  # pragma: no cover


def test_a_host_refusing_the_locks_session_fails_clearly_not_internally() -> None:
    fleet = Fleet()

    def connect(name: str, hostvars: Mapping[str, Any], opts: RunOptions) -> Transport:
        return OneSessionTransport(name, fleet) if name == "b" else FakeTransport(name, fleet)

    reports = {r.name: r for r in run_fleet(
        {n: {} for n in ("a", "b")}, RunOptions(), Display(io.StringIO(), multi_host=True),
        steps=fleet.steps, transport_factory=connect)}
    assert reports["a"].state == DONE
    b = reports["b"]
    assert b.state == FAILED and not b.unreachable
    assert [(s.name, s.status, s.reason) for s in b.steps] == [
        ("take the host lock", "failed",
         "sshd on b refused another session on the connection")]


def test_a_failure_that_keeps_going_lets_the_later_steps_run_and_fails_the_host() -> None:
    """A step failing with keep_going (a tuning conflict): the steps after it still run (the
    access rules), the host fails at the end with that error, its end notes unsaid."""
    from installer.steps.base import failed

    class Conflict(Step):
        name = "conflict"

        def run(self, ctx: HostContext) -> StepResult:
            return failed("tuning conflict", keep_going=True)

    class Later(Step):
        name = "later"

        def run(self, ctx: HostContext) -> StepResult:
            return ok("access rules enforced", note="a note")

    fleet = Fleet()
    [report] = run_fleet({"a": {}}, RunOptions(), Display(io.StringIO(), multi_host=True),
                         steps=lambda: [Conflict(), Later()], transport_factory=fleet.connect)
    assert [(s.name, s.status) for s in report.steps] == [("conflict", "failed"),
                                                          ("later", "ok")]
    assert report.error == "tuning conflict" and report.state == FAILED
    assert report.notes == []
