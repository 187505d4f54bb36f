"""Distribution strategies as tables: selection from os-release, and command plans.

Given os-release (and pg_version, and whether systemd is PID 1): exactly this
strategy, these packages, these commands and these paths. The PGDG repositories
cannot be reached from the test machines, so their plans are proven here only.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from installer.desired import pgconf
from installer.desired.config import HostConfig
from installer.errors import UnsupportedDistroError
from installer.host import distros
from installer.host.distros.arch import ArchStrategy
from installer.host.distros.base import ServiceState, Strategy, parse_major
from installer.host.distros.debian import DebianStrategy
from installer.host.distros.fedora import FedoraStrategy
from installer.host.facts import Facts, facts_from_sections
from installer.host.sections import SectionScript
from installer.host.state import HostState
from installer.steps import base as steps_base
from installer.steps.base import HostContext, Prober, Status, StepFailed
from installer.steps.host import InitCluster, InstallPackages
from installer.transport.base import Result, Transport

# --- os-release samples (each distribution's own file, trimmed to what matters) -----------

OS_RELEASE = {
    "debian12": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
                'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
    "debian13": 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\n'
                'VERSION_ID="13"\nVERSION="13 (trixie)"\nVERSION_CODENAME=trixie\nID=debian\n',
    "ubuntu2204": 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
                  'VERSION="22.04.4 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\n'
                  'ID_LIKE=debian\nUBUNTU_CODENAME=jammy\n',
    "ubuntu2404": 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\n'
                  'VERSION="24.04.1 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\n'
                  'ID_LIKE=debian\nUBUNTU_CODENAME=noble\n',
    "raspbian": 'PRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"\nNAME="Raspbian GNU/Linux"\n'
                'VERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=raspbian\nID_LIKE=debian\n',
    "linuxmint": 'NAME="Linux Mint"\nVERSION="21.3 (Virginia)"\nID=linuxmint\nID_LIKE="ubuntu '
                 'debian"\nPRETTY_NAME="Linux Mint 21.3"\nVERSION_ID="21.3"\n'
                 'VERSION_CODENAME=virginia\nUBUNTU_CODENAME=jammy\n',
    "pop": 'NAME="Pop!_OS"\nVERSION="22.04 LTS"\nID=pop\nID_LIKE="ubuntu debian"\n'
           'PRETTY_NAME="Pop!_OS 22.04 LTS"\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n',
    "fedora40": 'NAME="Fedora Linux"\nVERSION="40 (Server Edition)"\nID=fedora\nVERSION_ID=40\n'
                'PRETTY_NAME="Fedora Linux 40 (Server Edition)"\n',
    "rhel9": 'NAME="Red Hat Enterprise Linux"\nVERSION="9.4 (Plow)"\nID="rhel"\n'
             'ID_LIKE="fedora"\nVERSION_ID="9.4"\n'
             'PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"\n',
    "centos10": 'NAME="CentOS Stream"\nVERSION="10 (Coughlan)"\nID="centos"\n'
                'ID_LIKE="rhel fedora"\nVERSION_ID="10"\n'
                'PRETTY_NAME="CentOS Stream 10 (Coughlan)"\n',
    "rocky9": 'NAME="Rocky Linux"\nVERSION="9.4 (Blue Onyx)"\nID="rocky"\n'
              'ID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n'
              'PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"\n',
    "alma8": 'NAME="AlmaLinux"\nVERSION="8.10 (Cerulean Leopard)"\nID="almalinux"\n'
             'ID_LIKE="rhel centos fedora"\nVERSION_ID="8.10"\n'
             'PRETTY_NAME="AlmaLinux 8.10 (Cerulean Leopard)"\n',
    "oracle9": 'NAME="Oracle Linux Server"\nVERSION="9.4"\nID="ol"\nID_LIKE="fedora"\n'
               'VERSION_ID="9.4"\nPRETTY_NAME="Oracle Linux Server 9.4"\n',
    # a Fedora remix that names rhel in ID_LIKE: Fedora numbering, so Fedora's repositories
    "nobara40": 'NAME="Nobara Linux"\nVERSION="40 (GNOME Edition)"\nID=nobara\n'
                'ID_LIKE="rhel centos fedora"\nVERSION_ID=40\nPRETTY_NAME="Nobara Linux 40"\n',
    "arch": 'NAME="Arch Linux"\nPRETTY_NAME="Arch Linux"\nID=arch\nBUILD_ID=rolling\n',
    "manjaro": 'NAME="Manjaro Linux"\nPRETTY_NAME="Manjaro Linux"\nID=manjaro\nID_LIKE=arch\n'
               'BUILD_ID=rolling\n',
    "endeavouros": 'NAME="EndeavourOS"\nPRETTY_NAME="EndeavourOS"\nID="endeavouros"\n'
                   'ID_LIKE="arch"\nBUILD_ID=rolling\n',
    "garuda": 'NAME="Garuda Linux"\nPRETTY_NAME="Garuda Linux"\nID=garuda\nID_LIKE=arch\n',
    "alpine": 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\n'
              'PRETTY_NAME="Alpine Linux v3.20"\n',
    "opensuse": 'NAME="openSUSE Leap"\nVERSION="15.6"\nID="opensuse-leap"\n'
                'ID_LIKE="suse opensuse"\nVERSION_ID="15.6"\nPRETTY_NAME="openSUSE Leap 15.6"\n',
}


def facts(sample: str, *, systemd: bool = True, machine: str = "x86_64") -> Facts:
    return facts_from_sections({
        "os-release": OS_RELEASE.get(sample, sample),
        "pid1": "systemd" if systemd else "bash",
        "machine": machine,
        "uid": "0",
    })


def strategy(sample: str, pg_version: int | None = None, **kw: Any) -> Strategy:
    return distros.select(facts(sample, **kw), HostConfig(pg_version=pg_version))


# --- selection ---------------------------------------------------------------------------

@pytest.mark.parametrize(("sample", "family"), [
    ("debian12", "debian"), ("debian13", "debian"), ("ubuntu2204", "debian"),
    ("ubuntu2404", "debian"), ("raspbian", "debian"), ("linuxmint", "debian"),
    ("pop", "debian"),  # by ID_LIKE
    ("fedora40", "fedora"), ("rhel9", "fedora"), ("centos10", "fedora"), ("rocky9", "fedora"),
    ("alma8", "fedora"), ("oracle9", "fedora"), ("nobara40", "fedora"),  # the last: ID_LIKE
    ("arch", "arch"), ("manjaro", "arch"), ("endeavouros", "arch"),
    ("garuda", "arch"),  # by ID_LIKE
])
def test_strategy_selected_from_id_then_id_like(sample: str, family: str) -> None:
    assert strategy(sample).family == family


@pytest.mark.parametrize(("sample", "found"), [
    ("alpine", "Alpine Linux v3.20 (ID=alpine, ID_LIKE=-)"),
    # the `distro` package normalises opensuse-leap (as it does ol -> oracle)
    ("opensuse", "openSUSE Leap 15.6 (ID=opensuse, ID_LIKE=suse opensuse)"),
    ("", "no /etc/os-release (ID=?, ID_LIKE=-)"),
])
def test_unsupported_distribution_names_what_was_found_and_what_is_supported(
        sample: str, found: str) -> None:
    with pytest.raises(UnsupportedDistroError, match="^" + re.escape(
            f"unsupported distribution: {found}; supported, by ID or ID_LIKE in /etc/os-release: "
            "Debian/Ubuntu (debian, linuxmint, raspbian, ubuntu), "
            "Fedora/RHEL (almalinux, centos, fedora, ol, oracle, rhel, rocky), "
            "Arch (arch, endeavouros, manjaro)") + "$"):
        strategy(sample)


@pytest.mark.parametrize(("sample", "major"), [
    ("debian12", 15), ("debian13", 17), ("ubuntu2204", 14), ("ubuntu2404", 16),
    ("raspbian", 15),
    ("linuxmint", None), ("pop", 14),  # Mint's own numbering: apt will tell (MAJOR_PROBE)
    # known only once installed: the package manager decides, `postgres --version` tells
    ("fedora40", None), ("rocky9", None), ("arch", None),
])
def test_major_before_anything_is_read_from_the_host(sample: str, major: int | None) -> None:
    assert strategy(sample).major == major


@pytest.mark.parametrize(("sample", "codename"), [
    ("debian12", "bookworm"), ("ubuntu2404", "noble"), ("ubuntu2204", "jammy"),
])
def test_codename_from_os_release(sample: str, codename: str) -> None:
    assert facts(sample).codename == codename


# --- command plans -------------------------------------------------------------------------

APT = ("DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get -o DPkg::Lock::Timeout=600 "
       "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold")


def apt_install(pkgs: str) -> str:
    return (
        "need_update=0\n"
        f"for p in {pkgs}; do\n"
        "  c=$(apt-cache policy \"$p\" 2>/dev/null | sed -n 's/^ *Candidate: //p')\n"
        "  if [ -z \"$c\" ] || [ \"$c\" = '(none)' ]; then need_update=1; fi\n"
        "done\n"
        f"if [ $need_update = 1 ]; then {APT} update -q; fi\n"
        f"{APT} install -y -q --no-install-recommends {pkgs}"
    )


def pgdg_apt(codename: str, package: str) -> list[str]:
    """The PGDG setup, only when apt knows no candidate for `package` (the host's own
    sources may have it), taken away again when its repository cannot be reached."""
    return [
        "if ! { ok=1; for p in " + package + "; do c=$(apt-cache policy \"$p\" 2>/dev/null | "
        "sed -n 's/^ *Candidate: //p'); if [ -z \"$c\" ] || [ \"$c\" = '(none)' ]; then ok=0; "
        "fi; done; [ $ok = 1 ]; }; then",
        apt_install("ca-certificates postgresql-common"),
        "cat > /etc/apt/sources.list.d/pgdg.sources <<'CHATALOT_EOF'\n"
        "Types: deb\n"
        "URIs: https://apt.postgresql.org/pub/repos/apt\n"
        f"Suites: {codename}-pgdg\n"
        "Components: main\n"
        "Signed-By: /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc\n"
        "CHATALOT_EOF",
        f"if ! {APT} update -q; then rm -f /etc/apt/sources.list.d/pgdg.sources; echo "
        f"'the PGDG repository for {codename} could not be reached: "
        "/etc/apt/sources.list.d/pgdg.sources removed again; nothing was installed' >&2; exit 1; "
        "fi",
        "fi",
    ]


SETUP_OPTS = ("PGSETUP_INITDB_OPTIONS='--auth-host=scram-sha-256 --auth-local=peer "
              "--encoding=UTF8 --locale=C.UTF-8'")
PGDG_RPM = "https://download.postgresql.org/pub/repos/yum/reporpms/"


@dataclass(frozen=True)
class Plan:
    """What a strategy does on a host, all of it."""

    packages: list[str]
    install: list[str]
    init: list[str]
    data_dir: str
    hba: str
    dropin: str
    include: str | None  # the postgresql.conf that gets our include line
    service: str
    enable: str
    major: int | None


def plan_of(s: Strategy) -> Plan:
    include = s.conf_include()
    return Plan(s.packages(), s.install_plan(s.packages()), s.init_plan(), s.data_dir(),
                s.hba_path(), s.dropin_path(), include.conf_path if include else None,
                s.service(), s.enable_script(), s.major)


FEDORA_DEFAULT = Plan(
    ["postgresql-server", "postgresql-contrib"],
    ["dnf install -y postgresql-server postgresql-contrib"],
    [f"{SETUP_OPTS} postgresql-setup --initdb"],
    "/var/lib/pgsql/data", "/var/lib/pgsql/data/pg_hba.conf",
    "/var/lib/pgsql/data/conf.d/50-chatalot.conf", "/var/lib/pgsql/data/postgresql.conf",
    "postgresql", "systemctl enable --now postgresql", None)


def el_pgdg(major: int, release: int, machine: str, module: bool, major_rpm: str = "EL",
            flavor: str = "redhat") -> Plan:
    repo = f"{PGDG_RPM}{major_rpm}-{release}-{machine}/pgdg-{flavor}-repo-latest.noarch.rpm"
    return Plan(
        [f"postgresql{major}-server", f"postgresql{major}-contrib"],
        [f"dnf install -y {repo}",
         *(["dnf -qy module disable postgresql"] if module else []),
         f"dnf install -y postgresql{major}-server postgresql{major}-contrib"],
        [f"{SETUP_OPTS} /usr/pgsql-{major}/bin/postgresql-{major}-setup initdb"],
        f"/var/lib/pgsql/{major}/data", f"/var/lib/pgsql/{major}/data/pg_hba.conf",
        f"/var/lib/pgsql/{major}/data/conf.d/50-chatalot.conf",
        f"/var/lib/pgsql/{major}/data/postgresql.conf",
        f"postgresql-{major}", f"systemctl enable --now postgresql-{major}", major)


def debian(major: int, packages: list[str], install: list[str]) -> Plan:
    etc = f"/etc/postgresql/{major}/main"
    return Plan(packages, install, [f"pg_createcluster {major} main"],
                f"/var/lib/postgresql/{major}/main", f"{etc}/pg_hba.conf",
                f"{etc}/conf.d/50-chatalot.conf", None, f"postgresql@{major}-main",
                "systemctl enable postgresql", major)


PLANS: dict[str, tuple[str, int | None, str, Plan]] = {
    # id: (os-release sample, pg_version, uname -m, the plan)
    "fedora40 default": ("fedora40", None, "x86_64", FEDORA_DEFAULT),
    "rhel9 default (AppStream)": ("rhel9", None, "x86_64", FEDORA_DEFAULT),
    "fedora40 pg 16 = its own": ("fedora40", 16, "x86_64", replace(FEDORA_DEFAULT, major=16)),
    "fedora40 pg 17 (PGDG)": ("fedora40", 17, "x86_64",
                              el_pgdg(17, 40, "x86_64", False, "F", "fedora")),
    "nobara40 pg 17 (PGDG, Fedora's)": ("nobara40", 17, "x86_64",
                                        el_pgdg(17, 40, "x86_64", False, "F", "fedora")),
    "rhel9 pg 16 (PGDG, module off)": ("rhel9", 16, "x86_64", el_pgdg(16, 9, "x86_64", True)),
    "rocky9 pg 17 (PGDG, module off)": ("rocky9", 17, "x86_64", el_pgdg(17, 9, "x86_64", True)),
    "oracle9 pg 16 (PGDG, module off)": ("oracle9", 16, "x86_64",
                                         el_pgdg(16, 9, "x86_64", True)),
    "alma8 aarch64 pg 15 (PGDG, module off)": ("alma8", 15, "aarch64",
                                               el_pgdg(15, 8, "aarch64", True)),
    "centos10 pg 17 (PGDG, no modules on EL 10)": ("centos10", 17, "x86_64",
                                                   el_pgdg(17, 10, "x86_64", False)),
    "arch default": ("arch", None, "x86_64", Plan(
        ["postgresql"], ["pacman -S --needed --noconfirm postgresql"],
        ["install -d -o postgres -g postgres -m 0700 /var/lib/postgres/data",
         "cd / && runuser -u postgres -- initdb --locale=C.UTF-8 --encoding=UTF8 "
         "--data-checksums --auth-local=peer --auth-host=scram-sha-256 "
         "-D /var/lib/postgres/data"],
        "/var/lib/postgres/data", "/var/lib/postgres/data/pg_hba.conf",
        "/var/lib/postgres/data/conf.d/50-chatalot.conf",
        "/var/lib/postgres/data/postgresql.conf", "postgresql",
        "systemctl enable --now postgresql", None)),
    "debian12 default": ("debian12", None, "x86_64", debian(
        15, ["postgresql", "postgresql-contrib"], [apt_install("postgresql postgresql-contrib")])),
    "debian13 default": ("debian13", None, "x86_64", debian(
        17, ["postgresql", "postgresql-contrib"], [apt_install("postgresql postgresql-contrib")])),
    "debian12 pg 15 = its own": ("debian12", 15, "x86_64", debian(
        15, ["postgresql-15"], [apt_install("postgresql-15")])),
    "debian12 pg 16 (PGDG)": ("debian12", 16, "x86_64", debian(
        16, ["postgresql-16"], [*pgdg_apt("bookworm", "postgresql-16"),
                                apt_install("postgresql-16")])),
    "debian13 pg 18 (PGDG)": ("debian13", 18, "x86_64", debian(
        18, ["postgresql-18"], [*pgdg_apt("trixie", "postgresql-18"),
                                apt_install("postgresql-18")])),
    "ubuntu2404 default": ("ubuntu2404", None, "x86_64", debian(
        16, ["postgresql", "postgresql-contrib"], [apt_install("postgresql postgresql-contrib")])),
    "ubuntu2404 pg 17 (PGDG)": ("ubuntu2404", 17, "x86_64", debian(
        17, ["postgresql-17"], [*pgdg_apt("noble", "postgresql-17"),
                                apt_install("postgresql-17")])),
    "ubuntu2204 pg 16 (PGDG)": ("ubuntu2204", 16, "x86_64", debian(
        16, ["postgresql-16"], [*pgdg_apt("jammy", "postgresql-16"),
                                apt_install("postgresql-16")])),
}


@pytest.mark.parametrize("case", list(PLANS))
def test_command_plan(case: str) -> None:
    sample, pg_version, machine, expected = PLANS[case]
    assert plan_of(strategy(sample, pg_version, machine=machine)) == expected


def test_install_script_stops_at_the_first_failure() -> None:
    s = strategy("rocky9", 16)
    assert s.install_script(s.packages()) == "set -e\n" + "\n".join(
        el_pgdg(16, 9, "x86_64", True).install) + "\n"


def test_pgdg_on_a_debian_without_codename_is_refused_with_the_reason() -> None:
    s = strategy('PRETTY_NAME="Debian GNU/Linux trixie/sid"\nID=debian\n', 16)
    with pytest.raises(UnsupportedDistroError, match=r"PGDG apt repository.*VERSION_CODENAME"):
        s.install_plan(s.packages())


# --- service control with and without systemd ----------------------------------------------

PG_CTL_FEDORA = "cd / && runuser -u postgres -- /usr/bin/pg_ctl -D /var/lib/pgsql/data"
PG_CTL_ARCH = "cd / && runuser -u postgres -- /usr/bin/pg_ctl -D /var/lib/postgres/data"
RUNDIR = "install -d -o postgres -g postgres -m 2775 /run/postgresql && "


@pytest.mark.parametrize(("sample", "pg_version", "systemd", "expected", "tool"), [
    ("debian12", None, True, ["systemctl start postgresql@15-main",
                              "systemctl restart postgresql@15-main",
                              "systemctl reload postgresql@15-main"], "systemd"),
    ("debian12", None, False, ["pg_ctlcluster 15 main start", "pg_ctlcluster 15 main restart",
                               "pg_ctlcluster 15 main reload"], "pg_ctlcluster 15 main"),
    ("fedora40", None, True, ["systemctl start postgresql", "systemctl restart postgresql",
                              "systemctl reload postgresql"], "systemd"),
    ("rocky9", 16, True, ["systemctl start postgresql-16", "systemctl restart postgresql-16",
                          "systemctl reload postgresql-16"], "systemd"),
    ("fedora40", None, False, [
        f"{RUNDIR}{PG_CTL_FEDORA} -l /var/lib/pgsql/pg_ctl.log -w start",
        f"{RUNDIR}{PG_CTL_FEDORA} -l /var/lib/pgsql/pg_ctl.log -w restart",
        f"{PG_CTL_FEDORA} reload"],
        "pg_ctl -D /var/lib/pgsql/data as postgres (log /var/lib/pgsql/pg_ctl.log)"),
    ("rocky9", 16, False, [
        f"{RUNDIR}cd / && runuser -u postgres -- /usr/pgsql-16/bin/pg_ctl -D /var/lib/pgsql/16/data"
        " -l /var/lib/pgsql/16/pg_ctl.log -w start",
        f"{RUNDIR}cd / && runuser -u postgres -- /usr/pgsql-16/bin/pg_ctl -D /var/lib/pgsql/16/data"
        " -l /var/lib/pgsql/16/pg_ctl.log -w restart",
        "cd / && runuser -u postgres -- /usr/pgsql-16/bin/pg_ctl -D /var/lib/pgsql/16/data reload"],
        "pg_ctl -D /var/lib/pgsql/16/data as postgres (log /var/lib/pgsql/16/pg_ctl.log)"),
    ("arch", None, False, [
        f"{RUNDIR}{PG_CTL_ARCH} -l /var/lib/postgres/pg_ctl.log -w start",
        f"{RUNDIR}{PG_CTL_ARCH} -l /var/lib/postgres/pg_ctl.log -w restart",
        f"{PG_CTL_ARCH} reload"],
        "pg_ctl -D /var/lib/postgres/data as postgres (log /var/lib/postgres/pg_ctl.log)"),
])
def test_service_control(sample: str, pg_version: int | None, systemd: bool,
                         expected: list[str], tool: str) -> None:
    s = strategy(sample, pg_version, systemd=systemd)
    assert [s.control_script(a) for a in ("start", "restart", "reload")] == expected
    assert s.control_tool() == tool
    with pytest.raises(ValueError, match=r"^stop$"):  # the action it has no command for
        s.control_script("stop")


# --- reading the host -----------------------------------------------------------------------

def sections(s: Strategy, **values: str) -> dict[str, str]:
    """The probe's sections as the host would answer them (only the given ones)."""
    script = SectionScript()
    s.add_state_sections(script)
    names = [p.split()[-1].strip("'") for p in script.parts if p.startswith("echo '@@")]
    assert set(values) <= set(names), (values, names)
    return values


