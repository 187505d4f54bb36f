"""Figures, ratios, targets and the printed tables, from the list of runs (pure).

A run measured through latency relays carries its round-trip time (`rtt_ms`; a run
without it was measured at 0 ms). Figures at 0 ms keep their plain keys (`noop_1`,
`commands_noop`); those at another RTT carry it as a suffix (`noop_1@50ms`,
`commands_noop@50ms`).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.fleet.rollout import DEFAULT_FORKS

TOOLS = ("ours", "ansible", "floor")
Figures = dict[str, dict[str, Any]]


def at(rtt: int) -> str:
    """The key suffix of figures measured at this RTT (none at 0 ms)."""
    return f"@{rtt}ms" if rtt else ""


def rtt_of(run: Mapping[str, Any]) -> int:
    """The RTT (ms) a run was measured at; 0 for a run from before relays."""
    return int(run.get("rtt_ms") or 0)


def time_keys(fleets: Sequence[int], rtts: Sequence[int] = (0,),
              fresh_rtts: Sequence[int] | None = None) -> list[str]:
    """The seconds figures measured: no-op runs at every RTT, fresh runs at fresh_rtts
    (default: every RTT)."""
    fresh = set(rtts if fresh_rtts is None else fresh_rtts)
    return [f"{kind}_{n}{at(rtt)}" for rtt in rtts for n in fleets
            for kind in ("fresh", "noop") if kind == "noop" or rtt in fresh]


COUNT_KEYS = ("connections_fresh", "commands_fresh", "transfers_fresh",
              "connections_noop", "commands_noop", "transfers_noop")


def count_keys(rtts: Sequence[int] = (0,), fresh_rtts: Sequence[int] | None = None
               ) -> list[str]:
    """The SSH-use figures measured (COUNT_KEYS at 0 ms), as time_keys."""
    fresh = set(rtts if fresh_rtts is None else fresh_rtts)
    return [f"{key}{at(rtt)}" for rtt in rtts for key in COUNT_KEYS
            if key.endswith("_noop") or rtt in fresh]


def figures(runs: Sequence[Mapping[str, Any]], tools: Sequence[str],
            fleets: Sequence[int], rtts: Sequence[int] = (0,)) -> Figures:
    """Per tool and RTT: seconds per scenario (the median of its successful repetitions)
    and SSH use per host (the mean over the hosts of the smallest fleet's first successful
    run of each kind). `failed` lists the scenarios with a failed run (left out of the
    figure). Keys at an RTT other than 0 carry its suffix (at())."""
    out: Figures = {}
    smallest = min(fleets)
    for tool in tools:
        fig: dict[str, Any] = {}
        failed: list[str] = []
        for rtt in rtts:
            mine_at = [r for r in runs if r["tool"] == tool and rtt_of(r) == rtt]
            suffix = at(rtt)
            for n in fleets:
                for kind in ("fresh", "noop"):
                    mine = [r for r in mine_at if r["fleet"] == n and r["kind"] == kind]
                    times = [r["seconds"] for r in mine if r["ok"]]
                    if len(times) < len(mine):
                        failed.append(f"{kind}_{n}{suffix}")
                    fig[f"{kind}_{n}{suffix}"] = round(statistics.median(times), 3) \
                        if times else None
                    cpu = [r["machine_cpu_seconds"] for r in mine
                           if r["ok"] and r.get("machine_cpu_seconds") is not None]
                    fig[f"cpu_{kind}_{n}{suffix}"] = round(statistics.median(cpu), 2) \
                        if cpu else None
        fig["failed"] = failed
        for rtt in rtts:
            for kind in ("fresh", "noop"):
                first = next((r for r in runs if r["tool"] == tool and rtt_of(r) == rtt
                              and r["fleet"] == smallest and r["kind"] == kind and r["ok"]),
                             None)
                for what in ("connections", "commands", "transfers"):
                    values = [h["ssh"][what] for h in (first or {}).get("hosts", {}).values()
                              if h.get("ssh")]
                    fig[f"{what}_{kind}{at(rtt)}"] = round(statistics.mean(values), 1) \
                        if values else None
        out[tool] = fig
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def ratios(fig: Figures, fleets: Sequence[int], rtts: Sequence[int] = (0,),
           fresh_rtts: Sequence[int] | None = None) -> dict[str, dict[str, float | None]]:
    ours = fig.get("ours", {})
    out: dict[str, dict[str, float | None]] = {}
    for other in ("ansible", "floor"):
        if other in fig and ours:
            out[f"ours/{other}"] = {k: _ratio(ours.get(k), fig[other].get(k))
                                    for k in time_keys(fleets, rtts, fresh_rtts)}
    return out


def round_trips(fig: Figures, fleets: Sequence[int], rtts: Sequence[int],
                tool: str = "ours") -> list[dict[str, Any]]:
    """For each RTT above 0 and fleet: the tool's no-op seconds, how many RTTs they are
    above its 0 ms no-op (None without a 0 ms figure), and its SSH connections and commands
    per host at that RTT: each connection costs its handshake's round trips, and each
    command, sent after the one before has answered, at least one more."""
    mine = fig.get(tool, {})
    out: list[dict[str, Any]] = []
    for rtt in rtts:
        if rtt <= 0:
            continue
        for n in fleets:
            seconds = mine.get(f"noop_{n}{at(rtt)}")
            base = mine.get(f"noop_{n}") if 0 in rtts else None
            paid = round((seconds - base) / (rtt / 1000), 1) \
                if seconds is not None and base is not None else None
            out.append({"fleet": n, "rtt_ms": rtt, "seconds": seconds, "base_seconds": base,
                        "rtts_paid": paid, "connections": mine.get(f"connections_noop{at(rtt)}"),
                        "commands": mine.get(f"commands_noop{at(rtt)}")})
    return out


def targets(fig: Figures) -> list[dict[str, Any]]:
    """The benchmark's three targets (docs/benchmark.md), each met or not, with its numbers."""
    ours, ansible, floor = fig.get("ours", {}), fig.get("ansible", {}), fig.get("floor", {})
    out: list[dict[str, Any]] = []
    n1, a1 = ours.get("noop_1"), ansible.get("noop_1")
    if n1 and a1:
        speedup = a1 / n1
        met = speedup >= 10 and n1 < 1.0
        out.append({"target": "no-op rerun >= 10x faster than Ansible and under 1 s per host",
                    "met": met, "speedup": round(speedup, 1), "ours_seconds": n1,
                    "why": f"Ansible {a1:.2f}s / ours {n1:.2f}s = {speedup:.1f}x "
                           f"({'>=' if speedup >= 10 else '<'} 10x); ours {n1:.2f}s per host "
                           f"({'<' if n1 < 1 else '>='} 1 s)"})
    f1, fl1 = ours.get("fresh_1"), floor.get("fresh_1")
    if f1 and fl1:
        r = f1 / fl1
        out.append({"target": "fresh provision within 1.2x of the shell floor",
                    "met": r <= 1.2, "ratio": round(r, 2),
                    "why": f"ours {f1:.1f}s / floor {fl1:.1f}s = {r:.2f}x "
                           f"({'<=' if r <= 1.2 else '>'} 1.2x)"})
    n8 = ours.get("noop_8")
    if n1 and n8:
        r = n8 / n1
        c1, c8 = ours.get("cpu_noop_1"), ours.get("cpu_noop_8")
        cpu = (f"; the machine's CPU busy {c1:.2f}s for 1 host, {c8:.2f}s for 8 (chatalot-db "
               "and the 8 hosts share these cores)" if c1 is not None and c8 is not None
               else "")
        out.append({"target": "fleet of 8 no-op under 2x the single-host no-op",
                    "met": r < 2, "ratio": round(r, 2),
                    "why": f"8 hosts {n8:.2f}s / 1 host {n1:.2f}s = {r:.2f}x "
                           f"({'<' if r < 2 else '>='} 2x){cpu}"})
    return out


