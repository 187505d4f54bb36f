"""Serial batches and stop rules, checked against ansible-core's own functions.

ansible-core is a test dependency: its `pct_to_int` and
`PlaybookExecutor._get_serialized_batches` run on the same tables. The stop rules
live inline in ansible-core's linear strategy, so they are tables of what
ansible-playbook 2.19 did on real runs (recorded in the comments).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from installer.errors import UsageError
from installer.fleet.rollout import (
    SerialItem,
    StopPolicy,
    batch_sizes,
    parse_percentage,
    parse_serial,
    pct_to_int,
    split_batches,
)


def ansible_batches(hosts: list[str], serial: list[SerialItem]) -> list[list[str]]:
    """ansible-core's own batching, on a stand-in inventory and play."""
    from ansible.executor.playbook_executor import (  # type: ignore[import-untyped]
        PlaybookExecutor,
    )

    class Inventory:
        def get_hosts(self, pattern: str, order: Any = None) -> list[str]:
            del pattern, order
            return list(hosts)

    executor = PlaybookExecutor.__new__(PlaybookExecutor)
    executor._inventory = Inventory()
    play = SimpleNamespace(hosts="all", order=None, serial=list(serial))
    batches: list[list[str]] = executor._get_serialized_batches(play)
    return batches


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2", [2]), ("25%", ["25%"]), ("1,20%", [1, "20%"]), (" 1 , 2 ,50% ", [1, 2, "50%"]),
     ("0", [0]), ("-1", [-1]), ("0%", ["0%"]), ("100%", ["100%"]), ("150%", ["150%"])],
)
def test_parse_serial(text: str, expected: list[SerialItem]) -> None:
    assert parse_serial(text) == expected


@pytest.mark.parametrize("text", ["", "a", "1,,2", "12.5%", "1.5", "%", "2 hosts", "1;2"])
def test_parse_serial_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="--serial"):
        parse_serial(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("0", 0.0), ("25", 25.0), ("12.5%", 12.5), ("100", 100.0)])
def test_parse_percentage(text: str, expected: float) -> None:
    assert parse_percentage(text) == expected


@pytest.mark.parametrize("text", ["", "x", "-1", "101", "50%%"])
def test_parse_percentage_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="--max-fail-percentage"):
        parse_percentage(text)


@pytest.mark.parametrize(
    ("value", "total"),
    [(v, n) for v in (1, 3, 0, -2, "0%", "1%", "20%", "25%", "33%", "50%", "99%", "100%",
                      "150%") for n in (1, 3, 4, 7, 10, 100)],
)
def test_pct_to_int_is_ansibles(value: SerialItem, total: int) -> None:
    from ansible.utils.helpers import (  # type: ignore[import-untyped]
        pct_to_int as ansible_pct_to_int,
    )

    assert pct_to_int(value, total) == ansible_pct_to_int(value, total)


#: (serial, hosts, batch sizes) — checked against ansible-core too
BATCHES: list[tuple[list[SerialItem], int, list[int]]] = [
    ([], 4, [4]),                       # no serial: one batch
    ([2], 4, [2, 2]),
    ([2], 5, [2, 2, 1]),
    ([3], 2, [2]),                      # bigger than the fleet
    ([0], 5, [5]),                      # 0: every host
    ([-1], 5, [5]),
    (["25%"], 4, [1, 1, 1, 1]),
    (["30%"], 10, [3, 3, 3, 1]),
    (["20%"], 4, [1, 1, 1, 1]),         # 0.8 rounds down to 0, then at least 1
    (["0%"], 3, [1, 1, 1]),
    (["100%"], 7, [7]),
    (["150%"], 4, [4]),
    ([1, "20%"], 10, [1, 2, 2, 2, 2, 1]),  # the last item repeats
    ([1, 5, 10], 20, [1, 5, 10, 4]),
    ([1, "50%"], 4, [1, 2, 1]),         # a percentage of every host, not of those left
    ([1, 0], 6, [1, 5]),                # 0 after a first batch: the rest at once
    ([2, "10%"], 3, [2, 1]),
    ([5], 0, []),
]


