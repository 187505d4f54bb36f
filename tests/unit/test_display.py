"""What the user sees: the recap (against ansible-core's own formatting), the plain lines,
the live view, host logs (installer.fleet.display)."""

from __future__ import annotations

import io
import logging
import re
import threading
from pathlib import Path

import pytest

from installer.fleet.display import Display, HostLogs, banner, recap_line, recap_lines
from installer.fleet.report import (
    DONE,
    FAILED,
    UNREACHABLE,
    HostReport,
    StepRecord,
)
from installer.transport.local import LocalTransport

ANSI = re.compile(r"\033\[[0-9;]*[A-Za-z]")


def ansible_recap_line(name: str, c: dict[str, int]) -> str:
    """The default callback's line (its log_only, uncoloured variant)."""
    from ansible.utils.color import colorize, hostcolor  # type: ignore[import-untyped]

    t = {"ok": c["ok"], "changed": c["changed"], "unreachable": c["unreachable"],
         "failures": c["failed"], "skipped": c["skipped"], "rescued": 0, "ignored": 0}
    return "%s : %s %s %s %s %s %s %s" % (  # noqa: UP031 - the callback's own format
        hostcolor(name, t, False),
        colorize("ok", t["ok"], None), colorize("changed", t["changed"], None),
        colorize("unreachable", t["unreachable"], None), colorize("failed", t["failures"], None),
        colorize("skipped", t["skipped"], None), colorize("rescued", t["rescued"], None),
        colorize("ignored", t["ignored"], None),
    )


@pytest.mark.parametrize("name", ["db01", "a" * 26, "a-very-long-host-name.example.net", "x"])
@pytest.mark.parametrize(
    "counts",
    [{"ok": 12, "changed": 8, "unreachable": 0, "failed": 0, "skipped": 0},
     {"ok": 0, "changed": 0, "unreachable": 1, "failed": 0, "skipped": 0},
     {"ok": 4, "changed": 1, "unreachable": 0, "failed": 1, "skipped": 2},
     {"ok": 12345, "changed": 123456, "unreachable": 0, "failed": 0, "skipped": 99999}],
)
def test_recap_line_is_ansibles(name: str, counts: dict[str, int]) -> None:
    assert recap_line(name, counts) == ansible_recap_line(name, counts)
    coloured = recap_line(name, counts, colour=True)
    assert ANSI.sub("", coloured) == recap_line(name, counts)
    assert coloured != recap_line(name, counts)


@pytest.mark.parametrize("columns", [79, 120])
def test_banner_is_ansibles(columns: int) -> None:
    from ansible.utils.display import (  # type: ignore[import-untyped]
        Display as AnsibleDisplay,
    )

    shown: list[str] = []
    d = AnsibleDisplay()
    d.columns = columns
    d.b_cowsay = None
    d.display = lambda msg, *a, **k: shown.append(msg)
    d.banner("PLAY RECAP")
    assert shown == ["\n" + banner("PLAY RECAP", columns)]


def _report(name: str, statuses: list[str], state: str = DONE, **kw: object) -> HostReport:
    return HostReport(name, [StepRecord(f"s{i}", s) for i, s in enumerate(statuses)],
                      state=state, **kw)  # type: ignore[arg-type]


def test_recap_sorts_like_ansible_and_leaves_out_hosts_that_never_started() -> None:
    reports = [_report("web2", ["ok"]), _report("db1", ["changed", "failed"], FAILED),
               HostReport("never"), _report("gone", [], UNREACHABLE, unreachable=True)]
    lines = recap_lines(reports)
    assert lines[0] == "" and lines[1].startswith("PLAY RECAP ***") and lines[-1] == ""
    assert [ln.split()[0] for ln in lines[2:-1]] == ["db1", "gone", "web2"]
    assert "unreachable=1" in lines[3]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        raise OSError("no real terminal")


def test_plain_lines_are_host_prefixed_in_order() -> None:
    out = io.StringIO()
    d = Display(out, multi_host=True)
    assert not d.live and not d.colour
    d.start(["a", "b"])
    d.host_started("a")
    d.step("a", StepRecord("gather facts", "ok", "Debian"))
    d.step("b", StepRecord("install postgresql", "changed"))
    d.unreachable("c", "no route")
    d.tick()
    d.finish()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("a ") and "TASK [gather facts]" in lines[0]
    assert lines[0].endswith("ok  (Debian)")
    assert lines[1].startswith("b ") and lines[1].rstrip().endswith("changed")
    assert lines[2] == "UNREACHABLE [c]: no route"
    assert "\033" not in out.getvalue()


def test_live_view_redraws_one_line_per_host_in_place() -> None:
    out = FakeTerminal()
    d = Display(out, multi_host=True)
    assert d.live and d.colour
    d.start(["db1", "db2"], [["db1"], ["db2"]])
    d.host_started("db1")
    d.step_started("db1", "install postgresql", 2, 11)
    d.step("db1", StepRecord("gather facts", "ok"))            # not kept on screen
    d.step("db1", StepRecord("install postgresql", "failed", "apt broke"))  # kept
    r = _report("db1", ["ok", "failed"], FAILED, seconds=3.0)
    d.host_done(r)
    d.finish()
    text = out.getvalue()
    assert "\033[2A\r\033[J" in text  # moved up over the two host lines and redrew them
    assert "TASK [gather facts]" not in text
    assert "apt broke" in text
    final = ANSI.sub("", text.split("\033[J")[-1]).splitlines()
    assert final[0].startswith("db1") and "failed" in final[0] and final[0].endswith("s1")
    assert final[1].startswith("db2") and "not started" in final[1] and "batch 2/2" in final[1]
    # after finish, lines are plain again (no more cursor moves)
    d.message("after")
    assert out.getvalue().endswith("after\n")