def _fmt(v: float | None, unit: str = "s") -> str:
    if v is None:
        return "-"
    if unit == "s":
        return f"{v:.2f}s" if v < 10 else f"{v:.1f}s"
    if unit == "x":
        return f"{v:.2f}"
    return f"{v:g}"


def table(fig: Figures, rat: Mapping[str, Mapping[str, float | None]],
          fleets: Sequence[int], tools: Sequence[str]) -> str:
    """The printed table: seconds per scenario, SSH use per host, and the ratios."""
    labels = {"fresh": "fresh", "noop": "no-op"}
    rows: list[list[str]] = []
    head = ["", *tools]
    ratio_cols = [k for k in ("ours/ansible", "ours/floor") if k in rat]
    head += ratio_cols
    for n in fleets:
        for kind in ("fresh", "noop"):
            key = f"{kind}_{n}"
            row = [f"{labels[kind]}, {n} host{'s' if n != 1 else ''}"]
            row += [_fmt(fig[t].get(key)) + ("!" if key in fig[t].get("failed", []) else "")
                    for t in tools]
            row += [_fmt(rat[c].get(key), "x") for c in ratio_cols]
            rows.append(row)
    for n in fleets:
        for kind in ("fresh", "noop"):
            row = [f"machine CPU, {labels[kind]}, {n} host{'s' if n != 1 else ''}"]
            row += [_fmt(fig[t].get(f"cpu_{kind}_{n}")) for t in tools]
            row += ["" for _ in ratio_cols]
            rows.append(row)
    for kind in ("fresh", "noop"):
        for what in ("connections", "commands", "transfers"):
            row = [f"SSH {what}/host, {labels[kind]}"]
            row += [_fmt(fig[t].get(f"{what}_{kind}"), "n") for t in tools]
            row += ["" for _ in ratio_cols]
            rows.append(row)
    return _aligned(head, rows, any(fig[t].get("failed") for t in tools), "none did")


