"""A TCP relay that adds network latency in user space (no netem qdisc needed).

`LatencyRelay(target_host, target_port, one_way)` listens on 127.0.0.1 (an ephemeral
port unless told otherwise) and forwards each accepted connection to the target. Every
chunk of bytes, in each direction, is delivered `one_way` seconds after the relay read
it: a chunk read at t leaves at t + one_way, and the chunks behind it queue with their
own deadlines, so a stream keeps its order and its throughput and pays the delay once,
not once per chunk. An end of stream (a half-close) is passed on after the same delay,
and a connection is closed once both directions have ended (or at once, both sides, on
an error or on stop()).

TCP's own handshake happens on the loopback, so the client's connect() returns at once.
To charge the round trip a real path would cost there, the relay opens its connection to
the target 3 x one_way after accepting (`handshake=True`, the default): the client's
first bytes then reach the target 1.5 RTT after its connect() and the target's first
bytes reach the client 2 RTT after it, as they would over a path with that RTT.

What it does not model: loss, jitter, bandwidth limits, and the timing of TCP's
acknowledgements (each side is acknowledged by the relay's kernel, nearby, not by the
far end: a sender that Nagle's algorithm holds back until its last small segment is
acknowledged waits for the loopback's ACK, not for a round trip of the path). The relay
itself sets TCP_NODELAY on both of its sockets.

Standard library only: a thread accepts, and each connection has a reader and a writer
thread per direction.
"""

from __future__ import annotations

import collections
import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

CHUNK = 65536


@dataclass(frozen=True)
class RelayStats:
    """What a relay carried so far: connections accepted (and open now), bytes delivered."""

    connections: int
    active: int
    bytes_to_target: int
    bytes_from_target: int

    def to_json(self) -> dict[str, int]:
        return {"connections": self.connections, "active": self.active,
                "bytes_to_target": self.bytes_to_target,
                "bytes_from_target": self.bytes_from_target}

    def __sub__(self, before: RelayStats) -> RelayStats:
        """What was carried between two readings (`active` as of the later one)."""
        return RelayStats(self.connections - before.connections, self.active,
                          self.bytes_to_target - before.bytes_to_target,
                          self.bytes_from_target - before.bytes_from_target)


