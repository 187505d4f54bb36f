"""Steps that read the host and put the PostgreSQL server in place and running."""

from __future__ import annotations

from installer.host import clusters, distros
from installer.host import facts as facts_probe
from installer.steps.base import (
    HostContext,
    Step,
    StepFailed,
    StepResult,
    changed,
    ok,
    skipped,
)


class GatherFacts(Step):
    """Distribution, memory, CPUs, init system; picks the distribution strategy."""

    name = "gather facts"

    def __init__(self, *, exact_major: bool = False) -> None:
        #: ask the host for its major even when the release table has a guess: for readers
        #: that probe once (verify), where apply's state probe would correct a wrong guess
        self.exact_major = exact_major
        self._script = facts_probe.facts_script()

    def read_under_lock(self) -> str:
        """The facts probe rides on the host lock's round trip."""
        return self._script.script

    def run(self, ctx: HostContext) -> StepResult:
        found = distros.detect(ctx.t, ctx.config, exact_major=self.exact_major,
                               script=self._script, output=ctx.under_lock)
        f, strategy, asked = found.facts, found.strategy, found.asked
        ctx.set_facts(f, strategy)
        ctx.plan_settings()
        init = "systemd" if f.systemd else f"no systemd (PID 1 is {f.pid1 or '?'})"
        if ctx.config.pg_version is not None:
            version = f"PostgreSQL {strategy.major} (pg_version)"
        elif strategy.major is not None and asked:
            version = f"PostgreSQL {strategy.major} (the distribution's)"
        elif strategy.major is not None:
            version = (f"PostgreSQL {strategy.major} (the release's default; the host's "
                       "packages confirm it)")
        else:
            version = "PostgreSQL: the distribution's, its version known once installed"
        return ok(
            f"{f.pretty_name}; {f.memory_kb // 1024} MB RAM, {f.cpus} CPUs, {init}; "
            f"{strategy.family} strategy, {version}"
        )


class InstallPackages(Step):
    """The server packages are installed (interrupted package runs repaired first)."""

    name = "install postgresql"

    def run(self, ctx: HostContext) -> StepResult:
        st = ctx.state.service
        notes: list[str] = []
        if st.needs_repair:
            if ctx.check:
                notes.append("would finish an interrupted package run")
            else:
                ctx.root(ctx.strategy.repair_script(), "repairing the interrupted package run")
                notes.append("finished an interrupted package run")
                ctx.invalidate()
                st = ctx.state.service
        if not st.missing_packages:
            _check_pinned(ctx)
            if notes:
                return changed("; ".join(notes))
            return ok("installed: " + " ".join(ctx.strategy.packages()) + _major(ctx))
        pkgs = " ".join(st.missing_packages)
        if ctx.check:
            return changed("; ".join([*notes, f"would install {pkgs}"]))
        hold = _hold_first_start(ctx)
        ctx.root(ctx.strategy.install_script(st.missing_packages, hold_start=hold),
                 f"installing {pkgs}", timeout=1800)
        ctx.invalidate()
        still = ctx.state.service.missing_packages
        if still:
            raise StepFailed(f"the package manager finished but {' '.join(still)} is not installed")
        _check_pinned(ctx)
        done = f"installed {pkgs}{_major(ctx)}"
        if hold and _write_dropin_before_first_start(ctx):
            done += (f"; its settings written before its first start "
                     f"({ctx.strategy.dropin_path()})")
        return changed("; ".join([*notes, done]))


def _hold_first_start(ctx: HostContext) -> bool:
    """Whether the package's own first start of the server is held back, so that the
    server starts once, with our settings (no restart in the configure step): where the
    distribution allows it (Debian's policy-rc.d), for a cluster the packages are about to
    create, and only with settings that are ours alone (tuned, validated by construction):
    with pg_settings or remote access, the configure step applies and checks them on a
    running server as before."""
    c, st = ctx.config, ctx.state
    return (ctx.strategy.can_hold_start and st.service.data_version is None
            and not st.running and not c.pg_settings and not c.pg_allowed_cidrs)


