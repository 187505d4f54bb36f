"""The server configuration steps' run(): ConfigureSettings (our drop-in, the include line
where postgresql.conf needs one, reload or restart, the certificate for remote access) and
ConfigureHba (pg_hba.conf's managed block, no trust).

The state before says which settings are live (pg_settings rows) and what the files hold;
the states after say what the server shows after the reload / restart. Asserted: the files
written (path, content, mode, owner), the SQL sent to psql, the control commands, the
status, reason and diff.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from installer.desired import pgconf
from installer.desired.config import HostConfig
from installer.desired.settings import describe, tuning_inputs
from installer.host.state import HostState
from installer.steps import server
from installer.steps.base import StepFailed
from installer.steps.server import FILE_ERRORS_SQL, ConfigureHba, ConfigureSettings
from tests.unit.stepkit import WRITE_FILE, Harness, err, harness, out, said, service, state

#: work_mem and shared_buffers pinned, so the tests do not follow the tuning formulas
CONFIG = HostConfig(migrations_source=None, pg_settings={"work_mem": "8MB",
                                                        "shared_buffers": "1GB"})
REMOTE = HostConfig(migrations_source=None, pg_listen="*", pg_allowed_cidrs=("10.0.0.0/24",),
                    pg_settings={"work_mem": "8MB", "shared_buffers": "1GB"})

#: settings only a restart changes (pg_settings.context = postmaster)
POSTMASTER = {"listen_addresses", "max_connections", "shared_buffers", "wal_buffers",
              "huge_pages"}

DEBIAN_DROPIN = "/etc/postgresql/15/main/conf.d/50-chatalot.conf"
FEDORA_DROPIN = "/var/lib/pgsql/data/conf.d/50-chatalot.conf"
FEDORA_CONF = "/var/lib/pgsql/data/postgresql.conf"
DATA_DIR = {"debian12": "/var/lib/postgresql/15/main", "fedora40": "/var/lib/pgsql/data"}
PSQL = {"debian12": "/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 -p 5432 "
                    "-d postgres -At",
        "fedora40": "/usr/bin/psql -X -q -v ON_ERROR_STOP=1 -p 5432 -d postgres -At"}
RELOAD = "SELECT pg_reload_conf();"

STOCK_CONF = "# stock postgresql.conf\nmax_connections = 100\n"
INCLUDED_CONF = pgconf.with_conf_d_include(STOCK_CONF)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """ConfigureSettings pauses after a reload: recorded, never slept."""
    slept: list[float] = []
    monkeypatch.setattr(server, "time", SimpleNamespace(sleep=slept.append))
    return slept


# --- building the server's view --------------------------------------------------------------

def rendered(h: Harness) -> str:
    """The drop-in the step renders for this host (what a host in order holds)."""
    c = h.ctx
    return pgconf.render(c.wanted_settings, host=c.name,
                         inputs=describe(tuning_inputs(c.config, c.facts, c.major)))


def live(h: Harness, values: dict[str, str] | None = None,
         pending: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """pg_settings rows for the wanted settings, in force unless `values` says otherwise."""
    values = values or {}
    return {n: {"value": values.get(n, v), "unit": None,
                "context": "postmaster" if n in POSTMASTER else "sighup",
                "pending_restart": n in pending}
            for n, v in h.ctx.wanted_settings.items()}


def up(h: Harness, values: dict[str, str] | None = None, *, pending: tuple[str, ...] = (),
       dropin: str | None = None, main_conf: str | None = None,
       distro: str = "debian12") -> HostState:
    return state(service(), dropin=dropin, main_conf=main_conf,
                 sql={"data_directory": DATA_DIR[distro],
                      "settings": live(h, values, pending)})


def settings_harness(distro: str = "debian12", *, check: bool = False, diff: bool = False,
                     config: HostConfig = CONFIG, values: dict[str, str] | None = None,
                     dropin: str | bool | None = True, main_conf: str | None = INCLUDED_CONF,
                     after: int = 0) -> Harness:
    """A running server; `dropin=True`: it holds our rendered drop-in; `values`: live values
    that differ from the wanted ones; `after`: reads after the change (all in force)."""
    h = harness(distro, check=check, diff=diff, config=config)
    h.host.on(WRITE_FILE).on("psql", out(""), stdin="pg_file_settings").on("psql", stdin=RELOAD)
    text = rendered(h) if dropin is True else (dropin or None)
    h.ctx.set_state(up(h, values, dropin=text, main_conf=main_conf, distro=distro))
    h.probes.states += [up(h, dropin=rendered(h), main_conf=INCLUDED_CONF, distro=distro)
                        for _ in range(after)]
    return h


# --- ConfigureSettings: in force, nothing to do ----------------------------------------------

@pytest.mark.parametrize("distro", ["debian12", "fedora40"])
@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_settings_in_force_run_nothing(distro: str, check: bool) -> None:
    h = settings_harness(distro, check=check)
    n = len(h.ctx.wanted_settings)
    assert said(h.run(ConfigureSettings())) == ("ok", f"{n} settings in force")
    assert h.host.calls == [] and h.probes.count == 0


# --- ConfigureSettings: changes --------------------------------------------------------------

def test_settings_written_checked_and_reloaded(sleeps: list[float]) -> None:
    h = settings_harness(values={"work_mem": "4MB"}, dropin=None, after=2)
    result = h.run(ConfigureSettings())
    assert said(result) == ("changed", "set work_mem; PostgreSQL reloaded")
    assert result.diff == "work_mem: 4MB -> 8MB"
    [dropin] = h.host.written().items()
    assert dropin[0] == DEBIAN_DROPIN
    assert (dropin[1].mode, dropin[1].owner, dropin[1].backup, dropin[1].become) == (
        "0644", "postgres:postgres", True, "root")
    assert dropin[1].content == rendered(h)
    assert "\nwork_mem = 8MB\n" in dropin[1].content
    assert "\nlisten_addresses = localhost\n" in dropin[1].content
    # the file is checked by the server before the reload; both as postgres, on stdin
    assert h.host.sql() == [FILE_ERRORS_SQL, RELOAD]
    assert [c.command for c in h.host.calls[1:]] == [PSQL["debian12"]] * 2
    assert sleeps == [0.2]
    assert h.probes.count == 2  # for pending_restart, then to see the values in force


def test_a_postmaster_setting_restarts_instead_of_reloading() -> None:
    h = settings_harness(values={"shared_buffers": "128MB"}, dropin=None, after=2)
    h.host.on("systemctl restart postgresql@15-main")
    result = h.run(ConfigureSettings())
    assert said(result) == ("changed", "set shared_buffers; PostgreSQL restarted")
    assert result.diff == "shared_buffers: 128MB -> 1GB"
    assert h.host.sql() == [FILE_ERRORS_SQL]  # no reload
    restart = h.host.calls[-1]
    assert (restart.become, restart.command, restart.timeout) == (
        "root", "systemctl restart postgresql@15-main", 300)
    assert h.probes.count == 2  # running after the restart, then in force


def test_a_reload_that_leaves_a_restart_pending_restarts(sleeps: list[float]) -> None:
    h = settings_harness(values={"work_mem": "4MB"}, after=0, dropin=None)
    h.probes.states += [up(h, pending=("huge_pages",)), up(h), up(h)]
    h.host.on("systemctl restart postgresql@15-main")
    assert h.run(ConfigureSettings()).reason == "set work_mem; PostgreSQL restarted"
    assert h.host.sql() == [FILE_ERRORS_SQL, RELOAD]
    assert h.host.calls[-1].command == "systemctl restart postgresql@15-main"
    assert h.probes.count == 3


def test_only_the_file_differs_with_its_diff() -> None:
    old = "# old drop-in\nwork_mem = 8MB\n"
    h = settings_harness(diff=True, dropin=old, after=2)
    result = h.run(ConfigureSettings())
    assert said(result) == ("changed", "set file only; PostgreSQL reloaded")
    assert result.diff is not None
    assert result.diff.startswith(f"--- {DEBIAN_DROPIN} (before)\n+++ {DEBIAN_DROPIN} (after)\n")
    assert "-# old drop-in\n" in result.diff and "+shared_buffers = 1GB\n" in result.diff
    assert list(h.host.written()) == [DEBIAN_DROPIN]


def test_the_include_line_is_added_where_postgresql_conf_lacks_it() -> None:
    """Fedora/Arch: conf.d/ made for postgres, the drop-in, then postgresql.conf with our
    include line at its end (the rest untouched); each checked before the reload."""
    h = settings_harness("fedora40", dropin=None, main_conf=STOCK_CONF, after=2)
    h.host.on("install -d -o postgres")
    assert said(h.run(ConfigureSettings())) == (
        "changed", f"set file only; PostgreSQL reloaded; {FEDORA_CONF} now includes conf.d/")
    assert h.host.calls[0].command == (
        "install -d -o postgres -g postgres -m 0700 /var/lib/pgsql/data/conf.d")
    assert h.host.calls[0].become == "root"
    files = h.host.written()
    assert list(files) == [FEDORA_DROPIN, FEDORA_CONF]
    assert files[FEDORA_CONF].content == (
        "# stock postgresql.conf\nmax_connections = 100\n"
        "# Added by chatalot-db: conf.d/ is read last, so its drop-ins win.\n"
        "include_dir = 'conf.d'\n")
    assert (files[FEDORA_CONF].mode, files[FEDORA_CONF].owner) == ("0600", "postgres:postgres")
    assert h.host.sql() == [FILE_ERRORS_SQL, RELOAD]
    assert h.host.calls[-1].command == PSQL["fedora40"]


# --- ConfigureSettings: check mode -----------------------------------------------------------

@pytest.mark.parametrize(("case", "reason", "diff"), [
    ("a value differs", "would set work_mem", "work_mem: 4MB -> 8MB"),
    ("the file differs", f"would set {DEBIAN_DROPIN} (values already live)", None),
    ("not running", f"would write {DEBIAN_DROPIN} (N settings)", None),
    ("fedora, no include", f"would set {FEDORA_DROPIN} (values already live); {FEDORA_CONF} "
                           "to include conf.d/", None),
    ("fedora, not initialised", f"would write {FEDORA_DROPIN} (N settings), and include "
                                f"conf.d/ from {FEDORA_CONF}", None),
    ("major unknown", f"would write {FEDORA_DROPIN} once PostgreSQL is installed (its major "
                      "version decides the tuning)", None),
])
def test_settings_in_check_mode_say_what_would_change_and_run_nothing(
        case: str, reason: str, diff: str | None) -> None:
    if case == "a value differs":
        h = settings_harness(check=True, values={"work_mem": "4MB"})
    elif case == "the file differs":
        h = settings_harness(check=True, dropin="# old\n")
    elif case == "not running":
        h = settings_harness(check=True)
        h.ctx.set_state(state(service(active=False), dropin=None, sql=None))
    elif case == "fedora, no include":
        h = settings_harness("fedora40", check=True, main_conf=STOCK_CONF)
    elif case == "fedora, not initialised":
        h = settings_harness("fedora40", check=True)
        h.ctx.set_state(state(service(data_dir="missing"), sql=None))
    else:
        h = harness("fedora40", state(service("postgresql-server"), sql=None), check=True,
                    major=None, config=CONFIG)
    result = h.run(ConfigureSettings())
    n = str(len(h.ctx.wanted_settings))
    assert said(result) == ("changed", reason.replace("N settings", f"{n} settings"))
    assert result.diff == diff
    assert h.host.calls == [] and h.probes.count == 0


def test_settings_check_mode_diff_shows_values_and_file() -> None:
    h = settings_harness(check=True, diff=True, values={"work_mem": "4MB"}, dropin=None)
    result = h.run(ConfigureSettings())
    assert result.diff is not None
    assert result.diff.startswith(f"work_mem: 4MB -> 8MB\n--- /dev/null\n+++ {DEBIAN_DROPIN} "
                                  "(after)\n")
    assert h.host.calls == []


# --- ConfigureSettings: failures -------------------------------------------------------------

def test_an_unknown_setting_changes_nothing() -> None:
    h = settings_harness(values={"work_mem": "4MB"})
    assert h.ctx.state.sql is not None
    del h.ctx.state.sql["settings"]["jit"]
    with pytest.raises(StepFailed, match=r"^unknown PostgreSQL setting\(s\): jit; nothing was "
                                         r"changed$"):
        h.run(ConfigureSettings())
    assert h.host.calls == []


def test_settings_the_server_rejects_are_restored_before_any_reload() -> None:
    old = "# the previous drop-in\n"
    h = settings_harness(values={"work_mem": "4MB"}, dropin=old)
    h.host.on("cp -p ")
    h.host.on("psql", out(f"work_mem ({DEBIAN_DROPIN}:20): invalid value for parameter\n"),
              stdin="pg_file_settings")
    with pytest.raises(StepFailed, match="^" + re.escape(
            "PostgreSQL rejects the new settings, previous configuration restored, server left "
            f"as it was: work_mem ({DEBIAN_DROPIN}:20): invalid value for parameter") + "$"):
        h.run(ConfigureSettings())
    assert h.host.ran()[-1] == (
        "root", f"cp -p {DEBIAN_DROPIN}.chatalot-db.bak {DEBIAN_DROPIN}")
    assert h.host.sql() == [FILE_ERRORS_SQL]  # never reloaded


def test_a_new_drop_in_the_server_rejects_is_removed() -> None:
    h = settings_harness(values={"work_mem": "4MB"}, dropin=None)
    h.host.on("rm -f ").on("psql", out("work_mem (...): invalid value\n"), stdin="pg_file_settings")
    with pytest.raises(StepFailed, match="PostgreSQL rejects the new settings"):
        h.run(ConfigureSettings())
    assert h.host.ran()[-1] == ("root", f"rm -f {DEBIAN_DROPIN}")


@pytest.mark.parametrize(("restart", "running_after", "back"), [
    (err(1, "Job for postgresql@15-main.service failed because the control process exited "
            "with error code."), True, "running again on the previous configuration"),
    (out(""), False, "NOT running: check the server log"),
], ids=["restart fails", "server down after restart"])
def test_a_failed_restart_restores_the_file_and_starts_the_server_again(
        restart: Any, running_after: bool, back: str) -> None:
    h = settings_harness(values={"shared_buffers": "128MB"}, dropin="# previous\n")
    if restart.ok:  # the restart "worked" but the server does not answer
        h.probes.states.append(state(service(active=False), sql=None))
    h.probes.states.append(up(h) if running_after else state(service(active=False), sql=None))
    h.host.on("systemctl restart", restart).on("cp -p ").on("systemctl start")
    detail = "Job for postgresql@15-main.service failed because the control process exited " \
             "with error code." if not restart.ok else ""
    with pytest.raises(StepFailed, match="^" + re.escape(
            f"PostgreSQL did not restart with shared_buffers = 1GB ({detail}); previous "
            f"configuration restored, server {back}") + "$"):
        h.run(ConfigureSettings())
    assert h.host.ran()[-3:] == [
        ("root", "systemctl restart postgresql@15-main"),
        ("root", f"cp -p {DEBIAN_DROPIN}.chatalot-db.bak {DEBIAN_DROPIN}"),
        ("root", "systemctl start postgresql@15-main"),
    ]


def test_settings_written_but_overridden_fail() -> None:
    h = settings_harness(values={"work_mem": "4MB"})
    # ALTER SYSTEM in postgresql.auto.conf wins: after the reload work_mem is still 4MB
    h.probes.states += [up(h, {"work_mem": "4MB"}), up(h, {"work_mem": "4MB"})]
    with pytest.raises(StepFailed, match="^" + re.escape(
            "settings written but not in force (overridden later, e.g. by ALTER SYSTEM in "
            "postgresql.auto.conf?): work_mem is '4MB', wanted '8MB'") + "$"):
        h.run(ConfigureSettings())


def test_settings_without_postgresql_conf_fail_before_writing() -> None:
    h = settings_harness("fedora40", dropin=None, main_conf=None)
    with pytest.raises(StepFailed, match=f"^{FEDORA_CONF} not found: is the cluster "
                                         "initialised\\?$"):
        h.run(ConfigureSettings())
    assert h.host.calls == []


# --- ConfigureSettings: the certificate for remote access ------------------------------------

CERT = "/var/lib/postgresql/15/main/chatalot-server.crt"


@pytest.mark.parametrize(("printed", "expected"), [
    ("generated\n", ("changed", f"generated {CERT}")),
    ("present\n", ("ok", "N settings in force")),
])
def test_remote_access_generates_the_certificate_once(
        printed: str, expected: tuple[str, str]) -> None:
    h = settings_harness(config=REMOTE)
    assert h.ctx.wanted_settings["ssl"] == "on"
    h.host.on("chatalot-cert", out(printed))
    result = said(h.run(ConfigureSettings()))
    assert result == (expected[0], expected[1].replace(
        "N settings", f"{len(h.ctx.wanted_settings)} settings"))
    [call] = h.host.calls
    assert call.become == "root"
    assert call.command.startswith("sh -c 'set -e\n")
    assert call.command.endswith("' chatalot-cert /var/lib/postgresql/15/main h")
    assert "openssl req -x509" in call.command


@pytest.mark.parametrize(("test_s", "expected"), [
    (err(1, ""), ("changed", f"would generate {CERT} (self-signed, CN=h)")),
    (out(""), ("ok", "N settings in force")),
], ids=["missing", "present"])
def test_remote_access_in_check_mode_only_looks_for_the_certificate(
        test_s: Any, expected: tuple[str, str]) -> None:
    h = settings_harness(config=REMOTE, check=True)
    h.host.on("test -s", test_s)
    result = said(h.run(ConfigureSettings()))
    assert result == (expected[0], expected[1].replace(
        "N settings", f"{len(h.ctx.wanted_settings)} settings"))
    assert [(c.become, c.command, c.timeout) for c in h.host.calls] == [
        ("root", f"test -s {CERT}", 60)]


# --- ConfigureHba ----------------------------------------------------------------------------

HBA = "/etc/postgresql/15/main/pg_hba.conf"
STOCK_HBA = ("# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
             "local   all       postgres          peer\n"
             "host    all       all   127.0.0.1/32  trust\n")
BLOCK = ("# BEGIN chatalot-db managed block for chatalot@chatalot: rewritten on every run\n"
         "host    chatalot        chatalot        127.0.0.1/32            scram-sha-256\n"
         "host    chatalot        chatalot        ::1/128                 scram-sha-256\n"
         "{remote}"
         "# END chatalot-db managed block for chatalot@chatalot\n")
#: the stock file with our block first and its trust rule made scram-sha-256
OURS = (BLOCK.format(remote="") + "\n"
        "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
        "local   all       postgres          peer\n"
        "host    all    all    127.0.0.1/32    scram-sha-256\n")
HBA_ERRORS = ("SELECT line_number || ': ' || error FROM pg_hba_file_rules WHERE error IS NOT "
              "NULL;")


def hba_harness(hba: str | None, *, check: bool = False, diff: bool = False,
                running: bool = True, config: HostConfig = CONFIG) -> Harness:
    h = harness("debian12", state(hba=hba, sql={} if running else None), check=check,
                diff=diff, config=config)
    h.host.on(WRITE_FILE).on("psql", out(""), stdin="pg_hba_file_rules")
    h.host.on("psql", stdin=RELOAD)
    return h


def test_hba_rewritten_checked_and_reloaded() -> None:
    h = hba_harness(STOCK_HBA)
    result = h.run(ConfigureHba())
    assert said(result) == ("changed", f"updated {HBA} (previous kept as .chatalot-db.bak)")
    assert result.diff is None
    written = h.host.written()
    assert list(written) == [HBA]
    assert written[HBA].content == OURS
    assert (written[HBA].mode, written[HBA].owner, written[HBA].backup) == (
        "0640", "postgres:postgres", True)
    assert h.host.sql() == [HBA_ERRORS, RELOAD]
    assert h.invalidated


def test_hba_of_a_stopped_server_is_only_written() -> None:
    h = hba_harness(STOCK_HBA, running=False)
    assert h.run(ConfigureHba()).status == "changed"
    assert len(h.host.calls) == 1 and list(h.host.written()) == [HBA]


@pytest.mark.parametrize(("hba", "config", "check", "expected"), [
    (OURS, CONFIG, False, ("ok", "app role by scram-sha-256 on loopback; no trust rules")),
    (BLOCK.format(remote="hostssl chatalot        chatalot        10.0.0.0/24             "
                         "scram-sha-256\n"), REMOTE, False,
     ("ok", "app role by scram-sha-256 on loopback, hostssl from 10.0.0.0/24; no trust rules")),
    (STOCK_HBA, CONFIG, True, ("changed", f"would update {HBA}")),
    (None, CONFIG, True, ("changed", f"would add the chatalot rules to {HBA}")),
], ids=["in place", "remote in place", "check", "check, no file yet"])
def test_hba_in_place_or_in_check_mode_runs_nothing(
        hba: str | None, config: HostConfig, check: bool, expected: tuple[str, str]) -> None:
    h = hba_harness(hba, check=check, config=config)
    assert said(h.run(ConfigureHba())) == expected
    assert h.host.calls == [] and not h.invalidated


def test_hba_check_mode_diff() -> None:
    h = hba_harness(STOCK_HBA, check=True, diff=True)
    result = h.run(ConfigureHba())
    assert result.diff is not None
    assert result.diff.startswith(f"--- {HBA} (before)\n+++ {HBA} (after)\n")
    assert "+# BEGIN chatalot-db managed block for chatalot@chatalot" in result.diff
    assert "-host    all       all   127.0.0.1/32  trust\n" in result.diff
    assert h.host.calls == []


def test_hba_missing_fails() -> None:
    h = hba_harness(None)
    with pytest.raises(StepFailed, match=f"^{HBA} not found: is the cluster created\\?$"):
        h.run(ConfigureHba())
    assert h.host.calls == []


def test_hba_the_server_rejects_is_restored_and_not_reloaded() -> None:
    h = hba_harness(STOCK_HBA)
    h.host.on("cp -p ").on("psql", out('3: invalid authentication method "scram"\n'),
              stdin="pg_hba_file_rules")
    with pytest.raises(StepFailed, match="^" + re.escape(
            f'PostgreSQL rejects the new {HBA} (restored): 3: invalid authentication method '
            '"scram"') + "$"):
        h.run(ConfigureHba())
    assert h.host.ran()[-1] == ("root", f"cp -p {HBA}.chatalot-db.bak {HBA}")
    assert h.host.sql() == [HBA_ERRORS]


#: remote access asked for, pg_listen left at its default (localhost)
LOOPBACK_REMOTE = HostConfig(migrations_source=None, pg_allowed_cidrs=("10.0.0.0/24",),
                             pg_settings={"work_mem": "8MB", "shared_buffers": "1GB"})
LISTEN_WARNING = ("pg_allowed_cidrs set but pg_listen is localhost: the server listens on "
                  "loopback only, remote clients cannot reach it; set pg_listen (e.g. '*' or "
                  "an address)")
HOSTSSL = "hostssl chatalot        chatalot        10.0.0.0/24             scram-sha-256\n"


@pytest.mark.parametrize(("hba", "check", "expected"), [
    (STOCK_HBA, False, ("changed", f"updated {HBA} (previous kept as .chatalot-db.bak)")),
    (BLOCK.format(remote=HOSTSSL), False,
     ("ok", "app role by scram-sha-256 on loopback, hostssl from 10.0.0.0/24; no trust rules")),
    (STOCK_HBA, True, ("changed", f"would update {HBA}")),
    (None, True, ("changed", f"would add the chatalot rules to {HBA}")),
], ids=["written", "in place", "check", "check, no file yet"])
def test_hostssl_rules_for_a_server_on_loopback_are_written_and_said(
        hba: str | None, check: bool, expected: tuple[str, str]) -> None:
    """pg_allowed_cidrs with pg_listen at localhost: the rules are written (not refused), the
    reason says no remote client reaches the server, and so does the note for the end of
    the host's run."""
    h = hba_harness(hba, check=check, config=LOOPBACK_REMOTE)
    result = h.run(ConfigureHba())
    assert said(result) == (expected[0], f"{expected[1]}; {LISTEN_WARNING}")
    assert result.note == LISTEN_WARNING
    if hba == STOCK_HBA and not check:
        assert HOSTSSL in h.host.written()[HBA].content


