"""Secrets and exposure on the test bed's real hosts (systemd as PID 1, real SSH).

- Remote access only when asked: `pg_listen='*'` with `pg_allowed_cidrs` gives hostssl
  rules (scram-sha-256) and SSL with a certificate generated on the host; this machine
  logs in over SSL, and is refused without it.
- During a whole fresh run, with `log_statement = all`, the password is in no command line
  (sampled on the host and here every 50 ms), no output, report, log file, `--diff`, and
  not in PostgreSQL's log.

Each test leaves its host as a fresh copy (bed.reset). Needs root: CI runs it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.desired import envfile
from tests.integration.conftest import host_of_kind
from tests.integration.helpers import inventory, run_apply

pytestmark = pytest.mark.testbed


def _password(bed: Any, host: str, user: str = "chatalot") -> str:
    text = bed.ssh(host, "cat /etc/chatalot/database.env", check=True).stdout
    password = envfile.password_from_url(envfile.read_url(text), user)
    assert password, text
    return password


def _psql_remote(address: str, password: str, sslmode: str, sql: str
                 ) -> subprocess.CompletedProcess[str]:
    """psql from this machine (the control side) to the host, password in the environment."""
    conninfo = (f"host={address} port=5432 sslmode={sslmode} user=chatalot dbname=chatalot "
                "connect_timeout=10")
    return subprocess.run(["psql", conninfo, "-X", "-At", "-w", "-c", sql],
                          env=dict(os.environ, PGPASSWORD=password), capture_output=True,
                          text=True, check=False, timeout=60)


@pytest.fixture(scope="module")
def remote(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """debian12 provisioned with remote access for this machine's test-bed network."""
    tmp = tmp_path_factory.mktemp("remote")
    host = host_of_kind(bed, "debian12")
    address = bed.hosts[host].address
    network = str(ipaddress.ip_network(f"{address}/16", strict=False))  # 10.199.0.0/16
    inv = inventory(bed, tmp / "remote.ini", {host: "root"}, pg_listen="'*'",
                    pg_allowed_cidrs=network)
    out: dict[str, Any] = {"host": host, "address": address, "network": network, "inv": inv}
    start = time.monotonic()
    out["run1"] = run_apply(inv, tmp / "run1.json")
    out["run2"] = run_apply(inv, tmp / "run2.json")
    out["seconds"] = time.monotonic() - start
    try:
        yield out
    finally:
        bed.reset(host)  # back to a default (loopback-only) host for the other tests


def test_remote_access_converges(remote: dict[str, Any]) -> None:
    p, doc = remote["run1"]
    assert p.returncode == 0, p.stdout + p.stderr
    steps = {s["name"]: s for s in doc["hosts"][remote["host"]]["steps"]}
    settings = steps["configure postgresql.conf"]["reason"]
    assert "generated" in settings and "chatalot-server.crt" in settings, settings
    assert remote["network"] in steps["configure pg_hba.conf"]["reason"] or \
        steps["configure pg_hba.conf"]["status"] == "changed"
    p2, doc2 = remote["run2"]
    assert p2.returncode == 0, p2.stdout + p2.stderr
    assert doc2["hosts"][remote["host"]]["changed"] == 0, p2.stdout


