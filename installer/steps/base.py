"""Steps compare what is wanted with what the probes found, and act only where needed.

Each step returns ok / changed / skipped / failed with a reason. In check mode a
step runs its probes, says what it would change and changes nothing.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from installer.desired import envfile, sharing
from installer.desired.config import HostConfig
from installer.desired.settings import plan_settings
from installer.errors import ChatalotError, CommandError
from installer.host.distros.base import Strategy
from installer.host.facts import Facts
from installer.host.state import HostState, probe_state, psql_command
from installer.transport.base import Result, Transport


class Status(StrEnum):
    OK = "ok"
    CHANGED = "changed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class StepResult:
    status: Status
    reason: str = ""
    diff: str | None = None
    #: a line for the end of a host's run that finished without failing (e.g. where
    #: DATABASE_URL is); never shown in check mode
    note: str | None = None
    #: a failure that does not stop the host: the steps after it still run (the host
    #: fails at the end), e.g. a tuning conflict that must not keep the access rules from
    #: being enforced
    keep_going: bool = False


def ok(reason: str, *, note: str | None = None) -> StepResult:
    return StepResult(Status.OK, reason, note=note)


def changed(reason: str, diff: str | None = None, *, note: str | None = None) -> StepResult:
    return StepResult(Status.CHANGED, reason, diff, note)


def skipped(reason: str) -> StepResult:
    return StepResult(Status.SKIPPED, reason)


def failed(reason: str, *, keep_going: bool = False) -> StepResult:
    return StepResult(Status.FAILED, reason, keep_going=keep_going)


class StepFailed(ChatalotError):
    """Raised inside a step to fail the host with a message."""


class Prober(Protocol):
    """Reads a host's state in one round trip (installer.host.state.probe_state)."""

    def __call__(self, t: Transport, strategy: Strategy, config: HostConfig,
                 setting_names: list[str], /, *, login: bool = False) -> HostState: ...