@pytest.mark.parametrize(("sample", "probe", "output", "missing"), [
    ("fedora40", "rpm -q postgresql-server postgresql-contrib",
     "postgresql-server-16.4-1.fc40.x86_64\npackage postgresql-contrib is not installed\n",
     ["postgresql-contrib"]),
    ("fedora40", "rpm -q postgresql-server postgresql-contrib",
     "postgresql-server-16.4-1.fc40.x86_64\npostgresql-contrib-16.4-1.fc40.x86_64\n", []),
    ("fedora40", "rpm -q postgresql-server postgresql-contrib",
     "sh: rpm: not found\n", ["postgresql-server", "postgresql-contrib"]),
    ("arch", "pacman -Q postgresql", "postgresql 17.2-1\n", []),
    ("arch", "pacman -Q postgresql", "error: package 'postgresql' was not found\n",
     ["postgresql"]),
])
def test_packages_installed(sample: str, probe: str, output: str, missing: list[str]) -> None:
    s = strategy(sample)
    script = SectionScript()
    s.add_state_sections(script)
    assert any(probe in part for part in script.parts)
    state = s.parse_state(sections(s, packages=output))
    assert state.missing_packages == missing


@pytest.mark.parametrize(("data_dir", "major", "expected"), [
    ("missing\n", "", ("missing", None, None)),
    ("empty\n", "postgres (PostgreSQL) 16.4\n", ("empty", None, 16)),
    ("nonempty\n15\n", "postgres (PostgreSQL) 16.4\n", ("nonempty", 15, 16)),
    ("nonempty\n", "postgres (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)\n",
     ("nonempty", None, 15)),
])
def test_data_directory_and_major_are_read(data_dir: str, major: str,
                                           expected: tuple[str, int | None, int | None]) -> None:
    s = strategy("fedora40", systemd=False)
    st = s.parse_state(sections(s, **{"data-dir": data_dir, "pg-major": major,
                                      "pg_ctl": "running\n"}))
    assert (st.data_dir, st.data_version, st.installed_major) == expected
    assert st.active and st.enabled is None


