"""Other majors' clusters: the probe section (run for real on a tree made here), its
parsing, and the decision preflight takes on it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from installer.host.clusters import Cluster, in_the_way, parse, section
from installer.steps.base import StepFailed
from installer.steps.preflight import Preflight
from tests.unit.stepkit import harness, said, state


def _conf(root: Path, rel: str, text: str, conf_d: str | None = None,
          pg_version: str | None = None) -> None:
    d = root / rel
    d.mkdir(parents=True)
    (d / "postgresql.conf").write_text(text)
    if conf_d is not None:
        (d / "conf.d").mkdir()
        (d / "conf.d" / "10-port.conf").write_text(conf_d)
    if pg_version is not None:
        (d / "PG_VERSION").write_text(pg_version + "\n")


def test_section_lists_other_majors_with_their_ports(tmp_path: Path) -> None:
    _conf(tmp_path, "etc/postgresql/15/main",
          "# port = 1\nport = 5432\t\t# (change requires restart)\n")
    _conf(tmp_path, "etc/postgresql/15/other", "port=5440\n", conf_d="port = '5441'\n")
    _conf(tmp_path, "etc/postgresql/17/main", "port = 5433\n")
    _conf(tmp_path, "var/lib/pgsql/data", "#port = 5432\n", pg_version="13")
    globs = (f"{tmp_path}/etc/postgresql/*/*/postgresql.conf",
             f"{tmp_path}/var/lib/pgsql/data/postgresql.conf",
             f"{tmp_path}/none/*/postgresql.conf")
    r = subprocess.run(["sh", "-c", section(globs, 17, "chat'prod", str(tmp_path))],
                       capture_output=True, text=True, check=True)
    assert r.stdout.splitlines() == [
        "15 main 5432 down ?", "15 other 5441 down ?",
        f"13 {tmp_path}/var/lib/pgsql/data 5432 down ?"]
    assert parse(r.stdout) == (Cluster(15, "main", 5432, False, None),
                               Cluster(15, "other", 5441, False, None),
                               Cluster(13, f"{tmp_path}/var/lib/pgsql/data", 5432, False, None))
    every = subprocess.run(["sh", "-c", section(globs, None, "x", str(tmp_path))],
                           capture_output=True, text=True, check=True)
    assert "17 main 5433 down ?" in every.stdout.splitlines()
    own = f"{tmp_path}/var/lib/pgsql/data/postgresql.conf"  # the managed cluster's: left out
    mine = subprocess.run(["sh", "-c", section(globs, None, "x", str(tmp_path), own=own)],
                          capture_output=True, text=True, check=True)
    assert [line.split()[0] for line in mine.stdout.splitlines()] == ["15", "15", "17"]


def test_nothing_listed_and_no_process_on_a_host_with_the_wanted_major_only(
        tmp_path: Path) -> None:
    _conf(tmp_path, "etc/postgresql/15/main", "port = 5432\n")
    r = subprocess.run(["sh", "-xc", section((f"{tmp_path}/etc/postgresql/*/*/postgresql.conf",),
                                             15, "chatalot")],
                       capture_output=True, text=True, check=True)
    assert r.stdout == ""
    assert "sed" not in r.stderr and "cat" not in r.stderr  # no process started


def test_parse_running_and_holding() -> None:
    assert parse("15 main 5432 up 1\n16 main 5433 up 0\n14 main 5434 up ?\n13 x 5 down 1\n"
                 "garbage\n12 main port up 1\n") == (
        Cluster(15, "main", 5432, True, True), Cluster(16, "main", 5433, True, False),
        Cluster(14, "main", 5434, True, None), Cluster(13, "x", 5, False, None))


OLD = Cluster(15, "main", 5432, True, True)


@pytest.mark.parametrize(("found", "major", "here", "start"), [
    ((), 17, False, None),
    ((OLD,), 17, False, "database chat_prod lives in PostgreSQL 15's cluster (main, port 5432, "
                        "running) and this run wants PostgreSQL 17"),
    ((OLD,), 17, True, None),
    ((OLD,), None, False, None),
    ((Cluster(15, "main", 5432, True, False),), 17, False,
     "port 5432 (pg_port) belongs to PostgreSQL 15's cluster (main, running)"),
    ((Cluster(15, "main", 5432, False, None),), 17, False,
     "port 5432 (pg_port) belongs to PostgreSQL 15's cluster (main, stopped)"),
    ((Cluster(15, "main", 5440, True, False),), 17, False, None),
], ids=["none", "database in the old major", "database in ours", "major unknown",
        "port taken", "port of a stopped one", "another port, no database"])
def test_in_the_way(found: tuple[Cluster, ...], major: int | None, here: bool,
                    start: str | None) -> None:
    why = in_the_way(found, major, 5432, "chat_prod", here)
    if start is None:
        assert why is None
    else:
        assert why is not None and why.startswith(start), why
        assert "Nothing was changed. Set pg_version=15" in why


def test_the_old_major_names_the_way_forward() -> None:
    why = in_the_way((OLD,), 17, 5432, "chat_prod", False)
    assert why is not None
    assert why.endswith("or upgrade it to 17 first (chatalot-db upgrade --to 17)")


def test_preflight_stops_on_a_cluster_of_another_major() -> None:
    h = harness("debian12", before=state(sql=None), major=17)
    assert h.ctx.state.other_clusters == ()
    h.ctx.set_state(state(sql=None))
    st = h.ctx.state
    object.__setattr__(st, "other_clusters", (OLD,))
    with pytest.raises(StepFailed, match=r"^database chatalot lives in PostgreSQL 15's cluster"):
        h.run(Preflight())
    assert h.host.calls == []


@pytest.mark.parametrize(("answering", "outcome"), [
    (150004, "refused"), (170002, "ok"), (None, "ok")])
def test_preflight_stops_when_another_major_answers_on_pg_port(
        answering: int | None, outcome: str) -> None:
    sql = {"server_version_num": answering, "database": None, "role": None}
    h = harness("debian12", before=state(sql=sql), major=17)
    if outcome == "refused":
        with pytest.raises(StepFailed, match=r"^port 5432 \(pg_port\) is answered by "
                                             r"PostgreSQL 15, and this run wants PostgreSQL 17"):
            h.run(Preflight())
    else:
        assert said(h.run(Preflight())) == ("ok", "no database chatalot yet")


def test_a_newer_major_holding_the_database_is_never_called_an_upgrade() -> None:
    newer = Cluster(17, "main", 5432, True, True)
    why = in_the_way((newer,), 15, 5432, "chat_prod", False)
    assert why is not None
    assert "Set pg_version=17 to keep managing that cluster" in why
    assert "upgrade it to 15" not in why
    assert why.endswith("chatalot-db upgrade --rollback returns to an older cluster an "
                        "upgrade kept)")


@pytest.mark.parametrize(("conf", "dropin", "socket", "expected"), [
    ("port = 5433\n", None, False, "5433"),
    ("#port = 5433\nport=5440 # moved\n", "port = '5441'\n", False, "5441"),
    ("listen_addresses = '*'\n", None, False, "5432"),
    ("port = 5433\n", None, True, ""),  # something listens on pg_port: not read
    (None, None, False, ""),  # no configuration yet
])
def test_own_port_section(tmp_path: Path, conf: str | None, dropin: str | None, socket: bool,
                          expected: str) -> None:
    import socket as so
    import subprocess

    from installer.host.clusters import own_port_section

    cdir = tmp_path / "etc" / "17" / "main"
    (cdir / "conf.d").mkdir(parents=True)
    if conf is not None:
        (cdir / "postgresql.conf").write_text(conf)
    if dropin is not None:
        (cdir / "conf.d" / "50-x.conf").write_text(dropin)
    sockets = tmp_path / "run"
    sockets.mkdir()
    listening = so.socket(so.AF_UNIX)
    try:
        if socket:
            listening.bind(str(sockets / ".s.PGSQL.5432"))
        script = own_port_section(str(cdir / "postgresql.conf"), 5432, str(sockets))
        out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    finally:
        listening.close()
    assert out.stdout.strip() == expected


@pytest.mark.parametrize(("configured", "why"), [
    (None, None), (5432, None),
    (5433, "the cluster this run manages listens on port 5433 (/etc/postgresql/15/main/"
           "postgresql.conf and its conf.d), not on pg_port 5432: set pg_port=5433 for this "
           "host (DATABASE_URL then carries it), or change the port in that file"),
])
def test_wrong_port(configured: int | None, why: str | None) -> None:
    from installer.host.clusters import wrong_port

    assert wrong_port(5432, configured, "/etc/postgresql/15/main/postgresql.conf") == why