def _aligned(head: list[str], rows: list[list[str]], failed: bool, dash: str) -> str:
    """A table's lines: the first column left-aligned, the rest right-aligned, a rule under
    the head; the note on failed runs when there were some."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                       for i, c in enumerate(r)) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if failed:
        lines.append("! a run of this scenario failed: the figure is the median of the runs "
                     f"that succeeded (- if {dash})")
    return "\n".join(lines)


def rtt_table(fig: Figures, rat: Mapping[str, Mapping[str, float | None]],
              fleets: Sequence[int], tools: Sequence[str], rtts: Sequence[int],
              fresh_rtts: Sequence[int] | None = None) -> str:
    """The scenarios at each RTT side by side: a column per tool and RTT (then per ratio
    and RTT), a row per scenario; seconds, the machine's CPU, SSH use per host."""
    fresh = set(rtts if fresh_rtts is None else fresh_rtts)
    labels = {"fresh": "fresh", "noop": "no-op"}
    ratio_cols = [k for k in ("ours/ansible", "ours/floor") if k in rat]
    head = ["", *(f"{t} {rtt}ms" for t in tools for rtt in rtts),
            *(f"{c} {rtt}ms" for c in ratio_cols for rtt in rtts)]
    blank = ["" for _ in ratio_cols for _ in rtts]

    def measured(kind: str, rtt: int) -> bool:
        return kind == "noop" or rtt in fresh

    rows: list[list[str]] = []
    for n in fleets:
        for kind in ("fresh", "noop"):
            row = [f"{labels[kind]}, {n} host{'s' if n != 1 else ''}"]
            for t in tools:
                for rtt in rtts:
                    key = f"{kind}_{n}{at(rtt)}"
                    row.append(_fmt(fig[t].get(key)) + ("!" if key in fig[t].get("failed", [])
                                                        else "") if measured(kind, rtt) else "-")
            row += [_fmt(rat[c].get(f"{kind}_{n}{at(rtt)}"), "x") for c in ratio_cols
                    for rtt in rtts]
            rows.append(row)
    for n in fleets:
        for kind in ("fresh", "noop"):
            row = [f"machine CPU, {labels[kind]}, {n} host{'s' if n != 1 else ''}"]
            row += [_fmt(fig[t].get(f"cpu_{kind}_{n}{at(rtt)}")) for t in tools for rtt in rtts]
            rows.append(row + blank)
    for kind in ("fresh", "noop"):
        for what in ("connections", "commands", "transfers"):
            row = [f"SSH {what}/host, {labels[kind]}"]
            row += [_fmt(fig[t].get(f"{what}_{kind}{at(rtt)}"), "n") for t in tools
                    for rtt in rtts]
            rows.append(row + blank)
    return _aligned(head, rows, any(fig[t].get("failed") for t in tools),
                    "none did or none ran")