def test_debian_takes_the_cluster_from_pg_lsclusters() -> None:
    s = strategy("debian12", systemd=False)
    st = s.parse_state(sections(
        s, dpkg="postgresql ii \npostgresql-contrib ii \npostgresql-15 ii \n",
        clusters="15  main    5432 online postgres /srv/pg/15 /var/log/postgresql/x.log\n",
        **{"data-dir": "missing\n", "pg-major": "15\n"}))
    assert (st.missing_packages, st.active, st.data_dir, st.data_version, st.installed_major) == \
        ([], True, "nonempty", 15, 15)


@pytest.mark.parametrize(("conf", "data_dir", "expected"), [
    # under systemd the cluster's postgresql.conf stands for pg_lsclusters' listing
    ("exists\n", "missing\n", ("nonempty", 15)),
    ("", "missing\n", ("missing", None)),
    ("", "empty\n", ("empty", None)),
    ("", "nonempty\n15\n", ("nonempty", 15)),
])
def test_debian_under_systemd_reads_the_cluster_conf_not_pg_lsclusters(
        conf: str, data_dir: str, expected: tuple[str, int | None]) -> None:
    s = strategy("debian12", systemd=True)
    script = SectionScript()
    s.add_state_sections(script)
    assert "pg_lsclusters" not in script.script
    assert "/etc/postgresql/15/main/postgresql.conf" in script.script
    st = s.parse_state(sections(
        s, dpkg="postgresql ii \npostgresql-contrib ii \npostgresql-15 ii \n",
        systemd="enabled\nactive\n",
        **{"cluster-conf": conf, "data-dir": data_dir, "pg-major": "15\n"}))
    assert (st.data_dir, st.data_version) == expected
    assert st.active and st.enabled