@pytest.mark.parametrize(("serial", "total", "sizes"), BATCHES)
def test_batch_sizes(serial: list[SerialItem], total: int, sizes: list[int]) -> None:
    assert batch_sizes(serial, total) == sizes
    hosts = [f"h{i:02d}" for i in range(total)]
    batches = split_batches(hosts, serial)
    assert [len(b) for b in batches] == sizes
    assert [h for b in batches for h in b] == hosts
    assert batches == ansible_batches(hosts, serial)


@pytest.mark.parametrize("text", ["1,20%", "2", "25%", "1,5,10", "0", "3,0", "-1", "0%"])
@pytest.mark.parametrize("total", [1, 2, 4, 9, 23])
def test_parsed_serial_batches_like_ansible(text: str, total: int) -> None:
    hosts = [f"db{i}" for i in range(total)]
    serial = parse_serial(text)
    assert split_batches(hosts, serial) == ansible_batches(hosts, serial)


#: (policy, batch size, failed, unreachable, stops?) while a batch runs. From real
#: ansible-playbook runs: max_fail_percentage counts failed hosts only (an unreachable
#: host in a batch with max_fail_percentage 0 let the next batch run), strictly greater.
ABORTS: list[tuple[StopPolicy, int, int, int, bool]] = [
    (StopPolicy(), 4, 4, 0, False),
    (StopPolicy(max_fail_percentage=0), 2, 0, 0, False),
    (StopPolicy(max_fail_percentage=0), 2, 1, 0, True),
    (StopPolicy(max_fail_percentage=0), 2, 0, 1, False),    # unreachable does not count
    (StopPolicy(max_fail_percentage=50), 4, 2, 0, False),   # 50% is not more than 50%
    (StopPolicy(max_fail_percentage=50), 4, 3, 0, True),
    (StopPolicy(max_fail_percentage=50), 4, 2, 2, False),
    (StopPolicy(max_fail_percentage=24), 4, 1, 0, True),    # 25% > 24%
    (StopPolicy(max_fail_percentage=25), 4, 1, 0, False),
    (StopPolicy(max_fail_percentage=33.3), 3, 1, 0, True),
    (StopPolicy(max_fail_percentage=100), 3, 3, 0, False),  # never
    (StopPolicy(any_errors_fatal=True), 4, 0, 0, False),
    (StopPolicy(any_errors_fatal=True), 4, 1, 0, True),
    (StopPolicy(any_errors_fatal=True), 4, 0, 1, True),     # unreachable is fatal too
    (StopPolicy(max_fail_percentage=100, any_errors_fatal=True), 4, 1, 0, True),
]


@pytest.mark.parametrize(("policy", "size", "failed", "unreachable", "stops"), ABORTS)
def test_abort_batch(policy: StopPolicy, size: int, failed: int, unreachable: int,
                     stops: bool) -> None:
    why = policy.abort_batch(size, failed, unreachable)
    assert (why is not None) == stops, why
    if why and policy.any_errors_fatal:
        assert why.startswith("--any-errors-fatal")
    elif why:
        assert f"{failed} of {size}" in why


#: after a batch: the next one starts unless every host failed or was unreachable
#: (ansible-playbook with serial 1: a failed first host, or an unreachable one, ends the run)
@pytest.mark.parametrize(
    ("size", "failed", "unreachable", "stops"),
    [(1, 1, 0, True), (1, 0, 1, True), (2, 1, 1, True), (2, 1, 0, False), (2, 0, 0, False),
     (4, 0, 3, False), (4, 2, 2, True)],
)
def test_after_batch(size: int, failed: int, unreachable: int, stops: bool) -> None:
    assert (StopPolicy().after_batch(size, failed, unreachable) is not None) == stops
