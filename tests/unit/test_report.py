"""installer.fleet.report: a host's counts (as Ansible's recap) and the exit code."""

from __future__ import annotations

import pytest

from installer.fleet.report import HostReport, StepRecord, exit_code


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