@pytest.mark.parametrize(("sample", "pg_version", "systemd", "psql"), [
    ("debian12", None, True, "/usr/lib/postgresql/15/bin/psql"),
    ("debian13", None, True, "/usr/lib/postgresql/17/bin/psql"),
    ("debian12", 17, True, "/usr/lib/postgresql/17/bin/psql"),
    ("fedora40", None, True, "/usr/bin/psql"),
    ("rocky9", 16, True, "/usr/pgsql-16/bin/psql"),
    ("arch", None, False, "/usr/bin/psql"),
])
def test_psql_is_the_servers_own_binary(sample: str, pg_version: int | None, systemd: bool,
                                         psql: str) -> None:
    s = strategy(sample, pg_version=pg_version, systemd=systemd)
    assert s.psql() == psql


@pytest.mark.parametrize(("sample", "pg_version", "pg_ctl"), [
    ("debian12", None, "/usr/lib/postgresql/15/bin/pg_ctl"),
    ("debian12", 17, "/usr/lib/postgresql/17/bin/pg_ctl"),
    ("fedora40", None, "pg_ctl"),  # /usr/bin, in PATH (the backup units name no folder)
    ("rocky9", 16, "/usr/pgsql-16/bin/pg_ctl"),  # PGDG: not in PATH, never linked there
    ("arch", None, "pg_ctl"),
])
def test_client_programs_of_the_managed_major(sample: str, pg_version: int | None,
                                              pg_ctl: str) -> None:
    assert strategy(sample, pg_version=pg_version).client("pg_ctl") == pg_ctl


