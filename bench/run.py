#!/usr/bin/env python3
"""Benchmark chatalot-db apply against an Ansible playbook and a shell-script floor.

As root, from the repository:

    .venv/bin/python bench/run.py            # fleets of 1, 4 and 8 hosts, every tool
    .venv/bin/python bench/run.py --smoke    # one host, each tool once fresh and once no-op
    .venv/bin/python bench/run.py --rtt 0,50 # no-op runs also over 50 ms of round trip

It boots its own test-bed hosts (state dir /var/tmp/ctb-bench, hosts debian12-b1...),
gives each tool fresh hosts (`reset`) for its fresh run, reruns it for the no-op
figure, counts SSH connections and commands per host from sshd's log on the hosts,
checks that every tool left the hosts as apply leaves them, prints a table with
ratios, and writes bench/results/<timestamp>.json (and .png: fleet size against time).

With --rtt, the no-op runs (and with --rtt-fresh the fresh ones) are measured again at
each round-trip time: every tool then reaches each host through a latency relay of its
own (bench/relay.py, one per host and RTT, on 127.0.0.1), named in the inventory as
ansible_host=127.0.0.1 ansible_port=<relay port> and on the floor's ssh command line
alike, and host keys are checked against a known_hosts that lists each relay's endpoint
with its host's key.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report, venv  # noqa: E402
from bench.hosts import (  # noqa: E402
    UPPER_GB_PER_HOST,
    BenchBed,
    Endpoint,
    expected_problems,
    upper_on_disk,
)
from bench.relay import LatencyRelay, RelayStats  # noqa: E402
from bench.tools import Ansible, Floor, Job, Ours, Tool  # noqa: E402
from installer.desired import scram  # noqa: E402
from installer.sqlx import rules  # noqa: E402
from testbed import testbed_available  # noqa: E402

BENCH_DIR = ROOT / "bench"
FULL_STATE_DIR = Path("/var/tmp/ctb-bench")
SMOKE_STATE_DIR = Path("/var/tmp/ctb-bench-smoke")
KIND = "debian12"
SSH_PORT = 22


def parse_rtts(text: str) -> list[int]:
    """`0,50,150` as sorted round-trip times in ms (each once)."""
    try:
        rtts = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ValueError(f"--rtt takes milliseconds as whole numbers (MS[,MS...]), "
                         f"got {text!r}") from None
    if not rtts or rtts[0] < 0:
        raise ValueError(f"--rtt takes round-trip times of 0 ms or more, got {text!r}")
    return rtts


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/run.py",
        description="chatalot-db apply against an Ansible playbook (community.postgresql) "
                    "and a hand-written shell script (the floor), on test-bed hosts. Needs "
                    "root (the test bed).")
    p.add_argument("--smoke", action="store_true",
                   help="one host; each tool once fresh and once no-op; no chart "
                        f"(state dir {SMOKE_STATE_DIR}, host {KIND}-bs1)")
    p.add_argument("--fleets", default=None, metavar="N,N,...",
                   help="fleet sizes (default 1,4,8; --smoke: 1)")
    p.add_argument("--tools", default=",".join(report.TOOLS), metavar="T,T,...",
                   help="which tools: ours, ansible, floor (default: all three)")
    p.add_argument("--noop-reps", type=int, default=None, metavar="N",
                   help="no-op runs per tool and fleet, the median is reported "
                        "(default 3; --smoke: 1)")
    p.add_argument("--fresh-reps", type=int, default=None, metavar="N",
                   help="fresh runs of the single-host fleet per tool, the median is reported "
                        "(default 2; --smoke: 1); larger fleets run fresh once")
    p.add_argument("--rtt", default="0", metavar="MS[,MS...]",
                   help="round-trip times to measure at, in ms (default 0: straight to the "
                        "hosts). Above 0 every tool reaches each host through a relay on "
                        "127.0.0.1 that delays each direction by RTT/2; the no-op runs are "
                        "measured at every RTT, the fresh runs at the smallest only unless "
                        "--rtt-fresh. E.g. --rtt 0,50")
    p.add_argument("--rtt-fresh", action="store_true",
                   help="measure the fresh runs at every --rtt as well")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results",
                   help="where the JSON (and PNG) go (default bench/results)")
    p.add_argument("--state-dir", type=Path, default=None,
                   help=f"the test bed's state dir (default {FULL_STATE_DIR}; "
                        f"--smoke: {SMOKE_STATE_DIR})")
    p.add_argument("--venv-cache", type=Path, default=venv.DEFAULT_CACHE,
                   help=f"where bench/.venv really lives (default {venv.DEFAULT_CACHE})")
    p.add_argument("--no-chart", action="store_true", help="no PNG")
    p.add_argument("--upper-on-disk", action="store_true",
                   help="keep each host's writable layer on disk (default: on tmpfs, unless "
                   "the fleet would take more than half of the memory that way)")
    p.add_argument("--keep-hosts", action="store_true",
                   help="leave the hosts running at the end (default: down)")
    return p


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.smoke: bool = args.smoke
        self.fleets = sorted({int(x) for x in (args.fleets or ("1" if self.smoke else "1,4,8"))
                              .split(",")})
        self.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
        unknown = set(self.tools) - set(report.TOOLS)
        if unknown or not self.tools:
            raise SystemExit(f"bench/run.py: unknown tool(s) {sorted(unknown)}; "
                             f"choose from {', '.join(report.TOOLS)}")
        if min(self.fleets) < 1:
            raise SystemExit("bench/run.py: a fleet has at least one host")
        try:
            self.rtts = parse_rtts(args.rtt)
        except ValueError as e:
            raise SystemExit(f"bench/run.py: {e}") from None
        #: fresh runs: at the smallest RTT, or at every one
        self.fresh_rtts = self.rtts if args.rtt_fresh else self.rtts[:1]
        #: rtt -> host -> its relay, while the matrix runs
        self.relays: dict[int, dict[str, LatencyRelay]] = {}
        self.noop_reps = args.noop_reps or (1 if self.smoke else 3)
        self.fresh_reps = args.fresh_reps or (1 if self.smoke else 2)
        self.state_dir = args.state_dir or (SMOKE_STATE_DIR if self.smoke else FULL_STATE_DIR)
        suffix = "bs" if self.smoke else "b"
        self.names = [f"{KIND}-{suffix}{i}" for i in range(1, max(self.fleets) + 1)]
        self.started = time.monotonic()
        self.runs: list[dict[str, Any]] = []
        self.verified: dict[str, dict[str, Any]] = {}
        self.work = Path(tempfile.mkdtemp(prefix="chatalot-bench-"))
        self.stamp = datetime.now().strftime("%Y%m%dT%H%M%S") + ("-smoke" if self.smoke else "")

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}s] {message}", flush=True)

    # -- inputs -------------------------------------------------------------------------
    def job(self, bed: BenchBed) -> Job:
        """The same job for every tool: tuning as `chatalot-db tune` computes it for these
        hosts (their RAM and CPUs), one password (as a SCRAM verifier for the role)."""
        first = self.names[0]
        facts = bed.run(first, "grep -m1 '^MemTotal:' /proc/meminfo | awk '{print $2}'; nproc"
                        ).stdout.split()
        memory_kb, cpus = int(facts[0]), int(facts[1])
        pg_major = bed.bed.hosts[first].pg_major
        tuned = json.loads(subprocess.run(
            [str(ROOT / ".venv" / "bin" / "chatalot-db"), "tune", "--memory", f"{memory_kb}kB",
             "--cpus", str(cpus), "--disk", "ssd", "--pg-version", str(pg_major), "--json"],
            capture_output=True, text=True, check=True).stdout)
        settings = {"listen_addresses": "localhost", "password_encryption": "scram-sha-256",
                    **tuned}
        password = secrets.token_urlsafe(32)
        self.say(f"job: PostgreSQL {pg_major}, tuning for {memory_kb} kB RAM and {cpus} CPUs "
                 f"({len(settings)} settings), 52-file migrations folder")
        return Job(pg_major=pg_major, settings=settings, password=password,
                   verifier=str(scram.make_verifier(password)), lock_id=rules.lock_id("chatalot"),
                   migrations_dir=ROOT / "migrations")

    # -- latency ----------------------------------------------------------------------------
    def start_relays(self, bed: BenchBed) -> None:
        """One relay per host and RTT above 0, each in front of the host's sshd."""
        for rtt in self.rtts:
            if rtt > 0:
                relays = self.relays.setdefault(rtt, {})
                for n in self.names:
                    relays[n] = LatencyRelay.for_rtt(bed.address(n), SSH_PORT,
                                                     rtt / 1000).start()
        if self.relays:
            self.say("latency relays on 127.0.0.1: " + "; ".join(
                f"{rtt} ms: " + ", ".join(f"{n} :{r.port}" for n, r in relays.items())
                for rtt, relays in self.relays.items()))

    def stop_relays(self) -> None:
        for relays in self.relays.values():
            for relay in relays.values():
                relay.stop()

    def relay_stats(self, rtt: int, names: Sequence[str]) -> dict[str, RelayStats]:
        relays = self.relays.get(rtt, {})
        return {n: relays[n].stats() for n in names if n in relays}

    def route(self, bed: BenchBed, rtt: int) -> None:
        """The tools reach the hosts at this RTT: straight at 0, else through the relays."""
        if rtt == 0:
            bed.route_direct()
            return
        bed.route({n: Endpoint("127.0.0.1", r.port) for n, r in self.relays[rtt].items()},
                  self.work / f"known_hosts-{rtt}ms")

    # -- one measured run -----------------------------------------------------------------
    def measure(self, bed: BenchBed, tool: Tool, names: list[str], kind: str, rep: int,
                job: Job, ledger_rows: str, migrations: int, rtt: int = 0) -> dict[str, Any]:
        work = self.work / (f"{tool.name}-{kind}-{len(names)}-{rep}"
                            + (f"-{rtt}ms" if rtt else ""))
        work.mkdir(parents=True)
        self.args.out.mkdir(parents=True, exist_ok=True)
        # a no-op rerun is measured on settled hosts (as a user reruns: not in the seconds
        # after provisioning, while 8 PostgreSQL servers vacuum and checkpoint on our cores)
        settled = report.wait_quiet() if kind == "noop" else 0.0
        cursors = bed.mark(names)
        load_before = report.loadavg()
        busy_before = report.busy_jiffies()
        relayed_before = self.relay_stats(rtt, names)
        self.route(bed, rtt)
        own_before = report.children_cpu()
        try:
            result = tool.run(bed, names, work)
        finally:
            bed.route_direct()
        # the tool's own processes on the control side (ours: chatalot-db; Ansible: its
        # forks and ssh; the floor: ssh), not the hosts, sshd or this benchmark's relays
        tool_cpu = report.children_cpu() - own_before
        cpu_seconds = (report.busy_jiffies() - busy_before) / 100
        relayed = {n: s - relayed_before[n] for n, s in self.relay_stats(rtt, names).items()}
        load_after = report.loadavg()
        ssh = bed.count(cursors)
        found = bed.verify(names, list(job.settings)) if kind == "fresh" else {}
        hosts: dict[str, Any] = {}
        for name in names:
            h = result.hosts[name]
            problems = expected_problems(found[name], ledger_rows, migrations) \
                if kind == "fresh" else []
            if kind == "noop" and h.changed not in (0, None):
                problems.append(f"the rerun changed {h.changed} thing(s)")
            hosts[name] = {"ok": h.ok and not problems, "changed": h.changed,
                           "detail": h.detail, "ssh": ssh[name].to_json(),
                           "problems": problems}
            if name in relayed:
                hosts[name]["relay"] = relayed[name].to_json()
            if kind == "fresh" and name == names[0] and len(names) == min(self.fleets):
                self.verified[tool.name] = found[name]
        ok = result.ok and all(h["ok"] for h in hosts.values())
        run: dict[str, Any] = {
            "tool": tool.name, "kind": kind, "fleet": len(names), "rep": rep, "rtt_ms": rtt,
            "seconds": round(result.seconds, 3), "ok": ok, "exit_code": result.exit_code,
            "loadavg_before_after": [load_before, load_after], "hosts": hosts,
            # busy CPU of the whole machine (every core: the tool, its hosts, the rest)
            "machine_cpu_seconds": round(cpu_seconds, 2), "settled_seconds": settled,
            "tool_cpu_seconds": round(tool_cpu, 3),
        }
        if result.extra:
            run["extra"] = result.extra
        if not ok:
            run["output_tail"] = result.output_tail
            kept = self.args.out / f"{self.stamp}-failed" / work.name
            shutil.copytree(work, kept, ignore=shutil.ignore_patterns("vars.json", "cp", "tmp"))
            run["kept"] = str(kept)
        self.runs.append(run)
        per_host = ssh[names[0]]
        self.say(f"{tool.name:<7} {kind:<5} {len(names)} host{'s' if len(names) > 1 else ' '} "
                 f"rep {rep}{f' at {rtt} ms RTT' if rtt else ''}: {result.seconds:7.2f}s  "
                 f"{'ok' if ok else 'FAILED'}  "
                 f"changed={[hosts[n]['changed'] for n in names]}  ssh/host: "
                 f"{per_host.connections} conn, {per_host.commands} cmd, "
                 f"{per_host.transfers} xfer  load {load_before:.1f}->{load_after:.1f}  "
                 f"machine CPU {cpu_seconds:.2f}s, the tool's own {tool_cpu:.2f}s"
                 + (f" (settled {settled:.0f}s)" if settled else ""))
        if not ok:
            for name in names:
                for p in hosts[name]["problems"]:
                    self.say(f"  {name}: {p}")
            print(result.output_tail, flush=True)
        return run

    def equivalence(self) -> dict[str, list[str]]:
        """Where the other tools' hosts differ from ours' (settings, hba, grants, ledger)."""
        base = self.verified.get("ours")
        out: dict[str, list[str]] = {}
        if base is None:
            return out
        keys = ("role", "database", "schema_public", "settings", "hba", "trust_rules", "env",
                "enabled", "login", "tables")
        for tool, found in self.verified.items():
            if tool == "ours":
                continue
            diffs = []
            for key in keys:
                if found.get(key) != base.get(key):
                    diffs.append(f"{key}: ours {base.get(key)!r}, {tool} {found.get(key)!r}")
            ledger, theirs = base.get("ledger") or {}, found.get("ledger") or {}
            for key in ("rows", "rows_text", "owner", "all_success"):
                if ledger.get(key) != theirs.get(key):
                    diffs.append(f"ledger {key} differs")
            out[tool] = diffs
        return out

    # -- the whole run --------------------------------------------------------------------
    def run(self) -> int:
        ok, why = testbed_available()
        if not ok:
            print(f"bench/run.py: {why}", file=sys.stderr)
            return 1
        sampler = report.LoadSampler().start()
        pool = ThreadPoolExecutor(max_workers=1)
        venv_future: Future[Path] | None = None
        if "ansible" in self.tools or not (self.smoke or self.args.no_chart):
            venv_future = pool.submit(venv.ensure_venv, BENCH_DIR, self.args.venv_cache,
                                      self.say)
            if not self.smoke:  # the full run measures on a quiet machine: build it first
                venv_future.result()
        others = machine_testbeds(self.state_dir)
        self.say(f"other test beds' hosts running on this machine: {len(others)} "
                 f"({', '.join(others) or 'none'}); load {report.loadavg():.2f}")
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        on_disk = self.args.upper_on_disk or upper_on_disk(len(self.names), memory_gb)
        if on_disk:
            self.say(f"the hosts' writable layers on disk, in {self.state_dir} "
                     f"({len(self.names)} hosts x about {UPPER_GB_PER_HOST} GB would take "
                     f"more than half of this machine's {memory_gb:.0f} GB on tmpfs)")
        bed = BenchBed(self.state_dir, self.names, self.say, upper_on_disk=on_disk)
        exit_code = 1
        try:
            bed.up()
            exit_code = self.matrix(bed, venv_future)
        finally:
            if not self.args.keep_hosts:
                bed.down()
                self.say(f"hosts of {self.state_dir} down")
            pool.shutdown()
            shutil.rmtree(self.work, ignore_errors=True)
            load = sampler.stop()
        self.finish(load, venv_future)
        return exit_code

    def matrix(self, bed: BenchBed, venv_future: Future[Path] | None) -> int:
        job = self.job(bed)
        local = rules.load_migrations(job.migrations_dir)
        ledger_rows = ",".join(f"{m.version}:{m.description}:{m.checksum.hex()}" for m in local)
        makers: dict[str, Callable[[], Tool]] = {
            "ours": Ours,
            "floor": lambda: Floor(job),
            "ansible": lambda: Ansible(_wait(venv_future), job),
        }
        order = [t for t in ("ours", "floor", "ansible") if t in self.tools]
        tools = {t: makers[t]() for t in order}

        def run(tool: str, names: list[str], kind: str, rep: int, rtt: int) -> None:
            if kind == "fresh":
                self.say(f"{tool}: fresh copies of {', '.join(names)}")
                bed.reset(names)
            self.measure(bed, tools[tool], names, kind, rep, job, ledger_rows, len(local),
                         rtt)

        try:
            self.start_relays(bed)
            self._matrix(order, run)
        finally:
            self.stop_relays()
        return 0 if all(r["ok"] for r in self.runs) else 1

    def _matrix(self, order: list[str],
                run: Callable[[str, list[str], str, int, int], None]) -> None:
        """Every run, in order: a tool's fresh run(s), then its no-op reruns at each RTT."""
        for index, n in enumerate(self.fleets):
            if n == 1 and len(self.names) >= len(order):
                # one host each, side by side: the no-op reruns go round the tools, so each
                # tool's runs meet the same load; the second fresh runs in reverse order
                own = {t: [self.names[i]] for i, t in enumerate(order)}
                for rtt in self.fresh_rtts:
                    for t in order:
                        run(t, own[t], "fresh", 1, rtt)
                for rep in range(1, self.noop_reps + 1):
                    for rtt in self.rtts:
                        for t in order:
                            run(t, own[t], "noop", rep, rtt)
                for fresh in range(2, self.fresh_reps + 1):
                    for rtt in self.fresh_rtts:
                        for t in order[::-1] if fresh % 2 == 0 else order:
                            run(t, own[t], "fresh", fresh, rtt)
                continue
            names = self.names[:n]
            # rotate the order per fleet: no tool always meets a cold (or warm) mirror first
            for t in order[index % len(order):] + order[:index % len(order)]:
                for fresh in range(1, (self.fresh_reps if n == 1 else 1) + 1):
                    for rtt in self.fresh_rtts:
                        run(t, names, "fresh", fresh, rtt)
                    if fresh == 1:  # the no-op figure: reruns after the first fresh run
                        for rep in range(1, self.noop_reps + 1):
                            for rtt in self.rtts:
                                run(t, names, "noop", rep, rtt)

    def finish(self, load: dict[str, Any], venv_future: Future[Path] | None) -> None:
        rtts, fresh_rtts = self.rtts, self.fresh_rtts
        figures = report.figures(self.runs, self.tools, self.fleets, rtts)
        ratios = report.ratios(figures, self.fleets, rtts, fresh_rtts)
        targets = report.targets(figures)
        round_trips = report.round_trips(figures, self.fleets, rtts) if "ours" in self.tools \
            else []
        equivalence = self.equivalence()
        self.args.out.mkdir(parents=True, exist_ok=True)
        json_path = self.args.out / f"{self.stamp}.json"
        # (kind, rtt) of the runs measured, under their figures' names: fresh, noop@50ms...
        measured = {f"{kind}{report.at(rtt)}": (kind, rtt) for rtt in rtts
                    for kind in ("fresh", "noop") if kind == "noop" or rtt in fresh_rtts}

        def ours_at(kind: str, rtt: int) -> list[dict[str, Any]]:
            return [r for r in self.runs if r["tool"] == "ours" and r["kind"] == kind
                    and report.rtt_of(r) == rtt and r["fleet"] == min(self.fleets)]
        ours_steps = {key: next((r["extra"]["steps"][next(iter(r["hosts"]))]
                                 for r in ours_at(kind, rtt) if r.get("extra")), None)
                      for key, (kind, rtt) in measured.items()}
        ours_host_seconds = {key: [s for r in ours_at(kind, rtt)
                                   for s in r.get("extra", {}).get("host_seconds", {}).values()]
                             for key, (kind, rtt) in measured.items()}
        data = {
            "mode": "smoke" if self.smoke else "full",
            "command": " ".join([sys.executable, *sys.argv]),
            "started": datetime.fromtimestamp(time.time() - (time.monotonic() - self.started))
            .isoformat(timespec="seconds"),
            "total_seconds": round(time.monotonic() - self.started, 1),
            "config": {"fleets": self.fleets, "tools": self.tools, "noop_reps": self.noop_reps,
                       "fresh_reps_single_host": self.fresh_reps, "hosts": self.names,
                       "state_dir": str(self.state_dir), "rtts_ms": rtts,
                       "fresh_rtts_ms": fresh_rtts},
            "versions": versions(venv_future, self.verified),
            "load": load,
            "figures": figures,
            "expected_figures": report.time_keys(self.fleets, rtts, fresh_rtts)
            + report.count_keys(rtts, fresh_rtts),
            "ratios": ratios,
            "round_trips": round_trips,
            "relays": {f"{rtt}ms": {n: r.stats().to_json() for n, r in relays.items()}
                       for rtt, relays in self.relays.items()},
            "targets": targets,
            "equivalence": equivalence,
            "ours_steps": ours_steps,
            "ours_host_seconds": ours_host_seconds,
            "runs": self.runs,
            "all_ok": all(r["ok"] for r in self.runs) and not any(equivalence.values()),
        }
        json_path.write_text(json.dumps(data, indent=2) + "\n")
        print()
        print(f"$ {data['command']}")
        if 0 in rtts:
            print(report.table(figures, ratios, self.fleets, self.tools))
        if rtts != [0]:
            if 0 in rtts:
                print()
            print("at each round-trip time (through a latency relay per host above 0 ms):")
            print(report.rtt_table(figures, ratios, self.fleets, self.tools, rtts, fresh_rtts))
            if round_trips:
                print()
                print("\n".join(report.round_trip_lines(round_trips)))
        control = report.control_side(self.runs, self.tools)
        data["control_side"] = control
        forks_model = report.forks_lines(figures, control, os.cpu_count() or 1, self.fleets,
                                         rtts)
        data["forks_model"] = forks_model
        json_path.write_text(json.dumps(data, indent=2) + "\n")
        if control:
            print()
            print("\n".join(report.control_side_lines(control, os.cpu_count() or 1)))
            print("\n".join(forks_model))
        print()
        print("ratios are ours / other: below 1 means chatalot-db took less time")
        for t in targets:
            print(f"target {'MET' if t['met'] else 'NOT MET'}: {t['target']}: {t['why']}")
        for tool, diffs in equivalence.items():
            print(f"{tool} left the hosts as ours does: "
                  f"{'yes' if not diffs else 'NO: ' + '; '.join(diffs)}")
        for key, steps in ours_steps.items():
            if steps:
                kind, rtt = measured[key]
                print(f"\nours, {kind} run of one host{f' at {rtt} ms RTT' if rtt else ''}, "
                      "per step:")
                print(report.breakdown(steps))
        la, cpu = load.get("loadavg_1min") or {}, load.get("cpu_busy_percent") or {}
        print(f"\nload while measuring: 1-min loadavg mean {la.get('mean')} (min {la.get('min')}, "
              f"max {la.get('max')}), CPU busy mean {cpu.get('mean')}% on {os.cpu_count()} "
              f"cores")
        print(f"results: {json_path}")
        if not (self.smoke or self.args.no_chart) and venv_future is not None:
            png = json_path.with_suffix(".png")
            done = subprocess.run([str(_wait(venv_future) / "bin" / "python"),
                                   str(BENCH_DIR / "chart.py"), str(json_path), str(png)],
                                  capture_output=True, text=True, check=False)
            print(f"chart: {png}" if done.returncode == 0 else f"chart failed: {done.stderr}")
        print(f"total {data['total_seconds']}s; every run succeeded: {data['all_ok']}")
        if not data["all_ok"]:
            failed = [f"{r['tool']} {r['kind']} x{r['fleet']}"
                      + (f" at {r['rtt_ms']} ms" if report.rtt_of(r) else "")
                      for r in self.runs if not r["ok"]]
            print(f"failed runs: {', '.join(failed) or 'none'}", file=sys.stderr)


