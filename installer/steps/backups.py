"""The backup schedule (installer.desired.backups) in place: the script, the systemd
timer (or the cron entry) and backup_dir; or, with backup=none, no schedule."""

from __future__ import annotations

from installer.desired import backups
from installer.steps.base import HostContext, Step, StepFailed, StepResult, changed, ok, skipped
from installer.steps.files import unified_diff
from installer.transport.shell import sh

#: the files' modes: the script is run by postgres, everything is root's
_MODES = {backups.SCRIPT_PATH: "0755"}


def wanted_schedule(ctx: HostContext) -> backups.Schedule | None:
    """The schedule this host should have; None where nothing would run one (no systemd
    and no cron daemon)."""
    c, s = ctx.config, ctx.strategy
    dump = s.client("pg_dump")
    pgbin = dump.rsplit("/", 1)[0] if "/" in dump else ""
    if ctx.facts.systemd:
        service = s.service()
        after = service if "." in service else f"{service}.service"
        return backups.systemd_schedule(c.db_name, c.pg_port, c.backup_dir, c.backup_keep,
                                        pgbin, c.backup_on_calendar, after)
    if not ctx.state.cron_running:
        return None
    try:
        return backups.cron_schedule(c.db_name, c.pg_port, c.backup_dir, c.backup_keep, pgbin,
                                     c.backup_on_calendar, ctx.facts.machine_id or ctx.name)
    except ValueError as e:
        raise StepFailed(str(e)) from None


def install_script(files: dict[str, str], remove: list[str], timer: str | None,
                   backup_dir: str, *, systemd: bool, stale_timer: str | None = None) -> str:
    """Root shell, one round trip: backup_dir (0700, postgres) made, each file written
    whole (a temporary file renamed over it), stale files removed, the timer enabled."""
    d = sh(backup_dir)
    lines = ["set -eu", "cd /", "umask 022",
             f"if [ ! -d {d} ]; then mkdir -p {d}; chown postgres:postgres {d}; "
             f"chmod 0700 {d}; fi"]
    if stale_timer:
        lines.append(f"systemctl disable --now {sh(stale_timer)} >/dev/null 2>&1 || true")
    for path, content in files.items():
        q, tmp = sh(path), sh(path + ".chatalot-db.new")
        mode = _MODES.get(path, "0644")
        lines += [f"mkdir -p {sh(path.rsplit('/', 1)[0])}",
                  f"cat > {tmp} <<'CHATALOT_EOF'\n{content}CHATALOT_EOF",
                  f"chmod {mode} {tmp}; chown root:root {tmp}; mv -f {tmp} {q}"]
    if remove:
        lines.append("rm -f " + " ".join(sh(p) for p in remove))
    if systemd:
        lines.append("systemctl daemon-reload")
    if timer:
        lines.append(f"systemctl enable --now --quiet {sh(timer)}")
    return "\n".join(lines) + "\n"


class ScheduleBackups(Step):
    """Nightly pg_dumps of the app's database, kept backup_keep days (backup=pg_dump)."""

    name = "schedule backups"

    def run(self, ctx: HostContext) -> StepResult:
        c, st = ctx.config, ctx.state
        have = {p: v for p, v in st.backup_files.items() if v is not None}
        _, timer_path, _ = backups.schedule_paths(c.db_name)
        timer = timer_path.rsplit("/", 1)[1]
        systemd = ctx.facts.systemd
        if c.backup == "none":
            ours = [p for p in have if p != backups.SCRIPT_PATH]  # (other apps may use it)
            if not ours:
                return ok("backup=none: no schedule")
            if ctx.check:
                return changed(f"would remove the backup schedule ({', '.join(ours)}); the "
                               f"dumps in {c.backup_dir} stay")
            ctx.root(install_script({}, ours, None, c.backup_dir, systemd=systemd,
                                    stale_timer=timer if timer_path in have else None),
                     "removing the backup schedule")
            ctx.invalidate()
            return changed(f"removed the backup schedule ({', '.join(ours)}); the dumps in "
                           f"{c.backup_dir} stay")
        want = wanted_schedule(ctx)
        if want is None:
            return skipped(
                f"no systemd as PID 1 (PID 1 is {ctx.facts.pid1 or 'unknown'}) and no cron "
                "daemon running: nothing would run a schedule. Run cron, or take dumps with "
                "`chatalot-db backup`")
        what = (f"pg_dump of {c.db_name} {want.when}, kept {c.backup_keep} days in "
                f"{c.backup_dir}")
        differ = {p: text for p, text in want.files.items() if have.get(p) != text}
        stale = [p for p in have if p not in want.files]
        timer_off = want.timer is not None and st.backup_timer != "enabled active"
        if not differ and not stale and not timer_off:
            return ok(what)
        first = not any(p in have for p in want.files if p != backups.SCRIPT_PATH)
        verb = "scheduled" if first else "updated the schedule:"
        diff = None
        if ctx.diff:
            diff = "".join(unified_diff(p, have.get(p), text) for p, text in differ.items())
        if ctx.check:
            return changed(f"would have {what}" + (" (none yet)" if first else ""), diff)
        stale_timer = timer if timer_path in stale else None
        ctx.root(install_script(differ, stale, want.timer, c.backup_dir, systemd=systemd,
                                stale_timer=stale_timer), "installing the backup schedule")
        ctx.invalidate()
        return changed(f"{verb} {what}", diff)


__all__ = ["ScheduleBackups", "install_script", "wanted_schedule"]