def test_certificate_and_rules_on_the_host(bed: Any, remote: dict[str, Any]) -> None:
    host = remote["host"]
    sql = ("select current_setting('ssl'), current_setting('ssl_cert_file'), "
           "current_setting('ssl_key_file'), current_setting('data_directory')")
    r = bed.ssh(host, f"runuser -u postgres -- psql -XAtc \"{sql}\"", check=True)
    ssl, cert, key, datadir = r.stdout.strip().split("|")
    assert (ssl, cert, key) == ("on", "chatalot-server.crt", "chatalot-server.key")
    meta = bed.ssh(host, f"stat -c '%a %U' {datadir}/chatalot-server.key "
                   f"{datadir}/chatalot-server.crt", check=True).stdout.split("\n")
    assert meta[:2] == ["600 postgres", "644 postgres"]
    subject = bed.ssh(host, f"openssl x509 -noout -subject -in {datadir}/chatalot-server.crt",
                      check=True).stdout
    assert f"CN = {host}" in subject or f"CN={host}" in subject
    rules = bed.ssh(host, "runuser -u postgres -- psql -XAtc \"select type, database[1], "
                    "user_name[1], address || '/' || netmask, auth_method from pg_hba_file_rules "
                    "where 'chatalot' = any(user_name)\"", check=True).stdout.split()
    net = ipaddress.ip_network(remote["network"])
    assert f"hostssl|chatalot|chatalot|{net.network_address}/{net.netmask}|scram-sha-256" \
        in rules, rules
    assert all(r.split("|")[0] in ("host", "hostssl") and r.endswith("scram-sha-256")
               for r in rules), rules
    assert all(r.split("|")[3].startswith(("127.", "::1")) for r in rules
               if r.startswith("host|")), rules


def test_this_machine_logs_in_over_ssl_only(bed: Any, remote: dict[str, Any]) -> None:
    password = _password(bed, remote["host"])
    ok = _psql_remote(remote["address"], password, "require",
                      "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()")
    assert (ok.returncode, ok.stdout.strip()) == (0, "chatalot|t"), ok.stderr
    plain = _psql_remote(remote["address"], password, "disable", "select 1")
    assert plain.returncode != 0
    assert "no pg_hba.conf entry" in plain.stderr and "no encryption" in plain.stderr, \
        plain.stderr
    wrong = _psql_remote(remote["address"], password + "x", "require", "select 1")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr


# -- secrets during a whole fresh run ----------------------------------------------------

HOST_SAMPLER = ('while :; do cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "; echo; '
                'sleep 0.05; done')