def round_trip_lines(checks: Sequence[Mapping[str, Any]], tool: str = "ours") -> list[str]:
    """round_trips() as sentences: the no-op's time at each RTT next to its round trips."""
    lines = []
    for c in checks:
        n = c["fleet"]
        head = f"{tool} no-op, {n} host{'s' if n != 1 else ''}, {c['rtt_ms']} ms RTT: "
        if c["seconds"] is None:
            lines.append(head + "no successful run")
            continue
        paid = (f" = {c['base_seconds']:.2f}s at 0 ms + {c['rtts_paid']:g} RTTs"
                if c["rtts_paid"] is not None else "")
        lines.append(f"{head}{c['seconds']:.2f}s{paid}; per host "
                     f"{_fmt(c['connections'], 'n')} SSH connection(s) (each its handshake's "
                     f"round trips) and {_fmt(c['commands'], 'n')} command(s) (a round trip "
                     "or more each, one after the other)")
    return lines


def breakdown(steps: Sequence[Mapping[str, Any]]) -> str:
    """ours' per-step seconds and commands (from --json and --log-dir)."""
    lines = [f"  {'step':<36} {'status':<8} {'seconds':>8} {'commands':>8}"]
    for s in steps:
        cmds = "-" if s.get("commands") is None else str(s["commands"])
        lines.append(f"  {s['name']:<36} {s['status']:<8} {s['seconds']:>8.3f} {cmds:>8}")
    return "\n".join(lines)


# -- the machine's load while measuring ----------------------------------------------------

def _cpu_times() -> tuple[int, int]:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values), idle


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def busy_jiffies() -> int:
    """CPU time the whole machine spent busy so far (all cores), in jiffies (1/100 s)."""
    total, idle = _cpu_times()
    return total - idle


def wait_quiet(max_wait: float = 30.0, busy_below: float = 25.0, window: float = 1.0,
               sleep: Callable[[float], None] = time.sleep,
               cpu_times: Callable[[], tuple[int, int]] | None = None) -> float:
    """Wait until the machine's CPU use over `window` seconds drops below `busy_below`
    percent (the hosts just provisioned have settled: PostgreSQL's autovacuum and
    checkpoints after the migrations, the package manager's triggers), at most `max_wait`
    seconds. Returns the seconds waited. The same rule for every tool's no-op runs."""
    read = cpu_times or _cpu_times
    waited = 0.0
    while waited < max_wait:
        total0, idle0 = read()
        sleep(window)
        waited += window
        total1, idle1 = read()
        if total1 > total0 and 100.0 * (1 - (idle1 - idle0) / (total1 - total0)) < busy_below:
            break
    return waited


