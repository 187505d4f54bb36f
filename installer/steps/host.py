"""Steps that read the host and put the PostgreSQL server in place and running."""

from __future__ import annotations

from installer import distros
from installer.distros.debian import parse_major
from installer.probes import facts as facts_probe
from installer.steps.base import (
    HostContext,
    Step,
    StepFailed,
    StepResult,
    changed,
    ok,
    skipped,
)
from installer.steps.server import plan_settings


class GatherFacts(Step):
    """Distribution, memory, CPUs, init system; picks the distribution strategy."""

    name = "gather facts"

    def run(self, ctx: HostContext) -> StepResult:
        f = facts_probe.gather(ctx.t)
        strategy = distros.select(f, ctx.config)
        if strategy.major is None:
            probe = strategy.major_probe()
            if probe:
                strategy.major = parse_major(ctx.t.run(probe, timeout=60).stdout)
        ctx.set_facts(f, strategy)
        ctx.wanted_settings = plan_settings(ctx)
        init = "systemd" if f.systemd else f"no systemd (PID 1 is {f.pid1 or '?'})"
        return ok(
            f"{f.pretty_name}; {f.memory_kb // 1024} MB RAM, {f.cpus} CPUs, {init}; "
            f"{strategy.family} strategy, PostgreSQL {strategy.major or '(distribution default)'}"
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
            if notes:
                return changed("; ".join(notes))
            return ok("installed: " + " ".join(ctx.strategy.packages()))
        pkgs = " ".join(st.missing_packages)
        if ctx.check:
            return changed("; ".join([*notes, f"would install {pkgs}"]))
        ctx.root(ctx.strategy.install_script(st.missing_packages), f"installing {pkgs}",
                 timeout=1800)
        ctx.invalidate()
        still = ctx.state.service.missing_packages
        if still:
            raise StepFailed(f"the package manager finished but {' '.join(still)} is not installed")
        return changed("; ".join([*notes, f"installed {pkgs}"]))


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
        return changed(f"enabled {s.enable_unit()}")


class StartService(Step):
    """The cluster is running and accepts connections."""

    name = "start postgresql"

    def run(self, ctx: HostContext) -> StepResult:
        s = ctx.strategy
        st = ctx.state
        if st.service.active and st.running:
            return ok(f"running (managed with {s.control_tool()})")
        if ctx.check:
            return changed(f"would start PostgreSQL {ctx.strategy.major} with {s.control_tool()}")
        ctx.root(s.control_script("start"), f"starting PostgreSQL with {s.control_tool()}")
        ctx.invalidate()
        if not ctx.state.running:
            raise StepFailed(
                f"PostgreSQL did not accept connections after start: {ctx.state.sql_error}"
            )
        return changed(f"started with {s.control_tool()}")
