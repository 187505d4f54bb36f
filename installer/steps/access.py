"""The app role, its database, schema grants, the env file, and the login check."""

from __future__ import annotations

from urllib.parse import quote

from installer.desired import envfile, scram
from installer.host.state import HostState
from installer.sqltext import quote_ident, quote_literal
from installer.steps.base import (
    HostContext,
    Step,
    StepFailed,
    StepResult,
    changed,
    ok,
)
from installer.steps.files import unified_diff, write_file
from installer.steps.preflight import role_change
from installer.transport.shell import sh

# The app role's attributes: it logs in, and may do nothing else beyond its database.
ROLE_FLAGS = {
    "rolcanlogin": ("LOGIN", True),
    "rolsuper": ("NOSUPERUSER", False),
    "rolcreatedb": ("NOCREATEDB", False),
    "rolcreaterole": ("NOCREATEROLE", False),
    "rolreplication": ("NOREPLICATION", False),
    "rolbypassrls": ("NOBYPASSRLS", False),
}


class AppRole(Step):
    """The role exists, logs in with the env file's password, and holds no extra powers."""

    def title(self, ctx: HostContext) -> str:
        return f"create role {ctx.config.db_user}"

    def run(self, ctx: HostContext) -> StepResult:
        user = ctx.config.db_user
        sql = ctx.server_answers()
        if sql is None:
            return changed(f"would create role {user}")
        old = ctx.role_renamed_from = role_change(ctx.config, sql)  # as preflight decided
        role = sql.get("role")
        password = ctx.password
        renamed: list[str] = []
        if role is None and old is not None:
            kept = "its objects, grants, ledger and password kept"
            if ctx.check:
                return changed(f"would rename role {old} to {user} ({kept})")
            ctx.psql(f"ALTER ROLE {quote_ident(old)} RENAME TO {quote_ident(user)};",
                     f"renaming role {old} to {user}")
            ctx.invalidate()
            renamed.append(f"renamed role {old} to {user} ({kept})")
            role = (ctx.server_answers() or {}).get("role")
            if role is None:
                raise StepFailed(f"role {user} not found after renaming {old} to it")
        if role is None:
            if ctx.check:
                return changed(f"would create role {user} "
                               "(LOGIN, no superuser/createdb/createrole)")
            verifier = scram.make_verifier(password)
            flags = " ".join(flag for flag, _ in ROLE_FLAGS.values())
            ctx.psql(f"CREATE ROLE {quote_ident(user)} {flags} "
                     f"PASSWORD {quote_literal(str(verifier))};", f"creating role {user}")
            ctx.invalidate()
            return changed(f"created role {user} (LOGIN, no superuser/createdb/createrole)")
        fixes = [flag for col, (flag, want) in ROLE_FLAGS.items() if bool(role.get(col)) != want]
        password_ok = scram.matches(role.get("rolpassword"), password)
        if not fixes and password_ok:
            if renamed:
                return changed(renamed[0])
            return ok(f"role {user} exists, LOGIN only, password matches the env file")
        why = []
        if fixes:
            why.append(" ".join(fixes))
        if not password_ok:
            why.append("new password (no env file held it)" if ctx.password_is_new
                       else "password set to db_password" if ctx.config.db_password is not None
                       else "password reset to the env file's")
        if ctx.check:
            return changed(f"would alter role {user}: " + "; ".join(why))
        parts = list(fixes)
        if not password_ok:
            parts.append(f"PASSWORD {quote_literal(str(scram.make_verifier(password)))}")
        ctx.psql(f"ALTER ROLE {quote_ident(user)} {' '.join(parts)};", f"altering role {user}")
        ctx.invalidate()
        return changed("; ".join([*renamed, f"altered role {user}: " + "; ".join(why)]))


class AppDatabase(Step):
    """The database exists, UTF8, owned by the app role, closed to PUBLIC."""

    def title(self, ctx: HostContext) -> str:
        return f"create database {ctx.config.db_name}"

    def run(self, ctx: HostContext) -> StepResult:
        c = ctx.config
        sql = ctx.server_answers()
        if sql is None:
            return changed(f"would create database {c.db_name} owned by {c.db_user}")
        db = sql.get("database")
        qdb, quser = quote_ident(c.db_name), quote_ident(c.db_user)
        if db is None:
            if ctx.check:
                return changed(f"would create database {c.db_name} OWNER {c.db_user}, UTF8")
            ctx.psql(f"CREATE DATABASE {qdb} OWNER {quser} ENCODING 'UTF8' TEMPLATE template0;",
                     f"creating database {c.db_name}")
            ctx.psql(f"REVOKE CONNECT, TEMPORARY ON DATABASE {qdb} FROM PUBLIC;\n"
                     f"GRANT ALL PRIVILEGES ON DATABASE {qdb} TO {quser};",
                     f"granting on database {c.db_name}")
            ctx.invalidate()
            return changed(f"created database {c.db_name} OWNER {c.db_user}, UTF8, "
                           "no CONNECT for PUBLIC")
        if db.get("encoding") != "UTF8":
            raise StepFailed(
                f"database {c.db_name} exists with encoding {db.get('encoding')}; Chatalot needs "
                "UTF8. Left untouched: dump it, drop it and rerun to recreate it as UTF8")
        todo: list[str] = []
        stmts: list[str] = []
        if db.get("owner") not in (c.db_user, ctx.role_renamed_from):
            todo.append(f"owner {db.get('owner')} -> {c.db_user}")
            stmts.append(f"ALTER DATABASE {qdb} OWNER TO {quser};")
        if db.get("public_connect"):
            todo.append("revoke CONNECT from PUBLIC")
            stmts.append(f"REVOKE CONNECT, TEMPORARY ON DATABASE {qdb} FROM PUBLIC;\n"
                         f"GRANT ALL PRIVILEGES ON DATABASE {qdb} TO {quser};")
        if not todo:
            return ok(f"database {c.db_name} exists, UTF8, owned by {c.db_user}")
        if ctx.check:
            return changed("would fix: " + "; ".join(todo))
        ctx.psql("\n".join(stmts), f"fixing database {c.db_name}")
        ctx.invalidate()
        return changed("fixed: " + "; ".join(todo))


