"""`chatalot-db apply` over SSH on the other distribution families, on LAYOUT EMULATIONS.

The Fedora and Arch package repositories cannot be reached from the test machines,
so the `fedora` and `arch` hosts are NOT Fedora and Arch: they are Debian 12 with
those distributions' real /etc/os-release and stand-ins for `dnf` (with `rpm -q` and
Fedora's `postgresql-setup`) and `pacman` that accept the real command lines, record
each in /var/log/chatalot-emulated-pkg.log, and lay Debian's PostgreSQL 15 out as
Fedora and Arch do: binaries in /usr/bin, an empty data directory, no cluster, a
`postgresql.service` like the distribution's that refuses an empty data directory,
and Fedora's `initdb --auth=ident` default (testbed/emulations.py lists what is and
is not emulated). Everything after the package step is real.

The `ubuntu` host is an os-release emulation: Debian 12 with Ubuntu 24.04's
os-release. Its apt is Debian 12's, whose `postgresql` depends on postgresql-15, where
Ubuntu 24.04's depends on postgresql-16. With pg_version unset the Debian strategy
follows what apt says over its os-release table, so this host gets PostgreSQL 15, and
that is what is expected here (the table's 16 shows only before apt can tell: check
mode on a fresh host).

The `alpine` host (Debian with Alpine's os-release) must fail with a clear message in
the same run in which the others succeed.

The `*-pgctl` hosts are the same emulations reached through a second sshd that runs in
a PID namespace of its own, where PID 1 is sshd, not systemd: apply must then run the
cluster with `pg_ctl -D DATADIR` as postgres, and say so.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import cli, run_apply, wait_port

pytestmark = pytest.mark.testbed

EMULATED = ("fedora", "arch", "ubuntu")
PGCTL = ("fedora-pgctl", "arch-pgctl")
PROVISIONED = (*EMULATED, *PGCTL)
UNSUPPORTED = "alpine"
HOSTS = (*PROVISIONED, UNSUPPORTED)
#: every emulation gets Debian 12's PostgreSQL (see the module docstring)
PG_MAJOR = 15
DATA_DIR = {"fedora": "/var/lib/pgsql/data", "arch": "/var/lib/postgres/data",
            "ubuntu": "/var/lib/postgresql/15/main"}
PKG_LOG = "/var/log/chatalot-emulated-pkg.log"
NOSYSTEMD_PORT = 2222
#: a second sshd whose sessions see a PID namespace where PID 1 is sshd, not systemd; a
#: cron daemon runs in it (systemd's own cron service is stopped: one cron per host)
NOSYSTEMD_SSHD = (
    "systemctl disable --now --quiet cron && "
    "systemd-run --unit=chatalot-nosystemd-sshd unshare --pid --fork --mount-proc "
    f"sh -c 'cron && exec /usr/sbin/sshd -D -p {NOSYSTEMD_PORT} -o PidFile=none'"
)


def kind(host: str) -> str:
    return host.split("-")[0]


@pytest.fixture(scope="module")
def hosts(bed: Any) -> Iterator[Any]:
    """The emulations, booted beside the session's Debian hosts (which keep running), and
    removed again after this module (the session's inventory lists only its own hosts)."""
    start = time.monotonic()
    bed.up(list(HOSTS), add=True)
    print(f"\nemulation hosts up in {time.monotonic() - start:.1f}s: {bed.timings}")
    try:
        for h in PGCTL:
            bed.ssh(h, NOSYSTEMD_SSHD, check=True)
            wait_port(bed.hosts[h].address, NOSYSTEMD_PORT)
        yield bed
    finally:
        bed.remove(list(HOSTS))


def _inventory(bed: Any, path: Path) -> Path:
    """Every host as root; the *-pgctl ones through the sshd without systemd (same host key)."""
    known = bed.known_hosts_path.read_text()
    extra = []
    for h in PGCTL:
        address = bed.hosts[h].address
        key = next(line.split(None, 1)[1] for line in known.splitlines()
                   if line.split()[0] == address)
        extra.append(f"[{address}]:{NOSYSTEMD_PORT} {key}")
    kh = path.with_suffix(".known_hosts")
    kh.write_text(known + "\n".join(extra) + "\n")
    lines = ["[db]"]
    for h in HOSTS:
        port = f" ansible_port={NOSYSTEMD_PORT}" if h in PGCTL else ""
        lines.append(f"{h} ansible_host={bed.hosts[h].address}{port}")
    lines += ["[db:vars]", "ansible_user=root", f"ansible_ssh_private_key_file={bed.key_path}",
              f"ansible_ssh_common_args='-o UserKnownHostsFile={kh}'"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def runs(hosts: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("distros")
    inv = _inventory(hosts, tmp / "hosts.ini")
    out: dict[str, Any] = {"tmp": tmp, "inv": inv}
    for run in ("first", "second"):
        start = time.monotonic()
        out[run] = run_apply(inv, tmp / f"{run}.json")
        seconds = {h: out[run][1]["hosts"][h]["seconds"] for h in HOSTS}
        print(f"\n{run} apply: {time.monotonic() - start:.1f}s; per host: {seconds}")
    return out


def _steps(doc: dict[str, Any], host: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in doc["hosts"][host]["steps"]}


def _sql(bed: Any, host: str, sql: str) -> str:
    r = bed.ssh(host, f"cd / && runuser -u postgres -- psql -XAtc {_quote(sql)}")
    assert r.returncode == 0, r.stderr
    return str(r.stdout.strip())


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def test_first_apply_provisions_every_emulation_and_fails_only_alpine(
        runs: dict[str, Any]) -> None:
    p, doc = runs["first"]
    assert p.returncode == 2, p.stdout + p.stderr  # a host failed: alpine
    for h in PROVISIONED:
        c = doc["hosts"][h]
        assert (c["failed"], c["unreachable"], c["state"]) == (0, 0, "done"), c
        assert c["changed"] >= 8, c


def test_alpine_fails_with_what_was_found_and_what_is_supported(runs: dict[str, Any]) -> None:
    for run in ("first", "second"):
        p, doc = runs[run]
        alpine = doc["hosts"][UNSUPPORTED]
        assert (alpine["failed"], alpine["state"]) == (1, "failed")
        assert [s["name"] for s in alpine["steps"]] == ["gather facts"]
        reason = alpine["steps"][0]["reason"]
        assert reason.startswith("unsupported distribution: Alpine Linux v3.20 (ID=alpine, "
                                 "ID_LIKE=-); supported, by ID or ID_LIKE in /etc/os-release: ")
        for family in ("Debian/Ubuntu (", "Fedora/RHEL (", "Arch ("):
            assert family in reason
        assert "unsupported distribution: Alpine Linux" in p.stdout
        assert re.search(rf"{UNSUPPORTED}\s+: ok=0\s+changed=0\s+unreachable=0\s+failed=1",
                         p.stdout)


def test_second_apply_changes_nothing(runs: dict[str, Any]) -> None:
    p, doc = runs["second"]
    assert p.returncode == 2, p.stdout + p.stderr  # alpine, again
    for h in PROVISIONED:
        c = doc["hosts"][h]
        assert (c["changed"], c["failed"]) == (0, 0), c
        assert re.search(rf"{h}\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", p.stdout)


def test_verify_passes_on_every_family(runs: dict[str, Any]) -> None:
    """The testinfra suite (`chatalot-db verify`) passes on every provisioned emulation,
    with and without systemd."""
    p = cli("verify", "-i", str(runs["inv"]), "-l", ",".join(PROVISIONED))
    assert p.returncode == 0, p.stdout + p.stderr
    for h in PROVISIONED:
        assert f"test_database_url_logs_in_over_tcp[{h}] PASSED" in p.stdout, p.stdout


@pytest.mark.parametrize("host", PROVISIONED)
def test_database_url_logs_in_over_tcp_with_the_password(hosts: Any, runs: dict[str, Any],
                                                         host: str) -> None:
    """On the Fedora emulation too: its postgresql-setup would have made host lines ident."""
    del runs
    r = hosts.ssh(host, "set -a; . /etc/chatalot/database.env; psql \"$DATABASE_URL\" -XAtc "
                        "\"select current_user, inet_server_addr() is not null, "
                        "current_setting('server_version_num')::int / 10000\"")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"chatalot|t|{PG_MAJOR}"
    wrong = hosts.ssh(host, "psql postgres://chatalot:wrong@localhost:5432/chatalot -XAtc "
                            "'select 1'")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr


@pytest.mark.parametrize("host", PROVISIONED)
def test_no_ident_and_no_trust_rules(hosts: Any, runs: dict[str, Any], host: str) -> None:
    del runs
    methods = _sql(hosts, host, "select distinct type || ' ' || auth_method "
                                "from pg_hba_file_rules order by 1").splitlines()
    assert methods == ["host scram-sha-256", "local peer"]


def test_emulated_dnf_recorded_the_real_command_lines(hosts: Any, runs: dict[str, Any]) -> None:
    del runs
    for host in ("fedora", "fedora-pgctl"):
        lines = hosts.ssh(host, f"cat {PKG_LOG}", check=True).stdout.splitlines()
        changes = [ln for ln in lines if not ln.startswith("rpm -q ")]
        assert changes == [
            "dnf install -y postgresql-server postgresql-contrib",
            "PGSETUP_INITDB_OPTIONS=--auth-host=scram-sha-256 --auth-local=peer --encoding=UTF8 "
            "--locale=C.UTF-8 postgresql-setup --initdb",
        ], lines
        assert "rpm -q postgresql-server postgresql-contrib" in lines


def test_emulated_pacman_recorded_the_real_command_lines(hosts: Any,
                                                         runs: dict[str, Any]) -> None:
    del runs
    for host in ("arch", "arch-pgctl"):
        lines = hosts.ssh(host, f"cat {PKG_LOG}", check=True).stdout.splitlines()
        assert [ln for ln in lines if ln != "pacman -Q postgresql"] == [
            "pacman -S --needed --noconfirm postgresql"], lines


@pytest.mark.parametrize("host", ("fedora", "arch", "fedora-pgctl", "arch-pgctl"))
def test_config_in_the_data_directory_with_one_include_at_the_end(
        hosts: Any, runs: dict[str, Any], host: str) -> None:
    del runs
    dd = DATA_DIR[kind(host)]
    assert _sql(hosts, host, "show config_file") == f"{dd}/postgresql.conf"
    assert _sql(hosts, host, "show hba_file") == f"{dd}/pg_hba.conf"
    r = hosts.ssh(host, f"tail -n 1 {dd}/postgresql.conf; grep -c '^include_dir' "
                        f"{dd}/postgresql.conf; stat -c '%U %a' {dd}/conf.d "
                        f"{dd}/conf.d/50-chatalot.conf; ls {dd}/postgresql.conf.chatalot-db.bak",
                  check=True)
    assert r.stdout.splitlines() == [
        "include_dir = 'conf.d'", "1", "postgres 700", "postgres 644",
        f"{dd}/postgresql.conf.chatalot-db.bak"]
    # our drop-in is what is in force
    src = _sql(hosts, host, "select sourcefile from pg_settings where name = 'shared_buffers'")
    assert src == f"{dd}/conf.d/50-chatalot.conf"


@pytest.mark.parametrize("host", ("fedora", "arch"))
def test_initdb_options(hosts: Any, runs: dict[str, Any], host: str) -> None:
    del runs
    got = _sql(hosts, host, "select pg_encoding_to_char(encoding), datcollate from pg_database "
                            "where datname = 'template1'")
    assert got == "UTF8|C.UTF-8"
    # Arch: --data-checksums as docs/distros.md's initdb line says; Fedora: postgresql-setup's
    assert _sql(hosts, host, "show data_checksums") == ("on" if host == "arch" else "off")


@pytest.mark.parametrize("host", ("fedora", "arch"))
def test_service_enabled_and_active_under_systemd(hosts: Any, runs: dict[str, Any],
                                                  host: str) -> None:
    _, doc = runs["first"]
    assert _steps(doc, host)["enable postgresql at boot"]["reason"] == \
        "enabled and started postgresql (systemctl enable --now)"
    r = hosts.ssh(host, "systemctl is-enabled postgresql; systemctl is-active postgresql")
    assert r.stdout.split() == ["enabled", "active"], r.stdout + r.stderr


@pytest.mark.parametrize("host", EMULATED)
def test_with_systemd_a_timer_schedules_the_nightly_dump(runs: dict[str, Any],
                                                         host: str) -> None:
    reason = _steps(runs["first"][1], host)["schedule backups"]["reason"]
    assert reason.startswith("scheduled pg_dump of chatalot *-*-* 03:00:00 (+ up to 1h, fixed "
                             "per host), systemd timer chatalot-db-backup-chatalot.timer")


@pytest.mark.parametrize("host", PGCTL)
def test_without_systemd_pg_ctl_runs_the_cluster_and_the_steps_say_so(
        hosts: Any, runs: dict[str, Any], host: str) -> None:
    dd = DATA_DIR[kind(host)]
    log = dd.rsplit("/", 1)[0] + "/pg_ctl.log"
    tool = f"pg_ctl -D {dd} as postgres (log {log})"
    _, first = runs["first"]
    steps = _steps(first, host)
    assert "no systemd (PID 1 is sshd)" in steps["gather facts"]["reason"]
    enable = steps["enable postgresql at boot"]
    assert enable["status"] == "skipped"
    assert enable["reason"] == ("no systemd as PID 1 (PID 1 is sshd): nothing to enable; the "
                                f"cluster is managed with {tool}")
    assert steps["start postgresql"]["reason"] == f"started with {tool}"
    # the nightly dump: cron runs it, at a minute of the hour the machine-id gives
    backups = steps["schedule backups"]
    assert backups["status"] == "changed", backups
    assert backups["reason"].startswith("scheduled pg_dump of chatalot daily at 03:")
    assert "(cron, spread by machine-id), kept 7 days in /var/backups/chatalot" in \
        backups["reason"]
    # the tuning needs a restart: pg_ctl restart did it
    assert "PostgreSQL restarted" in steps["configure postgresql.conf"]["reason"]
    _, second = runs["second"]
    assert _steps(second, host)["start postgresql"]["reason"] == f"running (managed with {tool})"
    # systemd's unit was never used; the server runs under pg_ctl, logging where it said
    r = hosts.ssh(host, f"systemctl is-enabled postgresql; systemctl is-active postgresql; "
                        f"test -s {log} && echo log")
    assert r.stdout.split() == ["disabled", "inactive", "log"], r.stdout + r.stderr


def test_ubuntu_emulation_follows_apt_not_the_os_release_table(runs: dict[str, Any]) -> None:
    """Ubuntu 24.04's table entry is 16; this emulation's apt (Debian 12's) installs 15."""
    _, first = runs["first"]
    steps = _steps(first, "ubuntu")
    assert steps["gather facts"]["reason"].startswith("Ubuntu 24.04.1 LTS;")
    assert "debian strategy" in steps["gather facts"]["reason"]
    # the drop-in went into the cluster apt really made (15), not the table's guess (16)
    assert steps["install postgresql"]["reason"] == (
        "installed postgresql postgresql-contrib (PostgreSQL 15); its settings written before "
        "its first start (/etc/postgresql/15/main/conf.d/50-chatalot.conf)")
    assert steps["initialise the cluster"]["reason"] == "the package created cluster 15/main"
    assert steps["configure postgresql.conf"]["status"] == "ok"  # started once: no restart
    _, second = runs["second"]
    again = _steps(second, "ubuntu")
    # the release table's guess (16) is only a guess: the state probe asks apt, 15 wins
    assert "PostgreSQL 16 (the release's default; the host's packages confirm it)" in \
        again["gather facts"]["reason"]
    assert again["install postgresql"]["reason"] == \
        "installed: postgresql postgresql-contrib (PostgreSQL 15)"
    assert again["configure postgresql.conf"]["status"] == "ok"


def test_ubuntu_emulation_cluster_under_systemd(hosts: Any, runs: dict[str, Any]) -> None:
    del runs
    r = hosts.ssh("ubuntu", "systemctl is-enabled postgresql; "
                            "systemctl is-active postgresql@15-main; pg_lsclusters -h")
    words = r.stdout.split()
    assert words[:2] == ["enabled", "active"] and words[2:6] == ["15", "main", "5432", "online"]


def test_a_removed_include_line_is_put_back(hosts: Any, runs: dict[str, Any]) -> None:
    """Drift: postgresql.conf lost our include (and the server restarted without it)."""
    dd = DATA_DIR["fedora"]
    hosts.ssh("fedora", f"sed -i '$d' {dd}/postgresql.conf && systemctl restart postgresql",
              check=True)
    assert _sql(hosts, "fedora", "show shared_buffers") == "128MB"  # the default again
    p, doc = run_apply(runs["inv"], runs["tmp"] / "drift.json", "-l", "fedora")
    assert p.returncode == 0, p.stdout + p.stderr
    reason = _steps(doc, "fedora")["configure postgresql.conf"]["reason"]
    assert "shared_buffers" in reason and "PostgreSQL restarted" in reason
    assert reason.endswith(f"{dd}/postgresql.conf now includes conf.d/")
    r = hosts.ssh("fedora", f"tail -n 2 {dd}/postgresql.conf; grep -c '^include_dir' "
                            f"{dd}/postgresql.conf", check=True)
    assert r.stdout.splitlines()[1:] == ["include_dir = 'conf.d'", "1"]
    p, doc = run_apply(runs["inv"], runs["tmp"] / "drift-again.json", "-l", "fedora")
    assert p.returncode == 0 and doc["hosts"]["fedora"]["changed"] == 0, p.stdout


# -- last: these break the hosts they run on ------------------------------------------------

def _ssh_without_systemd(bed: Any, runs: dict[str, Any], host: str, command: str) -> str:
    """Run a command through the *-pgctl host's sshd without systemd (where pg_ctl's
    server runs: its PID namespace)."""
    kh = runs["inv"].with_suffix(".known_hosts")
    argv = [a if not a.startswith("UserKnownHostsFile=") else f"UserKnownHostsFile={kh}"
            for a in bed.ssh_argv(host)]
    done = subprocess.run([*argv[:-1], "-p", str(NOSYSTEMD_PORT), argv[-1], command],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_data_directory_of_another_major_is_never_initialised(
        hosts: Any, runs: dict[str, Any]) -> None:
    """PG_VERSION says 14, the server is 15: stop with pg_upgrade named, touch nothing."""
    host, dd = "fedora-pgctl", DATA_DIR["fedora"]
    stop = f"cd / && runuser -u postgres -- pg_ctl -D {dd} -m fast stop"
    _ssh_without_systemd(hosts, runs, host, f"{stop} && echo 14 > {dd}/PG_VERSION")
    before = hosts.ssh(host, f"ls -A {dd} | sort; md5sum {dd}/postgresql.conf", check=True)
    inv = runs["inv"]
    p, doc = run_apply(inv, runs["tmp"] / "other-major.json", "-l", host)
    assert p.returncode == 2, p.stdout + p.stderr
    init = _steps(doc, host)["initialise the cluster"]
    assert init["status"] == "failed"
    assert init["reason"].startswith(
        f"{dd} holds a PostgreSQL 14 cluster but the installed server is PostgreSQL 15: an "
        "upgrade needs pg_upgrade")
    assert hosts.ssh(host, f"ls -A {dd} | sort; md5sum {dd}/postgresql.conf").stdout == \
        before.stdout
    lines = hosts.ssh(host, f"cat {PKG_LOG}", check=True).stdout.splitlines()
    assert sum("postgresql-setup" in ln for ln in lines) == 1  # the first run's only


def test_data_directory_with_data_but_no_pg_version_is_never_initialised(
        hosts: Any, runs: dict[str, Any]) -> None:
    host, dd = "arch-pgctl", DATA_DIR["arch"]
    stop = f"cd / && runuser -u postgres -- pg_ctl -D {dd} -m fast stop"
    _ssh_without_systemd(hosts, runs, host,
                         f"{stop} && mv {dd}/PG_VERSION /var/lib/postgres/PG_VERSION.away")
    p, doc = run_apply(runs["inv"], runs["tmp"] / "no-version.json", "-l", host)
    assert p.returncode == 2, p.stdout + p.stderr
    init = _steps(doc, host)["initialise the cluster"]
    assert init["status"] == "failed" and "initdb never runs on a directory that holds data" \
        in init["reason"]
    assert hosts.ssh(host, f"test -d {dd}/base && test ! -e {dd}/PG_VERSION").returncode == 0
