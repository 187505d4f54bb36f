"""Server configuration steps: our postgresql.conf drop-in, and pg_hba.conf."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Mapping

from installer.desired import hba, pgconf
from installer.desired.settings import SSL_CERT, SSL_KEY, describe, plan_settings, tuning_inputs
from installer.steps.base import (
    HostContext,
    Status,
    Step,
    StepFailed,
    StepResult,
    changed,
    ok,
)
from installer.steps.files import restore_file, unified_diff, write_file
from installer.transport.shell import sh

CERT_SCRIPT = f"""set -e
cd "$1"
if [ -s {SSL_CERT} ] && [ -s {SSL_KEY} ]; then echo present; exit 0; fi
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$2" \\
  -keyout {SSL_KEY}.tmp -out {SSL_CERT}.tmp
chown postgres:postgres {SSL_KEY}.tmp {SSL_CERT}.tmp
chmod 0600 {SSL_KEY}.tmp; chmod 0644 {SSL_CERT}.tmp
mv -f {SSL_KEY}.tmp {SSL_KEY}; mv -f {SSL_CERT}.tmp {SSL_CERT}
echo generated
"""


def ensure_certificate(ctx: HostContext) -> str | None:
    """Generate the server certificate in the data directory when remote access needs one.

    Returns a note when one was generated (or would be, in check mode), else None.
    """
    c = ctx.config
    if not c.remote or c.pg_ssl_cert is not None:
        return None
    datadir = str((ctx.state.sql or {}).get("data_directory") or "")
    if not datadir:
        return None
    where = f"{datadir}/{SSL_CERT}"
    if ctx.check:
        r = ctx.t.run(f"test -s {sh(where)}", become="root", timeout=60)
        return None if r.ok else f"would generate {where} (self-signed, CN={ctx.name})"
    cn = re.sub(r"[^A-Za-z0-9.-]", "-", ctx.name)[:64] or "postgresql"
    r = ctx.root(f"sh -c {sh(CERT_SCRIPT)} chatalot-cert {sh(datadir)} {sh(cn)}",
                 f"generating {where}")
    return f"generated {where}" if r.stdout.strip() == "generated" else None


FILE_ERRORS_SQL = """SELECT coalesce(name, '?') || ' (' || sourcefile || ':' || sourceline
       || '): ' || error
FROM pg_file_settings
WHERE error IS NOT NULL
  AND NOT (error = 'setting could not be applied'
           AND name IN (SELECT name FROM pg_settings WHERE context = 'postmaster'));
"""


def render_dropin(ctx: HostContext, caps: Mapping[str, list[str]] | None
                  ) -> tuple[dict[str, str], str]:
    """The settings our drop-in holds on this host, and the drop-in's text."""
    wanted = plan_settings(ctx.config, ctx.facts, ctx.major, caps)
    inputs = describe(tuning_inputs(ctx.config, ctx.facts, ctx.major, caps))
    return wanted, pgconf.render(wanted, host=ctx.name, inputs=inputs)


