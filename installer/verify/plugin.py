"""The pytest plugin `chatalot-db verify` runs the suite with, in place of testinfra's.

testinfra's own plugin makes a `host` per `--hosts` entry with its backends;
verify instead connects to each inventory host with apply's transports (the
same host-key policy, users, keys and sudo) and hands the connections in
as `Target`s. Register the module and a `VerifyPlugin` with
`pytest.main(..., plugins=[plugin_module, VerifyPlugin(targets)])`, and
disable testinfra's (`-p no:pytest11.testinfra`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from installer.fleet.hosts import Connection
from installer.verify.hosts import make_host

#: one inventory host as verify reached it (commands.targets.connect_all's Connection)
Target = Connection


@dataclass
class HostTally:
    """One host's outcomes: each check counted once (a setup error counts as a failure)."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    #: names of the failed checks (test function names)
    failures: list[str] = field(default_factory=list)
    #: check name -> its failure message
    messages: dict[str, str] = field(default_factory=dict)


class VerifyPlugin:
    """Parametrizes the suite over the targets and counts outcomes per host."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self.targets = list(targets)
        self.tally: dict[str, HostTally] = {t.name: HostTally() for t in self.targets}

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "_chatalot_target" in metafunc.fixturenames:
            metafunc.parametrize("_chatalot_target", self.targets,
                                 ids=[t.name for t in self.targets],
                                 scope="module", indirect=True)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = _param_id(report.nodeid)
        tally = self.tally.get(name) if name is not None else None
        if tally is None:
            return
        check = report.nodeid.split("::")[-1].split("[", 1)[0]
        if report.failed:
            if check not in tally.failures:
                tally.failed += 1
                tally.failures.append(check)
                tally.messages[check] = _message(report)
        elif report.skipped:
            tally.skipped += 1
        elif report.passed and report.when == "call":
            tally.passed += 1


def _message(report: pytest.TestReport) -> str:
    """A failure's message: the text of pytest.fail(..., pytrace=False), else the crash line."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).removeprefix("Failed: ")
    return str(report.longreprtext).strip()


def _param_id(nodeid: str) -> str | None:
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    return nodeid[nodeid.index("[") + 1:-1]


@pytest.fixture(scope="module")
def _chatalot_target(request: pytest.FixtureRequest) -> Target:
    target: Target = request.param
    return target


@pytest.fixture(scope="module")
def host(_chatalot_target: Target) -> Any:
    """A testinfra Host over the target's connection."""
    t = _chatalot_target
    if t.transport is None:
        why = "is unreachable" if t.unreachable else "cannot be checked"
        pytest.fail(f"{t.name} {why}: {t.error}", pytrace=False)
    return make_host(t.name, t.transport, t.hostvars)
