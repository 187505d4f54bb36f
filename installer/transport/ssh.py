"""SSH transport: one Fabric/paramiko connection per host, reused by every step.

Host keys are verified against known_hosts. Unlike Fabric's own Connection
(which auto-adds unknown keys), an unknown key is refused unless the user
asked for --accept-new-host-keys, and a changed key is always refused.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import paramiko
from fabric import Connection

from installer.errors import BecomeError, ChatalotError, HostKeyError, UnreachableError, UsageError
from installer.transport.base import HeldCommand, Result, Transport
from installer.transport.shell import sh


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown host keys, or accept and record them (accept-new)."""

    def __init__(self, accept_new: bool, record_in: Path) -> None:
        self.accept_new = accept_new
        self.record_in = record_in

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        if not self.accept_new:
            raise HostKeyError(
                f"host key for {hostname} is not in known_hosts ({self.record_in}); "
                f"its {key.get_name()} key is {fingerprint(key)}. Verify it, then add it "
                f"(ssh-keyscan {hostname.strip('[]').split(']:')[0]} >> {self.record_in}) "
                "or rerun with --accept-new-host-keys"
            )
        self.record_in.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.record_in, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


def ssh_options(common_args: str) -> dict[str, str]:
    """`-o Key=Value` options from ansible_ssh_common_args (keys lower-cased)."""
    out: dict[str, str] = {}
    words = shlex.split(common_args or "")
    i = 0
    while i < len(words):
        w = words[i]
        opt = None
        if w == "-o" and i + 1 < len(words):
            opt, i = words[i + 1], i + 2
        elif w.startswith("-o") and len(w) > 2:
            opt, i = w[2:], i + 1
        else:
            i += 1
        if opt:
            key, _, value = opt.replace(" ", "=", 1).partition("=")
            out[key.strip().lower()] = value.strip()
    return out


