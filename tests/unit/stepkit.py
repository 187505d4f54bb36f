"""Shared fakes for the apply steps' unit tests: facts and probed state in, commands out.

The way pyinfra tests its operations: a step runs against

- `FakeHost`, a transport that records every command as the step wrote it (before
  `become` wraps it: the command, the user, stdin, timeout) and answers from a table of
  (substring or regex of the command[, of stdin]) -> Result; a command the table has no
  answer for fails the test, so nothing runs unnoticed;
- `Probes`, the context's prober: it hands out the states the test prepared ("after the
  change the host looks like this"), in order, and records each read.

`harness()` puts them together in a HostContext with the facts of a sample distribution
(Debian 12, Fedora 40, Arch) and the state as first probed.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import EllipsisType
from typing import Any

from installer.desired.config import HostConfig
from installer.host import distros
from installer.host.applogin import LoginOutcome
from installer.host.distros.base import ServiceState, Strategy
from installer.host.facts import Facts, facts_from_sections
from installer.host.state import HostState
from installer.steps.base import HostContext, Step, StepResult
from installer.transport.base import Result, Transport

# --- facts -------------------------------------------------------------------------------

OS_RELEASE = {
    "debian12": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
                'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\n'
                "ID=debian\n",
    "fedora40": 'NAME="Fedora Linux"\nVERSION="40 (Server Edition)"\nID=fedora\nVERSION_ID=40\n'
                'PRETTY_NAME="Fedora Linux 40 (Server Edition)"\n',
    "arch": 'NAME="Arch Linux"\nPRETTY_NAME="Arch Linux"\nID=arch\nBUILD_ID=rolling\n',
    "alpine": 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\n'
              'PRETTY_NAME="Alpine Linux v3.20"\n',
}

#: the major each sample runs in these tests (Debian 12's is its release's; Fedora's and
#: Arch's come from the host's packages)
MAJOR = {"debian12": 15, "fedora40": 16, "arch": 17}

MEMORY_KB = 4 * 1024 * 1024
CPUS = 2


def fact_sections(distro: str, *, systemd: bool = True) -> dict[str, str]:
    """The facts probe's sections, as a host of `distro` prints them."""
    return {
        "os-release": OS_RELEASE[distro],
        "meminfo": f"MemTotal: {MEMORY_KB} kB\n",
        "nproc": f"{CPUS}\n",
        "pid1": "systemd\n" if systemd else "bash\n",
        "machine": "x86_64\n",
        "uid": "0\n",
        "disk": "sda 0\n",
    }


def facts(distro: str, *, systemd: bool = True) -> Facts:
    return facts_from_sections(fact_sections(distro, systemd=systemd))


# --- the host: a transport that records and answers ----------------------------------------

OK = Result(0, "", "")


def out(stdout: str) -> Result:
    return Result(0, stdout, "")


def err(code: int, stderr: str) -> Result:
    return Result(code, "", stderr)


@dataclass(frozen=True)
class Call:
    """One command as the step asked for it (before `become` wraps it)."""

    command: str
    become: str | None
    stdin: str | None
    timeout: float | None


Pattern = str | re.Pattern[str]
Answer = Result | Callable[[Call], Result]


def _matches(pattern: Pattern, text: str) -> bool:
    return pattern in text if isinstance(pattern, str) else bool(pattern.search(text))


@dataclass
class Rule:
    command: Pattern
    answer: Answer
    stdin: Pattern | None = None
    #: how many commands this rule may answer (None: any number)
    times: int | None = None

    def takes(self, call: Call) -> bool:
        if self.times == 0 or not _matches(self.command, call.command):
            return False
        return self.stdin is None or _matches(self.stdin, call.stdin or "")


@dataclass(frozen=True)
class Written:
    """A file the step wrote with HostContext.write_file (content on stdin)."""

    content: str
    mode: str
    owner: str
    #: the old file is kept as <path>.chatalot-db.bak
    backup: bool
    become: str | None


_CHMOD = re.compile(r'^chmod (\S+) "\$tmp"; chown (\S+) "\$tmp"$', re.M)
_MOVE = re.compile(r'^mv -f "\$tmp" (.+)$', re.M)
_KEEP = re.compile(r"^if \[ -e .+ \]; then (.+); fi$", re.M)

#: a HostContext.write_file script (for FakeHost.on)
WRITE_FILE = 'mv -f "$tmp" '