def test_debian_psql_before_the_major_is_known_is_the_one_in_path() -> None:
    s = strategy("debian12")
    s.major = None
    assert s.psql() == "psql"


@pytest.mark.parametrize(("text", "major"), [
    ("postgres (PostgreSQL) 16.4", 16), ("postgres (PostgreSQL) 9.6.24", 9),
    ("postgres (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)", 15), ("17\n", 17), ("", None),
])
def test_parse_major(text: str, major: int | None) -> None:
    assert parse_major(text) == major


# --- the include line postgresql.conf needs for conf.d ---------------------------------------

STOCK = ("# comment\n#include_dir = '...'\t\t# include files ending in '.conf' from\n"
         "max_connections = 100\n")
OURS = f"{pgconf.INCLUDE_MARK}\n{pgconf.INCLUDE_LINE}\n"


@pytest.mark.parametrize(("before", "after"), [
    (STOCK, STOCK + OURS),                                   # appended once, nothing touched
    (STOCK + OURS, STOCK + OURS),                            # already last: unchanged
    (STOCK + OURS + "\n# later comment\n", STOCK + OURS + "\n# later comment\n"),
    (STOCK + OURS + "work_mem = 8MB\n", STOCK + "work_mem = 8MB\n" + OURS),  # ours moved
    (STOCK + "include_dir 'conf.d'   # admin's\n", STOCK + "include_dir 'conf.d'   # admin's\n"),
    (STOCK + "include_if_exists = 'conf.d/50-chatalot.conf'\n",
     STOCK + "include_if_exists = 'conf.d/50-chatalot.conf'\n"),
    (STOCK + "include_dir = 'conf.d'\nwork_mem = 8MB\n",        # someone's, not last: ours goes
     STOCK + "include_dir = 'conf.d'\nwork_mem = 8MB\n" + OURS),  # last, theirs stays
    ("max_connections = 100", "max_connections = 100\n" + OURS),  # no final newline
    ("", OURS),
])
def test_conf_d_include(before: str, after: str) -> None:
    assert pgconf.with_conf_d_include(before) == after
    assert pgconf.with_conf_d_include(after) == after
    assert pgconf.includes_conf_d_last(after)


