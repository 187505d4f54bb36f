"""Several inventory names on one host: by SSH target before any contact, by machine-id
once connected. Several apps of one cluster may share it; anything else is refused."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from installer.desired import sharing
from installer.desired.config import HostConfig
from installer.fleet import aliases
from installer.steps.base import MachineClaims, StepFailed
from installer.steps.preflight import Preflight
from tests.unit.stepkit import harness, state

#: a second app: its own database, role and env file
APP_B = {"db_name": "b", "db_user": "b", "db_env_file": "/etc/chatalot/b.env"}


@pytest.mark.parametrize(("hosts", "refused"), [
    ({"a": {"ansible_host": "10.0.0.5"}, "b": {"ansible_host": "10.0.0.6"}}, []),
    ({"a": {"ansible_host": "10.0.0.5"}, "b": {"ansible_host": "10.0.0.5"}}, ["a", "b"]),
    ({"a": {"ansible_host": "10.0.0.5"}, "b": {"ansible_host": "10.0.0.5", **APP_B}}, []),
    ({"a": {"ansible_host": "10.0.0.5"},
      "b": {"ansible_host": "10.0.0.5", **APP_B, "pg_memory": "6GB"}}, ["a", "b"]),
    ({"a": {"ansible_host": "10.0.0.5"}, "b": {"ansible_host": "10.0.0.5",
                                               "ansible_port": 2222}}, []),
    ({"a": {"ansible_host": "10.0.0.5", "ansible_port": "22"}, "b": {"ansible_host": "10.0.0.5"}},
     ["a", "b"]),
    ({"db1.example.net": {}, "b": {"ansible_host": "db1.example.net"}, "c": {}},
     ["db1.example.net", "b"]),
    ({"a": {"ansible_host": "fd00:0::6"}, "b": {"ansible_host": "[FD00::6]"}}, ["a", "b"]),
    ({"db1.example.net": {}, "b": {"ansible_host": "10.0.0.5"}}, []),
    ({"a": {"ansible_connection": "local"}, "b": {"ansible_connection": "local"}}, ["a", "b"]),
    ({"a": {"ansible_connection": "local"}, "b": {"ansible_connection": "local", **APP_B}}, []),
    ({"a": {"ansible_connection": "local", "ansible_host": "10.0.0.5"},
      "b": {"ansible_host": "10.0.0.5"}}, []),
    ({"a": {"ansible_host": "nowhere.invalid"}, "b": {"ansible_host": "NOWHERE.invalid"}},
     ["a", "b"]),
    ({"a": {"ansible_host": "10.0.0.5"}, "b": {"ansible_host": "10.0.0.5", "pg_port": "x"}},
     []),
], ids=["distinct", "same address, same app", "same address, two apps",
        "two apps, other tuning", "other port", "port spelled", "name as ansible_host",
        "address spelled", "name and address (no DNS: the machine-id tells)", "two local",
        "two local apps", "local and ssh", "names in another case",
        "broken variables left to check variables"])
def test_same_host_by_ssh_target(hosts: dict[str, dict[str, Any]], refused: list[str]) -> None:
    assert list(aliases.same_host(hosts)) == refused


def test_the_refusal_names_the_others_the_target_and_the_conflict() -> None:
    hosts = {"a": {"ansible_host": "10.0.0.5"}, "b": {"ansible_host": "10.0.0.5"},
             "c": {"ansible_host": "10.0.0.5", **APP_B}}
    why = aliases.same_host(hosts)
    assert why["a"] == (
        "a and b, c are one host (10.0.0.5:22), and both have db_name=chatalot, "
        "db_user=chatalot and db_env_file=/etc/chatalot/database.env: each app of a cluster "
        "needs its own, or they overwrite each other's. Nothing was changed: give them the "
        "same cluster-wide values and each its own db_name, db_user and db_env_file (several "
        "apps on one cluster), or keep one name per host")
    assert set(why) == {"a", "b"}  # c is another app of that cluster


@pytest.mark.parametrize(("theirs", "why"), [
    ({}, "both have db_name=chatalot, db_user=chatalot and db_env_file="),
    ({"db_name": "b"}, "both have db_user=chatalot and db_env_file=/etc/chatalot/database.env"),
    ({"db_name": "b", "db_user": "b"}, "both have db_env_file=/etc/chatalot/database.env: "
                                       "each app of a cluster needs its own"),
    ({**APP_B, "pg_memory": "2GB"},
     "pg_memory differs (a: unset; b: 2097152): the cluster has one, each run would rewrite "
     "it (a restart every run)"),
    ({"db_name": "b", "db_user": "b", "pg_cpus": 4},
     "both have db_env_file=/etc/chatalot/database.env: each app of a cluster needs its own, "
     "or they overwrite each other's; pg_cpus differs (a: unset; b: 4)"),
    ({**APP_B, "pg_settings": {"work_mem": "8MB"}}, "pg_settings differs (a: {}; b: "
                                                   "{work_mem: 8MB})"),
    ({**APP_B, "pg_version": 16}, "pg_version differs (a: unset; b: 16)"),
    ({**APP_B, "pg_allowed_cidrs": "10.0.0.0/24", "pg_listen": "*"}, "pg_listen differs"),
    (APP_B, None),
    ({**APP_B, "backup_dir": "/srv/b", "migrations_source": "none"}, None),
])
def test_conflict(theirs: dict[str, Any], why: str | None) -> None:
    found = sharing.conflict("a", HostConfig(), "b", HostConfig.from_vars(theirs))
    if why is None:
        assert found is None
    else:
        assert found is not None and found.startswith(why), found


def test_machine_claims_first_name_wins_across_threads() -> None:
    claims = MachineClaims()
    results: dict[str, tuple[str, str] | None] = {}
    config = HostConfig()

    def one(name: str) -> None:
        results[name] = claims.claim("abc", name, config)

    threads = [threading.Thread(target=one, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, clash in results.items() if clash is None]
    assert len(winners) == 1
    for n, clash in results.items():
        if n != winners[0]:
            assert clash is not None and clash[0] == winners[0]
            assert clash[1].startswith("both have db_name=chatalot, db_user=chatalot and ")
    assert claims.claim("abc", winners[0], config) is None  # the same name again
    assert claims.claim("other", "b", config) is None
    assert claims.claim("abc", "d", HostConfig.from_vars(APP_B)) is None  # another app


def test_preflight_refuses_a_second_name_for_a_machine() -> None:
    claims = MachineClaims()
    assert claims.claim("0123456789abcdef", "db1", HostConfig(migrations_source=None)) is None
    h = harness(before=state(sql=None))
    h.ctx.machines = claims
    h.ctx.set_facts(h.ctx.facts.__class__(**{**h.ctx.facts.__dict__,
                                             "machine_id": "0123456789abcdef"}),
                    h.ctx.strategy)
    with pytest.raises(StepFailed, match=r"^h and db1 are one host \(the same /etc/machine-id\), "
                                         r"and both have db_name=chatalot, "):
        h.run(Preflight())
    assert h.host.calls == []
