"""What the user sees: a line per step, a recap in Ansible's layout, a JSON report."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, TextIO

from installer.steps.base import Status

COLOURS = {"ok": "32", "changed": "33", "skipped": "36", "failed": "31", "unreachable": "31"}


@dataclass
class StepRecord:
    name: str
    status: str
    reason: str = ""
    diff: str | None = None
    seconds: float = 0.0


@dataclass
class HostReport:
    name: str
    steps: list[StepRecord] = field(default_factory=list)
    unreachable: bool = False
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for s in self.steps if s.status == status)

    @property
    def counts(self) -> dict[str, int]:
        changed = self.count(Status.CHANGED)
        return {
            # as in Ansible, "ok" counts every successful step, changed ones included
            "ok": self.count(Status.OK) + changed,
            "changed": changed,
            "unreachable": 1 if self.unreachable else 0,
            "failed": self.count(Status.FAILED),
            "skipped": self.count(Status.SKIPPED),
        }

    @property
    def failed(self) -> bool:
        return self.count(Status.FAILED) > 0

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.counts)
        d["steps"] = [
            {"name": s.name, "status": s.status, "reason": s.reason, "diff": s.diff,
             "seconds": round(s.seconds, 3)}
            for s in self.steps
        ]
        if self.error:
            d["error"] = self.error
        return d


class Display:
    """Prints progress; safe to call from several host threads at once."""

    def __init__(self, out: TextIO | None = None, *, multi_host: bool = False,
                 show_diff: bool = False, colour: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.multi_host = multi_host
        self.show_diff = show_diff
        self.colour = self.out.isatty() if colour is None else colour
        self._lock = threading.Lock()

    def _paint(self, text: str, status: str) -> str:
        if not self.colour or status not in COLOURS:
            return text
        return f"\033[{COLOURS[status]}m{text}\033[0m"

    def _write(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()

    def step(self, host: str, rec: StepRecord) -> None:
        label = f"TASK [{rec.name}]"
        if self.multi_host:
            label = f"{host:<16} {label}"
        dots = "." * max(3, 44 - len(label))
        line = f"{label} {dots} {self._paint(rec.status, rec.status)}"
        if rec.reason:
            line += f"  ({rec.reason})"
        if self.show_diff and rec.diff:
            line += "\n" + "\n".join("    " + ln for ln in rec.diff.rstrip("\n").splitlines())
        self._write(line)

    def unreachable(self, host: str, message: str) -> None:
        self._write(f"{self._paint('UNREACHABLE', 'unreachable')} [{host}]: {message}")

    def message(self, text: str) -> None:
        self._write(text)

    def recap(self, reports: list[HostReport]) -> None:
        lines = ["", "PLAY RECAP " + "*" * 60]
        for r in reports:
            c = r.counts
            status = "failed" if c["failed"] else "unreachable" if c["unreachable"] else \
                "changed" if c["changed"] else "ok"
            name = self._paint(f"{r.name:<26}", status)
            lines.append(
                f"{name} : ok={c['ok']:<4} changed={c['changed']:<4} "
                f"unreachable={c['unreachable']:<4} failed={c['failed']:<4} "
                f"skipped={c['skipped']:<4}".rstrip()
            )
        self._write("\n".join(lines))
        for r in reports:
            for note in r.notes:
                self._write(f"{r.name}: {note}" if self.multi_host else note)


def write_json(path: str, reports: list[HostReport], **extra: Any) -> None:
    doc: dict[str, Any] = {"hosts": {r.name: r.to_json() for r in reports}}
    doc.update(extra)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def exit_code(reports: list[HostReport]) -> int:
    """ansible-playbook's codes: 2 a host failed, 4 unreachable (none failed), else 0."""
    if any(r.failed for r in reports):
        return 2
    if any(r.unreachable for r in reports):
        return 4
    return 0
