"""The benchmark's latency relay (real sockets on 127.0.0.1), the per-RTT figures and
table, and the inventory, known_hosts and ssh command line that route tools through it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench import run as run_module  # noqa: E402
from bench.hosts import (  # noqa: E402
    BenchBed,
    Endpoint,
    inventory_text,
    relay_known_hosts,
    routed_ssh_argv,
)
from bench.relay import LatencyRelay, RelayStats  # noqa: E402

RTT = 0.25
#: what a busy CI machine may add to a measured exchange (threads waking late)
SLACK = 0.2


class EchoServer:
    """Echoes what each connection sends; on the client's end of stream it notes the time
    and closes the connection."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.eof_at: list[float] = []
        self.threads: list[threading.Thread] = []
        self.conns: list[socket.socket] = []
        self.acceptor = threading.Thread(target=self._accept, name="echo-accept", daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            t = threading.Thread(target=self._echo, args=(conn,), name="echo-conn",
                                 daemon=True)
            self.threads.append(t)
            t.start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    self.eof_at.append(time.monotonic())
                    return
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def stop(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.stop()


@pytest.fixture
def relay(echo: EchoServer) -> Iterator[LatencyRelay]:
    with LatencyRelay.for_rtt("127.0.0.1", echo.port, RTT) as r:
        yield r
    assert not _relay_threads()


def _relay_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("LatencyRelay")]


def _connect(relay: LatencyRelay) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _idle(relay: LatencyRelay) -> RelayStats:
    """The relay's counts once its connections have ended (they end a delay after ours)."""
    deadline = time.monotonic() + 3
    while relay.stats().active and time.monotonic() < deadline:
        time.sleep(0.01)
    return relay.stats()


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < size:
        data = sock.recv(min(65536, size - got))
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def _closed(sock: socket.socket) -> bool:
    """Whether the other side ended the connection (an end of stream or a reset)."""
    sock.settimeout(2)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def _round_trip(sock: socket.socket, message: bytes = b"ping") -> float:
    started = time.monotonic()
    sock.sendall(message)
    assert _read_exactly(sock, len(message)) == message
    return time.monotonic() - started


# -- the relay ---------------------------------------------------------------------------

def test_a_round_trip_takes_one_rtt(relay: LatencyRelay) -> None:
    assert relay.port > 0 and relay.rtt == RTT
    with _connect(relay) as sock:
        first = _round_trip(sock)  # the connection's handshake is charged as well
        steady = [_round_trip(sock) for _ in range(3)]
    assert 2 * RTT <= first < 2.5 * RTT + SLACK  # the handshake's 1.5 RTT, then 1
    for seconds in steady:
        assert RTT <= seconds < RTT + SLACK
    stats = _idle(relay)
    assert (stats.connections, stats.active, stats.bytes_to_target,
            stats.bytes_from_target) == (1, 0, 16, 16)


def test_without_the_handshake_the_first_exchange_is_one_rtt(echo: EchoServer) -> None:
    with LatencyRelay("127.0.0.1", echo.port, RTT / 2, handshake=False) as relay, \
            _connect(relay) as sock:
        assert RTT <= _round_trip(sock) < RTT + SLACK


def test_messages_back_to_back_pay_the_rtt_once_and_keep_their_order(
        relay: LatencyRelay) -> None:
    messages = [f"message {i:02d};".encode() for i in range(20)]
    with _connect(relay) as sock:
        _round_trip(sock)
        started = time.monotonic()
        for m in messages:
            sock.sendall(m)
            time.sleep(0.003)  # each one its own chunk, with its own deadline
        got = _read_exactly(sock, sum(len(m) for m in messages))
        seconds = time.monotonic() - started
    assert got == b"".join(messages)
    assert RTT <= seconds < RTT + 0.06 + SLACK  # once, not 20 times


def test_two_megabytes_arrive_intact(relay: LatencyRelay) -> None:
    blob = os.urandom(2 * 1024 * 1024)
    with _connect(relay) as sock:
        sender = threading.Thread(target=sock.sendall, args=(blob,))
        started = time.monotonic()
        sender.start()
        got = _read_exactly(sock, len(blob))
        sender.join()
        seconds = time.monotonic() - started
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(blob).hexdigest()
    assert seconds < 5
    stats = _idle(relay)
    assert stats.bytes_to_target == stats.bytes_from_target == len(blob)


def test_end_of_stream_is_delayed_and_the_servers_close_reaches_the_client(
        relay: LatencyRelay, echo: EchoServer) -> None:
    with _connect(relay) as sock:
        _round_trip(sock)
        shut = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        rest = sock.recv(100)
        closed = time.monotonic()
    assert rest == b""
    assert len(echo.eof_at) == 1
    assert echo.eof_at[0] - shut >= RTT / 2 - 0.005
    assert closed - shut >= RTT - 0.005
    assert _idle(relay).active == 0
    assert not _relay_threads()[1:]  # only the relay's accepting thread is left


def test_stop_ends_open_connections_and_every_thread(echo: EchoServer) -> None:
    before = set(threading.enumerate())
    relay = LatencyRelay.for_rtt("127.0.0.1", echo.port, RTT).start()
    idle = _connect(relay)
    _round_trip(idle)
    waiting = _connect(relay)  # its connection to the target is not open yet
    waiting.sendall(b"queued")
    time.sleep(0.02)
    assert len(_relay_threads()) > 1
    started = time.monotonic()
    relay.stop()
    assert time.monotonic() - started < 1
    assert not _relay_threads()
    assert set(threading.enumerate()) - before <= set(echo.threads)
    for sock in (idle, waiting):
        assert _closed(sock)
        sock.close()
    assert relay.stats().active == 0
    relay.stop()  # twice is harmless


def test_an_unreachable_target_closes_the_clients_connection() -> None:
    spare = socket.create_server(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()  # nothing listens there now
    with LatencyRelay("127.0.0.1", port, 0.01) as relay, _connect(relay) as sock:
        assert _closed(sock)
    assert not _relay_threads()


# -- routing the tools through relays ------------------------------------------------------

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost"


@pytest.mark.parametrize(("endpoints", "host_lines"), [
    ({}, ["a ansible_host=10.0.0.2", "b ansible_host=10.0.0.3"]),
    ({"a": Endpoint("127.0.0.1", 40001), "b": Endpoint("127.0.0.1", 40002)},
     ["a ansible_host=127.0.0.1 ansible_port=40001",
      "b ansible_host=127.0.0.1 ansible_port=40002"]),
    ({"b": Endpoint("127.0.0.1", 40002)},
     ["a ansible_host=10.0.0.2", "b ansible_host=127.0.0.1 ansible_port=40002"]),
])
def test_inventory_names_each_hosts_endpoint(endpoints: dict[str, Endpoint],
                                             host_lines: list[str]) -> None:
    addresses = {"a": "10.0.0.2", "b": "10.0.0.3"}
    text = inventory_text(["a", "b"], {n: endpoints.get(n, Endpoint(a))
                                       for n, a in addresses.items()},
                          Path("/s/id_ed25519"), Path("/w/known_hosts"))
    assert text.splitlines() == ["[bench]", *host_lines, "[bench:vars]", "ansible_user=root",
                                 "ansible_ssh_private_key_file=/s/id_ed25519",
                                 "ansible_ssh_common_args='-o UserKnownHostsFile="
                                 "/w/known_hosts -o GlobalKnownHostsFile=/dev/null'"]


def test_known_hosts_lists_each_relay_with_its_hosts_key() -> None:
    known = f"10.0.0.2 {KEY}2\n10.0.0.3 {KEY}3\n10.0.0.4,other {KEY}4\n"
    out = relay_known_hosts(known, {"10.0.0.2": Endpoint("127.0.0.1", 40001),
                                    "10.0.0.4": Endpoint("127.0.0.1", 40003)})
    assert out.splitlines() == [f"10.0.0.2 {KEY}2", f"10.0.0.3 {KEY}3",
                                f"10.0.0.4,other {KEY}4",
                                f"[127.0.0.1]:40001 {KEY}2", f"[127.0.0.1]:40003 {KEY}4"]


def test_known_hosts_without_the_hosts_key_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.9"):
        relay_known_hosts(f"10.0.0.2 {KEY}\n", {"10.0.0.9": Endpoint("127.0.0.1", 1)})


def test_the_floors_ssh_goes_to_the_endpoint_with_its_known_hosts() -> None:
    argv = ["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=yes",
            "-o", "UserKnownHostsFile=/s/known_hosts", "-l", "root", "10.0.0.2"]
    assert routed_ssh_argv(argv, "10.0.0.2", Endpoint("10.0.0.2"), Path("/s/known_hosts")) \
        == argv
    assert routed_ssh_argv(argv, "10.0.0.2", Endpoint("127.0.0.1", 40001),
                           Path("/w/known_hosts")) == [
        "ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=yes",
        "-o", "UserKnownHostsFile=/w/known_hosts", "-l", "root", "-p", "40001", "127.0.0.1"]
    assert routed_ssh_argv(["ssh", "-l", "root", "10.0.0.2"], "10.0.0.2",
                           Endpoint("127.0.0.1", 40001), Path("/w/k")) == [
        "ssh", "-o", "UserKnownHostsFile=/w/k", "-l", "root", "-p", "40001", "127.0.0.1"]
    with pytest.raises(ValueError):
        routed_ssh_argv(argv, "10.0.0.3", Endpoint("127.0.0.1", 40001), Path("/w/k"))


# -- figures per RTT ----------------------------------------------------------------------

def _run(tool: str, kind: str, fleet: int, seconds: float, rtt: int | None,
         commands: int = 2, ok: bool = True) -> dict[str, Any]:
    run: dict[str, Any] = {
        "tool": tool, "kind": kind, "fleet": fleet, "seconds": seconds, "ok": ok,
        "machine_cpu_seconds": seconds / 2,
        "hosts": {"h": {"ssh": {"connections": 1, "commands": commands, "transfers": 0}}}}
    if rtt is not None:
        run["rtt_ms"] = rtt
    return run


RUNS = [
    _run("ours", "fresh", 1, 20.0, None, commands=40),  # records from before --rtt: 0 ms
    _run("ours", "noop", 1, 0.30, 0), _run("ours", "noop", 1, 0.34, 0),
    _run("ours", "noop", 1, 0.50, 50, commands=3), _run("ours", "noop", 1, 0.52, 50),
    _run("ours", "noop", 1, 9.0, 50, ok=False),
    _run("ansible", "fresh", 1, 60.0, 0), _run("ansible", "noop", 1, 6.0, 0),
    _run("ansible", "noop", 1, 9.0, 50),
]


@pytest.mark.parametrize(("rtts", "fresh_rtts", "keys"), [
    ([0], None, ["fresh_1", "noop_1"]),
    ([0, 50], [0], ["fresh_1", "noop_1", "noop_1@50ms"]),
    ([0, 50], [0, 50], ["fresh_1", "noop_1", "fresh_1@50ms", "noop_1@50ms"]),
    ([50], None, ["fresh_1@50ms", "noop_1@50ms"]),
])
def test_time_keys_per_rtt(rtts: list[int], fresh_rtts: list[int] | None,
                           keys: list[str]) -> None:
    assert report.time_keys([1], rtts, fresh_rtts) == keys


@pytest.mark.parametrize(("key", "tool", "value"), [
    ("noop_1", "ours", 0.32),
    ("fresh_1", "ours", 20.0),
    ("noop_1@50ms", "ours", 0.51),           # the failed run left out
    ("cpu_noop_1@50ms", "ours", 0.26),
    ("commands_noop", "ours", 2),
    ("commands_noop@50ms", "ours", 3),        # the first successful run at 50 ms
    ("commands_fresh", "ours", 40),
    ("connections_noop@50ms", "ours", 1),
    ("fresh_1@50ms", "ours", None),           # not measured
    ("noop_1@50ms", "ansible", 9.0),
    ("noop_1", "ansible", 6.0),
])
def test_figures_are_grouped_per_rtt(key: str, tool: str, value: float | None) -> None:
    fig = report.figures(RUNS, ["ours", "ansible"], [1], rtts=[0, 50])
    assert fig[tool][key] == value
    assert fig["ours"]["failed"] == ["noop_1@50ms"]


def test_figures_of_runs_without_rtt_keep_their_keys() -> None:
    zero = [r for r in RUNS if r.get("rtt_ms", 0) == 0]
    assert report.figures(zero, ["ours"], [1]) == \
        {"ours": {k: v for k, v in report.figures(RUNS, ["ours"], [1], [0, 50])["ours"].items()
                  if "@" not in k and k != "failed"} | {"failed": []}}


def test_ratios_and_round_trips_per_rtt() -> None:
    fig = report.figures(RUNS, ["ours", "ansible"], [1], rtts=[0, 50])
    rat = report.ratios(fig, [1], [0, 50], [0])
    assert rat["ours/ansible"] == {"fresh_1": 0.333, "noop_1": 0.053, "noop_1@50ms": 0.057}
    checks = report.round_trips(fig, [1], [0, 50])
    assert checks == [{"fleet": 1, "rtt_ms": 50, "seconds": 0.51, "base_seconds": 0.32,
                       "rtts_paid": 3.8, "connections": 1, "commands": 3}]


def test_the_rtt_table_puts_the_scenarios_side_by_side() -> None:
    fig = report.figures(RUNS, ["ours", "ansible"], [1], rtts=[0, 50])
    rat = report.ratios(fig, [1], [0, 50], [0])
    lines = report.rtt_table(fig, rat, [1], ["ours", "ansible"], [0, 50], [0]).splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == [
        "ours 0ms", "ours 50ms", "ansible 0ms", "ansible 50ms",
        "ours/ansible 0ms", "ours/ansible 50ms"]
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip())
                                               for line in lines[2:])}
    assert rows["no-op, 1 host"] == ["0.32s", "0.51s!", "6.00s", "9.00s", "0.05", "0.06"]
    assert rows["fresh, 1 host"] == ["20.0s", "-", "60.0s", "-", "0.33", "-"]
    assert rows["SSH commands/host, no-op"] == ["2", "3", "2", "2"]
    assert rows["machine CPU, no-op, 1 host"] == ["0.16s", "0.26s", "3.00s", "4.50s"]
    assert lines[-1].startswith("! a run of this scenario failed")


