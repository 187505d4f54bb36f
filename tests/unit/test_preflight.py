"""A role change (db_user set to another name on a host whose database belongs to the old
role) is decided before any change: refused with both ways out, or done whole as a planned
rename (db_user_rename_from) that keeps every object, grant, the ledger and the password."""

from __future__ import annotations

from typing import Any

import pytest

from installer.desired import envfile, hba, scram
from installer.desired.config import HostConfig
from installer.errors import UsageError
from installer.steps.access import AppDatabase, AppRole
from installer.steps.base import StepFailed
from installer.steps.preflight import Preflight, role_change
from tests.unit.stepkit import harness, said, state

OLD_URL = "postgres://chat_app:pw0@localhost:5432/chat_prod"


def db(owner: str, *, super_: bool = False) -> dict[str, Any]:
    return {"datname": "chat_prod", "owner": owner, "owner_super": super_, "encoding": "UTF8",
            "public_connect": False}


def login_role(name: str, password: str = "pw0") -> dict[str, Any]:
    return {"rolname": name, "rolsuper": False, "rolcreatedb": False, "rolcreaterole": False,
            "rolcanlogin": True, "rolreplication": False, "rolbypassrls": False,
            "rolpassword": str(scram.make_verifier(password))}


def config(user: str = "chat_app2", rename_from: str | None = None) -> HostConfig:
    return HostConfig(db_name="chat_prod", db_user=user, migrations_source=None,
                      db_user_rename_from=rename_from)


@pytest.mark.parametrize(("cfg", "sql", "expected"), [
    (config(), None, None),
    (config(), {"database": None, "role": None}, None),
    (config("chat_app"), {"database": db("chat_app"), "role": login_role("chat_app")}, None),
    (config(), {"database": db("postgres", super_=True), "role": None}, None),
    (config(rename_from="chat_app"), {"database": db("chat_app"), "role": None}, "chat_app"),
    (config(rename_from="chat_app"),
     {"database": db("chat_app2"), "role": login_role("chat_app2")}, None),
], ids=["server down", "no database", "same owner", "superuser owner", "rename",
        "renamed already (variable left in place)"])
def test_role_change_decisions(cfg: HostConfig, sql: dict[str, Any] | None,
                               expected: str | None) -> None:
    assert role_change(cfg, sql) == expected


@pytest.mark.parametrize(("cfg", "sql", "message"), [
    (config(), {"database": db("chat_app"), "role": None},
     r"^database chat_prod belongs to role chat_app, not to db_user chat_app2: changing db_user "
     r"is a role change, refused before any change\. To rename the role .*DATABASE_URL from "
     r"/etc/chatalot/database\.env\), set db_user_rename_from=chat_app; to leave the app as it "
     r"is, set db_user=chat_app$"),
    (config(rename_from="other"), {"database": db("chat_app"), "role": None},
     r"^database chat_prod belongs to role chat_app, not to db_user chat_app2"),
    (config(rename_from="chat_app"),
     {"database": db("chat_app"), "role": login_role("chat_app2")},
     r"^db_user_rename_from=chat_app, but role chat_app2 already exists, so chat_app cannot "
     r"take its name; nothing was changed\. .*REASSIGN OWNED BY chat_app TO chat_app2 in "
     r"database chat_prod"),
], ids=["no rename asked", "rename from another role", "new name taken"])
def test_role_change_refused_with_the_ways_out(cfg: HostConfig, sql: dict[str, Any],
                                               message: str) -> None:
    with pytest.raises(StepFailed, match=message):
        role_change(cfg, sql)


def test_preflight_refuses_before_anything_runs() -> None:
    h = harness(before=state(sql={"database": db("chat_app"), "role": None}), config=config())
    with pytest.raises(StepFailed, match="refused before any change"):
        h.run(Preflight())
    assert h.host.calls == []


