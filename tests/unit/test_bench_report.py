"""The benchmark's pure parts: waiting for settled hosts, and CPU figures per scenario."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402


def _cpu(busy_per_window: list[float]) -> Any:
    """cpu_times() answers giving these busy percentages, window after window."""
    state = {"total": 0, "idle": 0, "calls": 0}
    windows = iter(busy_per_window)

    def read() -> tuple[int, int]:
        if state["calls"] % 2 == 1:  # the end of a window
            busy = next(windows)
            state["total"] += 200
            state["idle"] += int(200 * (100 - busy) / 100)
        state["calls"] += 1
        return state["total"], state["idle"]
    return read


@pytest.mark.parametrize(("busy", "max_wait", "waited"), [
    ([5.0], 30.0, 1.0),                       # quiet at once: one window
    ([90.0, 60.0, 10.0], 30.0, 3.0),          # settles in the third window
    ([95.0] * 100, 4.0, 4.0),                 # never settles: gives up at max_wait
    ([25.0, 24.0], 30.0, 2.0),                # strictly below the threshold
])
def test_wait_quiet(busy: list[float], max_wait: float, waited: float) -> None:
    slept: list[float] = []
    got = report.wait_quiet(max_wait=max_wait, busy_below=25.0, window=1.0,
                            sleep=slept.append, cpu_times=_cpu(busy))
    assert got == waited and sum(slept) == waited


def _run(tool: str, kind: str, fleet: int, seconds: float, cpu: float | None,
         ok: bool = True) -> dict[str, Any]:
    run: dict[str, Any] = {"tool": tool, "kind": kind, "fleet": fleet, "seconds": seconds,
                           "ok": ok, "hosts": {}}
    if cpu is not None:
        run["machine_cpu_seconds"] = cpu
    return run


def test_figures_hold_the_median_cpu_of_successful_runs() -> None:
    runs = [_run("ours", "noop", 1, 0.4, 0.40), _run("ours", "noop", 1, 0.5, 0.50),
            _run("ours", "noop", 1, 0.45, 0.90),
            _run("ours", "noop", 8, 0.9, 1.30), _run("ours", "noop", 8, 5.0, 9.0, ok=False),
            _run("ours", "fresh", 1, 15.0, None), _run("ours", "fresh", 8, 60.0, 80.0)]
    fig = report.figures(runs, ["ours"], [1, 8])["ours"]
    assert (fig["cpu_noop_1"], fig["cpu_noop_8"], fig["cpu_fresh_1"], fig["cpu_fresh_8"]) == \
        (0.5, 1.3, None, 80.0)
    target = report.targets({"ours": {**fig, "noop_1": 0.45, "noop_8": 0.9}})[-1]
    assert target["met"] is False and "1.30s for 8" in target["why"]


def test_control_side_is_each_tools_median_cpu_per_host_at_0_ms() -> None:
    def run(tool: str, kind: str, fleet: int, cpu: float | None, *, ok: bool = True,
            rtt: int = 0) -> dict[str, Any]:
        return {"tool": tool, "kind": kind, "fleet": fleet, "ok": ok, "rtt_ms": rtt,
                "tool_cpu_seconds": cpu}

    runs = [run("ours", "noop", 8, 0.8), run("ours", "noop", 8, 1.2), run("ours", "noop", 8, 1.0),
            run("ours", "noop", 8, 9.0, ok=False), run("ours", "noop", 8, 5.0, rtt=50),
            run("ansible", "fresh", 1, 40.0), run("floor", "noop", 1, None)]
    control = report.control_side(runs, ["ours", "ansible", "floor"])
    assert control == [
        {"tool": "ours", "kind": "noop", "fleet": 8, "cpu_seconds": 1.0, "cpu_per_host": 0.125},
        {"tool": "ansible", "kind": "fresh", "fleet": 1, "cpu_seconds": 40.0,
         "cpu_per_host": 40.0},
    ]
    lines = report.control_side_lines(control, cores=2)
    assert lines[1] == ("  ours     noop   8 hosts  0.125 s/host  -> 1,000 hosts: 125 CPU s, "
                        "at least 62 s wall whatever --forks")
    assert lines[2].startswith("  ansible  fresh  1 host   40.000 s/host  -> 1,000 hosts: "
                               "40,000 CPU s, at least 20,000 s wall")


def test_forks_lines_model_waves_until_the_cores_are_busy() -> None:
    figures = {"ours": {"noop_1": 0.5, "noop_1@50ms": 1.2}}
    control = [{"tool": "ours", "kind": "noop", "fleet": 1, "cpu_per_host": 0.3},
               {"tool": "ours", "kind": "noop", "fleet": 32, "cpu_per_host": 0.05},
               {"tool": "ansible", "kind": "noop", "fleet": 32, "cpu_per_host": 2.0}]
    lines = report.forks_lines(figures, control, cores=2, fleets=[1, 32], rtts=[0, 50],
                               default_forks=5)
    assert "our CPU 0.050 s per host on 2 cores" in lines[0]  # the largest fleet's
    # 0 ms: 200 waves of 0.5 s; 2 cores x 0.5 s / 0.05 s = 20 forks, 50 waves = 25 s, CPU 25 s
    assert lines[1] == ("  at   0 ms: --forks 5 (the default) 100 s; --forks 20 25 s (beyond "
                        "it the cores are busy: at least 25 s)")
    # 50 ms: 200 waves of 1.2 s; 48 forks, 21 waves = 25 s
    assert lines[2] == ("  at  50 ms: --forks 5 (the default) 240 s; --forks 48 25 s (beyond "
                        "it the cores are busy: at least 25 s)")
    assert report.forks_lines(figures, [], cores=2, fleets=[1], rtts=[0]) == []


@pytest.mark.parametrize(("hosts", "memory_gb", "on_disk"), [
    (1, 24, False), (8, 24, False), (17, 24, False), (18, 24, True), (32, 24, True),
    (8, 8, True), (32, 64, False)])
def test_writable_layers_go_on_disk_when_tmpfs_would_take_half_the_memory(
        hosts: int, memory_gb: float, on_disk: bool) -> None:
    from bench.hosts import upper_on_disk
    assert upper_on_disk(hosts, memory_gb) is on_disk
