"""The host steps' run(), facts and probed state in, commands out: GatherFacts,
InstallPackages, InitCluster, EnableService, StartService.

Each test gives the state as probed before the step (and after its change, when it reads
the host again) and asserts the commands the step ran (as root, with what stdin and
timeout), its status and reason; check mode and nothing-to-do run no command at all.
"""

from __future__ import annotations

import re

import pytest

from installer.desired.config import HostConfig
from installer.errors import CommandError, UnsupportedDistroError
from installer.host.distros.base import ServiceState
from installer.host.state import HostState
from installer.steps.base import HostContext, StepFailed
from installer.steps.host import (
    EnableService,
    GatherFacts,
    InitCluster,
    InstallPackages,
    StartService,
)
from tests.unit.stepkit import (
    MAJOR,
    Call,
    FakeHost,
    Probes,
    err,
    fact_sections,
    harness,
    out,
    said,
    sections,
    service,
    state,
)

APT = ("DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get -o DPkg::Lock::Timeout=600 "
       "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold")
DPKG_REPAIR = ("DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a dpkg --force-confdef "
               "--force-confold --configure -a")
FACTS_SCRIPT = "echo '@@chatalot-"


# --- GatherFacts -----------------------------------------------------------------------------

def gather(distro: str, *, config: HostConfig | None = None, systemd: bool = True,
           major_answer: str | None = None, check: bool = False
           ) -> tuple[HostContext, FakeHost, tuple[str, str]]:
    host = FakeHost().on(FACTS_SCRIPT, sections(fact_sections(distro, systemd=systemd)))
    if major_answer is not None:
        host.on("/usr/bin/postgres --version", out(major_answer))
    ctx = HostContext("h", host, config or HostConfig(migrations_source=None), check=check,
                      diff=False, prober=Probes())
    return ctx, host, said(GatherFacts().run(ctx))


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_gather_facts_reads_the_facts_in_one_command_and_plans_the_settings(
        check: bool) -> None:
    ctx, host, result = gather("debian12", check=check)
    assert result == ("ok", "Debian GNU/Linux 12 (bookworm); 4096 MB RAM, 2 CPUs, systemd; "
                            "debian strategy, PostgreSQL 15 (the release's default; the host's "
                            "packages confirm it)")
    # one read as the login user (no root), the same in check mode
    assert [(c.become, c.timeout) for c in host.calls] == [(None, 60)]
    assert "/etc/os-release" in host.calls[0].command
    assert ctx.facts.os_id == "debian" and ctx.strategy.family == "debian"
    assert ctx.strategy.major == 15
    assert ctx.wanted_settings["listen_addresses"] == "localhost"
    assert ctx.wanted_settings["password_encryption"] == "scram-sha-256"


def test_gather_facts_read_under_the_lock_costs_no_command() -> None:
    """The runner ran the step's read_under_lock script in the host lock's command (as
    root): the step parses that output and asks nothing; the login user's root-ness is the
    transport's, not the root-run script's `id -u`."""
    host = FakeHost()
    host._uid = 1000  # a sudo user: the lock's script ran as root all the same
    step = GatherFacts()
    script = step.read_under_lock()
    marker = re.search(r"^echo '(@@chatalot-[0-9a-f]+) ", script, re.M)
    assert marker is not None and "/etc/os-release" in script
    output = "".join(f"{marker.group(1)} {name}\n{text}"
                     for name, text in fact_sections("debian12").items())
    ctx = HostContext("h", host, HostConfig(migrations_source=None), check=False, diff=False,
                      prober=Probes())
    ctx.under_lock = output
    result = said(step.run(ctx))
    assert result[0] == "ok" and result[1].startswith("Debian GNU/Linux 12 (bookworm)")
    assert host.calls == []
    assert ctx.facts.is_root is False and ctx.strategy.major == 15


def test_gather_facts_asks_the_host_for_the_major_where_no_table_knows_it() -> None:
    ctx, host, result = gather("fedora40", major_answer="postgres (PostgreSQL) 16.4\n")
    assert result == ("ok", "Fedora Linux 40 (Server Edition); 4096 MB RAM, 2 CPUs, systemd; "
                            "fedora strategy, PostgreSQL 16 (the distribution's)")
    assert host.ran()[1] == (
        None, "/usr/bin/postgres --version")
    assert ctx.strategy.major == 16 and ctx.wanted_settings


