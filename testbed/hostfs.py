"""A host's own files: keys, identity and DNS, written over its image before boot.

The host's root is an overlay (lower: the cached image; upper and work: in
the state dir, on a tmpfs by default), so everything written here lands in
the upper layer and is thrown away with it. The SSH host key lives beside the overlay in the state
dir and survives reset(), so known_hosts stays valid.
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from pathlib import Path

from testbed._proc import run
from testbed.errors import TestbedError
from testbed.recipes import USERS

HOST_KEY = "ssh_host_ed25519_key"


def ensure_client_key(key_path: Path) -> str:
    """The test bed's ed25519 client key (made once, mode 0600); returns the public key line."""
    if not key_path.exists():
        key_path.parent.mkdir(parents=True, exist_ok=True)
        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "chatalot-testbed",
                "-f",
                str(key_path),
            ]
        )
    os.chmod(key_path, 0o600)
    return Path(f"{key_path}.pub").read_text().strip()


def ensure_host_key(key_dir: Path, name: str) -> str:
    """The host's ed25519 SSH host key (made once per host); returns `ssh-ed25519 AAAA...`."""
    key = key_dir / HOST_KEY
    if not key.exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}", "-f", str(key)])
    algo, blob, *_ = Path(f"{key}.pub").read_text().split()
    return f"{algo} {blob}"


def resolv_conf(root: Path = Path("/")) -> str:
    """A resolv.conf for the hosts: this machine's name servers, minus loopback ones.

    A loopback server (systemd-resolved's 127.0.0.53) would point at the host
    itself; then resolved's upstream list is used instead.
    """
    candidates = [root / "etc/resolv.conf", root / "run/systemd/resolve/resolv.conf"]
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        servers, other = [], []
        for line in text.splitlines():
            words = line.split()
            if not words or words[0].startswith(("#", ";")):
                continue
            if words[0] == "nameserver" and len(words) > 1:
                try:
                    if ipaddress.ip_address(words[1].split("%")[0]).is_loopback:
                        continue
                except ValueError:
                    continue
                servers.append(line.strip())
            elif words[0] in ("search", "domain", "options"):
                other.append(line.strip())
        if servers:
            head = f"# Written by the chatalot-db test bed from this machine's {path}\n"
            return head + "\n".join(servers + other) + "\n"
    raise TestbedError(
        "no usable name server: /etc/resolv.conf (and systemd-resolved's upstream list) has"
        " only loopback or no `nameserver` lines, which the hosts cannot reach from their"
        " network namespaces"
    )


def _passwd(root: Path) -> dict[str, tuple[int, int, str]]:
    users = {}
    for line in (root / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if len(parts) >= 7:
            users[parts[0]] = (int(parts[2]), int(parts[3]), parts[5])
    return users


def _write(path: Path, text: str, mode: int, owner: tuple[int, int] = (0, 0)) -> None:
    if path.is_symlink():
        path.unlink()
    path.write_text(text)
    os.chown(path, *owner)
    os.chmod(path, mode)


def prepare_root(
    root: Path, name: str, client_public_key: str, host_key_dir: Path, resolv: str
) -> None:
    """Give the mounted host root its identity: hostname, machine id, DNS, SSH keys."""
    etc = root / "etc"
    _write(etc / "hostname", f"{name}\n", 0o644)
    _write(
        etc / "hosts",
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        0o644,
    )
    _write(etc / "machine-id", uuid.uuid4().hex + "\n", 0o444)
    _write(etc / "resolv.conf", resolv, 0o644)
    for suffix, mode in (("", 0o600), (".pub", 0o644)):
        source = host_key_dir / f"{HOST_KEY}{suffix}"
        _write(etc / "ssh" / f"{HOST_KEY}{suffix}", source.read_text(), mode)
    accounts = _passwd(root)
    for user in USERS:
        if user not in accounts:
            raise TestbedError(f"{name}: the image has no user {user!r}; rebuild the image")
        uid, gid, home = accounts[user]
        ssh_dir = root / home.lstrip("/") / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(ssh_dir, uid, gid)
        os.chmod(ssh_dir, 0o700)
        _write(ssh_dir / "authorized_keys", client_public_key + "\n", 0o600, (uid, gid))