class FakeHost(Transport):
    """Records every command and answers it from a table; an unknown command fails."""

    name = "h"

    def __init__(self) -> None:
        super().__init__()
        self.rules: list[Rule] = []
        self.calls: list[Call] = []
        self.unanswered: list[Call] = []

    def on(self, command: Pattern, answer: Answer = OK, *, stdin: Pattern | None = None,
           times: int | None = None) -> FakeHost:
        """Answer commands containing (str) or matching (regex) `command`, and whose stdin
        does the same with `stdin` when given. The rule added last wins: a test overrides
        the answers its harness set up."""
        self.rules.append(Rule(command, answer, stdin, times))
        return self

    def run(self, command: str, *, become: str | None = None,
            stdin: str | bytes | None = None, timeout: float | None = 600) -> Result:
        text = stdin.decode() if isinstance(stdin, bytes) else stdin
        call = Call(command, become, text, timeout)
        self.calls.append(call)
        self.commands_run += 1
        for rule in reversed(self.rules):
            if rule.takes(call):
                if rule.times is not None:
                    rule.times -= 1
                return rule.answer(call) if callable(rule.answer) else rule.answer
        self.unanswered.append(call)
        raise AssertionError(f"unexpected command (as {become or 'the login user'}): "
                             f"{command[:300]!r}, stdin {(text or '')[:120]!r}")

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        raise AssertionError(f"FakeHost runs nothing: {command[:200]!r}")

    # -- what ran, for assertions -------------------------------------------------------
    def ran(self) -> list[tuple[str | None, str]]:
        """(become, command) of every call, in order."""
        return [(c.become, c.command) for c in self.calls]

    def sql(self) -> list[str]:
        """The SQL (stdin) of every psql run as postgres, in order."""
        return [c.stdin or "" for c in self.calls
                if c.become == "postgres" and "psql" in c.command]

    def written(self) -> dict[str, Written]:
        """path -> what HostContext.write_file put there."""
        files: dict[str, Written] = {}
        for c in self.calls:
            move, perms = _MOVE.search(c.command), _CHMOD.search(c.command)
            if move is None or perms is None:
                continue
            keep = _KEEP.search(c.command)
            path = shlex.split(move.group(1))[0]
            files[path] = Written(c.stdin or "", shlex.split(perms.group(1))[0],
                                  shlex.split(perms.group(2))[0],
                                  bool(keep and keep.group(1).startswith("cp -p")), c.become)
        return files

    def everything_sent(self) -> str:
        """Every command line and stdin sent, joined: to prove a secret is in none."""
        return "\n".join(f"{c.command}\n{c.stdin or ''}" for c in self.calls)

    def command_lines(self) -> str:
        """Every command line (argv side, never stdin), joined."""
        return "\n".join(c.command for c in self.calls)


def sections(texts: dict[str, str]) -> Callable[[Call], Result]:
    """An answer to a SectionScript (facts, probes): each section's text under its marker."""

    def answer(call: Call) -> Result:
        m = re.search(r"^echo '(@@chatalot-[0-9a-f]+) ", call.command, re.M)
        assert m is not None, f"not a section script: {call.command[:200]!r}"
        body = "".join(f"{m.group(1)} {name}\n{text}" for name, text in texts.items())
        return out(body)

    return answer


# --- the prober: the states a test prepared, handed out in turn ------------------------------

@dataclass(frozen=True)
class ProbeCall:
    major: int | None
    settings: tuple[str, ...]
    login: bool


class Probes:
    """HostContext's prober: returns the prepared states in order, records each read."""

    def __init__(self, *states: HostState) -> None:
        self.states = list(states)
        self.calls: list[ProbeCall] = []

    def __call__(self, t: Transport, strategy: Strategy, config: HostConfig,
                 setting_names: list[str], /, *, login: bool = False) -> HostState:
        if not self.states:
            raise AssertionError("the step read the host once more than the test prepared")
        self.calls.append(ProbeCall(strategy.major, tuple(setting_names), login))
        return self.states.pop(0)

    @property
    def count(self) -> int:
        return len(self.calls)


# --- probed state ------------------------------------------------------------------------

def service(*missing: str, enabled: bool | None = True, active: bool = True,
            repair: str = "", major: int | None = None, data_dir: str = "nonempty",
            data_version: int | None = None) -> ServiceState:
    """What the package manager and init system say (defaults: installed, enabled, active)."""
    return ServiceState(list(missing), enabled, active, repair, installed_major=major,
                        data_dir=data_dir, data_version=data_version)


def state(svc: ServiceState | None = None, *, sql: dict[str, Any] | None = None,
          env_file: str | None = None, env_meta: str | None = None, hba: str | None = None,
          dropin: str | None = None, sql_error: str = "", ledger: str | None = None,
          main_conf: str | None = None, login: LoginOutcome | None = None) -> HostState:
    """A probed state; `sql=None`: the server does not answer (not running)."""
    return HostState(svc or service(), env_file, env_meta, hba, dropin, sql, sql_error,
                     ledger, main_conf, login)


# --- the context -------------------------------------------------------------------------

@dataclass
class Harness:
    ctx: HostContext
    host: FakeHost
    probes: Probes

    def run(self, step: Step) -> StepResult:
        return step.run(self.ctx)

    @property
    def invalidated(self) -> bool:
        """Whether the step forgot the probed state (the next step reads the host again)."""
        return self.ctx.cached_state is None


def harness(distro: str = "debian12", before: HostState | None = None,
            after: Sequence[HostState] = (), *, check: bool = False, diff: bool = False,
            config: HostConfig | None = None, systemd: bool = True,
            major: int | EllipsisType | None = ..., host: FakeHost | None = None) -> Harness:
    """A context on a `distro` host: `before` as the state first probed (None: not probed
    yet, the prober hands out `after` from the first read), `after` for each read after
    the step invalidates it. `major`: the strategy's (default MAJOR[distro]; None: not known
    yet). The wanted settings are planned as GatherFacts plans them."""
    config = config or HostConfig(migrations_source=None)
    f = facts(distro, systemd=systemd)
    strategy = distros.select(f, config)
    strategy.major = (config.pg_version or MAJOR.get(distro)) if major is ... else major
    probes = Probes(*after)
    fake = host or FakeHost()
    ctx = HostContext("h", fake, config, check=check, diff=diff, prober=probes)
    ctx.set_facts(f, strategy)
    ctx.plan_settings()
    if before is not None:
        ctx.set_state(before)
    return Harness(ctx, fake, probes)


def said(result: StepResult) -> tuple[str, str]:
    """(status, reason), for one-line asserts."""
    return str(result.status), result.reason


__all__ = [
    "MAJOR", "OK", "WRITE_FILE", "Call", "FakeHost", "Harness", "Probes", "Written", "err",
    "fact_sections", "facts", "harness", "out", "said", "sections", "service", "state",
]