def _write_dropin_before_first_start(ctx: HostContext) -> bool:
    """Our drop-in, written into the cluster the packages just created and did not start
    (Debian's clusters include conf.d/). False where that is not so (no new cluster of
    the installed major, or one that runs): the configure step then does it on the running
    server, as before."""
    from installer.steps.files import write_file
    from installer.steps.server import render_dropin

    st = ctx.state
    if st.running or st.service.data_version != ctx.major or st.dropin is not None:
        return False
    _, content = render_dropin(ctx, None)
    write_file(ctx.t, ctx.strategy.dropin_path(), content, mode="0644",
               owner="postgres:postgres", backup=False)
    ctx.invalidate()
    return True


def _major(ctx: HostContext) -> str:
    m = ctx.strategy.major
    return f" (PostgreSQL {m})" if m is not None else ""


def _check_pinned(ctx: HostContext) -> None:
    """With pg_version set, the server the host installs must be that major."""
    pinned, found = ctx.config.pg_version, ctx.state.service.installed_major
    if pinned is not None and found is not None and found != pinned:
        raise StepFailed(
            f"pg_version={pinned}, but the {ctx.strategy.label} server this host installs is "
            f"PostgreSQL {found}: {ctx.strategy.pinned_hint(found)}")


class InitCluster(Step):
    """A cluster of the installed major is in the data directory.

    initdb runs only on an empty (or missing) data directory, never on one that holds
    data; a data directory of another major stops the host (that needs pg_upgrade).
    """

    name = "initialise the cluster"

    def run(self, ctx: HostContext) -> StepResult:
        s = ctx.strategy
        st = ctx.state.service
        if st.missing_packages:  # check mode on a host without the packages
            if s.package_creates_cluster:
                return skipped("the package creates the cluster when it is installed")
            return changed(f"would initialise {s.data_dir()} once installed: "
                           f"{s.init_description()}")
        major = ctx.major
        dd = s.data_dir()
        if st.data_version is not None:
            if st.data_version != major:
                raise StepFailed(
                    f"{dd} holds a PostgreSQL {st.data_version} cluster but the installed "
                    f"server is PostgreSQL {major}: an upgrade needs pg_upgrade, which this "
                    f"tool does not run. Nothing was changed; {s.upgrade_hint()}, then rerun")
            return ok(s.cluster_reason())
        if st.data_dir == "nonempty":
            raise StepFailed(
                f"{dd} is not empty but has no PG_VERSION, so it is no PostgreSQL cluster; "
                "initdb never runs on a directory that holds data. Move its contents away, "
                "then rerun")
        if ctx.check:
            return changed(f"would initialise {dd}: {s.init_description()}")
        ctx.root(s.init_script(), f"initialising {dd}", timeout=900)
        ctx.invalidate()
        made = ctx.state.service.data_version
        if made != major:
            raise StepFailed(f"{s.init_description()} finished, but {dd}/PG_VERSION says "
                             f"{made or 'nothing'} (wanted {major})")
        return changed(f"initialised {dd}: {s.init_description()}")


class EnableService(Step):
    """The service starts at boot (systemd only)."""

    name = "enable postgresql at boot"

    def run(self, ctx: HostContext) -> StepResult:
        s = ctx.strategy
        if not ctx.facts.systemd:
            return skipped(
                f"no systemd as PID 1 (PID 1 is {ctx.facts.pid1 or 'unknown'}): nothing to "
                f"enable; the cluster is managed with {s.control_tool()}"
            )
        if ctx.state.service.enabled:
            return ok(f"{s.enable_unit()} is enabled")
        if ctx.check:
            return changed(f"would enable {s.enable_unit()}")
        ctx.root(s.enable_script(), f"enabling {s.enable_unit()}")
        ctx.invalidate()
        return changed(s.enable_reason())


class StartService(Step):
    """The cluster is running and accepts connections."""

    name = "start postgresql"

    def run(self, ctx: HostContext) -> StepResult:
        s = ctx.strategy
        st = ctx.state
        if st.service.active and st.running:
            return ok(f"running (managed with {s.control_tool()})")
        if ctx.check:
            m = ctx.strategy.major
            return changed(f"would start PostgreSQL{f' {m}' if m else ''} with {s.control_tool()}")
        ctx.root(s.control_script("start"), f"starting PostgreSQL with {s.control_tool()}")
        ctx.invalidate()
        if not ctx.state.running:
            port = clusters.wrong_port(ctx.config.pg_port, ctx.state.own_port, s.own_conf())
            raise StepFailed(port or "PostgreSQL did not accept connections after start: "
                             f"{ctx.state.sql_error}")
        return changed(f"started with {s.control_tool()}")
