"""The inventory reader, checked against ansible-core itself.

Every inventory in inventories/ is read by `installer.fleet.inventory` and by the real
`ansible-inventory` (ansible-core is a test dependency); both must give the same
hosts, groups and variables, types included, and `chatalot-db inventory --list`
must print the same bytes. Host selection is compared with
`ansible -i FILE all --limit PATTERN --list-hosts`. Broken inventories must fail
here with the file and line, where Ansible only warns and drops the file.

The real Ansible runs in a clean environment: an empty ansible.cfg, its own
ANSIBLE_HOME, a scratch working directory, no ANSIBLE_* variables inherited.
It runs once per session for every comparison, so all of them live here; the
tests that need no Ansible are in test_inventory_<module>.py, one file per
module of the `installer.fleet.inventory` package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from installer.commands import inventory as inventory_command
from installer.errors import InventoryError, UsageError
from installer.fleet.inventory import load_inventory

HERE = Path(__file__).resolve().parent
INVENTORIES = HERE / "inventories"
BROKEN = INVENTORIES / "broken"
GOOD = sorted(p.name for p in INVENTORIES.glob("*.ini"))
BIN = Path(sys.executable).parent

Call = tuple[str, ...]


# ---------------------------------------------------------------------------
# The reference: real ansible-core, run once per distinct command line
# ---------------------------------------------------------------------------


class Ansible:
    """Runs ansible CLIs from this venv in a clean environment, caching each result."""

    def __init__(self, workdir: Path) -> None:
        for tool in ("ansible", "ansible-inventory"):
            assert (BIN / tool).exists(), f"{BIN / tool} missing: install the test extras"
        config = workdir / "ansible.cfg"
        config.write_text("")
        self.cwd = workdir / "cwd"
        self.cwd.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        self.env.update(
            ANSIBLE_CONFIG=str(config),
            ANSIBLE_HOME=str(workdir / "home"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_DEPRECATION_WARNINGS="0",
            ANSIBLE_LOCALHOST_WARNING="0",
        )
        self._cache: dict[Call, subprocess.CompletedProcess[bytes]] = {}
        self._lock = threading.Lock()

    def run(self, *call: str) -> subprocess.CompletedProcess[bytes]:
        with self._lock:
            if call in self._cache:
                return self._cache[call]
        result = subprocess.run(
            [str(BIN / call[0]), *call[1:]],
            capture_output=True,
            env=self.env,
            cwd=self.cwd,
            timeout=120,
            check=False,
        )
        with self._lock:
            self._cache[call] = result
        return result

    def prefetch(self, calls: list[Call]) -> None:
        with ThreadPoolExecutor(max_workers=max(4, 2 * (os.cpu_count() or 1))) as pool:
            list(pool.map(lambda call: self.run(*call), calls))

    def listing(self, path: Path, *extra: str) -> dict[str, Any]:
        result = self.run(*_list_call(path, *extra))
        stderr = result.stderr.decode(errors="replace")
        assert result.returncode == 0, stderr
        assert "Failed to parse" not in stderr, stderr
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def limit(self, path: Path, pattern: str) -> list[str] | str:
        """Hosts of `all` limited by PATTERN, in run order; 'error: ...' if Ansible fails."""
        result = self.run(*_limit_call(path, pattern))
        stderr = result.stderr.decode(errors="replace")
        if result.returncode != 0:
            if "no hosts to target" in stderr:
                return []
            return "error: " + stderr
        lines = result.stdout.decode().splitlines()
        assert lines[0].strip().startswith("hosts ("), lines
        return [line.strip() for line in lines[1:]]


def _list_call(path: Path, *extra: str) -> Call:
    return ("ansible-inventory", "-i", str(path), "--list", *extra)


def _limit_call(path: Path, pattern: str) -> Call:
    return ("ansible", "-i", str(path), "all", "--limit", pattern, "--list-hosts")


def _host_call(path: Path, host: str) -> Call:
    return ("ansible-inventory", "-i", str(path), "--host", host)


def _graph_call(path: Path, *extra: str) -> Call:
    return ("ansible-inventory", "-i", str(path), "--graph", *extra)


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

#: (inventory, pattern). Compared with `ansible all --limit PATTERN --list-hosts`.
LIMITS: list[tuple[str, str]] = [
    ("fleet.ini", "all"),
    ("fleet.ini", "*"),
    ("fleet.ini", "postgres"),
    ("fleet.ini", "pg_replicas"),
    ("fleet.ini", "postgres:!pg_primary"),
    ("fleet.ini", "postgres,pgbouncer"),
    ("fleet.ini", " pgbouncer , pg_primary "),
    ("fleet.ini", "postgres:&pg_replicas"),
    ("fleet.ini", "pg_*:!pg_primary"),
    ("fleet.ini", "db0*"),
    ("fleet.ini", "*.prod.chatalot.net:!db*"),
    ("fleet.ini", "~db0[12]"),
    ("fleet.ini", "~^pool"),
    ("fleet.ini", "~prod"),
    ("fleet.ini", "postgres[0]"),
    ("fleet.ini", "postgres[-1]"),
    ("fleet.ini", "postgres[1:]"),
    ("fleet.ini", "postgres[0:1]"),
    ("fleet.ini", "pgbouncer[1]"),
    ("fleet.ini", "db01.prod.chatalot.net"),
    ("fleet.ini", "db03.prod.chatalot.net,db01.prod.chatalot.net,db03.prod.chatalot.net"),
    ("fleet.ini", "pool1.prod.chatalot.net:db02.prod.chatalot.net"),
    ("fleet.ini", "!pgbouncer"),
    ("fleet.ini", "&postgres"),
    ("fleet.ini", "!postgres:!pgbouncer"),
    ("fleet.ini", "nomatch"),
    ("fleet.ini", "nomatch,pgbouncer"),
    ("fleet.ini", "a*"),  # Ansible's quirk: matches the group 'all'
    ("fleet.ini", "ungrouped"),
    ("fleet.ini", "DB01*"),  # globs are case-sensitive
    ("ranges.ini", "padded[2:4]"),
    ("ranges.ini", "plain:letters"),
    ("ranges.ini", "stepped:!web*"),
    ("ranges.ini", "cache-[ab].example.net"),
    ("ranges.ini", "web[0:20:5]"),  # not a subscript: an fnmatch character class
    ("ranges.ini", "rack?-node0[13]"),
    ("ranges.ini", "multi[1:3]"),
    ("ranges.ini", "reversed"),
    ("ranges.ini", "with_*:&*.example.net"),
    ("hostport.ini", "::1"),
    ("hostport.ini", "2001:db8::10"),
    ("hostport.ini", "10.0.0.*"),
    ("hostport.ini", "plain.example.net"),
    ("hostport.ini", "ports:!twice"),
    ("hostport.ini", "ungrouped[0:2]"),
    ("ungrouped.ini", "ungrouped"),
    ("ungrouped.ini", "all:!ungrouped"),
    ("ungrouped.ini", "db"),
    ("priorities.ini", "alpha:&beta"),
    ("priorities.ini", "lowprio"),
    ("priorities.ini", "parent,gamma"),
    ("priorities.ini", "h?:!h[12]"),
    ("clash.ini", "web"),  # a host and a group named web: the host wins
    ("clash.ini", "db"),
    ("clash.ini", "db*"),
    ("duplicates.ini", "db"),
    ("duplicates.ini", "web:&db"),
    ("sections.ini", "dash-group,dotted.group"),
    ("sections.ini", "g"),
    ("pending.ini", "top"),
    ("pending.ini", "both:!zeta"),
    ("deep_children.ini", "world"),
    ("deep_children.ini", "europe"),
    ("deep_children.ini", "paris:&eu_central"),
    ("deep_children.ini", "world:!europe"),
    ("deep_children.ini", "eu_*"),
    ("deep_children.ini", "all:!*db1"),
    ("unicode.ini", "métier"),
    ("empty.ini", "all"),
]

#: Where Ansible itself does not fix the order: it walks sibling groups that both
#: have children in Python set order (object ids), which varies from run to run.
#: There only the set of hosts is compared; ours is the file order.
UNORDERED = {"deep_children.ini", "pending.ini"}

#: `--list --limit` views compared with `ansible-inventory --list --limit`.
LIST_LIMITS: list[tuple[str, str]] = [
    ("fleet.ini", "postgres:!pg_primary"),
    ("fleet.ini", "pool*"),
    ("fleet.ini", "nomatch"),
    ("deep_children.ini", "paris"),
    ("ungrouped.ini", "db"),
]

#: (inventory, --host NAME) compared with `ansible-inventory --host NAME`.
HOSTS: list[tuple[str, str]] = [
    ("fleet.ini", "db02.prod.chatalot.net"),
    ("fleet.ini", "pool1.prod.chatalot.net"),
    ("hostline_typing.ini", "h05"),
    ("hostline_typing.ini", "h07"),
    ("vars_typing.ini", "host1"),
    ("priorities.ini", "h1"),
    ("priorities.ini", "h2"),
    ("deep_children.ini", "par-db1"),
    ("clash.ini", "web"),
    ("pg_settings.ini", "db3"),
    ("ungrouped.ini", "loose1"),
]

#: `--graph` views compared byte for byte.
GRAPHS: list[tuple[str, tuple[str, ...]]] = [
    ("fleet.ini", ()),
    ("fleet.ini", ("--vars",)),
    ("deep_children.ini", ("europe",)),
    ("priorities.ini", ("--vars",)),
    ("ungrouped.ini", ()),
]

#: (broken file, line, what our message says, what Ansible's says: None when it is
#: the same words, "STRICTER" where Ansible accepts the file and we do not).
BROKEN_CASES: list[tuple[str, int, str, str | None]] = [
    ("unknown_section_type.ini", 7, "Section [db:var] has unknown type: var", None),
    ("section_with_space.ini", 2, "Invalid section entry: '[web servers]'", None),
    ("section_trailing_text.ini", 3, "nothing but a '# comment' may follow", "host range"),
    (
        "host_var_without_equals.ini",
        3,
        "Expected key=value host variable assignment, got: ansible_host",
        None,
    ),
    (
        "range_unequal_width.ini",
        3,
        "host range must specify equal-length begin and end formats: [01:3]",
        "host range must specify equal-length begin and end formats",
    ),
    ("range_too_many_parts.ini", 4, "host range must be begin:end or begin:end:step", None),
    ("range_no_end.ini", 2, "host range must specify end value", None),
    ("range_letters_reversed.ini", 2, "host range must have begin <= end", None),
    ("range_mixed.ini", 2, "invalid host range [a:5]", "invalid literal for int()"),
    ("range_zero_step.ini", 2, "invalid host range [1:5:0]", "must not be zero"),
    ("host_trailing_colon.ini", 2, "Invalid host pattern 'db1:' supplied, ending in ':'", None),
    (
        "host_unclosed_quote.ini",
        2,
        "Error parsing host definition 'db1 motd=\"unclosed': No closing quotation",
        None,
    ),
    ("yaml_file.ini", 1, "'---' is normally a sign this is a YAML file", None),
    ("vars_without_equals.ini", 6, "Expected key=value, got: pg_user chatalot", None),
    (
        "vars_for_undefined_group.ini",
        4,
        "Section [web:vars] not valid for undefined group 'web'",
        None,
    ),
    (
        "children_undefined_group.ini",
        3,
        "Section [postgres:children] includes undefined group 'replicas'",
        None,
    ),
    ("children_bad_name.ini", 2, "Expected group name, got: primary other", None),
    (
        "children_cycle.ini",
        8,
        "Adding group 'a' as child to 'c' creates a recursive dependency loop",
        None,
    ),
    ("children_self.ini", 4, "group 'a' cannot be a child of itself", "can't add group to itself"),
    ("children_all.ini", 4, "creates a recursive dependency loop", "recursive dependency loop"),
    (
        "priority_not_int.ini",
        4,
        "ansible_group_priority must be an integer, got 'high'",
        "invalid literal for int()",
    ),
    ("value_unhashable_key.ini", 2, "unhashable type: 'list'", None),
    (
        "value_tuple_key.ini",
        2,
        "dict keys must be strings, numbers, booleans or None",
        "not JSON serializable",
    ),
    ("bom.ini", 1, "byte order mark", "host range must be begin:end"),
    ("empty_host_name.ini", 2, "Invalid empty host name provided", None),
    ("latin1_value.ini", 2, "b'city=Z\\xfcrich' is not valid UTF-8", "STRICTER"),
]


def _all_calls() -> list[Call]:
    calls: list[Call] = []
    for name in GOOD:
        calls += [_list_call(INVENTORIES / name), _list_call(INVENTORIES / name, "--export")]
    calls += [_limit_call(INVENTORIES / name, pattern) for name, pattern in LIMITS]
    calls += [_list_call(INVENTORIES / n, "--limit", p) for n, p in LIST_LIMITS]
    calls += [_host_call(INVENTORIES / n, h) for n, h in HOSTS]
    calls += [_graph_call(INVENTORIES / n, *extra) for n, extra in GRAPHS]
    calls += [_list_call(BROKEN / name) for name, *_ in BROKEN_CASES]
    return calls


@pytest.fixture(scope="session")
def ansible(tmp_path_factory: pytest.TempPathFactory) -> Ansible:
    """The real ansible CLIs; every command line in the tables runs once, in parallel."""
    reference = Ansible(tmp_path_factory.mktemp("ansible"))
    reference.prefetch(_all_calls())
    return reference


# ---------------------------------------------------------------------------
# Whole inventories: ours == ansible-inventory --list
# ---------------------------------------------------------------------------


def test_there_are_enough_inventories() -> None:
    assert len(GOOD) >= 12


@pytest.mark.parametrize("export", [False, True], ids=["list", "export"])
@pytest.mark.parametrize("name", GOOD)
def test_list_equals_ansible(ansible: Ansible, name: str, export: bool) -> None:
    path = INVENTORIES / name
    extra = ("--export",) if export else ()
    assert load_inventory(str(path)).to_ansible_list(export=export) == ansible.listing(path, *extra)


@pytest.mark.parametrize(("name", "pattern"), LIST_LIMITS)
def test_list_with_limit_equals_ansible(ansible: Ansible, name: str, pattern: str) -> None:
    path = INVENTORIES / name
    ours = load_inventory(str(path)).to_ansible_list(limit=pattern)
    assert ours == ansible.listing(path, "--limit", pattern)


@pytest.mark.parametrize(("name", "pattern"), LIMITS)
def test_select_equals_ansible_limit(ansible: Ansible, name: str, pattern: str) -> None:
    path = INVENTORIES / name
    theirs = ansible.limit(path, pattern)
    assert isinstance(theirs, list), theirs
    ours = load_inventory(str(path)).select(pattern)
    if name in UNORDERED:
        assert sorted(ours) == sorted(theirs)
    else:
        assert ours == theirs


@pytest.mark.parametrize("pattern", ["postgres[7]", "pgbouncer[-3]"])
def test_out_of_range_subscript_is_an_error_like_ansible(ansible: Ansible, pattern: str) -> None:
    path = INVENTORIES / "fleet.ini"
    assert "No hosts matched the subscripted pattern" in str(ansible.limit(path, pattern))
    with pytest.raises(UsageError, match="No hosts matched the subscripted pattern"):
        load_inventory(str(path)).select(pattern)


# ---------------------------------------------------------------------------
# Broken inventories: file and line, at least Ansible's words
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "line", "ours", "theirs"), BROKEN_CASES)
def test_broken_inventory_names_file_and_line(
    ansible: Ansible, name: str, line: int, ours: str, theirs: str | None
) -> None:
    path = str(BROKEN / name)
    with pytest.raises(InventoryError,
                       match=f"(?s)^{re.escape(f'{path}:{line}: ')}.*{re.escape(ours)}") as caught:
        load_inventory(path)
    error = caught.value
    assert (error.path, error.line) == (path, line)

    reference = ansible.run(*_list_call(BROKEN / name))
    stderr = reference.stderr.decode(errors="replace")
    if theirs == "STRICTER":  # Ansible reads it, printing '?' for the bytes it cannot show
        assert reference.returncode == 0
        assert "Non UTF-8 encoded data replaced" in stderr
        return
    # Ansible rejects the same file (it warns and carries on without it) ...
    assert "Failed to parse" in stderr or reference.returncode != 0, stderr
    # ... saying what we say, or the phrase we replaced with a clearer one.
    said = " ".join(stderr.split())
    if theirs is None:
        assert ours in said
    else:
        assert theirs in said


# ---------------------------------------------------------------------------
# The command: chatalot-db inventory
# ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatalot-db")
    inventory_command.register(parser.add_subparsers(dest="command"))
    return parser


def _command(argv: list[str]) -> int:
    args = _parser().parse_args(["inventory", *argv])
    code = args.func(args)
    assert isinstance(code, int)
    return code


@pytest.fixture
def output(capsysbinary: pytest.CaptureFixture[bytes]) -> Iterator[pytest.CaptureFixture[bytes]]:
    yield capsysbinary


@pytest.mark.parametrize("name", GOOD)
def test_command_list_prints_ansibles_bytes(
    ansible: Ansible, output: pytest.CaptureFixture[bytes], name: str
) -> None:
    path = INVENTORIES / name
    assert _command(["-i", str(path), "--list"]) == 0
    assert output.readouterr().out == ansible.run(*_list_call(path)).stdout


@pytest.mark.parametrize(("name", "host"), HOSTS)
def test_command_host_prints_ansibles_bytes(
    ansible: Ansible, output: pytest.CaptureFixture[bytes], name: str, host: str
) -> None:
    path = INVENTORIES / name
    assert _command(["-i", str(path), "--host", host]) == 0
    assert output.readouterr().out == ansible.run(*_host_call(path, host)).stdout


@pytest.mark.parametrize(("name", "extra"), GRAPHS)
def test_command_graph_prints_ansibles_bytes(
    ansible: Ansible, output: pytest.CaptureFixture[bytes], name: str, extra: tuple[str, ...]
) -> None:
    path = INVENTORIES / name
    assert _command(["-i", str(path), "--graph", *extra]) == 0
    assert output.readouterr().out == ansible.run(*_graph_call(path, *extra)).stdout


@pytest.mark.parametrize(("name", "pattern"), LIST_LIMITS)
def test_command_list_limit_prints_ansibles_bytes(
    ansible: Ansible, output: pytest.CaptureFixture[bytes], name: str, pattern: str
) -> None:
    path = INVENTORIES / name
    assert _command(["-i", str(path), "--list", "--limit", pattern]) == 0
    assert output.readouterr().out == ansible.run(*_list_call(path, "--limit", pattern)).stdout


def test_command_without_inventory_shows_localhost(output: pytest.CaptureFixture[bytes]) -> None:
    assert _command(["--host", "localhost"]) == 0
    assert json.loads(output.readouterr().out) == {"ansible_connection": "local"}


COMMAND_ERRORS: list[tuple[list[str], int, str]] = [
    (
        ["-i", str(BROKEN / "range_unequal_width.ini"), "--list"],
        1,
        f"chatalot-db: error: {BROKEN / 'range_unequal_width.ini'}:3: host range must specify",
    ),
    (["-i", str(INVENTORIES / "no-such.ini"), "--list"], 1, "cannot read the inventory"),
    (["-i", str(INVENTORIES / "fleet.ini")], 5, "chatalot-db: error: no action selected"),
    (["-i", str(INVENTORIES / "fleet.ini"), "--list", "--graph"], 5, "conflicting options"),
    (["-i", str(INVENTORIES / "fleet.ini"), "--host", "nope"], 5, "--host nope: no such host"),
    (["-i", str(INVENTORIES / "fleet.ini"), "--host", "db*"], 5, "matches 3 hosts"),
    (
        ["-i", str(INVENTORIES / "fleet.ini"), "--graph", "nogroup"],
        5,
        "Pattern must be valid group name",
    ),
    (
        ["-i", str(INVENTORIES / "fleet.ini"), "--list", "--limit", "~("],
        5,
        "Invalid host list pattern",
    ),
]


@pytest.mark.parametrize(("argv", "code", "message"), COMMAND_ERRORS)
def test_command_errors(
    output: pytest.CaptureFixture[bytes], argv: list[str], code: int, message: str
) -> None:
    assert _command(argv) == code
    captured = output.readouterr()
    assert captured.out == b""
    assert message in captured.err.decode()
    assert captured.err.decode().startswith("chatalot-db: error: ")


def test_command_does_not_clobber_global_options() -> None:
    parser = argparse.ArgumentParser(prog="chatalot-db")
    parser.add_argument("-i", "--inventory")
    parser.add_argument("--limit")
    inventory_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["-i", "hosts.ini", "--limit", "db", "inventory", "--list"])
    assert (args.inventory, args.limit) == ("hosts.ini", "db")


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["-i", str(INVENTORIES / "fleet.ini"), "--list"], 0),
        (["-i", str(BROKEN / "children_cycle.ini"), "--list"], 1),
        (["-i", str(INVENTORIES / "fleet.ini")], 5),
    ],
)
def test_console_script(ansible: Ansible, argv: list[str], code: int) -> None:
    """`chatalot-db inventory` as installed (installer.cli wires the subcommand)."""
    script = BIN / "chatalot-db"
    result = subprocess.run(
        [str(script), "inventory", *argv], capture_output=True, timeout=120, check=False
    )
    assert result.returncode == code, result.stderr
    if code == 0:
        assert result.stdout == ansible.run(*_list_call(Path(argv[1]))).stdout
    else:
        assert result.stderr.decode().startswith("chatalot-db: error: ")
