"""installer.fleet.report: a host's counts (as Ansible's recap), the exit code, the JSON report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer.fleet.report import (
    DONE,
    FAILED,
    NOT_STARTED,
    STOPPED,
    UNREACHABLE,
    HostReport,
    StepRecord,
    exit_code,
    write_json,
)


@pytest.mark.parametrize(
    ("statuses", "unreachable", "code"),
    [(["ok", "changed"], False, 0), (["ok", "failed"], False, 2), ([], True, 4),
     (["skipped"], False, 0)],
)
def test_exit_codes(statuses: list[str], unreachable: bool, code: int) -> None:
    r = HostReport("h", [StepRecord("s", s) for s in statuses], unreachable=unreachable)
    assert exit_code([r]) == code
    assert exit_code([r, HostReport("other", [StepRecord("s", "failed")])]) == 2


def test_recap_counts_like_ansible() -> None:
    r = HostReport("h", [StepRecord("a", "ok"), StepRecord("b", "changed"),
                         StepRecord("c", "skipped")])
    assert r.counts == {"ok": 2, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 1}


def _report(name: str, statuses: list[str], state: str = DONE, **kw: object) -> HostReport:
    return HostReport(name, [StepRecord(f"s{i}", s) for i, s in enumerate(statuses)],
                      state=state, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reports", "interrupted", "code"),
    [([_report("a", ["ok", "changed"])], False, 0),
     ([_report("a", ["ok", "failed"], FAILED)], False, 2),
     ([_report("a", [], UNREACHABLE, unreachable=True)], False, 4),
     ([_report("a", [], UNREACHABLE, unreachable=True), _report("b", ["failed"], FAILED)],
      False, 2),
     ([_report("a", ["skipped"])], False, 0),
     ([_report("a", ["ok"], STOPPED)], False, 0),
     ([_report("a", ["ok"]), HostReport("b")], False, 0),
     ([_report("a", ["ok", "failed"], FAILED)], True, 99),
     ([_report("a", ["ok"], STOPPED), HostReport("b")], True, 99),
     ([], False, 0)],
)
def test_exit_codes_of_a_run(reports: list[HostReport], interrupted: bool, code: int) -> None:
    assert exit_code(reports, interrupted=interrupted) == code


def test_json_report_keeps_the_readme_format(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_json(str(path), [_report("a", ["ok", "changed"]), HostReport("b")], check=False,
               interrupted=False, stopped=None, batches=[["a"], ["b"]])
    doc = json.loads(path.read_text())
    a = doc["hosts"]["a"]
    assert {k: a[k] for k in ("ok", "changed", "failed", "skipped", "unreachable")} == {
        "ok": 2, "changed": 1, "failed": 0, "skipped": 0, "unreachable": 0}
    assert a["state"] == "done" and [s["status"] for s in a["steps"]] == ["ok", "changed"]
    assert doc["hosts"]["b"]["state"] == NOT_STARTED and doc["hosts"]["b"]["steps"] == []
    assert doc["batches"] == [["a"], ["b"]] and doc["interrupted"] is False