@pytest.mark.parametrize(("sql", "expected"), [
    (None, "no server answering yet: nothing to take over"),
    ({"database": None, "role": None}, "no database chat_prod yet"),
    ({"database": db("chat_app"), "role": None},
     "role chat_app will be renamed to chat_app2 (db_user_rename_from)"),
    ({"database": db("chat_app2"), "role": login_role("chat_app2")},
     "database chat_prod belongs to chat_app2"),
])
def test_preflight_says_what_it_found(sql: dict[str, Any] | None, expected: str) -> None:
    h = harness(before=state(sql=sql), config=config(rename_from="chat_app"))
    assert said(h.run(Preflight())) == ("ok", expected)
    assert h.host.calls == []


def test_rename_keeps_the_password_and_alters_nothing_else() -> None:
    before = state(sql={"database": db("chat_app"), "role": None}, env_file=envfile.render(OLD_URL),
                   env_meta="600 root root regular file")
    after = state(sql={"database": db("chat_app2"), "role": login_role("chat_app2")},
                  env_file=envfile.render(OLD_URL), env_meta="600 root root regular file")
    h = harness(before=before, after=[after], config=config(rename_from="chat_app"))
    h.host.on("psql")
    result = h.run(AppRole())
    assert said(result) == ("changed", "renamed role chat_app to chat_app2 (its objects, "
                                       "grants, ledger and password kept)")
    assert h.host.sql() == ['ALTER ROLE "chat_app" RENAME TO "chat_app2";']
    assert h.ctx.password == "pw0" and not h.ctx.password_is_new
    assert h.ctx.database_url() == "postgres://chat_app2:pw0@localhost:5432/chat_prod"
    assert said(h.run(AppDatabase())) == ("ok", "database chat_prod exists, UTF8, owned by "
                                                "chat_app2")


def test_rename_in_check_mode_runs_nothing_and_predicts_the_database_owner() -> None:
    h = harness(before=state(sql={"database": db("chat_app"), "role": None},
                             env_file=envfile.render(OLD_URL),
                             env_meta="600 root root regular file"),
                config=config(rename_from="chat_app"), check=True)
    assert said(h.run(AppRole())) == (
        "changed", "would rename role chat_app to chat_app2 (its objects, grants, ledger and "
                   "password kept)")
    assert said(h.run(AppDatabase()))[0] == "ok"
    assert h.host.calls == []


def test_role_step_refuses_a_role_change_itself() -> None:
    """When the server was not answering at preflight, the role step decides the same."""
    h = harness(before=state(sql={"database": db("chat_app"), "role": None}), config=config())
    with pytest.raises(StepFailed, match="refused before any change"):
        h.run(AppRole())
    assert h.host.calls == []


def test_password_of_the_old_name_is_kept_only_for_a_rename() -> None:
    env = envfile.render(OLD_URL)
    assert envfile.app_password("chat_app2", None, env, renamed_from="chat_app") == ("pw0", False)
    password, new = envfile.app_password("chat_app2", None, env)
    assert new and password != "pw0"


HBA = """\
# BEGIN chatalot-db managed block for chat_app@chat_prod: rewritten on every run
host    chat_prod       chat_app        127.0.0.1/32            scram-sha-256
host    chat_prod       chat_app        ::1/128                 scram-sha-256
# END chatalot-db managed block for chat_app@chat_prod

local   all             postgres                                peer
"""


def test_hba_block_of_the_old_name_becomes_the_new_one_in_place() -> None:
    wanted = hba.HbaWanted("chat_prod", "chat_app2", renamed_from="chat_app")
    new = hba.render(HBA, wanted)
    assert new == HBA.replace("chat_app ", "chat_app2").replace("chat_app@", "chat_app2@")
    assert hba.render(new, wanted) == new
    both = hba.render(hba.render(HBA, hba.HbaWanted("chat_prod", "chat_app2")) , wanted)
    assert both.count("BEGIN") == 1 and "chat_app@" not in both


@pytest.mark.parametrize(("value", "message"), [
    ("chat_app2", "db_user_rename_from is 'chat_app2', the same as db_user"),
    ("bad name", "db_user_rename_from"),
])
def test_rename_from_variable_checked(value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        HostConfig.from_vars({"db_user": "chat_app2", "db_user_rename_from": value})
    assert HostConfig.from_vars({"db_user_rename_from": "old"}).db_user_rename_from == "old"