def test_gather_facts_without_an_installed_server_plans_nothing_yet() -> None:
    ctx, host, result = gather("fedora40", major_answer="")
    assert result[1].endswith("PostgreSQL: the distribution's, its version known once "
                              "installed")
    assert len(host.calls) == 2
    assert ctx.strategy.major is None and ctx.wanted_settings == {}


def test_gather_facts_with_pg_version_asks_nothing_more() -> None:
    ctx, host, result = gather("arch", config=HostConfig(pg_version=17, migrations_source=None),
                               systemd=False)
    assert result == ("ok", "Arch Linux; 4096 MB RAM, 2 CPUs, no systemd (PID 1 is bash); "
                            "arch strategy, PostgreSQL 17 (pg_version)")
    assert len(host.calls) == 1
    assert ctx.strategy.major == 17


def test_gather_facts_refuses_an_unsupported_distribution() -> None:
    with pytest.raises(UnsupportedDistroError, match="unsupported distribution: Alpine Linux"):
        gather("alpine")


def test_gather_facts_fails_when_the_facts_command_fails() -> None:
    host = FakeHost().on(FACTS_SCRIPT, err(127, "sh: 1: nproc: not found"))
    ctx = HostContext("h", host, HostConfig(migrations_source=None), check=False, diff=False,
                      prober=Probes())
    with pytest.raises(CommandError, match=r"^gathering facts failed \(exit 127\): sh: 1: "):
        GatherFacts().run(ctx)


# --- InstallPackages -------------------------------------------------------------------------

def test_install_nothing_to_do_runs_nothing() -> None:
    h = harness("debian12", state(service(major=15)))
    assert said(h.run(InstallPackages())) == (
        "ok", "installed: postgresql postgresql-contrib (PostgreSQL 15)")
    assert h.host.calls == [] and h.probes.count == 0


@pytest.mark.parametrize(("distro", "missing", "command"), [
    ("debian12", ("postgresql", "postgresql-contrib"),
     f"{APT} install -y -q --no-install-recommends postgresql postgresql-contrib"),
    ("debian12", ("postgresql-contrib",),
     f"{APT} install -y -q --no-install-recommends postgresql-contrib"),
    ("arch", ("postgresql",), "pacman -S --needed --noconfirm postgresql"),
])
def test_install_runs_the_package_manager_as_root_then_reads_the_host_again(
        distro: str, missing: tuple[str, ...], command: str) -> None:
    h = harness(distro, state(service(*missing, active=False)),
                [state(service(major=MAJOR[distro]))])
    h.host.on("set -e\n")
    result = h.run(InstallPackages())
    assert said(result) == (
        "changed", f"installed {' '.join(missing)} (PostgreSQL {MAJOR[distro]})")
    [call] = h.host.calls
    assert call == Call(call.command, "root", None, 1800)
    assert "set -e\n" in call.command and call.command.rstrip("\n").endswith(command)
    # Debian: the packages may not start the server they install (policy-rc.d, this
    # install's own): its first start is ours, with our settings
    assert ("/usr/sbin/policy-rc.d" in call.command) == (distro == "debian12")
    assert h.probes.count == 1


def test_install_writes_the_settings_before_the_servers_first_start() -> None:
    """Debian, a fresh host: the install holds the package's start back; the cluster it
    created gets our drop-in before the start step starts it (no restart later)."""
    h = harness("debian12", state(service("postgresql", "postgresql-contrib", active=False)),
                [state(service(major=15, active=False, data_version=15)),
                 state(service(major=15, active=False, data_version=15), dropin="x")])
    h.host.on("chatalot_start=").on("set -e; umask 077")
    result = h.run(InstallPackages())
    assert said(result) == (
        "changed", "installed postgresql postgresql-contrib (PostgreSQL 15); its settings "
                   "written before its first start "
                   "(/etc/postgresql/15/main/conf.d/50-chatalot.conf)")
    install, write = h.host.calls
    assert install.command.startswith("chatalot_start=") and "policy-rc.d" in install.command
    assert "/etc/postgresql/15/main/conf.d/50-chatalot.conf" in write.command
    assert "shared_buffers" in (write.stdin or "")