def test_round_trip_lines_put_the_time_next_to_the_round_trips() -> None:
    fig = report.figures(RUNS, ["ours", "ansible"], [1], rtts=[0, 50])
    assert report.round_trip_lines(report.round_trips(fig, [1], [0, 50])) == [
        "ours no-op, 1 host, 50 ms RTT: 0.51s = 0.32s at 0 ms + 3.8 RTTs; per host "
        "1 SSH connection(s) (each its handshake's round trips) and 3 command(s) "
        "(a round trip or more each, one after the other)"]
    only_50 = report.figures([r for r in RUNS if r.get("rtt_ms") == 50], ["ours"], [1], [50])
    assert report.round_trips(only_50, [1], [50])[0]["rtts_paid"] is None


# -- the run loop and the bed's routing (no host is booted) ---------------------------------

@pytest.mark.parametrize(("text", "rtts"), [
    ("0", [0]), ("50,0", [0, 50]), ("0, 50,150,50", [0, 50, 150]), ("20", [20]),
])
def test_parse_rtts(text: str, rtts: list[int]) -> None:
    assert run_module.parse_rtts(text) == rtts


@pytest.mark.parametrize("text", ["", "fast", "-5", "0,1.5"])
def test_parse_rtts_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="--rtt"):
        run_module.parse_rtts(text)