@dataclass
class LoadSampler:
    """Samples the 1-minute load average and CPU use every `every` seconds."""

    every: float = 2.0
    load: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> LoadSampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        total0, idle0 = _cpu_times()
        while not self._stop.wait(self.every):
            total1, idle1 = _cpu_times()
            if total1 > total0:
                self.busy.append(100.0 * (1 - (idle1 - idle0) / (total1 - total0)))
            total0, idle0 = total1, idle1
            self.load.append(loadavg())

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        def stats(xs: list[float]) -> dict[str, float] | None:
            if not xs:
                return None
            return {"min": round(min(xs), 2), "mean": round(statistics.mean(xs), 2),
                    "max": round(max(xs), 2)}
        return {"loadavg_1min": stats(self.load), "cpu_busy_percent": stats(self.busy),
                "samples": len(self.load), "every_seconds": self.every,
                "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


# -- the control side ---------------------------------------------------------------------


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return float(r.ru_utime + r.ru_stime)


def control_side(runs: list[dict[str, Any]], tools: list[str]) -> list[dict[str, Any]]:
    """Per tool, kind and fleet (0 ms runs that succeeded): the tool's own CPU on the
    control side per host, the median over the reps."""
    out: list[dict[str, Any]] = []
    keys = sorted({(r["tool"], r["kind"], r["fleet"]) for r in runs
                   if r.get("tool_cpu_seconds") is not None and rtt_of(r) == 0 and r["ok"]},
                  key=lambda k: (tools.index(k[0]) if k[0] in tools else 99, k[1], k[2]))
    for tool, kind, fleet in keys:
        cpu = sorted(r["tool_cpu_seconds"] for r in runs
                     if (r["tool"], r["kind"], r["fleet"]) == (tool, kind, fleet)
                     and rtt_of(r) == 0 and r["ok"] and r.get("tool_cpu_seconds") is not None)
        median = cpu[len(cpu) // 2]
        out.append({"tool": tool, "kind": kind, "fleet": fleet,
                    "cpu_seconds": round(median, 3),
                    "cpu_per_host": round(median / fleet, 4)})
    return out


def control_side_lines(control: list[dict[str, Any]], cores: int, hosts: int = 1000
                       ) -> list[str]:
    """What each tool spends on the control machine per host, and for `hosts` hosts: the
    CPU seconds, and the wall time that CPU alone takes on `cores` cores (a floor under any
    --forks: more forks only wait on each other beyond it)."""
    lines = [f"the control side (each tool's own processes, CPU per host; {hosts:,} hosts "
             f"extrapolated on this machine's {cores} core{'s' if cores != 1 else ''}):"]
    for c in control:
        total = c["cpu_per_host"] * hosts
        lines.append(f"  {c['tool']:<8} {c['kind']:<5} {c['fleet']:>2} host"
                     f"{'s' if c['fleet'] > 1 else ' '}  {c['cpu_per_host']:.3f} s/host  -> "
                     f"{hosts:,} hosts: {total:,.0f} CPU s, at least {total / cores:,.0f} s "
                     "wall whatever --forks")
    return lines


def forks_lines(figures: Figures, control: list[dict[str, Any]], cores: int,
                fleets: Sequence[int], rtts: Sequence[int], hosts: int = 1000,
                default_forks: int = DEFAULT_FORKS) -> list[str]:
    """Our no-op on `hosts` hosts, from the measured figures: at the default --forks, the
    hosts go in waves of `default_forks`, each as long as one host's no-op (the smallest
    fleet's wall time at that RTT); with more forks the waves shorten until this machine's
    cores are busy with our own CPU per host (measured on the largest fleet): the forks
    where that happens is the most that helps here. A model, said as one."""
    cpu_rows = [c for c in control if c["tool"] == "ours" and c["kind"] == "noop"]
    if not cpu_rows or "ours" not in figures:
        return []
    cpu = max(cpu_rows, key=lambda c: c["fleet"])
    per_host_cpu = float(cpu["cpu_per_host"])
    floor = hosts * per_host_cpu / cores
    lines = [f"ours, no-op on {hosts:,} hosts (a model from the figures: waves of --forks "
             f"hosts, each one {min(fleets)}-host no-op long; our CPU "
             f"{per_host_cpu:.3f} s per host on {cores} core{'s' if cores != 1 else ''}):"]
    for rtt in rtts:
        wall = figures["ours"].get(f"noop_{min(fleets)}{at(rtt)}")
        if not wall:
            continue
        waves = -(-hosts // default_forks)
        best = max(default_forks, round(cores * wall / per_host_cpu)) if per_host_cpu else hosts
        tuned = max(-(-hosts // best) * wall, floor)
        lines.append(f"  at {rtt:>3} ms: --forks {default_forks} (the default) "
                     f"{max(waves * wall, floor):,.0f} s; --forks {best} {tuned:,.0f} s "
                     "(beyond it the "
                     f"cores are busy: at least {floor:,.0f} s)")
    return lines