def test_hostssl_rules_for_a_listening_server_say_nothing_more() -> None:
    h = hba_harness(STOCK_HBA, config=REMOTE)
    result = h.run(ConfigureHba())
    assert said(result) == ("changed", f"updated {HBA} (previous kept as .chatalot-db.bak)")
    assert result.note is None
    assert HOSTSSL in h.host.written()[HBA].content


def test_settings_on_a_silent_server_fail_a_real_run() -> None:
    """Outside check mode the server must answer (it was started): the step fails, nothing
    written."""
    h = harness("debian12", state(service(), dropin=None, sql=None, sql_error="boom"))
    with pytest.raises(StepFailed, match="PostgreSQL is not answering: boom"):
        h.run(ConfigureSettings())
    assert h.host.calls == []


# --- ConfigureSettings: ALTER SYSTEM over a managed setting ---------------------------------

AUTO = "/var/lib/postgresql/15/main/postgresql.auto.conf"


def altered(h: Harness, names: dict[str, str], *, dropin: str | None = None) -> HostState:
    """The server with `names` set by ALTER SYSTEM (postgresql.auto.conf, line 3 on)."""
    st = up(h, names, dropin=dropin)
    assert st.sql is not None
    for line, n in enumerate(names, 3):
        st.sql["settings"][n].update(sourcefile=AUTO, sourceline=line)
    return st


