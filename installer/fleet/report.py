"""A run's result: each host's steps and outcome, the exit code, the JSON report.

Pure data: the runner fills it, the display shows it, `--json` writes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from installer.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE
from installer.steps.base import Status

# What a host's run came to (HostReport.state)
NOT_STARTED = "not started"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
UNREACHABLE = "unreachable"
STOPPED = "stopped"


@dataclass
class StepRecord:
    name: str
    status: str
    reason: str = ""
    diff: str | None = None
    seconds: float = 0.0
    #: when the step started (Unix time)
    started: float = 0.0


@dataclass
class HostReport:
    name: str
    steps: list[StepRecord] = field(default_factory=list)
    unreachable: bool = False
    error: str = ""
    notes: list[str] = field(default_factory=list)
    #: NOT_STARTED, DONE, FAILED, UNREACHABLE or STOPPED (before `stopped_before`)
    state: str = NOT_STARTED
    stopped_before: str = ""
    seconds: float = 0.0
    #: seconds spent waiting for another chatalot-db run's host lock
    lock_wait: float = 0.0

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

    @property
    def ran(self) -> bool:
        """Whether the host did anything (hosts that never started are not in the recap)."""
        return self.state != NOT_STARTED or bool(self.steps) or self.unreachable

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.counts)
        d["state"] = self.state
        d["seconds"] = round(self.seconds, 3)
        d["lock_wait"] = round(self.lock_wait, 3)
        d["steps"] = [
            {"name": s.name, "status": s.status, "reason": s.reason, "diff": s.diff,
             "seconds": round(s.seconds, 3), "started": round(s.started, 3)}
            for s in self.steps
        ]
        if self.error:
            d["error"] = self.error
        if self.stopped_before:
            d["stopped_before"] = self.stopped_before
        return d


def exit_code(reports: list[HostReport], interrupted: bool = False) -> int:
    """ansible-playbook's codes: 99 interrupted, 2 a host failed, 4 unreachable (none
    failed), else 0."""
    if interrupted:
        return EXIT_INTERRUPTED
    if any(r.failed for r in reports):
        return EXIT_FAILED
    if any(r.unreachable for r in reports):
        return EXIT_UNREACHABLE
    return EXIT_OK


def write_json(path: str, reports: list[HostReport], **extra: Any) -> None:
    doc: dict[str, Any] = {"hosts": {r.name: r.to_json() for r in reports}}
    doc.update(extra)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