class _Pipe:
    """One direction of one connection: chunks with their delivery deadlines."""

    def __init__(self, max_buffer: int) -> None:
        self.cond = threading.Condition()
        self.queue: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self.buffered = 0
        self.max_buffer = max_buffer
        self.closed = False

    def put(self, deadline: float, data: bytes | None) -> bool:
        """Queue a chunk (None: end of stream); False once the pipe is closed. Waits while
        max_buffer bytes are queued, so a slow receiver slows the sender down."""
        with self.cond:
            while data and self.buffered >= self.max_buffer and not self.closed:
                self.cond.wait()
            if self.closed:
                return False
            self.queue.append((deadline, data))
            self.buffered += len(data or b"")
            self.cond.notify_all()
            return True

    def take_due(self) -> tuple[bytes, bool] | None:
        """The bytes whose deadline has come (joined) and whether the end of stream came
        with them; waits for the first deadline. None once the pipe is closed."""
        with self.cond:
            while True:
                if self.closed:
                    return None
                if self.queue:
                    wait = self.queue[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self.cond.wait(wait)
                else:
                    self.cond.wait()
            parts: list[bytes] = []
            eof = False
            now = time.monotonic()
            while self.queue and self.queue[0][0] <= now:
                _, data = self.queue.popleft()
                if data is None:
                    eof = True
                    break
                parts.append(data)
            out = b"".join(parts)
            self.buffered -= len(out)
            self.cond.notify_all()
            return out, eof

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.queue.clear()
            self.buffered = 0
            self.cond.notify_all()


class _Link:
    """One relayed connection: the client's socket, the target's, two pipes, four threads."""

    def __init__(self, relay: LatencyRelay, client: socket.socket, accepted: float,
                 number: int) -> None:
        self.relay = relay
        self.client = client
        self.target: socket.socket | None = None
        self.accepted = accepted
        self.name = f"LatencyRelay-{relay.port}-{number}"
        self.up = _Pipe(relay.max_buffer)
        self.down = _Pipe(relay.max_buffer)
        self.aborted = threading.Event()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.running = 0

    # -- threads ------------------------------------------------------------------------
    def start(self) -> None:
        self._spawn(lambda: self._read(self.client, self.up), "up-read")
        self._spawn(self._connect_then_write_up, "up-write")

    def _spawn(self, work: Callable[[], None], role: str) -> None:
        def body() -> None:
            try:
                work()
            finally:
                self._exited()
        thread = threading.Thread(target=body, name=f"{self.name}-{role}", daemon=True)
        with self.lock:
            self.running += 1
            self.threads.append(thread)
        thread.start()

    def _exited(self) -> None:
        with self.lock:
            self.running -= 1
            last = self.running == 0
        if last:  # no thread of this link uses the sockets any more: close them
            for sock in (self.client, self.target):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            self.relay._forget(self)

    def _read(self, sock: socket.socket, pipe: _Pipe) -> None:
        while True:
            try:
                data = sock.recv(CHUNK)
            except OSError:
                self.abort()
                return
            if not pipe.put(time.monotonic() + self.relay.one_way, data or None) or not data:
                return

    def _write(self, sock: socket.socket, pipe: _Pipe) -> None:
        to_target = pipe is self.up
        while True:
            due = pipe.take_due()
            if due is None:
                return
            data, eof = due
            try:
                if data:
                    sock.sendall(data)
                    self.relay._count(to_target, len(data))
                if eof:
                    sock.shutdown(socket.SHUT_WR)
            except OSError:
                self.abort()
                return
            if eof:
                return

    def _connect_then_write_up(self) -> None:
        relay = self.relay
        if relay.handshake and self.aborted.wait(
                max(0.0, self.accepted + 3 * relay.one_way - time.monotonic())):
            return
        try:
            target = socket.create_connection((relay.target_host, relay.target_port),
                                              timeout=relay.connect_timeout)
            target.settimeout(None)
            target.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            self.abort()
            return
        with self.lock:
            self.target = target
        if self.aborted.is_set():
            self._shutdown(target)
            return
        self._spawn(lambda: self._read(target, self.down), "down-read")
        self._spawn(lambda: self._write(self.client, self.down), "down-write")
        self._write(target, self.up)

    # -- ending -------------------------------------------------------------------------
    def abort(self) -> None:
        """End the connection now, both sides (queued bytes are dropped)."""
        self.aborted.set()
        self.up.close()
        self.down.close()
        with self.lock:
            socks = [s for s in (self.client, self.target) if s is not None]
        for sock in socks:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.lock:
                pending = [t for t in self.threads if t.is_alive()]
            if not pending:
                return
            for t in pending:
                t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if deadline is not None and time.monotonic() >= deadline:
                return


class LatencyRelay:
    """Forwards TCP connections to (target_host, target_port), each direction delayed by
    one_way seconds (see the module docstring). `port` is the listening port once started.
    """

    def __init__(self, target_host: str, target_port: int, one_way: float, *,
                 listen_host: str = "127.0.0.1", listen_port: int = 0,
                 handshake: bool = True, connect_timeout: float = 10.0,
                 max_buffer: int = 16 << 20) -> None:
        if one_way < 0:
            raise ValueError(f"one_way must be >= 0, got {one_way}")
        self.target_host = target_host
        self.target_port = target_port
        self.one_way = one_way
        self.listen_host = listen_host
        self.handshake = handshake
        self.connect_timeout = connect_timeout
        self.max_buffer = max_buffer
        self.port = listen_port
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._connections = 0
        self._to_target = 0
        self._from_target = 0

    @classmethod
    def for_rtt(cls, target_host: str, target_port: int, rtt: float, *,
                handshake: bool = True) -> LatencyRelay:
        """A relay for a round-trip time of rtt seconds (one_way = rtt / 2)."""
        return cls(target_host, target_port, rtt / 2, handshake=handshake)

    @property
    def rtt(self) -> float:
        return 2 * self.one_way

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> Self:
        if self._listener is not None:
            raise RuntimeError("the relay is already started")
        listener = socket.create_server((self.listen_host, self.port), backlog=128)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping.clear()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name=f"LatencyRelay-{self.port}-accept")
        self._acceptor.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop accepting, end every open connection (both sides) and wait for the threads."""
        if self._listener is None:
            return
        self._stopping.set()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._listener = self._wake_r = self._wake_w = None
        self._acceptor = None
        with self._lock:
            links = list(self._links)
        for link in links:
            link.abort()
        for link in links:
            link.join(timeout)

    def __enter__(self) -> Self:
        return self if self._listener is not None else self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- counting -------------------------------------------------------------------------
    def stats(self) -> RelayStats:
        with self._lock:
            return RelayStats(self._connections, len(self._links), self._to_target,
                              self._from_target)

    def _count(self, to_target: bool, delivered: int) -> None:
        with self._lock:
            if to_target:
                self._to_target += delivered
            else:
                self._from_target += delivered

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    # -- accepting ------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        listener, wake = self._listener, self._wake_r
        assert listener is not None and wake is not None
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ)
            sel.register(wake, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in sel.select():
                    if key.fileobj is wake or self._stopping.is_set():
                        return
                    try:
                        client, _ = listener.accept()
                    except OSError:
                        continue
                    accepted = time.monotonic()
                    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    with self._lock:
                        self._connections += 1
                        link = _Link(self, client, accepted, self._connections)
                        self._links.add(link)
                    link.start()