WAY_OUT = ("work_mem is 64MB by ALTER SYSTEM (set in " + AUTO + " line 3), over the drop-in's "
           "8MB. Either run ALTER SYSTEM RESET work_mem; (as postgres) and rerun, or keep the "
           "value: pg_settings={'work_mem': '64MB'}")


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_alter_system_over_a_tuning_setting_is_named_and_the_run_goes_on(check: bool) -> None:
    """Nothing else to change: the step fails (keep going) naming file, line and the two
    ways out; in check mode the same, nothing run."""
    h = settings_harness(check=check)
    h.ctx.set_state(altered(h, {"work_mem": "64MB"}, dropin=rendered(h)))
    result = h.run(ConfigureSettings())
    assert said(result) == ("failed", WAY_OUT)
    assert result.keep_going
    assert h.host.calls == []


def test_alter_system_conflict_still_applies_the_other_settings() -> None:
    h = settings_harness(values={"shared_buffers": "128MB"}, dropin=None, after=2)
    h.host.on("systemctl restart postgresql@15-main")
    st = altered(h, {"work_mem": "64MB"})
    assert st.sql is not None
    st.sql["settings"]["shared_buffers"]["value"] = "128MB"
    h.ctx.set_state(st)
    after = altered(h, {"work_mem": "64MB"}, dropin=rendered(h))
    h.probes.states[:] = [after, after]
    result = h.run(ConfigureSettings())
    assert result.status == "failed" and result.keep_going
    assert result.reason == f"set shared_buffers; PostgreSQL restarted; but {WAY_OUT}"
    assert DEBIAN_DROPIN in h.host.written()


