"""Table tests for the small pure modules: quoting, SCRAM, env file, settings, config."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

import pytest

from installer.desired import envfile, pgconf, scram
from installer.desired.config import HostConfig
from installer.errors import TuningError, UsageError
from installer.fleet.display import HostReport, StepRecord, exit_code
from installer.host.facts import facts_from_sections
from installer.host.queries import parse_output
from installer.host.sections import SectionScript
from installer.sqltext import quote_ident, quote_literal, validate_identifier
from installer.transport.ssh import _port, ssh_options


@pytest.mark.parametrize(
    ("value", "expected"),
    [("chatalot", '"chatalot"'), ('we"ird', '"we""ird"'), ("Mixed", '"Mixed"')],
)
def test_quote_ident(value: str, expected: str) -> None:
    assert quote_ident(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("abc", "'abc'"), ("it's", "'it''s'"), ("a\\b", "E'a\\\\b'"), ("", "''"),
     ("$$x$$", "'$$x$$'"),
     # as sqlx.py's migration descriptions use it: control characters stay raw (psql keeps
     # a quoted literal whole across lines), psql variables are not read inside quotes
     ("two\nlines\r\tx", "'two\nlines\r\tx'"), ("bell\x07", "'bell\x07'"),
     ("é ünïcode", "'é ünïcode'"), (":USER", "':USER'"), ("it's a\\b", "E'it''s a\\\\b'")],
)
def test_quote_literal(value: str, expected: str) -> None:
    assert quote_literal(value) == expected


@pytest.mark.parametrize("quote", [quote_literal, quote_ident])
def test_quoting_refuses_nul(quote: Callable[[str], str]) -> None:
    with pytest.raises(ValueError, match="NUL"):
        quote("a\x00b")


@pytest.mark.parametrize("bad", ["", "1abc", "Chatalot", "a-b", "a b", "x;drop", "a" * 64, 5,
                                 'q"uote', "é"])
def test_identifier_refused(bad: object) -> None:
    with pytest.raises(UsageError, match="not a plain identifier"):
        validate_identifier(bad, "db_name")


@pytest.mark.parametrize("good", ["chatalot", "_x", "app_db2", "a" * 63])
def test_identifier_accepted(good: str) -> None:
    assert validate_identifier(good, "db_user") == good


def _independent_scram(password: bytes, salt: bytes, it: int) -> tuple[bytes, bytes]:
    # RFC 5802 written out again, independently of installer.desired.scram
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, it)
    ck = hmac.new(salted, b"Client Key", "sha256").digest()
    return hashlib.sha256(ck).digest(), hmac.new(salted, b"Server Key", "sha256").digest()


@pytest.mark.parametrize("password", ["pencil", "pä ss'\"$\\word", "x" * 200])
def test_scram_verifier_format_and_match(password: str) -> None:
    salt = b"0123456789abcdef"
    v = scram.make_verifier(password, salt=salt)
    text = str(v)
    assert text.startswith("SCRAM-SHA-256$4096:" + base64.b64encode(salt).decode() + "$")
    stored, server = _independent_scram(scram.saslprep(password), salt, 4096)
    assert (v.stored_key, v.server_key) == (stored, server)
    assert scram.matches(text, password)
    assert not scram.matches(text, password + "x")
    assert scram.parse_verifier(text) == v


@pytest.mark.parametrize("stored", [None, "", "md5abc", "SCRAM-SHA-256$bad", "plain"])
def test_scram_match_rejects_non_verifiers(stored: str | None) -> None:
    assert not scram.matches(stored, "pencil")


@pytest.mark.parametrize(
    ("password", "prepped"),
    [("pencil", b"pencil"), ("I\u00adX", b"IX"), ("\u2168", b"IX"), ("a\u00a0b", b"a b"),
     ("a\x07b", b"a\x07b")],  # RFC 4013 examples; a control char makes PostgreSQL use raw bytes
)
def test_saslprep(password: str, prepped: bytes) -> None:
    assert scram.saslprep(password) == prepped


@pytest.mark.parametrize(
    ("user", "password", "url"),
    [("chatalot", "abc", "postgres://chatalot:abc@localhost:5432/chatalot"),
     ("chatalot", "p@ss:w/rd?#%", "postgres://chatalot:p%40ss%3Aw%2Frd%3F%23%25@localhost:5432/chatalot"),
     ("chatalot", "é ü", "postgres://chatalot:%C3%A9%20%C3%BC@localhost:5432/chatalot")],
)
def test_env_file_round_trip(user: str, password: str, url: str) -> None:
    assert envfile.database_url(user, password, "localhost", 5432, "chatalot") == url
    text = envfile.render(url)
    assert envfile.read_url(text) == url
    assert envfile.password_from_url(envfile.read_url(text), user) == password
    assert envfile.password_from_url(url, "someone_else") is None


@pytest.mark.parametrize("text", [None, "", "# nothing\n", "OTHER=1\n"])
def test_env_file_without_url(text: str | None) -> None:
    assert envfile.read_url(text) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("256MB", "256MB"), ("0.9", "0.9"), ("100", "100"), ("localhost", "localhost"),
     ("scram-sha-256", "'scram-sha-256'"), ("127.0.0.1,::1", "'127.0.0.1,::1'"),
     ("*", "'*'"), (True, "on"), (False, "off"), ("it's", "'it''s'"),
     ("a\\b", "'a\\\\b'")],
)
def test_pg_value(value: object, expected: str) -> None:
    assert pgconf.pg_value(value) == expected


@pytest.mark.parametrize(
    ("wanted", "live", "same"),
    [("256MB", "256MB", True), ("1GB", "1024MB", True), ("16MB", "16384kB", True),
     ("4MB", "8MB", False), ("0.9", "0.9", True), ("on", "on", True), ("true", "on", True),
     ("localhost", "localhost", True), ("127.0.0.1,::1", "::1, 127.0.0.1", True),
     ("*", "localhost", False), ("scram-sha-256", "md5", False)],
)
def test_same_value(wanted: str, live: str, same: bool) -> None:
    assert pgconf.same_value(wanted, live) is same


@pytest.mark.parametrize(
    ("wanted", "live", "unit", "same"),
    [("3932kB", "3928kB", "8kB", True), ("3932kB", "3944kB", "8kB", False),
     ("1GB", "1GB", "MB", True), ("1025MB", "1GB", "MB", False), ("5041kB", "5041kB", "kB", True)],
)
def test_same_value_within_the_settings_unit(wanted: str, live: str, unit: str, same: bool) -> None:
    assert pgconf.same_value(wanted, live, unit) is same


def test_pg_value_refuses_line_breaks() -> None:
    with pytest.raises(TuningError, match="line break"):
        pgconf.pg_value("x\ny = 1")


def test_render_template_has_every_setting_once() -> None:
    text = pgconf.render({"listen_addresses": "localhost", "password_encryption": "scram-sha-256",
                          "work_mem": "8MB"}, host="db01")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines == ["listen_addresses = localhost", "password_encryption = 'scram-sha-256'",
                     "work_mem = 8MB"]


@pytest.mark.parametrize(
    ("hostvars", "message"),
    [({"db_name": "Robert'); DROP"}, "db_name"), ({"db_user": "a-b"}, "db_user"),
     ({"pg_version": "x"}, "pg_version must be a whole number"),
     ({"pg_port": 70000}, "pg_port must be between"),
     ({"pg_listen": "0.0.0.0; rm -rf /"}, "pg_listen"),
     ({"pg_settings": "work_mem=8MB"}, "pg_settings must be a dict"),
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


def test_sections_round_trip() -> None:
    s = SectionScript()
    s.section("a", "echo 1")
    s.section("b", "echo 2")
    out = f"{s.marker} a\n1\n{s.marker} b\nline\n@@chatalot-other b\n"
    assert s.parse(out) == {"a": "1\n", "b": "line\n@@chatalot-other b\n"}


def test_facts_from_sections() -> None:
    f = facts_from_sections({
        "os-release": 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n'
                      'PRETTY_NAME="Ubuntu 24.04 LTS"\nVERSION_CODENAME=noble\n',
        "meminfo": "MemTotal:        4030464 kB\n", "nproc": "4\n", "pid1": "systemd\n",
        "uid": "0\n",
    })
    assert (f.os_id, f.os_like, f.version_id, f.codename) == ("ubuntu", ("debian",), "24.04",
                                                              "noble")
    assert (f.memory_kb, f.cpus, f.systemd, f.is_root) == (4030464, 4, True, True)


def test_parse_sql_output() -> None:
    merged, ledger, errors = parse_output('{"a": 1}\n{"b": [1, 2]}\n')
    assert (merged, ledger, errors) == ({"a": 1, "b": [1, 2]}, [], [])
    merged, ledger, errors = parse_output("psql: error: connection refused\n")
    assert merged == {} and errors == ["psql: error: connection refused"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [("-o UserKnownHostsFile=/tmp/kh", {"userknownhostsfile": "/tmp/kh"}),
     ("-oStrictHostKeyChecking=no -o Port=2222", {"stricthostkeychecking": "no", "port": "2222"}),
     ("", {}), ("-C -o 'IdentityFile /k'", {"identityfile": "/k"})],
)
def test_ssh_options(args: str, expected: dict[str, str]) -> None:
    assert ssh_options(args) == expected


@pytest.mark.parametrize(
    ("statuses", "unreachable", "code"),
    [(["ok", "changed"], False, 0), (["ok", "failed"], False, 2), ([], True, 4),
     (["skipped"], False, 0)],
)
def test_exit_codes(statuses: list[str], unreachable: bool, code: int) -> None:
    r = HostReport("h", [StepRecord("s", s) for s in statuses], unreachable=unreachable)
    assert exit_code([r]) == code
    assert exit_code([r, HostReport("other", [StepRecord("s", "failed")])]) == 2


def test_recap_counts_like_ansible() -> None:
    r = HostReport("h", [StepRecord("a", "ok"), StepRecord("b", "changed"),
                         StepRecord("c", "skipped")])
    assert r.counts == {"ok": 2, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 1}


# -- hostile values: postgresql.conf escaping, passwords, remote access variables -----------

def _conf_unquote(text: str) -> str:
    """A value as PostgreSQL's config scanner reads it: quoted strings unescaped."""
    if not text.startswith("'"):
        return text
    assert text.endswith("'") and len(text) >= 2, text
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c == "'":
            assert body[i + 1] == "'", f"lone quote in {text!r}"
            out.append("'")
            i += 2
        elif c == "\\":
            out.append(body[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


HOSTILE_VALUES = [
    "%m [%p] q'x ", "it's", "''", "'", "a\\b", "\\'; listen_addresses = '*", "x # not a comment",
    "#", "$(reboot)", "`id`", "a;b", "é€ ü", " lead and trail ", "\\\\", "x\\", "q'\"\\\\$ x",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_setting_values_render_as_one_safe_line(value: str) -> None:
    text = pgconf.render({"listen_addresses": "localhost", "password_encryption": "scram-sha-256",
                          "log_line_prefix": value}, host="db01")
    lines = [ln for ln in text.splitlines() if ln.startswith("log_line_prefix")]
    assert len(lines) == 1
    assert [ln for ln in text.splitlines() if ln.startswith("listen_addresses")] == \
        ["listen_addresses = localhost"]
    rendered = lines[0].removeprefix("log_line_prefix = ")
    assert rendered.startswith("'") and rendered.endswith("'")
    assert _conf_unquote(rendered) == value


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


@pytest.mark.parametrize(("value", "port"), [
    (None, None), ("", None), (22, 22), ("2222", 2222), (" 22 ", 22), (65535, 65535)])
def test_ssh_port_accepted(value: object, port: int | None) -> None:
    assert _port(value) == port


@pytest.mark.parametrize("value", ["twentytwo", "0", "65536", "-1", "22x", "2.5"])
def test_ssh_port_refused_with_a_clear_message(value: str) -> None:
    """A port that is no port fails that host at `connect`, naming the variable (it was an
    internal ValueError)."""
    with pytest.raises(UsageError, match=r"ansible_port must be a port number \(1-65535\)"):
        _port(value)