def _port(value: object) -> int | None:
    """ansible_port (or -o Port=) as a port number; a clear error for anything else."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"ansible_port must be a port number (1-65535), got {value!r}")
    return int(text)


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class QuickAckSocket:
    """A socket that acknowledges what it receives at once (Linux TCP_QUICKACK, re-armed
    after every read: the kernel drops back to delayed ACKs by itself).

    sshd leaves Nagle on for commands without a terminal, so a small packet it sends
    behind an unacknowledged one waits for our ACK, which the kernel delays up to 40 ms
    when we have nothing to send: right after login (its host-keys notice and debug
    message) that cost 45 ms before the first command could start. Measured on the test
    bed: opening the first channel 48 ms -> 6 ms.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._quick = getattr(socket, "TCP_QUICKACK", None)
        self._rearm()

    def _rearm(self) -> None:
        if self._quick is not None:
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.IPPROTO_TCP, self._quick, 1)

    def recv(self, size: int, *flags: int) -> bytes:
        data = self._sock.recv(size, *flags)
        self._rearm()
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class SSHTransport(Transport):
    """Runs commands over one SSH connection; become via sudo (or runuser as root)."""

    def __init__(self, name: str, conn: Connection, become_password: str | None) -> None:
        super().__init__()
        self.name = name
        self.conn = conn
        self.become_password = become_password
        if conn.user == "root":  # known without asking the host (`id -u`): a round trip less
            self._uid = 0
        self._lock = threading.Lock()

    @classmethod
    def from_hostvars(cls, name: str, hostvars: Mapping[str, Any], *,
                      accept_new_host_keys: bool = False, become_password: str | None = None,
                      connect_timeout: float = 15.0) -> SSHTransport:
        """Connect now (one connection for the whole run), verifying the host key."""
        opts = ssh_options(str(hostvars.get("ansible_ssh_common_args", "")))
        host = str(hostvars.get("ansible_host", name))
        port = _port(hostvars.get("ansible_port") or opts.get("port"))
        user = hostvars.get("ansible_user") or opts.get("user")
        key = hostvars.get("ansible_ssh_private_key_file") or opts.get("identityfile")
        connect_kwargs: dict[str, Any] = {"auth_timeout": connect_timeout,
                                          "banner_timeout": connect_timeout}
        if key:
            connect_kwargs["key_filename"] = [os.path.expanduser(str(key))]
        password = hostvars.get("ansible_password") or hostvars.get("ansible_ssh_pass")
        if password:
            connect_kwargs["password"] = str(password)
        conn = Connection(
            host, user=str(user) if user else None, port=port,
            connect_timeout=int(connect_timeout), connect_kwargs=connect_kwargs,
        )
        known = opts.get("userknownhostsfile") or conn.ssh_config.get("userknownhostsfile")
        known_path = Path(os.path.expanduser(str(known).split()[0] if known else
                                             "~/.ssh/known_hosts"))
        client = conn.client
        client.set_missing_host_key_policy(KnownHostsPolicy(accept_new_host_keys, known_path))
        for path in {Path(os.path.expanduser("~/.ssh/known_hosts")), known_path}:
            if path.is_file():
                client.load_system_host_keys(str(path))
        if opts.get("stricthostkeychecking", "").lower() == "no":
            pass  # deliberately ignored: we never turn host-key checking off
        target = f"{conn.user}@{conn.host}:{conn.port}"
        try:
            if conn.gateway is None:
                # our own socket, so that TCP_NODELAY holds from the first packet: with
                # Nagle, each small handshake/auth message behind an unacknowledged one
                # waited out the server's delayed ACK (40 ms, twice per connection)
                sock = socket.create_connection((conn.host, conn.port), timeout=connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.connect_kwargs["sock"] = QuickAckSocket(sock)
            conn.open()
        except HostKeyError:
            raise
        except paramiko.BadHostKeyException as e:
            raise HostKeyError(
                f"host key for {conn.host} has CHANGED (now {e.key.get_name()} "
                f"{fingerprint(e.key)}, known_hosts has {fingerprint(e.expected_key)}): "
                "refusing to connect. If the host was reinstalled, remove the old key with "
                f"`ssh-keygen -R {conn.host}` and verify the new one"
            ) from None
        except paramiko.AuthenticationException as e:
            raise UnreachableError(f"authentication failed for {target}: {e}") from None
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise UnreachableError(f"cannot connect to {target}: {e or type(e).__name__}") \
                from None
        inventory_pass = hostvars.get("ansible_become_password") or \
            hostvars.get("ansible_become_pass")
        if become_password is None and inventory_pass:
            become_password = str(inventory_pass)
        t = cls(name, conn, become_password)
        try:
            if _truthy(hostvars.get("ansible_become", False)) or not t.is_root:
                t._check_become()
        except BaseException:
            t.close()
            raise
        return t

    # -- become --------------------------------------------------------------
    def _become_prefix(self, user: str) -> str:
        if self.become_password is not None:
            return sh("sudo", "-S", "-p", "", "-H", "-u", user, "--")
        return sh("sudo", "-n", "-H", "-u", user, "--")

    def _stdin_preamble(self) -> bytes:
        if self.become_password is None:
            return b""
        return self.become_password.encode() + b"\n"

    def _check_become(self) -> None:
        """Prove sudo works once, so a wrong password never eats a command's stdin."""
        cmd, pre = self.wrap("true", "root")
        r = self._exec(cmd, pre or None, 60)
        if not r.ok:
            raise BecomeError.sudo_failed(self.name, str(self.conn.user),
                                          password_given=self.become_password is not None,
                                          sudo_output=r.stderr)

    # -- running -------------------------------------------------------------
    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        return self._on_channel(command, stdin, timeout)

    def _stream(self, command: str, stdin: Iterable[bytes], sink: Callable[[bytes], None],
                timeout: float | None) -> Result:
        return self._on_channel(command, stdin, timeout, sink)

    def _on_channel(self, command: str, stdin: bytes | Iterable[bytes] | None,
                    timeout: float | None, sink: Callable[[bytes], None] | None = None
                    ) -> Result:
        """`command` on a session channel of its own (see _drive); a lost link is
        UnreachableError."""
        transport = self.conn.client.get_transport()
        if transport is None or not transport.is_active():
            raise UnreachableError(f"connection to {self.name} is closed")
        chan = self._open_session(transport)
        try:
            return self._drive(chan, command, stdin, timeout, sink)
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise UnreachableError(f"connection to {self.name} lost: {e}") from None
        finally:
            chan.close()

    def _drive(self, chan: paramiko.Channel, command: str,
               stdin: bytes | Iterable[bytes] | None, timeout: float | None,
               sink: Callable[[bytes], None] | None = None) -> Result:
        """Run `command` on `chan`: stdin (bytes, or pieces sent as they come) fed from a
        thread, stdout collected (or handed to `sink` piece by piece), stderr drained."""
        chan.exec_command(f"/bin/sh -c {shlex.quote(command)}")
        if stdin is not None and (not isinstance(stdin, bytes) or stdin):
            writer = threading.Thread(target=self._feed, args=(chan, stdin), daemon=True)
            writer.start()
        else:
            chan.shutdown_write()
        out: list[bytes] = []
        err: list[bytes] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        # Read until the server's EOF, not until the exit status: sshd may send the exit
        # status before the last of the output, which would then be lost. Blocking reads
        # (paramiko wakes them the moment data or EOF arrives: no polling delay), stderr
        # on a thread of its own; no select() on the channel: its wake-up pipe races with
        # the channel closing.
        done = threading.Event()
        drainer = threading.Thread(target=_drain_stderr, args=(chan, err, done), daemon=True)
        chan.settimeout(_POLL)
        drainer.start()
        try:
            while True:
                try:
                    data = chan.recv(65536)
                except TimeoutError:
                    if deadline is not None and time.monotonic() > deadline:
                        return Result(124, _text(out),
                                      _text(err) + f"\ntimed out after {timeout}s")
                    if not transport_active(chan) and not chan.recv_ready():
                        break  # the link dropped: told apart below
                    continue
                if not data:
                    break  # EOF: all of stdout is in
                if sink is None:
                    out.append(data)
                else:
                    sink(data)
        finally:
            done.set()
            drainer.join(5)
        # the exit status follows EOF closely; a closed channel without one gives -1
        left = 30.0 if deadline is None else max(1.0, deadline - time.monotonic())
        if not chan.status_event.wait(left):
            return Result(124, _text(out), _text(err) + "\nno exit status after EOF")
        code = chan.recv_exit_status()
        if code == -1 and _dropped(chan):
            # paramiko closes a dropped connection's channels with no exit status (-1):
            # the command's fate is unknown, which is not the command failing
            raise EOFError("the SSH connection dropped while the command ran")
        return Result(code, _text(out), _text(err))

    def _spawn(self, command: str, stdin: bytes) -> HeldCommand:
        transport = self.conn.client.get_transport()
        if transport is None or not transport.is_active():
            raise UnreachableError(f"connection to {self.name} is closed")
        chan = self._open_session(transport)
        try:
            chan.exec_command(f"/bin/sh -c {shlex.quote(command)}")
            if stdin:
                chan.sendall(stdin)
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise UnreachableError(f"connection to {self.name} lost: {e}") from None
        return _SSHHeld(self.name, chan)

    def _open_session(self, transport: paramiko.Transport) -> paramiko.Channel:
        """A new session channel on the connection. sshd refusing it while the connection
        stays up is not a lost connection: with MaxSessions 1 the host lock's session
        leaves no room for the commands' (ChatalotError: the host fails, clearly)."""
        try:
            return transport.open_session(timeout=30)
        except paramiko.ChannelException as e:
            if not transport.is_active():
                raise UnreachableError(f"connection to {self.name} lost: {e}") from None
            raise ChatalotError(
                f"sshd on {self.name} refused another session on the connection ({e}): "
                "chatalot-db holds the host lock on one session and runs its commands on a "
                "second; MaxSessions 1 in the host's sshd_config allows only one. Set "
                "MaxSessions 2 or more there (OpenSSH's default is 10)") from None
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise UnreachableError(f"connection to {self.name} lost: {e}") from None

    @staticmethod
    def _feed(chan: paramiko.Channel, data: bytes | Iterable[bytes]) -> None:
        try:
            for piece in (data,) if isinstance(data, bytes) else data:
                chan.sendall(piece)
        except (OSError, paramiko.SSHException, EOFError):
            pass  # the command sees its stdin end early (an upload's checksum then fails)
        with contextlib.suppress(OSError, paramiko.SSHException, EOFError):
            chan.shutdown_write()

    def close(self) -> None:
        with contextlib.suppress(OSError, paramiko.SSHException):
            self.conn.close()


class _SSHHeld(HeldCommand):
    """A command on its own channel of the host's one connection, its stdin kept open.
    The connection closing (or dropping) ends it on the host: sshd closes its stdin."""

    def __init__(self, host: str, chan: paramiko.Channel) -> None:
        self.host = host
        self.chan = chan
        self.buf = b""
        self.eof = False

    def readline(self, timeout: float) -> str | None:
        chan = self.chan
        deadline = time.monotonic() + timeout
        try:
            while b"\n" not in self.buf and not self.eof:
                if chan.recv_ready():
                    data = chan.recv(4096)
                    self.buf += data
                    self.eof = not data
                    continue
                if chan.exit_status_ready() or chan.eof_received:
                    while chan.recv_ready():  # what arrived with the exit status
                        self.buf += chan.recv(4096)
                    self.eof = True
                    break
                if not transport_active(chan):
                    raise UnreachableError(f"connection to {self.host} lost while taking the "
                                           "host lock")
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                select.select([chan], [], [], min(0.2, left))
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise UnreachableError(f"connection to {self.host} lost: "
                                   f"{e or type(e).__name__}") from None
        if b"\n" not in self.buf and not self.eof:
            raise TimeoutError  # (outside the try: TimeoutError is an OSError)
        if not self.buf:
            return None
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8", errors="replace")

    def finish(self, timeout: float) -> tuple[int | None, str]:
        deadline = time.monotonic() + timeout
        while not self.chan.exit_status_ready() and time.monotonic() < deadline:
            if not transport_active(self.chan):
                break
            time.sleep(0.05)
        err: list[bytes] = []
        with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
            while self.chan.recv_stderr_ready():
                err.append(self.chan.recv_stderr(65536))
        code = self.chan.recv_exit_status() if self.chan.exit_status_ready() else None
        if code in (None, -1) and _dropped(self.chan):
            raise UnreachableError(f"connection to {self.host} lost while taking the host lock")
        return code, _text(err)

    def release(self, abort: bool = False) -> None:
        # abort (still waiting in flock): just close the channel; the host's flock -w then
        # gives up at its timeout, or takes the lock and drops it at once (stdin closed)
        with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
            if not abort and transport_active(self.chan):
                self.chan.shutdown_write()
                # set by the exit status, and by paramiko when the channel closes
                self.chan.status_event.wait(5)
        with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
            self.chan.close()


#: how often a blocked read wakes to check its deadline and the link (data wakes it at once)
_POLL = 0.5


def _drain_stderr(chan: paramiko.Channel, sink: list[bytes], done: threading.Event) -> None:
    """Read the channel's stderr to EOF (or until `done`, once stdout is finished and
    whatever stderr arrived with it is in)."""
    while True:
        try:
            data = chan.recv_stderr(65536)
        except TimeoutError:
            if done.is_set() or not transport_active(chan):
                while chan.recv_stderr_ready():
                    sink.append(chan.recv_stderr(65536))
                return
            continue
        except (paramiko.SSHException, OSError, EOFError):
            return
        if not data:
            return
        sink.append(data)


def _dropped(chan: paramiko.Channel, wait: float = 1.0) -> bool:
    """Whether the connection under `chan` is gone. Paramiko closes the channels of a
    dropped connection a moment before it marks the transport inactive: wait that out
    (a command killed by a signal, also exit -1, keeps the transport active)."""
    deadline = time.monotonic() + wait
    while True:
        link = chan.get_transport()
        if link is None or not link.is_active():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def transport_active(chan: paramiko.Channel) -> bool:
    t = chan.get_transport()
    return t is not None and t.is_active() and not chan.closed


def _text(parts: list[bytes]) -> str:
    return b"".join(parts).decode("utf-8", errors="replace")