def _wait(future: Future[Path] | None) -> Path:
    if future is None:
        raise RuntimeError("bench/.venv was not prepared")
    return future.result()


def machine_testbeds(own: Path) -> list[str]:
    """Test-bed hosts of other state dirs running now (for the load report)."""
    try:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                             check=False).stdout
    except OSError:
        return []
    names = [line.split()[0][4:] for line in out.splitlines() if line.startswith("ctb-")]
    mine = set()
    state = own / "state.json"
    if state.is_file():
        mine = set(json.loads(state.read_text()).get("hosts", {}))
    return [n for n in names if n not in mine]


def versions(venv_future: Future[Path] | None, verified: dict[str, dict[str, Any]]
             ) -> dict[str, Any]:
    def out(argv: Sequence[str]) -> str:
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, check=False,
                                  cwd=ROOT)
        except OSError:
            return ""
        return (done.stdout or done.stderr).strip()

    v: dict[str, Any] = {
        "python": platform.python_version(),
        "openssh_client": out(["ssh", "-V"]),
        "chatalot_db_commit": out(["git", "rev-parse", "--short", "HEAD"]),
        "chatalot_db_worktree_dirty": bool(out(["git", "status", "--porcelain", "--",
                                                "installer", "templates", "migrations"])),
        "postgresql": next((f.get("server_version") for f in verified.values()
                            if f.get("server_version")), None),
    }
    if venv_future is not None and venv_future.done() and venv_future.exception() is None:
        path = venv_future.result()
        v["ansible"] = out([str(path / "bin" / "ansible-playbook"), "--version"]).splitlines()[:1]
        for manifest in path.glob("lib/python*/site-packages/ansible_collections/community/"
                                  "postgresql/MANIFEST.json"):
            v["community.postgresql"] = json.loads(manifest.read_text())["collection_info"][
                "version"]
    return v


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if os.geteuid() != 0:
        print("bench/run.py: needs root (the test bed)", file=sys.stderr)
        return 1
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())