def test_step_progress_on_the_live_row_and_as_a_plain_line() -> None:
    """What a running step waits for: on its host's live row (cleared by the next step),
    or a host-prefixed line when the output is no terminal."""
    out = FakeTerminal()
    d = Display(out, multi_host=True)
    d.start(["db1", "db2"])
    d.host_started("db1")
    d.step_started("db1", "apply migrations", 9, 11)
    d.step_progress("db1", "migration 2 waits for a table lock (try 2 of 4 in 1 s): held by "
                           "pid 42")
    last = ANSI.sub("", out.getvalue().split("\033[J")[-1]).splitlines()
    # (cut at the terminal's width, as every live line)
    assert last[0].startswith("db1") and last[0].endswith(
        "[9/11] apply migrations: migration 2 waits for a ta…"), last
    d.step_started("db1", "schedule backups", 10, 11)
    last = ANSI.sub("", out.getvalue().split("\033[J")[-1]).splitlines()
    assert last[0].endswith("[10/11] schedule backups"), last
    plain = io.StringIO()
    p = Display(plain, multi_host=True, live=False)
    p.start(["db1"])
    p.host_started("db1")
    p.step_started("db1", "apply migrations", 9, 11)
    p.step_progress("db1", "migration 2 waits for a table lock")
    assert plain.getvalue() == "db1: apply migrations: migration 2 waits for a table lock\n"


def test_live_view_of_one_host_keeps_every_step_line() -> None:
    out = FakeTerminal()
    d = Display(out)
    d.start(["localhost"])
    d.host_started("localhost")
    d.step_started("localhost", "gather facts", 1, 11)
    assert "[1/11] gather facts" in ANSI.sub("", out.getvalue())
    d.step("localhost", StepRecord("gather facts", "ok"))
    d.finish()
    assert "TASK [gather facts]" in out.getvalue()


def test_live_lines_never_wrap() -> None:
    out = FakeTerminal()
    d = Display(out, multi_host=True)
    d.start(["h"])
    d.host_started("h")
    d.step_started("h", "x" * 500, 1, 2)
    for line in ANSI.sub("", out.getvalue()).splitlines():
        assert len(line) < 80


def test_big_fleet_live_view_fits_the_terminal() -> None:
    out = FakeTerminal()
    d = Display(out, multi_host=True)
    names = [f"db{i:03d}" for i in range(200)]
    d.start(names)
    d.host_started("db007")
    d.finish()
    last = ANSI.sub("", out.getvalue().split("\033[J")[-1]).splitlines()
    assert len(last) <= 24 and last[0].startswith("db007") and "199 more" in last[-1]


def test_host_logs_get_steps_and_commands_never_stdin_or_output(tmp_path: Path) -> None:
    logs = HostLogs(tmp_path / "logs")
    display = Display(io.StringIO(), multi_host=True, logs=logs)
    app = logging.getLogger("chatalot_db")
    handler = logs.handler()
    app.addHandler(handler)
    app.setLevel(logging.DEBUG)
    secret = "s3cret-on-stdin"
    try:
        def host(name: str) -> None:
            display.host_started(name)
            t = LocalTransport(name)
            r = t.run("cat; echo out-$((6*7))", stdin=secret)
            assert r.stdout == secret + "out-42\n"
            display.step(name, StepRecord("echo", "ok", "fine"))
            display.host_done(_report(name, ["ok"]))

        threads = [threading.Thread(target=host, args=(n,)) for n in ("h1", "h2")]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        logging.getLogger("chatalot_db.transport").debug("not from a host thread")
    finally:
        app.removeHandler(handler)
        logs.close()
    assert (tmp_path / "logs").stat().st_mode & 0o777 == 0o700
    for name in ("h1", "h2"):
        path = tmp_path / "logs" / f"{name}.log"
        assert path.stat().st_mode & 0o777 == 0o600
        text = path.read_text()
        assert f"{name}: run: cat; echo out-$((6*7))" in text
        assert "TASK [echo]" in text and "done: ok=1" in text
        assert secret not in text and "out-42" not in text
        assert "not from a host thread" not in text
        other = "h2" if name == "h1" else "h1"
        assert f"{other}: run" not in text


class _ClosedPipe(io.StringIO):
    """stdout piped to a reader that went away (`| head -1`) after `keep` writes."""

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = keep

    def write(self, text: str) -> int:
        if self.keep <= 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.keep -= 1
        return super().write(text)


def test_a_reader_gone_mid_run_costs_the_run_nothing() -> None:
    """`chatalot-db apply ... | head -1`: once the pipe is closed the output is dropped;
    no step, host thread or recap fails over it."""
    out = _ClosedPipe(keep=1)
    d = Display(out, multi_host=True, live=False)
    d.start(["db1"])
    d.host_started("db1")
    d.step_started("db1", "gather facts", 1, 2)
    d.step("db1", StepRecord("gather facts", "ok", "Debian"))  # the line head keeps
    d.step("db1", StepRecord("install postgresql", "changed", "installed"))  # pipe closed
    d.step_progress("db1", "still here")
    d.host_done(_report("db1", ["ok", "changed"], DONE, seconds=1.0))
    d.recap([_report("db1", ["ok", "changed"], DONE, seconds=1.0)])
    assert out.getvalue() == "db1              TASK [gather facts] ........ ok  (Debian)\n"