def _order(argv: list[str]) -> list[tuple[str, str, int, str, int]]:
    bench = run_module.Bench(run_module._parser().parse_args(argv))
    try:
        order = [t for t in ("ours", "floor", "ansible") if t in bench.tools]
        done: list[tuple[str, str, int, str, int]] = []
        bench._matrix(order, lambda tool, names, kind, rep, rtt: done.append(
            (tool, ",".join(n[-1] for n in names), rep, kind, rtt)))
        return done
    finally:
        os.rmdir(bench.work)


def test_the_smoke_run_is_unchanged_by_default() -> None:
    assert _order(["--smoke"]) == [
        ("ours", "1", 1, "fresh", 0), ("ours", "1", 1, "noop", 0),
        ("floor", "1", 1, "fresh", 0), ("floor", "1", 1, "noop", 0),
        ("ansible", "1", 1, "fresh", 0), ("ansible", "1", 1, "noop", 0)]


def test_each_rtt_reruns_the_noop_after_the_tools_own_fresh_run() -> None:
    assert _order(["--smoke", "--tools", "ours,floor", "--rtt", "50,0"]) == [
        ("ours", "1", 1, "fresh", 0), ("ours", "1", 1, "noop", 0), ("ours", "1", 1, "noop", 50),
        ("floor", "1", 1, "fresh", 0), ("floor", "1", 1, "noop", 0),
        ("floor", "1", 1, "noop", 50)]
    assert _order(["--smoke", "--tools", "ours", "--rtt", "0,50", "--rtt-fresh"]) == [
        ("ours", "1", 1, "fresh", 0), ("ours", "1", 1, "fresh", 50),
        ("ours", "1", 1, "noop", 0), ("ours", "1", 1, "noop", 50)]