class SchemaGrants(Step):
    """The app role holds USAGE and CREATE on schema public (PG 15 took CREATE from PUBLIC)."""

    name = "grant schema public"

    def run(self, ctx: HostContext) -> StepResult:
        c = ctx.config
        sql = ctx.server_answers()
        privs = set((sql or {}).get("schema_privileges") or [])
        if {"CREATE", "USAGE"} <= privs:
            return ok(f"{c.db_user} has USAGE, CREATE on schema public")
        if ctx.check or sql is None:
            return changed(f"would GRANT ALL ON SCHEMA public TO {c.db_user}")
        ctx.psql(f"GRANT ALL ON SCHEMA public TO {quote_ident(c.db_user)};",
                 "granting on schema public", database=c.db_name)
        ctx.invalidate()
        return changed(f"granted ALL ON SCHEMA public TO {c.db_user}")


def mask(text: str, secret: str) -> str:
    return text.replace(secret, "********") if secret else text


class EnvFile(Step):
    """DATABASE_URL in the env file, root-owned, mode 0600."""

    def title(self, ctx: HostContext) -> str:
        return f"write {ctx.config.env_file}"

    def run(self, ctx: HostContext) -> StepResult:
        path = ctx.config.env_file
        content = envfile.render(ctx.database_url())
        current = ctx.state.env_file
        meta = (ctx.state.env_meta or "").strip()
        if current == content and meta == "600 root root regular file":
            return ok("DATABASE_URL in place (mode 0600, root)",
                      note=f"DATABASE_URL is in {path} (mode 0600)")
        secret = ctx.password
        diff = None
        if ctx.diff:  # every password masked, the old one too
            diff = mask(mask(envfile.mask_secrets(unified_diff(path, current, content)),
                             secret), quote(secret, safe=""))
        what = "would write" if ctx.check else "wrote"
        if not ctx.check:
            write_file(ctx.t, path, content, mode="0600", owner="root:root", backup=False)
            ctx.invalidate()
        return changed(f"{what} DATABASE_URL to {path} (mode 0600, root)", diff,
                       note=f"DATABASE_URL written to {path} (mode 0600)")


CONNECT_SCRIPT = """IFS= read -r PGPASSWORD
export PGPASSWORD
exec "$2" -X -w -At -v ON_ERROR_STOP=1 -d "$1" -c 'SELECT 1'
"""


class LoginCheck(Step):
    """Chatalot's own DATABASE_URL logs in over TCP (the password on stdin, never argv)."""

    name = "check DATABASE_URL login"

    def run(self, ctx: HostContext) -> StepResult:
        c = ctx.config
        if ctx.check and (ctx.state.sql is None or ctx.state.sql.get("role") is None):
            return changed("would connect as DATABASE_URL once the role exists")
        logged_in = ok(f"{c.db_user}@localhost:{c.pg_port}/{c.db_name} logs in over TCP "
                       "(scram-sha-256)")
        probed = ctx.cached_state
        if probed is not None and _logged_in(ctx, probed):
            return logged_in  # nothing changed since the first probe, which used this URL
        conninfo = f"host=localhost port={c.pg_port} dbname={c.db_name} user={c.db_user}"
        r = ctx.t.run(f"sh -c {sh(CONNECT_SCRIPT)} chatalot-login-check {sh(conninfo)} "
                      f"{sh(ctx.strategy.psql())}",
                      stdin=ctx.password + "\n", timeout=60)
        if not r.ok or r.stdout.strip() != "1":
            if ctx.check:
                return changed("would connect once the role and pg_hba changes are made")
            raise StepFailed(
                f"login as {c.db_user} over TCP failed: {mask(r.stderr.strip(), ctx.password)}")
        return logged_in


def _logged_in(ctx: HostContext, st: HostState) -> bool:
    """Whether the probe's login used exactly the URL this run wants, and succeeded."""
    c, login = ctx.config, st.login
    if login is None or login.exit_code != 0 or not login.tcp:
        return False
    if (login.user, login.database) != (c.db_user, c.db_name):
        return False
    return envfile.read_url(st.env_file) == ctx.database_url()
