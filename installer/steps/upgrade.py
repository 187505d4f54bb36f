"""The steps of `chatalot-db upgrade`: the app's cluster moved to a newer major, rolled
back while the old one is kept, or the old one dropped.

`--to N`: facts (the run wants PostgreSQL N), every cluster of the host read and the
decision taken before any change (installer.desired.upgrade), pre-checks (sessions
connected, free disk for copy mode), the new major's packages, a pg_dump of the app's
database, the family's own upgrade tool (the strategy's UpgradePlan), then apply's steps
for the new cluster (tuning for the new major, pg_hba, role, grants, env file, login)
and statistics rebuilt. Whatever point the upgrade fails at, the old cluster serves
again on its port. In check mode the steps after the upgrade are skipped: they depend on
a cluster that does not exist yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from installer.desired import upgrade
from installer.desired.backups import size_text
from installer.host import clusters
from installer.host.distros.base import UpgradePlan
from installer.sqltext import quote_literal
from installer.steps.access import AppDatabase, AppRole, EnvFile, LoginCheck, SchemaGrants
from installer.steps.backups import ScheduleBackups
from installer.steps.base import (
    HostContext,
    Step,
    StepFailed,
    StepResult,
    changed,
    ok,
    skipped,
)
from installer.steps.host import EnableService, GatherFacts, InstallPackages, StartService
from installer.steps.migrations import backup_script
from installer.steps.server import ConfigureHba, ConfigureSettings
from installer.transport.base import Result
from installer.transport.shell import sh

MODES = ("upgrade", "rollback", "drop-old")

#: the client sessions on the cluster (ours excluded), one line each
SESSIONS_SQL = (
    "SELECT usename || '@' || coalesce(datname, '-') || ' (' || "
    "coalesce(nullif(application_name, ''), 'no application_name') || ', from ' || "
    "coalesce(host(client_addr), 'the local socket') || ')' FROM pg_stat_activity "
    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY 1")


@dataclass
class UpgradeRun:
    """What one host's upgrade steps share (made per host by `upgrade_steps`)."""

    mode: str
    to: int | None = None
    link: bool = False
    force: bool = False
    decision: upgrade.Decision | None = None
    plan: UpgradePlan | None = None
    #: check mode: the upgrade would run, so the steps after it are skipped
    would_change: bool = False
    #: this run moved the cluster (statistics are rebuilt after it)
    moved: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def acting(self) -> bool:
        return self.decision is not None and self.decision.act


def read_clusters(ctx: HostContext) -> tuple[clusters.Cluster, ...]:
    """Every cluster of the host, every major (one command, as root)."""
    r = ctx.root(clusters.section(ctx.strategy.cluster_confs(), None, ctx.config.db_name),
                 "listing the host's PostgreSQL clusters")
    return clusters.parse(r.stdout)


def precheck_script(plan: UpgradePlan, port: int) -> str:
    """Root shell: `size N`, `avail N` (bytes, `?` unknown) and one `session ...` line per
    client session on the old cluster."""
    return (
        "cd /\n"
        f"s=$(du -sb {sh(plan.old_data_dir)} 2>/dev/null | cut -f1); echo \"size ${{s:-?}}\"\n"
        f"p={sh(plan.new_parent)}; while [ ! -d \"$p\" ]; do p=$(dirname \"$p\"); done\n"
        "a=$(df -PB1 \"$p\" 2>/dev/null | awk 'NR == 2 { print $4 }'); echo \"avail ${a:-?}\"\n"
        f"runuser -u postgres -- psql -XAt -p {port} -d postgres -c {sh(SESSIONS_SQL)} "
        "| sed 's/^/session /'\n"
    )


def parse_precheck(text: str) -> tuple[int | None, int | None, list[str]]:
    """(size, available, sessions) from precheck_script's output. Pure."""
    size = avail = None
    sessions: list[str] = []
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key in ("size", "avail"):
            number = int(value) if value.strip().isdigit() else None
            if key == "size":
                size = number
            else:
                avail = number
        elif key == "session" and value.strip():
            sessions.append(value.strip())
    return size, avail, sessions