def test_install_writes_no_settings_where_the_package_made_no_cluster() -> None:
    """create_main_cluster = false: no cluster after the install; the init and configure
    steps do their parts as before."""
    h = harness("debian12", state(service("postgresql", "postgresql-contrib", active=False)),
                [state(service(major=15, active=False))])
    h.host.on("chatalot_start=")
    assert said(h.run(InstallPackages()))[1] == (
        "installed postgresql postgresql-contrib (PostgreSQL 15)")
    assert len(h.host.calls) == 1


@pytest.mark.parametrize("hostvars", [{"pg_settings": {"work_mem": "64MB"}},
                                      {"pg_allowed_cidrs": "10.0.0.0/8"}],
                         ids=["pg_settings", "remote access"])
def test_install_leaves_the_first_start_alone_with_settings_of_the_users(
        hostvars: dict[str, object]) -> None:
    """Settings the user wrote (or certificates to make) are applied and checked on a
    running server by the configure step, as before."""
    h = harness("debian12", state(service("postgresql", "postgresql-contrib", active=False)),
                [state(service(major=15, active=False, data_version=15))],
                config=HostConfig.from_vars(hostvars))
    h.host.on("set -e\n")
    assert said(h.run(InstallPackages()))[1] == (
        "installed postgresql postgresql-contrib (PostgreSQL 15)")
    [call] = h.host.calls
    assert "policy-rc.d" not in call.command


def test_install_adopts_the_major_the_host_installed_and_reads_its_paths() -> None:
    """Fedora's major is unknown before the packages: the host's answer after the install
    is adopted, and the host read again with that major's settings."""
    after = state(service(major=16, data_dir="missing"))
    h = harness("fedora40", state(service("postgresql-server", "postgresql-contrib",
                                          enabled=False, active=False, data_dir="missing")),
                [after, after], major=None)
    h.host.on("dnf install -y postgresql-server postgresql-contrib")
    assert said(h.run(InstallPackages())) == (
        "changed", "installed postgresql-server postgresql-contrib (PostgreSQL 16)")
    assert h.host.ran() == [
        ("root", "set -e\ndnf install -y postgresql-server postgresql-contrib\n")]
    assert [(p.major, bool(p.settings)) for p in h.probes.calls] == [(None, False), (16, True)]
    assert h.ctx.strategy.major == 16


def test_install_repairs_an_interrupted_package_run_first() -> None:
    h = harness("debian12",
                state(service("postgresql-contrib", repair="The following packages ...")),
                [state(service("postgresql-contrib")), state(service(major=15))])
    h.host.on(DPKG_REPAIR).on("set -e\n")
    assert said(h.run(InstallPackages())) == (
        "changed", "finished an interrupted package run; installed postgresql-contrib "
                   "(PostgreSQL 15)")
    assert [(c.become, c.command.splitlines()[-1]) for c in h.host.calls] == [
        ("root", DPKG_REPAIR),
        ("root", f"{APT} install -y -q --no-install-recommends postgresql-contrib"),
    ]
    assert h.probes.count == 2


def test_install_repair_alone_is_a_change() -> None:
    h = harness("debian12", state(service(repair="half-configured")), [state(service())])
    h.host.on(DPKG_REPAIR)
    assert said(h.run(InstallPackages())) == ("changed", "finished an interrupted package run")
    assert h.host.ran() == [("root", DPKG_REPAIR)]


@pytest.mark.parametrize(("svc", "expected"), [
    (service("postgresql", "postgresql-contrib", active=False),
     "would install postgresql postgresql-contrib"),
    (service("postgresql-contrib", repair="half-configured"),
     "would finish an interrupted package run; would install postgresql-contrib"),
    (service(repair="half-configured"), "would finish an interrupted package run"),
], ids=["missing", "repair and missing", "repair"])
def test_install_in_check_mode_says_what_it_would_do_and_runs_nothing(
        svc: ServiceState, expected: str) -> None:
    h = harness("debian12", state(svc), check=True)
    assert said(h.run(InstallPackages())) == ("changed", expected)
    assert h.host.calls == [] and h.probes.count == 0