def test_check_mode_predicts_the_conflict_with_the_other_changes() -> None:
    h = settings_harness(check=True, values={"shared_buffers": "128MB"})
    st = altered(h, {"work_mem": "64MB"}, dropin=rendered(h))
    assert st.sql is not None
    st.sql["settings"]["shared_buffers"]["value"] = "128MB"
    h.ctx.set_state(st)
    result = h.run(ConfigureSettings())
    assert said(result) == ("failed", f"would set shared_buffers; but {WAY_OUT}")
    assert h.host.calls == []


def test_alter_system_over_an_access_setting_stops_before_any_change() -> None:
    h = settings_harness()
    h.ctx.set_state(altered(h, {"listen_addresses": "*"}, dropin=rendered(h)))
    with pytest.raises(StepFailed, match=r"^listen_addresses is \* by ALTER SYSTEM \(set in "
                                         + re.escape(AUTO) + r" line 3\)"):
        h.run(ConfigureSettings())
    assert h.host.calls == []


def test_a_setting_taken_out_of_the_dropin_is_named_and_its_pending_restart_done(
        sleeps: list[float]) -> None:
    """backup=pgbackrest -> pg_dump: archive_mode and archive_command leave our drop-in;
    after the reload archive_mode (postmaster) still waits for a restart, which it gets."""
    h = settings_harness(after=0, dropin=True)
    old = rendered(h) + ("archive_mode = on\n"
                         "archive_command = 'pgbackrest --stanza=chatalot archive-push %p'\n")
    h.ctx.set_state(up(h, dropin=old))
    waiting = up(h)
    assert waiting.sql is not None
    waiting.sql["settings"]["archive_mode"] = {  # read: pending_restart rows are read too
        "value": "on", "unit": None, "context": "postmaster", "pending_restart": True}
    h.probes.states += [waiting, up(h), up(h)]
    h.host.on("systemctl restart postgresql@15-main")
    assert h.run(ConfigureSettings()).reason == (
        "set archive_mode (back to its default), archive_command (back to its default); "
        "PostgreSQL restarted")
    assert h.host.calls[-1].command == "systemctl restart postgresql@15-main"
