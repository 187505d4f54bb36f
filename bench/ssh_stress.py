#!/usr/bin/env python3
"""Stress chatalot-db's SSH transport (installer.transport.ssh, used read-only).

As root, from the repository:

    .venv/bin/python bench/ssh_stress.py                  # 8 connections x 40 rounds
    .venv/bin/python bench/ssh_stress.py --connections 1 --rounds 100 --nodelay

Boots one test-bed host (state dir /var/tmp/ctb-bench-stress), opens N SSHTransports to
it at once and runs, over each, `seq 1 20000` (108,894 bytes) and `echo hi`, round after
round. It reports how many outputs came back short (exit 0, but bytes missing), which
exceptions were raised, and the median time of one small command (`true`), with and
without TCP_NODELAY on the SSH socket (the transport sets it itself; this tool turns it
off, or with `--nodelay` leaves it on, to compare).
"""

from __future__ import annotations

import argparse
import collections
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from installer.transport.ssh import SSHTransport  # noqa: E402
from testbed import Testbed  # noqa: E402

STATE_DIR = Path("/var/tmp/ctb-bench-stress")
HOST = "debian12-bx1"
BIG = "seq 1 20000"
BIG_BYTES = sum(len(str(i)) + 1 for i in range(1, 20001))


def connect(bed: Testbed, nodelay: bool) -> SSHTransport:
    hostvars = {
        "ansible_host": bed.hosts[HOST].address,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(bed.key_path),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={bed.known_hosts_path}",
    }
    t = SSHTransport.from_hostvars(HOST, hostvars)
    # the transport sets TCP_NODELAY itself: set it either way, to compare
    sock = t.conn.client.get_transport().sock
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if nodelay else 0)
    return t


def latency(bed: Testbed, nodelay: bool, n: int = 40) -> float:
    """Median seconds of `true` over one connection."""
    t = connect(bed, nodelay)
    times = []
    try:
        for _ in range(n):
            started = time.monotonic()
            t.run("true")
            times.append(time.monotonic() - started)
    finally:
        t.close()
    return statistics.median(times)


def stress(bed: Testbed, connections: int, rounds: int, nodelay: bool) -> dict[str, int]:
    outcomes: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def worker() -> None:
        t = connect(bed, nodelay)
        try:
            for _ in range(rounds):
                for command, size in ((BIG, BIG_BYTES), ("echo hi", 3)):
                    try:
                        r = t.run(command)
                        key = "ok" if r.ok and len(r.stdout) == size else \
                            f"short output, exit {r.exit_code} ({command})"
                    except Exception as e:  # report every kind of failure, keep going
                        key = f"{type(e).__name__}: {str(e)[:80]}"
                    with lock:
                        outcomes[key] += 1
        finally:
            t.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return dict(outcomes)


def main() -> int:
    p = argparse.ArgumentParser(prog="bench/ssh_stress.py", description=__doc__.split("\n")[0])
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--nodelay", action="store_true", help="TCP_NODELAY on every connection")
    args = p.parse_args()
    bed = Testbed(STATE_DIR)
    bed.up([HOST])
    try:
        for nodelay in (False, True):
            print(f"one `true` over one connection, TCP_NODELAY={nodelay}: "
                  f"{latency(bed, nodelay) * 1000:.1f} ms (median of 40)")
        started = time.monotonic()
        outcomes = stress(bed, args.connections, args.rounds, args.nodelay)
        load = Path("/proc/loadavg").read_text().split()[0]
        print(f"{args.connections} connections x {args.rounds} rounds "
              f"(TCP_NODELAY={args.nodelay}) in {time.monotonic() - started:.1f}s, "
              f"load {load}:")
        for key, count in sorted(outcomes.items(), key=lambda kv: -kv[1]):
            print(f"  {count:5d}  {key}")
        return 0 if set(outcomes) <= {"ok"} else 1
    finally:
        bed.down()


if __name__ == "__main__":
    sys.exit(main())
