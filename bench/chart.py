"""Draw fleet size against time from a bench/run.py JSON file (run with bench/.venv).

    bench/.venv/bin/python bench/chart.py RESULTS.json OUT.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib  # type: ignore[import-not-found, unused-ignore]

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

STYLE = {"ours": ("chatalot-db", "tab:blue"), "ansible": ("Ansible", "tab:red"),
         "floor": ("shell floor", "tab:gray")}
#: where each tool's labels go (points), so that close values stay readable
OFFSET = {"ours": (6, -12), "ansible": (6, 6), "floor": (6, 6)}


def series(figures: dict[str, Any], kind: str, fleets: list[int],
           rtt: int) -> tuple[list[int], list[float]]:
    """The fleet sizes and seconds of one tool's `kind` runs at `rtt` ms (0: straight)."""
    suffix = f"@{rtt}ms" if rtt else ""
    points = [(n, figures.get(f"{kind}_{n}{suffix}")) for n in fleets]
    return [n for n, v in points if v is not None], [v for _, v in points if v is not None]


def draw(data: dict[str, Any], out: Path) -> list[str]:
    """The PNG at `out`; returns each panel's lines, as `PANEL: LABEL`."""
    fleets: list[int] = data["config"]["fleets"]
    rtts: list[int] = data["config"].get("rtts_ms") or [0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    drawn: list[str] = []
    for ax, kind, title in ((axes[0], "fresh", "fresh provision"),
                            (axes[1], "noop", "no-op rerun")):
        for tool, figures in data["figures"].items():
            label, colour = STYLE.get(tool, (tool, None))
            xs, ys = series(figures, kind, fleets, 0)
            ax.plot(xs, ys, marker="o", label=label, color=colour)
            drawn.append(f"{kind}: {label}")
            for x, y in zip(xs, ys, strict=True):
                ax.annotate(f"{y:.1f}s" if y >= 10 else f"{y:.2f}s", (x, y),
                            textcoords="offset points", xytext=OFFSET.get(tool, (6, 6)),
                            fontsize=8, color=colour)
            for rtt in (r for r in rtts if r):  # through the latency relays: dashed
                xs, ys = series(figures, kind, fleets, rtt)
                if xs:
                    ax.plot(xs, ys, marker="x", linestyle="--", color=colour,
                            label=f"{label}, {rtt} ms RTT")
                    drawn.append(f"{kind}: {label}, {rtt} ms RTT")
        ax.set_title(title)
        ax.set_xlabel("hosts in the fleet (provisioned in parallel)")
        ax.set_ylabel("wall-clock seconds")
        ax.set_xticks(fleets)
        if kind == "noop":
            ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    load = (data.get("load") or {}).get("loadavg_1min") or {}
    fig.suptitle(f"chatalot-db vs Ansible vs a shell script, {data.get('started', '')}"
                 f" (mean 1-min load {load.get('mean', '?')} on 2 cores)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return drawn


def main() -> int:
    data = json.loads(Path(sys.argv[1]).read_text())
    print("\n".join(draw(data, Path(sys.argv[2]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