class MachineClaims:
    """Which hosts of a run work on which machine (by /etc/machine-id): a name for a machine
    the run already works on goes ahead only as another app of its cluster
    (installer.desired.sharing). Shared by a run's host threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, list[tuple[str, HostConfig]]] = {}

    def claim(self, machine_id: str, name: str, config: HostConfig) -> tuple[str, str] | None:
        """Count `name` in on `machine_id`; (the other name, why) when it conflicts with a
        name that claimed it before (then it is not counted in)."""
        with self._lock:
            seen = self._seen.setdefault(machine_id, [])
            for other, theirs in seen:
                if other == name:
                    return None
                why = sharing.conflict(name, config, other, theirs)
                if why is not None:
                    return other, why
            seen.append((name, config))
        return None


class HostContext:
    """What the steps of one host's run share: the host (transport), the wanted config, the
    facts and strategy (set by GatherFacts), the state as last probed, and the password.

    Passed explicitly, never global. The state is probed lazily and re-probed after a step
    invalidates it; `prober` is how (installer.host.state.probe_state; tests give their
    own). GatherFacts plans the wanted settings (installer.desired.settings) once the major
    is known; they are planned again if the host reveals another major.
    """

    def __init__(
        self, name: str, transport: Transport, config: HostConfig, *, check: bool, diff: bool,
        prober: Prober = probe_state, machines: MachineClaims | None = None,
    ) -> None:
        self.name = name
        self.machines = machines
        self.t = transport
        self.config = config
        self.check = check
        self.diff = diff
        self.prober = prober
        self._facts: Facts | None = None
        self._strategy: Strategy | None = None
        self._state: HostState | None = None
        self._probed = False
        self._password: str | None = None
        self.password_is_new = False
        #: the app role's old name when this run renames it to db_user (steps.preflight)
        self.role_renamed_from: str | None = None
        #: what Ctrl-C may do inside the running step (e.g. cancel a migration's wait for
        #: a lock); each returns what it did, or None. Called once, from another thread.
        self.interrupt_hooks: list[Callable[[], str | None]] = []
        #: the settings our drop-in should hold (empty until the major is known)
        self.wanted_settings: dict[str, str] = {}
        #: the output of the first step's read_under_lock script (None: not run)
        self.under_lock: str | None = None
        #: what the running step is doing now, for the user (e.g. what a migration waits
        #: for); the runner points it at the display
        self.progress: Callable[[str], None] = lambda text: None

    # -- facts and strategy -------------------------------------------------
    @property
    def facts(self) -> Facts:
        if self._facts is None:
            raise RuntimeError("facts not gathered yet")
        return self._facts

    @property
    def strategy(self) -> Strategy:
        if self._strategy is None:
            raise RuntimeError("no strategy selected yet")
        return self._strategy

    def set_facts(self, facts: Facts, strategy: Strategy) -> None:
        self._facts, self._strategy = facts, strategy

    def same_machine_conflict(self) -> tuple[str, str] | None:
        """(another host of this run on this machine, why they conflict), if any."""
        mid = self.facts.machine_id
        if self.machines is None or not mid:
            return None
        return self.machines.claim(mid, self.name, self.config)

    def plan_settings(self) -> None:
        """Plan the drop-in's settings for the facts and the major (once it is known)."""
        major = self.strategy.major
        if major is not None:
            self.wanted_settings = plan_settings(self.config, self.facts, major)

    # -- state (probed lazily, re-probed after a change) --------------------
    @property
    def state(self) -> HostState:
        if self._state is None:
            self._state = self._probe()
        return self._state

    def set_state(self, state: HostState) -> None:
        """Take `state` as the host's current state (as if just probed)."""
        self._state, self._probed = state, True

    def _probe(self) -> HostState:
        """Probe; when the host tells another major than the strategy assumed (pg_version
        unset), adopt it, plan the settings for it and probe again (paths follow it)."""
        first, self._probed = not self._probed, True
        for _ in range(3):
            # the first probe also tries the env file's login: on a no-op run nothing
            # invalidates it, and the login check then needs no command of its own
            st = self.prober(self.t, self.strategy, self.config, sorted(self.wanted_settings),
                             login=first)
            found = st.service.installed_major
            if self.config.pg_version is not None or found in (None, self.strategy.major):
                return st
            self.strategy.major = found
            self.plan_settings()
        return st

    @property
    def cached_state(self) -> HostState | None:
        """The state as last probed, if nothing invalidated it since (never probes)."""
        return self._state

    def invalidate(self) -> None:
        """Forget the probed state: the next step reads the host again."""
        self._state = None

    def server_answers(self) -> dict[str, Any] | None:
        """The server's answers (the state's `sql`). None only in check mode, where a server
        not running yet would have been started; in a real run every step after "start
        postgresql" needs them, so a silent server fails the step."""
        st = self.state
        if st.sql is None and not self.check:
            raise StepFailed("PostgreSQL is not answering: "
                             f"{st.sql_error.strip() or 'psql could not connect'}")
        return st.sql

    @property
    def major(self) -> int:
        m = self.strategy.major
        if m is None:
            raise StepFailed("could not tell which PostgreSQL major version this host uses")
        return m

    # -- the app role's password ---------------------------------------------
    @property
    def password(self) -> str:
        """db_password when set; else the env file's, or a new one (generated once per run)."""
        if self._password is None:
            c = self.config
            self.check_env_file()
            env = None if c.db_password is not None else self.state.env_file
            self._password, self.password_is_new = envfile.app_password(
                c.db_user, c.db_password, env, renamed_from=self.role_renamed_from)
        return self._password

    def check_env_file(self) -> None:
        """Fail (before any change to the role) when the env file exists but is not ours:
        its password is never trusted nor rotated, and the file never replaced."""
        problem = envfile.foreign(self.state.env_file, self.state.env_meta)
        if problem is not None:
            raise StepFailed(
                f"{self.config.env_file} {problem}; chatalot-db leaves it alone and changes "
                "nothing of the role: set db_env_file to a path of its own (e.g. "
                "/etc/chatalot/database.env), or move that file away")

    def database_url(self) -> str:
        return envfile.database_url(
            self.config.db_user, self.password, "localhost", self.config.pg_port,
            self.config.db_name,
        )

    # -- acting ------------------------------------------------------------
    def root(self, command: str, what: str, stdin: str | None = None,
             timeout: float = 600) -> Result:
        """Run a command as root; raise CommandError naming `what` if it fails."""
        return self.t.check(command, what=what, become="root", stdin=stdin, timeout=timeout)

    def psql(self, sql: str, what: str, database: str = "postgres") -> Result:
        """Run SQL (sent on stdin, never in argv) as the postgres superuser."""
        return self.t.check(
            psql_command(self.config.pg_port, database, "-At", psql=self.strategy.psql()),
            what=what, become="postgres", stdin=sql, timeout=600,
        )


class Step(ABC):
    """One thing the host should be; `run` makes it so (or says what it would do)."""

    name: str = "step"

    def title(self, ctx: HostContext) -> str:
        return self.name

    def read_under_lock(self) -> str | None:
        """A read-only script (run as root) whose output this step wants, run by the host
        lock's own command once the lock is held: the first step's reads then cost no
        round trip of their own. The output reaches `run` as `ctx.under_lock`."""
        return None

    @abstractmethod
    def run(self, ctx: HostContext) -> StepResult: ...


def require_success(r: Result, what: str) -> None:
    if not r.ok:
        raise CommandError(what, r.exit_code, r.stderr or r.stdout)