class PlanUpgrade(Step):
    """Every cluster read; the decision (and, for --to, the pre-checks) before any change."""

    def __init__(self, run: UpgradeRun) -> None:
        self.run_ = run
        self.name = {"upgrade": "plan the upgrade", "rollback": "plan the rollback",
                     "drop-old": "plan removing the old cluster"}[run.mode]

    def run(self, ctx: HostContext) -> StepResult:
        u, c = self.run_, ctx.config
        if u.mode != "upgrade" and ctx.strategy.family != "debian":
            # their old data directories (data-old, olddata-N, /var/lib/pgsql/N/data) are not
            # paired with the serving one yet: refused rather than "nothing kept"
            raise StepFailed(
                f"upgrade --{u.mode} is available on Debian/Ubuntu hosts only; on "
                f"{ctx.strategy.label} hosts the old data directory an upgrade kept is named "
                "in its step's output: bring it back or remove it by hand. Nothing was changed")
        found = read_clusters(ctx)
        if u.mode == "upgrade":
            assert u.to is not None
            d = upgrade.decide_upgrade(found, u.to, c.db_name, c.pg_port)
        elif u.mode == "rollback":
            d = upgrade.decide_rollback(found, c.db_name, c.pg_port)
        else:
            d = upgrade.decide_drop_old(found, c.db_name, c.pg_port)
        u.decision = d
        if d.refused:
            raise StepFailed(d.reason)
        if not d.act:
            return ok(d.reason)
        assert d.source is not None and d.serving is not None
        if u.mode == "upgrade":
            assert u.to is not None
            u.plan = ctx.strategy.upgrade_plan(d.source, u.to, link=u.link)
            return ok(self._prechecks(ctx, u.plan, d.source))
        # rollback, drop-old: the plan that made the serving cluster from the old one,
        # when the old one had the port the new one serves on
        u.plan = ctx.strategy.upgrade_plan(replace(d.source, port=d.serving.port),
                                           d.serving.major, link=False)
        return ok(d.reason)

    def _prechecks(self, ctx: HostContext, plan: UpgradePlan, source: clusters.Cluster) -> str:
        u = self.run_
        r = ctx.root(precheck_script(plan, source.port), "checking disk space and sessions")
        size, avail, sessions = parse_precheck(r.stdout)
        said = [f"{upgrade.describe(source)} to {u.to} with {plan.description}"]
        if not u.link:
            short = upgrade.disk_shortfall(size, avail)
            if short is not None:
                raise StepFailed(f"{said[0]}: {short}. Nothing was changed")
            if size is not None and avail is not None:
                said.append(f"copies {size_text(size)}, {size_text(avail)} free")
        else:
            said.append("--link: no copy, the old cluster cannot come back once the new "
                        "one has run")
        if sessions:
            who = "; ".join(sessions)
            if not u.force:
                raise StepFailed(
                    f"{len(sessions)} session(s) connected to PostgreSQL {source.major}: {who}. "
                    "The upgrade stops the server and would end them. Nothing was changed; "
                    "stop the app (and other clients) first, or pass --force")
            said.append(f"--force: {len(sessions)} session(s) will be ended: {who}")
        return "; ".join(said)


class BackupBeforeUpgrade(Step):
    """A pg_dump of the app's database, named in the output, before the cluster moves."""

    name = "back up before the upgrade"

    def __init__(self, run: UpgradeRun) -> None:
        self.run_ = run

    def run(self, ctx: HostContext) -> StepResult:
        u, c = self.run_, ctx.config
        if not u.acting:
            return skipped("nothing to upgrade")
        d = u.decision
        assert d is not None and d.source is not None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = (f"{c.backup_dir.rstrip('/')}/{c.db_name}-{stamp}-before-upgrade-"
                f"{d.source.major}-to-{u.to}.dump")
        if ctx.check:
            return changed(f"would back up {c.db_name} to {c.backup_dir} (pg_dump)")
        r = ctx.t.run(backup_script(ctx, path), become="root", timeout=None)
        if not r.ok:
            raise StepFailed(f"pg_dump into {path} failed, nothing upgraded: "
                             f"{(r.stderr or r.stdout).strip()[-600:]}")
        u.notes.append(f"backup {path}")
        return changed(f"backup {path}")


