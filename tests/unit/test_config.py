"""installer.desired.config: a host's variables checked before it is contacted."""

from __future__ import annotations

import pytest

from installer.desired.config import HostConfig
from installer.errors import UsageError


@pytest.mark.parametrize(
    ("hostvars", "message"),
    [({"db_name": "Robert'); DROP"}, "db_name"), ({"db_user": "a-b"}, "db_user"),
     ({"pg_version": "x"}, "pg_version must be a whole number"),
     ({"pg_port": 70000}, "pg_port must be between"),
     ({"pg_listen": "0.0.0.0; rm -rf /"}, "pg_listen"),
     ({"pg_settings": "work_mem=8MB"}, "pg_settings must be a dict.*'work_mem=8MB'$"),
     ({"pg_settings": "{'work_mem': '8MB'}"},
      r"pg_settings must be a dict .*; in a \[group:vars\] section an INI value is a string, "
      "as Ansible reads it: put pg_settings on the host line$"),
     ({"db_env_file": "relative/path"}, "absolute path"),
     # too few for Chatalot's pool: refused with the variables, before the host's facts
     ({"pg_max_connections": 20}, "pg_max_connections 20 is too low.*at least 53"),
     ({"pg_max_connections": 52}, "pg_max_connections 52 is too low")],
)
def test_config_refuses_bad_variables(hostvars: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        HostConfig.from_vars(hostvars)


def test_config_defaults() -> None:
    c = HostConfig.from_vars({})
    assert (c.db_name, c.db_user, c.pg_port, c.pg_listen, c.pg_version) == \
        ("chatalot", "chatalot", 5432, "localhost", None)


@pytest.mark.parametrize("value", ["x\ny = 1", "x\r", "a\x00b", "8MB\nlisten_addresses = '*'"])
def test_hostile_setting_values_with_line_breaks_are_refused(value: str) -> None:
    with pytest.raises(UsageError, match="line break or NUL"):
        HostConfig.from_vars({"pg_settings": {"log_line_prefix": value}})


@pytest.mark.parametrize("name", ["work_mem = 1; x", "a b", "x\ny", "'q'", "", "1abc"])
def test_hostile_setting_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="not a PostgreSQL setting name"):
        HostConfig.from_vars({"pg_settings": {name: "1"}})


@pytest.mark.parametrize("password", ["q'\"\\\\$ x é€ ;rm -rf /", "  ", "p@ss:w/rd?#%", "123"])
def test_db_password_is_kept_as_given_and_never_shown(password: str) -> None:
    c = HostConfig.from_vars({"db_password": password})
    assert c.db_password == password
    assert password not in repr(c)


@pytest.mark.parametrize("password", ["a\nb", "a\rb", "a\x00b", ["x"], True])
def test_db_password_refused(password: object) -> None:
    with pytest.raises(UsageError, match="db_password"):
        HostConfig.from_vars({"db_password": password})


@pytest.mark.parametrize(
    ("hostvars", "cidrs"),
    [({}, ()),
     ({"pg_allowed_cidrs": "10.0.0.0/24"}, ("10.0.0.0/24",)),
     ({"pg_allowed_cidrs": "10.0.0.0/24, 192.168.1.5 ,10.0.0.0/24"},
      ("10.0.0.0/24", "192.168.1.5/32")),
     ({"pg_allowed_cidrs": ["2001:db8::/64", "10.1.0.0/16"], "pg_listen": "*"},
      ("2001:db8::/64", "10.1.0.0/16")),
     ({"pg_allowed_cidrs": "0.0.0.0/0", "pg_listen": "*"}, ("0.0.0.0/0",)),  # only if written
     ({"pg_listen": "127.0.0.1,::1"}, ()), ({"pg_listen": ""}, ())],
)
def test_allowed_cidrs(hostvars: dict[str, object], cidrs: tuple[str, ...]) -> None:
    c = HostConfig.from_vars(hostvars)
    assert c.pg_allowed_cidrs == cidrs
    assert c.remote is bool(cidrs)


@pytest.mark.parametrize(
    ("hostvars", "message"),
    [({"pg_listen": "*"}, "pg_allowed_cidrs is not set"),
     ({"pg_listen": "0.0.0.0"}, "pg_allowed_cidrs is not set"),
     ({"pg_listen": "localhost,10.0.0.5"}, "pg_allowed_cidrs is not set"),
     ({"pg_allowed_cidrs": "10.0.0.1/24"}, "host bits set"),
     ({"pg_allowed_cidrs": "everyone"}, "not a network"),
     ({"pg_allowed_cidrs": "10.0.0.0/24; rm -rf /"}, "not a network"),
     ({"pg_allowed_cidrs": "10.0.0.0/8", "pg_ssl_cert": "/etc/x.crt"}, "go together"),
     ({"pg_allowed_cidrs": "10.0.0.0/8", "pg_ssl_cert": "x.crt", "pg_ssl_key": "/k"},
      "absolute path")],
)
def test_remote_access_variables_refused(hostvars: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        HostConfig.from_vars(hostvars)


LISTEN_WARNING = ("pg_allowed_cidrs set but pg_listen is {listen}: the server listens on "
                  "{where}, remote clients cannot reach it; set pg_listen (e.g. '*' or an "
                  "address)")


@pytest.mark.parametrize(("hostvars", "warning"), [
    ({"pg_allowed_cidrs": "10.0.0.0/24"},
     LISTEN_WARNING.format(listen="localhost", where="loopback only")),
    ({"pg_allowed_cidrs": "10.0.0.0/24", "pg_listen": "127.0.0.1,::1"},
     LISTEN_WARNING.format(listen="127.0.0.1,::1", where="loopback only")),
    ({"pg_allowed_cidrs": "10.0.0.0/24", "pg_listen": ""},
     LISTEN_WARNING.format(listen="empty", where="Unix sockets only")),
    ({"pg_allowed_cidrs": "10.0.0.0/24", "pg_listen": "*"}, None),
    ({"pg_allowed_cidrs": "10.0.0.0/24", "pg_listen": "localhost,10.0.0.5"}, None),
    ({}, None),
], ids=["default listen", "loopback addresses", "sockets only", "star", "an address",
        "no remote access"])
def test_remote_access_on_loopback_is_accepted_and_said(hostvars: dict[str, object],
                                                        warning: str | None) -> None:
    """pg_allowed_cidrs with pg_listen left on loopback: not refused (such inventories keep
    working), but the warning ConfigureHba gives says what to set."""
    c = HostConfig.from_vars(hostvars)
    assert c.listen_warning == warning


@pytest.mark.parametrize(("value", "ms"), [
    (None, 5000), ("", 5000), ("5s", 5000), ("500ms", 500), ("1min", 60_000), (3, 3000),
    ("12", 12_000), (" 2 s ", 2000), ("none", None), ("NONE", None), ("0", None), (0, None),
])
def test_migration_lock_timeout(value: object, ms: int | None) -> None:
    variables = {} if value is None else {"migration_lock_timeout": value}
    assert HostConfig.from_vars(variables).migration_lock_timeout_ms == ms


@pytest.mark.parametrize("value", ["5h", "-1s", "soon", "0s", "61min", "1.5s", True])
def test_migration_lock_timeout_refused(value: object) -> None:
    with pytest.raises(UsageError, match=r"^migration_lock_timeout must be"):
        HostConfig.from_vars({"migration_lock_timeout": value})