# --- the steps' decisions from probed state ---------------------------------------------------

class NoTransport(Transport):
    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        raise AssertionError(f"nothing may run on the host here: {command}")


def no_probe(t: Transport, s: Strategy, config: HostConfig, names: list[str], *,
             login: bool = False) -> HostState:
    raise AssertionError("the host may not be probed here")


def context(sample: str, service: ServiceState | None, *, check: bool = False,
            pg_version: int | None = None, major: int | None = 15,
            prober: Prober = no_probe) -> HostContext:
    """A context with the facts of `sample`; the state probed as `service` (None: not yet
    probed, `prober` reads it)."""
    config = HostConfig(pg_version=pg_version, migrations_source=None)
    ctx = HostContext("h", NoTransport(), config, check=check, diff=False, prober=prober)
    f = facts(sample)
    s = distros.select(f, config)
    s.major = pg_version or major
    ctx.set_facts(f, s)
    if service is not None:
        ctx.set_state(HostState(service, None, None, None, None, None))
    return ctx


def init(ctx: HostContext) -> tuple[Status, str]:
    r = InitCluster().run(ctx)
    return r.status, r.reason


def test_init_leaves_an_existing_cluster_of_the_same_major() -> None:
    st = ServiceState([], True, True, data_dir="nonempty", data_version=15)
    assert init(context("fedora40", st)) == (Status.OK, "cluster in /var/lib/pgsql/data "
                                                        "(PostgreSQL 15)")
    assert init(context("debian12", st)) == (Status.OK, "the package created cluster 15/main")