def test_install_fails_when_the_package_manager_left_a_package_out() -> None:
    h = harness("debian12", state(service("postgresql", "postgresql-contrib")),
                [state(service("postgresql-contrib"))])
    h.host.on("set -e\n")
    with pytest.raises(StepFailed, match=r"^the package manager finished but postgresql-contrib "
                                         r"is not installed$"):
        h.run(InstallPackages())


def test_install_fails_with_the_package_managers_error() -> None:
    h = harness("arch", state(service("postgresql")))
    h.host.on("pacman -S", err(1, "error: failed to synchronize all databases"))
    with pytest.raises(CommandError, match="^" + re.escape(
            "installing postgresql failed (exit 1): error: failed to synchronize all "
            "databases") + "$"):
        h.run(InstallPackages())
    assert h.probes.count == 0


def test_install_refuses_a_pinned_major_the_host_does_not_install() -> None:
    h = harness("arch", state(service("postgresql")), [state(service(major=17))],
                config=HostConfig(pg_version=16, migrations_source=None))
    h.host.on("pacman -S")
    with pytest.raises(StepFailed, match=r"^pg_version=16, but the Arch server this host "
                                         r"installs is PostgreSQL 17: "):
        h.run(InstallPackages())


# --- InitCluster -----------------------------------------------------------------------------

FEDORA_INIT = ("set -e\nPGSETUP_INITDB_OPTIONS='--auth-host=scram-sha-256 --auth-local=peer "
               "--encoding=UTF8 --locale=C.UTF-8' postgresql-setup --initdb\n")
ARCH_INIT = ("set -e\ninstall -d -o postgres -g postgres -m 0700 /var/lib/postgres/data\n"
             "cd / && runuser -u postgres -- initdb --locale=C.UTF-8 --encoding=UTF8 "
             "--data-checksums --auth-local=peer --auth-host=scram-sha-256 "
             "-D /var/lib/postgres/data\n")


@pytest.mark.parametrize(("distro", "data_dir", "script", "reason"), [
    ("fedora40", "missing", FEDORA_INIT,
     "initialised /var/lib/pgsql/data: postgresql-setup --initdb with PGSETUP_INITDB_OPTIONS="
     "\"--auth-host=scram-sha-256 --auth-local=peer --encoding=UTF8 --locale=C.UTF-8\" "
     "(scram-sha-256 over TCP, not ident)"),
    ("arch", "empty", ARCH_INIT,
     "initialised /var/lib/postgres/data: initdb --locale=C.UTF-8 --encoding=UTF8 "
     "--data-checksums --auth-local=peer --auth-host=scram-sha-256 -D /var/lib/postgres/data "
     "as postgres"),
    # Debian where createcluster.conf made no cluster
    ("debian12", "missing", "set -e\npg_createcluster 15 main\n",
     "initialised /var/lib/postgresql/15/main: pg_createcluster 15 main"),
])
def test_init_runs_initdb_as_root_on_an_empty_data_directory(
        distro: str, data_dir: str, script: str, reason: str) -> None:
    major = MAJOR[distro]
    h = harness(distro, state(service(major=major, active=False, data_dir=data_dir)),
                [state(service(major=major, active=False, data_version=major))])
    h.host.on(script)
    assert said(h.run(InitCluster())) == ("changed", reason)
    assert [(c.become, c.command, c.stdin, c.timeout) for c in h.host.calls] == [
        ("root", script, None, 900)]
    assert h.probes.count == 1


@pytest.mark.parametrize(("distro", "svc", "check", "expected"), [
    ("fedora40", service(data_version=16), False,
     ("ok", "cluster in /var/lib/pgsql/data (PostgreSQL 16)")),
    ("debian12", service(data_version=15), False,
     ("ok", "the package created cluster 15/main")),
    ("arch", service(data_dir="empty"), True,
     ("changed", "would initialise /var/lib/postgres/data: initdb --locale=C.UTF-8 "
                 "--encoding=UTF8 --data-checksums --auth-local=peer "
                 "--auth-host=scram-sha-256 -D /var/lib/postgres/data as postgres")),
    ("debian12", service("postgresql", data_dir="missing"), True,
     ("skipped", "the package creates the cluster when it is installed")),
    ("fedora40", service("postgresql-server", data_dir="missing"), True,
     ("changed", "would initialise /var/lib/pgsql/data once installed: postgresql-setup "
                 "--initdb with PGSETUP_INITDB_OPTIONS=\"--auth-host=scram-sha-256 "
                 "--auth-local=peer --encoding=UTF8 --locale=C.UTF-8\" (scram-sha-256 over "
                 "TCP, not ident)")),
], ids=["fedora cluster", "debian cluster", "check empty", "check debian not installed",
        "check fedora not installed"])