class ControlSampler(threading.Thread):
    """Every process's command line on this machine, every 50 ms (unique lines kept)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[str] = set()
        self.samples = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for proc in Path("/proc").iterdir():
                if proc.name.isdigit():
                    with contextlib.suppress(OSError):
                        self.seen.add((proc / "cmdline").read_bytes().replace(b"\0", b" ")
                                      .decode(errors="replace"))
            self.samples += 1
            time.sleep(0.05)


@pytest.fixture(scope="module")
def sampled(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("secrets")
    host = host_of_kind(bed, "debian13")
    bed.reset(host)
    inv = inventory(bed, tmp / "secrets.ini", {host: "root"},
                    pg_settings="{'log_statement': 'all'}")
    host_argv = tmp / "host-argv.txt"
    control = ControlSampler()
    with host_argv.open("w") as sink:
        sampler = subprocess.Popen([*bed.ssh_argv(host), HOST_SAMPLER], stdout=sink,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        control.start()
        try:
            time.sleep(1)
            start = time.monotonic()
            p, doc = run_apply(inv, tmp / "report.json", "--diff", "--log-dir",
                               str(tmp / "logs"))
            seconds = time.monotonic() - start
            time.sleep(0.5)
        finally:
            control.stop.set()
            sampler.terminate()
            sampler.wait(timeout=30)
            control.join(timeout=30)
    out: dict[str, Any] = {
        "host": host, "tmp": tmp, "p": p, "doc": doc, "seconds": seconds,
        "host_argv": host_argv.read_text(errors="replace"), "control": control,
        "report": (tmp / "report.json").read_text(),
        "logs": {f.name: f.read_text() for f in (tmp / "logs").iterdir()},
    }
    out["password"] = _password(bed, host)
    out["pglog"] = bed.ssh(host, "cat /var/log/postgresql/postgresql-*-main.log",
                           check=True).stdout
    try:
        yield out
    finally:
        bed.reset(host)  # log_statement = all stays on this copy only


def test_fresh_run_succeeds_with_statement_logging(sampled: dict[str, Any]) -> None:
    p = sampled["p"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert sampled["doc"]["hosts"][sampled["host"]]["changed"] > 5
    # PostgreSQL's log really holds every statement, the role's creation included
    assert 'statement: CREATE ROLE "chatalot"' in sampled["pglog"]
    assert "SCRAM-SHA-256$" in sampled["pglog"]  # the verifier, never the password


def test_password_appears_nowhere(sampled: dict[str, Any]) -> None:
    password = sampled["password"]
    assert len(password) >= 32
    control: ControlSampler = sampled["control"]
    host_lines = sampled["host_argv"].splitlines()
    # the samplers really saw the run: apply here, its commands there
    assert control.samples > 20 and any("installer apply" in c for c in control.seen)
    assert len(host_lines) > 20 and any("psql" in line for line in host_lines)
    places: dict[str, str] = {
        "host argv samples": sampled["host_argv"],
        "control argv samples": "\n".join(control.seen),
        "stdout (with --diff)": sampled["p"].stdout,
        "stderr": sampled["p"].stderr,
        "JSON report": sampled["report"],
        "PostgreSQL log (log_statement=all)": sampled["pglog"],
        **{f"--log-dir {name}": text for name, text in sampled["logs"].items()},
    }
    assert "--- /dev/null" in sampled["p"].stdout  # --diff printed the new files
    for where, text in places.items():
        assert password not in text, f"the password is in the {where}"


def test_env_file_role_and_database_are_closed(bed: Any, sampled: dict[str, Any]) -> None:
    host = sampled["host"]
    meta = bed.ssh(host, "stat -c '%a %U %G' /etc/chatalot/database.env", check=True)
    assert meta.stdout.strip() == "600 root root"
    sql = ("select rolsuper, rolcreatedb, rolcreaterole, "
           "has_database_privilege('public', 'chatalot', 'CONNECT') "
           "from pg_roles where rolname = 'chatalot'")
    r = bed.ssh(host, f"runuser -u postgres -- psql -XAtc \"{sql}\"", check=True)
    assert r.stdout.strip() == "f|f|f|f"


def test_timings(remote: dict[str, Any], sampled: dict[str, Any]) -> None:
    print(f"\nremote access: two runs in {remote['seconds']:.1f}s; "
          f"sampled fresh run {sampled['seconds']:.1f}s, "
          f"{sampled['control'].samples} control samples, "
          f"{len(sampled['host_argv'].splitlines())} host samples")
    assert json.loads(sampled["report"])["hosts"]


# --- path variables that name files not ours --------------------------------------------------

ROLE_SECRET = "select rolpassword from pg_authid where rolname = 'chatalot'"
FOREIGN = "API_KEY=foreign-app-key-1234\nOTHER_SETTING=keep-me\n"
WATCHED = ("/etc/passwd", "/etc/shadow", "/etc/chatalot/app.conf", "/etc/chatalot/database.env")


@pytest.fixture(scope="module")
def foreign(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """debian12 provisioned, plus a file of another app beside our env file and a symlink
    to /etc/passwd; then apply with db_env_file pointing at each (check mode with --diff,
    and real runs)."""
    tmp = tmp_path_factory.mktemp("foreign")
    host = host_of_kind(bed, "debian12")
    bed.reset(host)
    base = inventory(bed, tmp / "base.ini", {host: "root"})
    p, _ = run_apply(base, tmp / "base.json")
    assert p.returncode == 0, p.stdout + p.stderr
    bed.ssh(host, f"printf {FOREIGN!r} > /etc/chatalot/app.conf; chmod 0640 "
                  "/etc/chatalot/app.conf; ln -sfn /etc/passwd /etc/chatalot/link.env",
            check=True)

    def sums() -> str:
        return str(bed.ssh(host, f"sha256sum {' '.join(WATCHED)}; stat -c '%n %a %U %h' "
                                 f"{' '.join(WATCHED)}", check=True).stdout)

    def secret() -> str:
        return str(bed.ssh(host, f'runuser -u postgres -- psql -XAtc "{ROLE_SECRET}"',
                           check=True).stdout)

    before = {"sums": sums(), "secret": secret(),
              "shadow": bed.ssh(host, "cat /etc/shadow", check=True).stdout}
    runs: dict[str, tuple[subprocess.CompletedProcess[str], dict[str, Any]]] = {}
    for name, path in [("passwd", "/etc/passwd"), ("shadow", "/etc/shadow"),
                       ("app", "/etc/chatalot/app.conf"), ("link", "/etc/chatalot/link.env")]:
        inv = inventory(bed, tmp / f"{name}.ini", {host: "root"}, db_env_file=path)
        for mode in ("check", "run"):
            extra = ("--check", "--diff") if mode == "check" else ("--diff",)
            runs[f"{name}-{mode}"] = run_apply(inv, tmp / f"{name}-{mode}.json", *extra)
    after = {"sums": sums(), "secret": secret()}
    rerun = run_apply(base, tmp / "rerun.json")
    try:
        yield {"host": host, "before": before, "after": after, "runs": runs, "rerun": rerun}
    finally:
        bed.reset(host)


@pytest.mark.parametrize("name", ["passwd", "shadow"])
def test_system_files_as_env_file_are_refused_before_the_host_is_contacted(
        foreign: dict[str, Any], name: str) -> None:
    for mode in ("check", "run"):
        p, doc = foreign["runs"][f"{name}-{mode}"]
        assert p.returncode == 2, p.stdout + p.stderr
        steps = doc["hosts"][foreign["host"]]["steps"]
        assert [s["name"] for s in steps] == ["check variables"], steps
        assert steps[0]["reason"].startswith(f"db_env_file '/etc/{name}' is a system file")


@pytest.mark.parametrize(("name", "found"), [
    ("app", "/etc/chatalot/app.conf holds API_KEY, OTHER_SETTING and no postgres:// "
            "DATABASE_URL"),
    ("link", "/etc/chatalot/link.env is a symbolic link"),
])
def test_a_file_not_ours_fails_the_host_before_the_role_changes(
        foreign: dict[str, Any], name: str, found: str) -> None:
    for mode in ("check", "run"):
        p, doc = foreign["runs"][f"{name}-{mode}"]
        assert p.returncode == 2, p.stdout + p.stderr
        host = doc["hosts"][foreign["host"]]
        failed = [s for s in host["steps"] if s["status"] == "failed"]
        assert [s["name"] for s in failed] == ["create role chatalot"], host["steps"]
        assert failed[0]["reason"].startswith(found), failed[0]["reason"]
        assert "changes nothing of the role" in failed[0]["reason"]
        assert host["changed"] == 0


def test_nothing_was_touched_and_nothing_of_them_printed(foreign: dict[str, Any]) -> None:
    """passwd, shadow, the other app's file and our env file are byte for byte as before
    (same mode, owner, link count); the role's password is unchanged; no run printed a
    line of them."""
    assert foreign["after"]["sums"] == foreign["before"]["sums"]
    assert foreign["after"]["secret"] == foreign["before"]["secret"]
    shadow_hashes = [f for line in foreign["before"]["shadow"].splitlines()
                     for f in [line.split(":")[1]] if len(f) > 2]
    for key, (p, doc) in foreign["runs"].items():
        shown = p.stdout + p.stderr + json.dumps(doc)
        for text in ("foreign-app-key-1234", "keep-me", "root:x:0:0", "/usr/sbin/nologin",
                     *shadow_hashes):
            assert text not in shown, f"{key} printed {text!r}"


def test_the_host_still_converges_with_its_own_env_file(foreign: dict[str, Any]) -> None:
    p, doc = foreign["rerun"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert doc["hosts"][foreign["host"]]["changed"] == 0