class ConfigureSettings(Step):
    """Our settings are rendered into the drop-in and in force in the running server."""

    name = "configure postgresql.conf"

    def run(self, ctx: HostContext) -> StepResult:
        st = ctx.state
        path = ctx.strategy.dropin_path()
        if ctx.check and ctx.strategy.major is None:
            return changed(f"would write {path} once PostgreSQL is installed (its major "
                           "version decides the tuning)")
        caps = (st.sql or {}).get("caps") or None
        wanted, content = render_dropin(ctx, caps)
        file_differs = content != st.dropin
        include = ctx.strategy.conf_include()
        conf_new = None  # postgresql.conf with our include line, when it lacks one
        if include is not None:
            if st.main_conf is None and not ctx.check:
                raise StepFailed(f"{include.conf_path} not found: is the cluster initialised?")
            conf_new = pgconf.with_conf_d_include(st.main_conf or "")
            if conf_new == st.main_conf:
                conf_new = None
        answers = ctx.server_answers()
        if answers is None:
            more = f", and include conf.d/ from {include.conf_path}" if include and conf_new else ""
            return changed(f"would write {path} ({len(wanted)} settings){more}",
                           unified_diff(path, st.dropin, content) if ctx.diff else None)
        live: dict[str, dict[str, object]] = answers.get("settings", {})
        unknown = [n for n in wanted if n not in live and "." not in n]
        if unknown:
            raise StepFailed(f"unknown PostgreSQL setting(s): {', '.join(unknown)}; "
                             "nothing was changed")
        differing = {
            n: (str(live[n]["value"]) if n in live else "(unset)", v)
            for n, v in wanted.items()
            if n not in live or not _same(v, live[n])
        }
        # ALTER SYSTEM's file is read last: what it sets, no drop-in changes. Told before
        # anything is written; the rest is still applied (a tuning conflict must not keep
        # the access rules from being enforced), and the step fails at its end
        overridden = {n: live[n] for n in differing if _altered(live.get(n))}
        conflict = _override_message(overridden, wanted) if overridden else None
        if conflict is not None and set(overridden) & ACCESS_SETTINGS:
            raise StepFailed(conflict)
        for n in overridden:
            del differing[n]
        result = self._apply(ctx, wanted, differing, file_differs, content, conf_new,
                             set(overridden))
        if conflict is None:
            return result
        done = "" if result.status == Status.OK else f"{result.reason}; but "
        return dataclasses.replace(result, status=Status.FAILED, keep_going=True,
                                   reason=f"{done}{conflict}")

    def _apply(self, ctx: HostContext, wanted: Mapping[str, str],
               differing: dict[str, tuple[str, str]], file_differs: bool, content: str,
               conf_new: str | None, overridden: set[str]) -> StepResult:
        st = ctx.state
        path = ctx.strategy.dropin_path()
        include = ctx.strategy.conf_include()
        live: dict[str, dict[str, object]] = (st.sql or {}).get("settings", {})
        cert = ensure_certificate(ctx)
        if not file_differs and not differing and conf_new is None:
            if cert:
                return changed(cert)
            return ok(f"{len(wanted)} settings in force")
        diff = "\n".join(f"{n}: {old} -> {new}" for n, (old, new) in differing.items())
        if ctx.diff and file_differs:
            diff = (diff + "\n" if diff else "") + unified_diff(path, st.dropin, content)
        if ctx.diff and include is not None and conf_new is not None:
            diff = (diff + "\n" if diff else "") + unified_diff(
                include.conf_path, st.main_conf, conf_new)
        included = f"; {include.conf_path} now includes conf.d/" if include and conf_new else ""
        if ctx.check:
            what = ", ".join(differing) or f"{path} (values already live)"
            generated = f"; {cert}" if cert else ""
            return changed(f"would set {what}{included.replace('now includes', 'to include')}"
                           f"{generated}", diff or None)
        previous = st.dropin
        if include is not None and (file_differs or conf_new is not None):
            # the drop-in's directory, readable by the server (write_file would make it root's)
            ctx.root(f"install -d -o postgres -g postgres -m 0700 {sh(include.conf_d)}",
                     f"creating {include.conf_d}")
        if file_differs:
            write_file(ctx.t, path, content, mode="0644", owner="postgres:postgres")
        if include is not None and conf_new is not None:
            # appended once at the end (so it wins), the rest untouched, the old file kept
            write_file(ctx.t, include.conf_path, conf_new, mode="0600", owner="postgres:postgres")
        if file_differs or conf_new is not None:
            errors = [ln for ln in ctx.psql(FILE_ERRORS_SQL, "checking the new settings")
                      .stdout.splitlines() if ln.strip()]
            if errors:
                if file_differs:
                    restore_file(ctx.t, path, previous)
                if include is not None and conf_new is not None:
                    restore_file(ctx.t, include.conf_path, st.main_conf)
                raise StepFailed("PostgreSQL rejects the new settings, previous configuration "
                                 "restored, server left as it was: " + "; ".join(errors))
        restart = any(live.get(n, {}).get("context") == "postmaster" for n in differing)
        action = "reloaded"
        if not restart:
            ctx.psql("SELECT pg_reload_conf();", "reloading the configuration")
            time.sleep(0.2)
            ctx.invalidate()
            restart = any(
                s.get("pending_restart") for s in (ctx.state.sql or {}).get("settings", {}).values()
            )
        if restart:
            action = "restarted"
            self._restart(ctx, path, previous, differing)
        ctx.invalidate()
        still = self._not_in_force(ctx, {n: v for n, v in wanted.items() if n not in overridden})
        if still:
            raise StepFailed("settings written but not in force (overridden later, e.g. by "
                             "ALTER SYSTEM in postgresql.auto.conf?): " + ", ".join(still))
        removed = [n for n in pgconf.setting_names(previous) if n not in wanted]
        names = ", ".join([*differing, *(f"{n} (back to its default)" for n in removed)]) \
            or "file only"
        generated = f"; {cert}" if cert else ""
        return changed(f"set {names}; PostgreSQL {action}{included}{generated}", diff or None)

    def _restart(self, ctx: HostContext, path: str, previous: str | None,
                 differing: Mapping[str, tuple[str, str]]) -> None:
        s = ctx.strategy
        r = ctx.t.run(s.control_script("restart"), become="root", timeout=300)
        ctx.invalidate()
        if r.ok and ctx.state.running:
            return
        detail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        restore_file(ctx.t, path, previous)
        ctx.t.run(s.control_script("start"), become="root", timeout=300)
        ctx.invalidate()
        back = "running again on the previous configuration" if ctx.state.running else \
            "NOT running: check the server log"
        names = ", ".join(f"{n} = {new}" for n, (_, new) in differing.items())
        raise StepFailed(f"PostgreSQL did not restart with {names} ({'; '.join(detail)}); "
                         f"previous configuration restored, server {back}")

    @staticmethod
    def _not_in_force(ctx: HostContext, wanted: Mapping[str, str]) -> list[str]:
        live = (ctx.state.sql or {}).get("settings", {})
        return [f"{n} is {live[n]['value']!r}, wanted {v!r}{_source(live[n])}"
                for n, v in wanted.items() if n in live and not _same(v, live[n])]