def test_init_with_a_cluster_or_in_check_mode_runs_nothing(
        distro: str, svc: ServiceState, check: bool, expected: tuple[str, str]) -> None:
    h = harness(distro, state(svc), check=check)
    assert said(h.run(InitCluster())) == expected
    assert h.host.calls == [] and h.probes.count == 0


@pytest.mark.parametrize(("svc", "message"), [
    (service(data_version=15),
     "^/var/lib/postgres/data holds a PostgreSQL 15 cluster but the installed server is "
     "PostgreSQL 17: an upgrade needs pg_upgrade, which this tool does not run. Nothing was "
     "changed; upgrade it with pg_upgrade \\(pacman -S postgresql-old-upgrade"),
    (service(data_dir="nonempty"),
     "^/var/lib/postgres/data is not empty but has no PG_VERSION, so it is no PostgreSQL "
     "cluster; initdb never runs on a directory that holds data"),
], ids=["another major", "not a cluster"])
@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_init_never_touches_a_data_directory_that_holds_data(
        svc: ServiceState, message: str, check: bool) -> None:
    h = harness("arch", state(svc), check=check)
    with pytest.raises(StepFailed, match=message):
        h.run(InitCluster())
    assert h.host.calls == []


def test_init_fails_when_the_new_cluster_is_not_of_the_installed_major() -> None:
    h = harness("fedora40", state(service(data_dir="empty")),
                [state(service(data_dir="nonempty"))])
    h.host.on(FEDORA_INIT)
    with pytest.raises(StepFailed, match=r"finished, but /var/lib/pgsql/data/PG_VERSION says "
                                         r"nothing \(wanted 16\)$"):
        h.run(InitCluster())


def test_init_needs_to_know_the_major() -> None:
    h = harness("fedora40", state(service(data_dir="missing")), major=None)
    with pytest.raises(StepFailed, match="could not tell which PostgreSQL major version"):
        h.run(InitCluster())
    assert h.host.calls == []


def test_init_fails_with_initdbs_error() -> None:
    h = harness("arch", state(service(data_dir="missing")))
    h.host.on(ARCH_INIT, err(1, "initdb: error: invalid locale settings"))
    with pytest.raises(CommandError, match=r"^initialising /var/lib/postgres/data failed "
                                           r"\(exit 1\): initdb: error: invalid locale"):
        h.run(InitCluster())
    assert h.probes.count == 0


# --- EnableService ---------------------------------------------------------------------------

@pytest.mark.parametrize(("distro", "command", "reason"), [
    ("debian12", "systemctl enable postgresql", "enabled postgresql"),
    ("fedora40", "systemctl enable --now postgresql",
     "enabled and started postgresql (systemctl enable --now)"),
    ("arch", "systemctl enable --now postgresql",
     "enabled and started postgresql (systemctl enable --now)"),
])
def test_enable_runs_systemctl_enable_as_root(distro: str, command: str, reason: str) -> None:
    h = harness(distro, state(service(enabled=False, active=False)))
    h.host.on(command)
    assert said(h.run(EnableService())) == ("changed", reason)
    assert h.host.ran() == [("root", command)]
    assert h.invalidated and h.probes.count == 0  # the next step reads the host again