def test_init_refuses_a_data_directory_of_another_major() -> None:
    st = ServiceState([], True, False, data_dir="nonempty", data_version=15)
    with pytest.raises(StepFailed, match="^" + re.escape(
            "/var/lib/postgres/data holds a PostgreSQL 15 cluster but the installed server is "
            "PostgreSQL 17: an upgrade needs pg_upgrade")) as e:
        init(context("arch", st, major=17))
    assert "postgresql-old-upgrade" in str(e.value)


def test_init_never_runs_on_a_directory_that_holds_data() -> None:
    st = ServiceState([], True, False, data_dir="nonempty", data_version=None)
    with pytest.raises(StepFailed, match=r"has no PG_VERSION.*initdb never runs"):
        init(context("fedora40", st))


@pytest.mark.parametrize(("sample", "data_dir", "reason"), [
    ("fedora40", "empty", "would initialise /var/lib/pgsql/data: postgresql-setup --initdb with "
     "PGSETUP_INITDB_OPTIONS=\"--auth-host=scram-sha-256 --auth-local=peer --encoding=UTF8 "
     "--locale=C.UTF-8\" (scram-sha-256 over TCP, not ident)"),
    ("arch", "missing", "would initialise /var/lib/postgres/data: initdb --locale=C.UTF-8 "
     "--encoding=UTF8 --data-checksums --auth-local=peer --auth-host=scram-sha-256 "
     "-D /var/lib/postgres/data as postgres"),
])
def test_init_in_check_mode_says_what_it_would_run(sample: str, data_dir: str,
                                                   reason: str) -> None:
    st = ServiceState([], True, False, data_dir=data_dir)
    assert init(context(sample, st, check=True)) == (Status.CHANGED, reason)