def test_side_by_side_single_hosts_take_turns_at_each_rtt() -> None:
    assert _order(["--fleets", "1,2", "--tools", "ours,floor", "--rtt", "0,50",
                   "--noop-reps", "2", "--fresh-reps", "1"]) == [
        ("ours", "1", 1, "fresh", 0), ("floor", "2", 1, "fresh", 0),
        ("ours", "1", 1, "noop", 0), ("floor", "2", 1, "noop", 0),
        ("ours", "1", 1, "noop", 50), ("floor", "2", 1, "noop", 50),
        ("ours", "1", 2, "noop", 0), ("floor", "2", 2, "noop", 0),
        ("ours", "1", 2, "noop", 50), ("floor", "2", 2, "noop", 50),
        # the fleet of two: the order rotated
        ("floor", "1,2", 1, "fresh", 0), ("floor", "1,2", 1, "noop", 0),
        ("floor", "1,2", 1, "noop", 50), ("floor", "1,2", 2, "noop", 0),
        ("floor", "1,2", 2, "noop", 50),
        ("ours", "1,2", 1, "fresh", 0), ("ours", "1,2", 1, "noop", 0),
        ("ours", "1,2", 1, "noop", 50), ("ours", "1,2", 2, "noop", 0),
        ("ours", "1,2", 2, "noop", 50)]