#: settings that decide who may connect: overridden by ALTER SYSTEM, the step stops there
ACCESS_SETTINGS = frozenset({"listen_addresses", "password_encryption", "ssl", "ssl_cert_file",
                             "ssl_key_file"})


def _altered(live: Mapping[str, object] | None) -> bool:
    """Whether the live value comes from postgresql.auto.conf (ALTER SYSTEM)."""
    return bool(live) and str((live or {}).get("sourcefile") or "").endswith(
        "/postgresql.auto.conf")


def _source(live: Mapping[str, object]) -> str:
    """` (set in FILE line N)`, as verify names it; empty when pg_settings has no file."""
    f = live.get("sourcefile")
    return f" (set in {f} line {live.get('sourceline')})" if f else ""


def _override_message(overridden: Mapping[str, Mapping[str, object]],
                      wanted: Mapping[str, str]) -> str:
    """Pure: which settings ALTER SYSTEM holds, where, and the two ways out."""
    names = sorted(overridden)
    what = "; ".join(f"{n} is {overridden[n]['value']} by ALTER SYSTEM{_source(overridden[n])}, "
                     f"over the drop-in's {wanted[n]}" for n in names)
    keep = ", ".join(f"'{n}': '{overridden[n]['value']}'" for n in names)
    return (f"{what}. Either run ALTER SYSTEM RESET {', '.join(names)}; (as postgres) and rerun, "
            f"or keep the value: pg_settings={{{keep}}}")


def _same(wanted: str, live: Mapping[str, object]) -> bool:
    unit = live.get("unit")
    return pgconf.same_value(wanted, str(live["value"]), str(unit) if unit else None)


class ConfigureHba(Step):
    """pg_hba.conf: the app role by scram-sha-256 over loopback only, no `trust` anywhere.

    hostssl rules for pg_allowed_cidrs while pg_listen keeps the server on loopback are
    written all the same (such inventories keep working), but said: in the reason, and in a
    note at the end of the host's run (HostConfig.listen_warning)."""

    name = "configure pg_hba.conf"

    def run(self, ctx: HostContext) -> StepResult:
        result = self._configure(ctx)
        warning = ctx.config.listen_warning
        if warning is None:
            return result
        return dataclasses.replace(result, reason=f"{result.reason}; {warning}", note=warning)

    def _configure(self, ctx: HostContext) -> StepResult:
        path = ctx.strategy.hba_path()
        st = ctx.state
        wanted = hba.HbaWanted(ctx.config.db_name, ctx.config.db_user,
                               remote_cidrs=ctx.config.pg_allowed_cidrs,
                               renamed_from=ctx.role_renamed_from)
        if st.hba is None:
            if ctx.check:
                return changed(f"would add the {ctx.config.db_user} rules to {path}")
            raise StepFailed(f"{path} not found: is the cluster created?")
        new = hba.render(st.hba, wanted)
        if new == st.hba:
            remote = (f", hostssl from {', '.join(ctx.config.pg_allowed_cidrs)}"
                      if ctx.config.remote else "")
            return ok(f"app role by scram-sha-256 on loopback{remote}; no trust rules")
        diff = unified_diff(path, st.hba, new) if ctx.diff else None
        if ctx.check:
            return changed(f"would update {path}", diff)
        previous = st.hba
        write_file(ctx.t, path, new, mode="0640", owner="postgres:postgres")
        if st.running:
            errors = ctx.psql(
                "SELECT line_number || ': ' || error FROM pg_hba_file_rules "
                "WHERE error IS NOT NULL;", "checking pg_hba.conf").stdout.strip()
            if errors:
                restore_file(ctx.t, path, previous)
                raise StepFailed(f"PostgreSQL rejects the new {path} (restored): {errors}")
            ctx.psql("SELECT pg_reload_conf();", "reloading pg_hba.conf")
        ctx.invalidate()
        return changed(f"updated {path} (previous kept as .chatalot-db.bak)", diff)
