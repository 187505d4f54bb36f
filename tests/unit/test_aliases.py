"""Two inventory names for one host: by SSH target before any contact, by machine-id once
connected."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from installer.fleet import aliases
from installer.steps.base import MachineClaims, StepFailed
from installer.steps.preflight import Preflight
from tests.unit.stepkit import harness, state


@pytest.mark.parametrize(("hosts", "refused"), [
    ({"a": {"ansible_host": "10.0.0.5"}, "b": {"ansible_host": "10.0.0.6"}}, []),
    ({"a": {"ansible_host": "10.0.0.5"}, "b": {"ansible_host": "10.0.0.5"}}, ["a", "b"]),
    ({"a": {"ansible_host": "10.0.0.5"}, "b": {"ansible_host": "10.0.0.5",
                                               "ansible_port": 2222}}, []),
    ({"a": {"ansible_host": "10.0.0.5", "ansible_port": "22"}, "b": {"ansible_host": "10.0.0.5"}},
     ["a", "b"]),
    ({"db1.example.net": {}, "b": {"ansible_host": "db1.example.net"}, "c": {}},
     ["db1.example.net", "b"]),
    ({"a": {"ansible_host": "fd00:0::6"}, "b": {"ansible_host": "[FD00::6]"}}, ["a", "b"]),
    ({"db1.example.net": {}, "b": {"ansible_host": "10.0.0.5"}}, []),
    ({"a": {"ansible_connection": "local"}, "b": {"ansible_connection": "local"}}, ["a", "b"]),
    ({"a": {"ansible_connection": "local", "ansible_host": "10.0.0.5"},
      "b": {"ansible_host": "10.0.0.5"}}, []),
    ({"a": {"ansible_host": "nowhere.invalid"}, "b": {"ansible_host": "NOWHERE.invalid"}},
     ["a", "b"]),
], ids=["distinct", "same address", "other port", "port spelled", "name as ansible_host",
        "address spelled", "name and address (no DNS: the machine-id tells)", "two local",
        "local and ssh", "names in another case"])
def test_same_host_by_ssh_target(hosts: dict[str, dict[str, Any]], refused: list[str]) -> None:
    assert list(aliases.same_host(hosts)) == refused


def test_the_refusal_names_the_others_and_the_target() -> None:
    hosts = {"a": {"ansible_host": "10.0.0.5"}, "b": {"ansible_host": "10.0.0.5"},
             "c": {"ansible_host": "10.0.0.5"}}
    why = aliases.same_host(hosts)
    assert why["a"].startswith("a and b, c are one host (10.0.0.5:22): two inventory names")
    assert why["b"].startswith("b and a, c are one host (10.0.0.5:22)")
    assert why["a"].endswith("Nothing was changed: keep one name per host in the inventory")


def test_machine_claims_first_name_wins_across_threads() -> None:
    claims = MachineClaims()
    results: dict[str, str | None] = {}

    def one(name: str) -> None:
        results[name] = claims.claim("abc", name)

    threads = [threading.Thread(target=one, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, other in results.items() if other is None]
    assert len(winners) == 1
    assert all(other == winners[0] for n, other in results.items() if n != winners[0])
    assert claims.claim("abc", winners[0]) is None  # the same name again: still its own
    assert claims.claim("other", "b") is None


def test_preflight_refuses_a_second_name_for_a_machine() -> None:
    claims = MachineClaims()
    assert claims.claim("0123456789abcdef", "db1") is None
    h = harness(before=state(sql=None))
    h.ctx.machines = claims
    h.ctx.set_facts(h.ctx.facts.__class__(**{**h.ctx.facts.__dict__,
                                             "machine_id": "0123456789abcdef"}),
                    h.ctx.strategy)
    with pytest.raises(StepFailed, match=r"^h is the machine db1 is \(the same /etc/machine-id\)"):
        h.run(Preflight())
    assert h.host.calls == []