class _FakeTestbed:
    """What BenchBed uses of the test bed to reach hosts, without any host."""

    def __init__(self, state: Path) -> None:
        self.hosts = {"h1": type("H", (), {"address": "10.0.0.2"})(),
                      "h2": type("H", (), {"address": "10.0.0.3"})()}
        self.key_path = state / "id_ed25519"
        self.known_hosts_path = state / "known_hosts"
        self.known_hosts_path.write_text(f"10.0.0.2 {KEY}2\n10.0.0.3 {KEY}3\n")

    def ssh_argv(self, name: str, user: str = "root") -> list[str]:
        return ["ssh", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts_path}", "-l", user,
                self.hosts[name].address]


def test_a_routed_bed_sends_every_tool_to_the_relays(tmp_path: Path) -> None:
    bed = object.__new__(BenchBed)
    bed.bed = _FakeTestbed(tmp_path)  # type: ignore[assignment]
    bed.names, bed.endpoints, bed.routed_known_hosts = ["h1", "h2"], {}, None
    direct = bed.write_inventory(["h1"], tmp_path / "direct.ini").read_text()
    assert "h1 ansible_host=10.0.0.2\n" in direct
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts'} " in direct

    routed_kh = tmp_path / "known_hosts-50ms"
    bed.route({"h1": Endpoint("127.0.0.1", 40001), "h2": Endpoint("127.0.0.1", 40002)},
              routed_kh)
    inventory = bed.write_inventory(["h1", "h2"], tmp_path / "routed.ini").read_text()
    assert "h1 ansible_host=127.0.0.1 ansible_port=40001\n" in inventory
    assert "h2 ansible_host=127.0.0.1 ansible_port=40002\n" in inventory
    assert f"UserKnownHostsFile={routed_kh} " in inventory
    assert routed_kh.read_text().splitlines()[2:] == [f"[127.0.0.1]:40001 {KEY}2",
                                                      f"[127.0.0.1]:40002 {KEY}3"]
    assert bed.tool_ssh_argv("h2") == [
        "ssh", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={routed_kh}",
        "-l", "root", "-p", "40002", "127.0.0.1"]
    assert bed.ssh_argv("h2")[-1] == "10.0.0.3"  # the benchmark's own commands: direct

    bed.route_direct()
    assert bed.write_inventory(["h1"], tmp_path / "again.ini").read_text() == direct
    assert bed.tool_ssh_argv("h1") == bed.ssh_argv("h1")
