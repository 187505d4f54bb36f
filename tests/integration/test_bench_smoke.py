"""The benchmark still works: `bench/run.py --smoke` on one test-bed host.

It runs chatalot-db apply, the Ansible playbook and the shell-script floor once
fresh and once no-op, and this checks that its JSON holds every figure and that
every run succeeded (including the checks that each tool left the host as apply
does). No timing thresholds: a benchmark is not a timed test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.testbed

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("ours", "ansible", "floor")


def _run_smoke(out: Path) -> subprocess.CompletedProcess[str]:
    from testbed import testbed_available

    ok, why = testbed_available()
    if not ok:
        pytest.skip(f"test bed unavailable: {why}")
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_bench_smoke_writes_every_figure_and_every_run_succeeds(tmp_path: Path) -> None:
    done = _run_smoke(tmp_path)
    tail = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, tail
    files = sorted(tmp_path.glob("*-smoke.json"))
    assert len(files) == 1, f"{list(tmp_path.iterdir())}\n{tail}"
    data: dict[str, Any] = json.loads(files[0].read_text())

    assert data["mode"] == "smoke"
    assert data["config"]["fleets"] == [1]
    assert data["expected_figures"] == [
        "fresh_1", "noop_1",
        "connections_fresh", "commands_fresh", "transfers_fresh",
        "connections_noop", "commands_noop", "transfers_noop",
    ]
    for tool in TOOLS:
        figures = data["figures"][tool]
        for key in data["expected_figures"]:
            assert isinstance(figures.get(key), int | float), (tool, key, figures)
        assert figures["fresh_1"] > 0 and figures["noop_1"] > 0, (tool, figures)
        # every tool reaches the host over SSH and runs at least one command there
        assert figures["connections_fresh"] >= 1 and figures["commands_fresh"] >= 1
        assert figures["connections_noop"] >= 1 and figures["commands_noop"] >= 1
    # the floor's whole job is one command in one connection
    assert data["figures"]["floor"]["connections_fresh"] == 1
    assert data["figures"]["floor"]["commands_fresh"] == 1
    for pair in ("ours/ansible", "ours/floor"):
        assert set(data["ratios"][pair]) == {"fresh_1", "noop_1"}
        assert all(isinstance(v, float) for v in data["ratios"][pair].values())
    assert {t["target"] for t in data["targets"]} >= {
        "no-op rerun >= 10x faster than Ansible and under 1 s per host",
        "fresh provision within 1.2x of the shell floor",
    }

    runs = data["runs"]
    assert sorted((r["tool"], r["kind"]) for r in runs) == sorted(
        (t, k) for t in TOOLS for k in ("fresh", "noop"))
    for run in runs:
        assert run["ok"], json.dumps(run, indent=1)[-3000:]
        # the whole machine's busy CPU during the run; no-op runs wait for settled hosts
        assert run["machine_cpu_seconds"] > 0, run["machine_cpu_seconds"]
        assert 0 <= run["settled_seconds"] <= 30 and (run["kind"] == "noop" or
                                                       run["settled_seconds"] == 0)
        for name, host in run["hosts"].items():
            assert host["problems"] == [], (run["tool"], run["kind"], name, host)
            if run["kind"] == "noop":
                assert host["changed"] == 0, (run["tool"], name, host)
            else:
                assert host["changed"], (run["tool"], name, host)
    assert data["equivalence"] == {"ansible": [], "floor": []}
    assert data["all_ok"] is True
    # ours' per-step breakdown (from --json and --log-dir) is there for both kinds
    for kind in ("fresh", "noop"):
        steps = data["ours_steps"][kind]
        assert steps and all(isinstance(s["seconds"], float | int) for s in steps)


def test_the_chart_draws_every_fleet_and_the_latency_runs_dashed(tmp_path: Path) -> None:
    """bench/chart.py (matplotlib, in bench/.venv: built or taken from its cache here) on a
    run of two fleets at 0 and 50 ms: the no-op panel has a dashed line per tool at 50 ms,
    the fresh panel (fresh runs at 0 ms only) none."""
    from bench.venv import ensure_venv

    python = ensure_venv(ROOT / "bench", Path("/var/cache/chatalot-bench"), print) / "bin/python"
    figures = {tool: {"fresh_1": 10.0 + i, "fresh_8": 40.0 + i, "noop_1": 0.5 + i,
                      "noop_8": 1.0 + i, "noop_1@50ms": 1.0 + i, "noop_8@50ms": 1.5 + i}
               for i, tool in enumerate(TOOLS)}
    data = {"config": {"fleets": [1, 8], "rtts_ms": [0, 50]}, "figures": figures,
            "started": "2026-12-03T00:00:00", "load": {}}
    src, png = tmp_path / "run.json", tmp_path / "run.png"
    src.write_text(json.dumps(data))
    done = subprocess.run([str(python), str(ROOT / "bench" / "chart.py"), str(src), str(png)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "fresh: chatalot-db", "fresh: Ansible", "fresh: shell floor",
        "noop: chatalot-db", "noop: chatalot-db, 50 ms RTT", "noop: Ansible",
        "noop: Ansible, 50 ms RTT", "noop: shell floor", "noop: shell floor, 50 ms RTT"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