class UpgradeCluster(Step):
    """The family's own upgrade tool; on failure the old cluster serves again."""

    name = "upgrade the cluster"

    def __init__(self, run: UpgradeRun) -> None:
        self.run_ = run

    def run(self, ctx: HostContext) -> StepResult:
        u, c = self.run_, ctx.config
        d, plan = u.decision, u.plan
        if not u.acting:
            assert d is not None
            return ok(d.reason)
        assert d is not None and d.source is not None and plan is not None and u.to
        old = d.source
        if ctx.check:
            u.would_change = True
            return changed(f"would run {plan.description}: PostgreSQL {u.to} on port "
                           f"{old.port}, PostgreSQL {old.major} kept stopped")
        extra = [p for p in plan.packages if p not in ctx.strategy.packages()]
        if extra:  # the family's upgrade tools (the old major's binaries)
            ctx.root(ctx.strategy.install_script(extra), f"installing {' '.join(extra)}",
                     timeout=1800)
        r = ctx.t.run(plan.script, become="root", timeout=None)
        ctx.invalidate()
        if not r.ok:
            back = self._serving_again(ctx, old)
            raise StepFailed(f"{plan.description} failed: {_tail(r)}; {back}"
                             + "".join(f"; {n}" for n in u.notes))
        ctx.strategy.major = u.to
        ctx.plan_settings()
        sql = ctx.state.sql or {}
        answering = int(sql.get("server_version_num") or 0) // 10000
        if answering != u.to or not sql.get("database"):
            # the tool said yes, the server on the port says otherwise: back to the old one
            rb = ctx.t.run(plan.rollback, become="root", timeout=None)
            ctx.invalidate()
            ctx.strategy.major = old.major
            raise StepFailed(
                f"{plan.description} finished, but port {c.pg_port} then answered "
                f"{f'PostgreSQL {answering}' if answering else 'nothing'}"
                f"{'' if sql.get('database') else f' without database {c.db_name}'}; "
                + (f"PostgreSQL {old.major} serves again" if rb.ok
                   else f"bringing PostgreSQL {old.major} back failed too: {_tail(rb)}"))
        u.moved = True
        kept = (f"PostgreSQL {old.major}'s cluster kept, stopped (`chatalot-db upgrade "
                "--rollback` brings it back, `--drop-old` removes it)" if not u.link else
                f"PostgreSQL {old.major}'s cluster kept, stopped, but linked: it cannot start "
                "again (`chatalot-db upgrade --drop-old` removes it)")
        return changed(
            f"PostgreSQL {old.major} to {u.to} with {plan.description}: {c.db_name} on port "
            f"{c.pg_port}; {kept}",
            note=f"PostgreSQL {u.to} now serves {c.db_name}: set pg_version={u.to} for this "
            f"host in the inventory (or leave it unset where {u.to} is the distribution's "
            "own), so that apply manages the new cluster")

    def _serving_again(self, ctx: HostContext, old: clusters.Cluster) -> str:
        """After a failure: whether the old cluster answers again with the database."""
        r = ctx.t.run(f"runuser -u postgres -- psql -XAt -p {old.port} -d postgres -c "
                      + sh("SELECT current_setting('server_version_num')::int / 10000, "
                           "(SELECT count(*) FROM pg_database WHERE datname = "
                           f"{quote_literal(ctx.config.db_name)})"),
                      become="root", timeout=60)
        if r.ok and r.stdout.strip() == f"{old.major}|1":
            return (f"PostgreSQL {old.major} serves {ctx.config.db_name} on port {old.port} "
                    "again, as before")
        return (f"PostgreSQL {old.major} does NOT answer on port {old.port}: "
                f"{_tail(r) or r.stdout.strip()}; bring it back with `chatalot-db upgrade "
                "--rollback`")


