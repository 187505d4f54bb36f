"""Rolling runs as ansible-playbook schedules them: serial batches, and when to stop. Pure.

Batch sizes follow ansible-core's `PlaybookExecutor._get_serialized_batches` and
`utils.helpers.pct_to_int` exactly:

- `serial` is a list of items, each a number (`3`) or a whole percentage (`20%`);
  the last item repeats until every host has a batch (`1,20%` on 10 hosts: 1, 2, 2, 2, 2, 1).
- A percentage is of the whole host list (not of the hosts left), rounded down,
  and at least 1: `20%` of 4 hosts is 1, `0%` is 1.
- A number of 0 or less means "every host left, in one batch"; no serial at all
  is one batch of every host.

When a run stops early (the linear strategy and the playbook executor of ansible-core):

- `any_errors_fatal`: the first host that fails *or is unreachable* stops the run:
  the other hosts of the batch stop after their current step, no host starts.
- `max_fail_percentage`: once the hosts that *failed* in the current batch
  (unreachable ones do not count, as in Ansible) are strictly more than that
  percentage of the batch, the run stops the same way: `0` stops at the first
  failure, `50` on 4 hosts at the third.
- Whatever the options, when every host of a batch failed or was unreachable,
  no later batch starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from installer.errors import UsageError

#: hosts worked on at once unless --forks says otherwise. Measured (docs/benchmark.md): a
#: no-op costs our side 0.04 CPU s per host on a fleet of 32 against 0.5 s of wall time per
#: host, so one core keeps about 13 hosts busy at 0 ms of round trip and 25 at 50 ms;
#: 20 at once stays below what a 2-core control machine saturates at, where Ansible's 5
#: left a 1,000-host no-op at 103 s instead of 26 s.
DEFAULT_FORKS = 20

__all__ = [
    "SerialItem",
    "StopPolicy",
    "batch_sizes",
    "parse_percentage",
    "parse_serial",
    "pct_to_int",
    "split_batches",
]

#: one item of `serial`: a host count, or a percentage written "20%"
SerialItem = int | str

T = TypeVar("T")


def parse_serial(text: str) -> list[SerialItem]:
    """`--serial` as written on the command line: `2`, `25%`, or a list `1,20%,50%`.

    Items are whole numbers or whole percentages, as Ansible computes them
    (`int()` of the number); anything else is a UsageError.
    """
    items: list[SerialItem] = []
    for raw in text.split(","):
        item = raw.strip()
        number = item[:-1].strip() if item.endswith("%") else item
        try:
            value = int(number)
        except ValueError:
            raise UsageError(
                f"--serial takes numbers or whole percentages separated by commas "
                f"(e.g. 2, 25% or 1,20%), got {text!r}"
            ) from None
        items.append(f"{value}%" if item.endswith("%") else value)
    return items


def parse_percentage(text: str) -> float:
    """`--max-fail-percentage`: a number from 0 to 100, `%` allowed (`25`, `12.5%`)."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise UsageError(
            f"--max-fail-percentage takes a number from 0 to 100, got {text!r}"
        ) from None
    if not 0 <= value <= 100:
        raise UsageError(f"--max-fail-percentage must be between 0 and 100, got {text!r}")
    return value


def pct_to_int(value: SerialItem, num_items: int, min_value: int = 1) -> int:
    """ansible-core's pct_to_int: "x%" of num_items rounded down (at least min_value), or int."""
    if isinstance(value, str) and value.endswith("%"):
        value_pct = int(value.replace("%", ""))
        return int((value_pct / 100.0) * num_items) or min_value
    return int(value)


def batch_sizes(serial: Sequence[SerialItem], total: int) -> list[int]:
    """The size of each batch for `total` hosts (empty for no hosts)."""
    items = list(serial) or [-1]
    sizes: list[int] = []
    left, cur = total, 0
    while left > 0:
        size = pct_to_int(items[cur], total)
        if size <= 0:
            sizes.append(left)
            break
        size = min(size, left)
        sizes.append(size)
        left -= size
        cur = min(cur + 1, len(items) - 1)
    return sizes


def split_batches(hosts: Sequence[T], serial: Sequence[SerialItem]) -> list[list[T]]:
    """`hosts` (in run order) cut into the batches `serial` gives."""
    out: list[list[T]] = []
    start = 0
    for size in batch_sizes(serial, len(hosts)):
        out.append(list(hosts[start:start + size]))
        start += size
    return out


@dataclass(frozen=True)
class StopPolicy:
    """When a run stops early: `--max-fail-percentage` and `--any-errors-fatal`."""

    max_fail_percentage: float | None = None
    any_errors_fatal: bool = False

    def abort_batch(self, batch_size: int, failed: int, unreachable: int) -> str | None:
        """While a batch runs, with these counts so far: why to stop now (None: go on).

        Stopping means: the batch's running hosts stop after their current step and
        no other host starts.
        """
        if self.any_errors_fatal and (failed or unreachable):
            what = f"{failed} failed" if failed else f"{unreachable} unreachable"
            return f"--any-errors-fatal: {what}"
        if self.max_fail_percentage is not None and batch_size > 0 and \
                failed / batch_size > self.max_fail_percentage / 100.0:
            return (f"--max-fail-percentage {self.max_fail_percentage:g}: {failed} of "
                    f"{batch_size} host(s) in the batch failed")
        return None

    @staticmethod
    def after_batch(batch_size: int, failed: int, unreachable: int) -> str | None:
        """After a batch has ended: why no later batch may start (None: go on)."""
        if batch_size > 0 and failed + unreachable >= batch_size:
            return "every host of the batch failed or was unreachable"
        return None