@pytest.mark.parametrize(("distro", "systemd", "svc", "check", "expected"), [
    ("debian12", True, service(enabled=True), False, ("ok", "postgresql is enabled")),
    ("fedora40", True, service(enabled=True), False, ("ok", "postgresql is enabled")),
    ("debian12", True, service(enabled=False), True, ("changed", "would enable postgresql")),
    ("debian12", False, service(enabled=None), False,
     ("skipped", "no systemd as PID 1 (PID 1 is bash): nothing to enable; the cluster is "
                 "managed with pg_ctlcluster 15 main")),
    ("arch", False, service(enabled=None), True,
     ("skipped", "no systemd as PID 1 (PID 1 is bash): nothing to enable; the cluster is "
                 "managed with pg_ctl -D /var/lib/postgres/data as postgres (log "
                 "/var/lib/postgres/pg_ctl.log)")),
], ids=["debian enabled", "fedora enabled", "check", "no systemd", "no systemd, check"])
def test_enable_when_enabled_without_systemd_or_in_check_mode_runs_nothing(
        distro: str, systemd: bool, svc: ServiceState, check: bool,
        expected: tuple[str, str]) -> None:
    h = harness(distro, state(svc), check=check, systemd=systemd)
    assert said(h.run(EnableService())) == expected
    assert h.host.calls == [] and not h.invalidated


def test_enable_fails_with_systemctls_error() -> None:
    h = harness("debian12", state(service(enabled=False)))
    h.host.on("systemctl enable", err(1, "Failed to enable unit: Unit file is masked."))
    with pytest.raises(CommandError, match=r"^enabling postgresql failed \(exit 1\): Failed "):
        h.run(EnableService())


# --- StartService ----------------------------------------------------------------------------

UP = {"server_version_num": 150000}


@pytest.mark.parametrize(("distro", "systemd", "command", "tool"), [
    ("debian12", True, "systemctl start postgresql@15-main", "systemd"),
    ("debian12", False, "pg_ctlcluster 15 main start", "pg_ctlcluster 15 main"),
    ("fedora40", True, "systemctl start postgresql", "systemd"),
    ("arch", False,
     "install -d -o postgres -g postgres -m 2775 /run/postgresql && cd / && runuser -u "
     "postgres -- /usr/bin/pg_ctl -D /var/lib/postgres/data -l /var/lib/postgres/pg_ctl.log "
     "-w start",
     "pg_ctl -D /var/lib/postgres/data as postgres (log /var/lib/postgres/pg_ctl.log)"),
])
def test_start_runs_the_control_command_as_root_then_checks_the_server_answers(
        distro: str, systemd: bool, command: str, tool: str) -> None:
    h = harness(distro, state(service(active=False)), [state(service(), sql=UP)],
                systemd=systemd)
    h.host.on(command)
    assert said(h.run(StartService())) == ("changed", f"started with {tool}")
    assert h.host.ran() == [("root", command)]
    assert h.probes.count == 1


def test_start_also_when_the_service_is_active_but_the_server_does_not_answer() -> None:
    h = harness("debian12", state(service(active=True), sql=None), [state(sql=UP)])
    h.host.on("systemctl start postgresql@15-main")
    assert h.run(StartService()).reason == "started with systemd"
    assert len(h.host.calls) == 1


@pytest.mark.parametrize(("major", "check", "before", "expected"), [
    (15, False, state(sql=UP), ("ok", "running (managed with systemd)")),
    (15, True, state(service(active=False)), ("changed", "would start PostgreSQL 15 with "
                                                         "systemd")),
    (None, True, state(service("postgresql-server", active=False)),
     ("changed", "would start PostgreSQL with systemd")),
], ids=["running", "check", "check, major unknown"])
def test_start_when_running_or_in_check_mode_runs_nothing(
        major: int | None, check: bool, before: HostState, expected: tuple[str, str]) -> None:
    h = harness("fedora40" if major is None else "debian12", before, check=check, major=major)
    assert said(h.run(StartService())) == expected
    assert h.host.calls == [] and h.probes.count == 0


def test_start_fails_when_the_server_still_does_not_answer() -> None:
    h = harness("debian12", state(service(active=False)),
                [state(sql=None, sql_error="psql: error: connection to server on socket "
                                           "failed: No such file or directory")])
    h.host.on("systemctl start")
    with pytest.raises(StepFailed, match="^" + re.escape(
            "PostgreSQL did not accept connections after start: psql: error: connection to "
            "server on socket failed: No such file or directory") + "$"):
        h.run(StartService())


def test_start_fails_with_the_control_commands_error() -> None:
    h = harness("debian12", state(service(active=False)))
    h.host.on("systemctl start", err(1, "Job for postgresql@15-main.service failed."))
    with pytest.raises(CommandError, match=r"^starting PostgreSQL with systemd failed \(exit 1\)"):
        h.run(StartService())
    assert h.probes.count == 0