class RollbackCluster(Step):
    """The old cluster an upgrade kept serves again on its port; the new one kept, stopped."""

    name = "roll back to the old cluster"

    def __init__(self, run: UpgradeRun) -> None:
        self.run_ = run

    def run(self, ctx: HostContext) -> StepResult:
        u, c = self.run_, ctx.config
        d, plan = u.decision, u.plan
        assert d is not None
        if not u.acting:
            return ok(d.reason)
        assert d.source is not None and d.serving is not None and plan is not None
        old, new = d.source, d.serving
        lost = (f"writes made on PostgreSQL {new.major} since the upgrade are not in "
                f"{old.major}: they stay in the stopped {new.major} cluster")
        if ctx.check:
            u.would_change = True
            return changed(f"would stop PostgreSQL {new.major} and bring PostgreSQL "
                           f"{old.major} back on port {c.pg_port}; {lost}")
        r = ctx.t.run(plan.rollback, become="root", timeout=None)
        ctx.invalidate()
        if not r.ok:
            raise StepFailed(f"rolling back to PostgreSQL {old.major} failed: {_tail(r)}")
        ctx.strategy.major = old.major
        ctx.plan_settings()
        return changed(f"PostgreSQL {old.major} serves {c.db_name} on port {c.pg_port} "
                       f"again; PostgreSQL {new.major} kept, stopped; {lost}",
                       note=f"PostgreSQL {old.major} serves {c.db_name} again: set "
                       f"pg_version={old.major} for this host in the inventory")


class DropOldCluster(Step):
    """The old cluster an upgrade kept is removed (it is stopped; the new one serves)."""

    name = "remove the old cluster"

    def __init__(self, run: UpgradeRun) -> None:
        self.run_ = run

    def run(self, ctx: HostContext) -> StepResult:
        u = self.run_
        d, plan = u.decision, u.plan
        assert d is not None
        if not u.acting:
            return ok(d.reason)
        assert d.source is not None and plan is not None
        if ctx.check:
            return changed(f"would {d.reason}")
        r = ctx.t.run(plan.drop_old, become="root", timeout=600)
        if not r.ok:
            raise StepFailed(f"removing PostgreSQL {d.source.major}'s cluster failed: "
                             f"{_tail(r)}")
        return changed(f"removed PostgreSQL {d.source.major}'s cluster ({d.source.name})")


class RebuildStatistics(Step):
    """pg_upgrade carries no planner statistics: vacuumdb --analyze-in-stages."""

    name = "rebuild statistics"

    def __init__(self, run: UpgradeRun) -> None:
        self.run_ = run

    def run(self, ctx: HostContext) -> StepResult:
        if not self.run_.moved:
            return skipped("no upgrade in this run")
        port = ctx.config.pg_port
        ctx.t.check(f"cd / && {ctx.strategy.client('vacuumdb')} --all --analyze-in-stages "
                    f"--quiet -p {port}", what="rebuilding statistics (vacuumdb)",
                    become="postgres", timeout=None)
        return changed("vacuumdb --all --analyze-in-stages")


class AfterUpgrade(Step):
    """Apply's step for the new cluster; skipped in check mode when the upgrade would run
    first (the cluster it reads does not exist yet)."""

    def __init__(self, run: UpgradeRun, inner: Step) -> None:
        self.run_, self.inner = run, inner
        self.name = inner.name

    def title(self, ctx: HostContext) -> str:
        return self.inner.title(ctx)

    def run(self, ctx: HostContext) -> StepResult:
        if self.run_.would_change:
            return skipped("after the upgrade (check mode)")
        return self.inner.run(ctx)


def _tail(r: Result) -> str:
    """The last lines a failed command said (stderr, else stdout)."""
    text = (r.stderr or r.stdout or "").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " / ".join(lines[-4:])[-800:]


def upgrade_steps(mode: str, *, to: int | None = None, link: bool = False,
                  force: bool = False) -> list[Step]:
    """One host's steps for `chatalot-db upgrade` (`mode` one of MODES)."""
    if mode not in MODES:
        raise ValueError(mode)
    run = UpgradeRun(mode, to=to, link=link, force=force)
    plan: list[Step] = [GatherFacts(), PlanUpgrade(run)]
    if mode == "rollback":
        return [*plan, RollbackCluster(run), AfterUpgrade(run, LoginCheck())]
    if mode == "drop-old":
        return [*plan, DropOldCluster(run)]
    after = [EnableService(), StartService(), ConfigureSettings(), ConfigureHba(), AppRole(),
             AppDatabase(), SchemaGrants(), EnvFile(), ScheduleBackups(), LoginCheck()]
    return [*plan, InstallPackages(), BackupBeforeUpgrade(run), UpgradeCluster(run),
            *(AfterUpgrade(run, s) for s in after), RebuildStatistics(run)]


__all__ = ["MODES", "UpgradeRun", "parse_precheck", "precheck_script", "upgrade_steps"]