def test_init_in_check_mode_before_the_packages() -> None:
    missing = ServiceState(["postgresql"], True, False, data_dir="missing")
    assert init(context("arch", missing, check=True, major=None))[0] == Status.CHANGED
    assert init(context("debian12", missing, check=True)) == (
        Status.SKIPPED, "the package creates the cluster when it is installed")


def test_pinned_version_must_be_what_the_host_installs() -> None:
    st = ServiceState([], True, True, installed_major=17)
    with pytest.raises(StepFailed, match="^" + re.escape(
            "pg_version=16, but the Arch server this host installs is PostgreSQL 17: Arch "
            "packages only the current major (17): pacman cannot install another. Leave "
            "pg_version unset") + "$"):
        InstallPackages().run(context("arch", st, pg_version=16))
    ok = InstallPackages().run(context("arch", st, pg_version=17))
    assert ok.status == Status.OK


def test_the_host_s_major_wins_and_the_settings_are_planned_for_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ubuntu 24.04's table says 16; apt says 15 (the test bed's emulation): 15 it is."""
    probed: list[tuple[int | None, list[str], bool]] = []

    def probe(t: Transport, s: Strategy, config: HostConfig, names: list[str], *,
              login: bool = False) -> HostState:
        probed.append((s.major, names, login))
        return HostState(ServiceState([], True, True, installed_major=15), None, None, None,
                         None, None)

    def plan(config: HostConfig, facts: Any, major: int, caps: Any = None) -> dict[str, str]:
        return {f"for_{major}": "1"}

    monkeypatch.setattr(steps_base, "plan_settings", plan)
    ctx = context("ubuntu2404", None, major=16, prober=probe)
    ctx.plan_settings()
    assert ctx.wanted_settings == {"for_16": "1"}  # planned for the release table's guess
    assert ctx.state.service.installed_major == 15
    assert ctx.strategy.major == 15 and ctx.strategy.hba_path() == \
        "/etc/postgresql/15/main/pg_hba.conf"
    # read again with the new paths; the first read (both probes) tries the env file's login
    assert probed == [(16, ["for_16"], True), (15, ["for_15"], True)]
    assert ctx.wanted_settings == {"for_15": "1"}
    ctx.invalidate()
    assert ctx.state.service.installed_major == 15
    assert probed[-1] == (15, ["for_15"], False)  # later reads do not
    # pinned: the host's answer is compared (InstallPackages), never adopted
    probed.clear()
    pinned = context("arch", None, pg_version=16, prober=probe)
    assert pinned.state.service.installed_major == 15 and pinned.strategy.major == 16
    assert len(probed) == 1


def test_strategies_are_listed() -> None:
    assert list(distros.STRATEGIES) == [DebianStrategy, FedoraStrategy, ArchStrategy]


def test_debian_holds_only_postgresqls_start_and_only_while_its_install_runs(
        tmp_path: Path) -> None:
    """The policy-rc.d the install writes (run here with the path moved into tmp_path):
    invoke-rc.d and deb-systemd-invoke are told no (101) for postgresql* while the install
    shell lives, yes for anything else; it is gone when the install ends; a copy left by a
    killed install forbids nothing; someone else's policy-rc.d is left alone."""
    from installer.host.distros.debian import POLICY_RC_D, hold_start_script

    policy = tmp_path / "policy-rc.d"
    kept = tmp_path / "kept"
    probe = "\n".join(
        f"rc=0; {policy} {unit} start || rc=$?; echo {unit}=$rc"
        for unit in ("postgresql", "postgresql@15-main.service", "ssh"))
    probe += f"\ncp {policy} {kept}\n"
    script = hold_start_script("set -e\n" + probe).replace(POLICY_RC_D, str(policy))
    r = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=False)
    assert r.stdout.split() == ["postgresql=101", "postgresql@15-main.service=101", "ssh=0"], r
    assert not policy.exists()
    left = subprocess.run([str(kept), "postgresql", "start"], check=False)
    assert left.returncode == 0  # the install that wrote it is gone: nothing forbidden
    policy.write_text("#!/bin/sh\necho theirs\n")
    policy.chmod(0o755)
    r = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=False)
    assert r.stdout.split() == ["theirs", "postgresql=0", "theirs",
                                "postgresql@15-main.service=0", "theirs", "ssh=0"], r
    assert policy.read_text() == "#!/bin/sh\necho theirs\n"
