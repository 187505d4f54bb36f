"""What the user sees: step lines or a live view, per-host logs, a recap, a JSON report.

Two ways to show a run, chosen by `Display(live=None)` from the output stream:

- plain (not a terminal, or TERM=dumb): one line per finished step, in the order
  they finish, prefixed with the host name when there are several hosts;
- live (a terminal): one line per host (its current step and elapsed time),
  redrawn in place under the lines that stay (failures, diffs, messages; with a
  single host, every step line stays).

Then the recap, exactly in ansible-playbook's layout (default callback), and the
exit code ansible-playbook would give. Per-host log files (`HostLogs`) hold the
step lines and the commands run, never a command's input or output.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TextIO

from installer.fleet.report import (
    DONE,
    FAILED,
    NOT_STARTED,
    RUNNING,
    STOPPED,
    UNREACHABLE,
    HostReport,
    StepRecord,
)
from installer.steps.base import Status

# SGR colours, as Ansible's defaults: ok green, changed yellow, unreachable bright red,
# failed red, skipped cyan, ignored bright purple
COLOURS = {"ok": "32", "changed": "33", "skipped": "36", "failed": "31",
           "unreachable": "1;31", "stopped": "33", "rescued": "32", "ignored": "1;35"}

# ---------------------------------------------------------------------------
# The recap (pure)
# ---------------------------------------------------------------------------


def paint(text: str, status: str, colour: bool) -> str:
    if not colour or status not in COLOURS:
        return text
    return f"\033[{COLOURS[status]}m{text}\033[0m"


def banner(title: str, columns: int = 79) -> str:
    """Ansible's banner: the title and stars to `columns` (at least 3)."""
    return f"{title} {'*' * max(3, columns - len(title))}"


def recap_line(name: str, counts: Mapping[str, int], colour: bool = False) -> str:
    """One recap line, aligned as ansible-playbook's default callback aligns it."""
    status = ("failed" if counts["failed"] or counts["unreachable"] else
              "changed" if counts["changed"] else "ok")
    fields = [("ok", counts["ok"], "ok"), ("changed", counts["changed"], "changed"),
              ("unreachable", counts["unreachable"], "unreachable"),
              ("failed", counts["failed"], "failed"), ("skipped", counts["skipped"], "skipped"),
              ("rescued", counts.get("rescued", 0), "rescued"),
              ("ignored", counts.get("ignored", 0), "ignored")]
    parts = [paint(f"{lead}={num!s:<4}", how, colour and num != 0) for lead, num, how in fields]
    return f"{paint(f'{name:<26}', status, colour)} : {' '.join(parts)}"


def recap_lines(reports: Iterable[HostReport], *, colour: bool = False,
                columns: int = 79) -> list[str]:
    """PLAY RECAP as ansible-playbook prints it: a blank line, the banner, one line per
    host that ran (sorted by name), a blank line."""
    lines = ["", banner("PLAY RECAP", columns)]
    for r in sorted((r for r in reports if r.ran), key=lambda r: r.name):
        lines.append(recap_line(r.name, r.counts, colour))
    lines.append("")
    return lines


# ---------------------------------------------------------------------------
# Per-host log files
# ---------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._:@-]")


class HostLogs:
    """One append-only log file per host in a directory (0700, files 0600).

    Holds step lines, messages and the commands the transport runs (the
    `chatalot_db` loggers, DEBUG), routed by the host thread that logs them.
    Never a command's stdin or output: the transport logs only the command.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._files: dict[str, IO[str]] = {}
        self._threads: dict[int, str] = {}
        self._lock = threading.Lock()
        self._started = datetime.now().astimezone().isoformat(timespec="seconds")

    def path(self, host: str) -> Path:
        name = _UNSAFE.sub("_", host).lstrip(".") or "_"
        return self.directory / f"{name}.log"

    def _file(self, host: str) -> IO[str]:
        f = self._files.get(host)
        if f is None:
            fd = os.open(self.path(host), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            f = os.fdopen(fd, "a", encoding="utf-8")
            f.write(f"==== chatalot-db apply on {host}, started {self._started} "
                    f"(pid {os.getpid()})\n")
            self._files[host] = f
        return f

    def write(self, host: str, text: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
        body = text.rstrip("\n").replace("\n", "\n" + " " * (len(stamp) + 1))
        with self._lock:
            f = self._file(host)
            f.write(f"{stamp} {body}\n")
            f.flush()

    def bind(self, host: str) -> None:
        """Log records from the calling thread go to `host`'s file from now on."""
        with self._lock:
            self._threads[threading.get_ident()] = host
            self._file(host)

    def unbind(self) -> None:
        with self._lock:
            self._threads.pop(threading.get_ident(), None)

    def host_of_thread(self) -> str | None:
        with self._lock:
            return self._threads.get(threading.get_ident())

    def handler(self) -> logging.Handler:
        """A logging handler writing records of bound threads to their host's file."""
        return _HostLogHandler(self)

    def close(self) -> None:
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()


class _HostLogHandler(logging.Handler):
    def __init__(self, logs: HostLogs) -> None:
        super().__init__(logging.DEBUG)
        self.logs = logs

    def emit(self, record: logging.LogRecord) -> None:
        host = self.logs.host_of_thread()
        if host is None:
            return
        try:
            self.logs.write(host, record.getMessage())
        except Exception:  # a log file that cannot be written must not fail the run
            self.handleError(record)


# ---------------------------------------------------------------------------
# The display
# ---------------------------------------------------------------------------


@dataclass
class _Row:
    """What the live view knows about one host."""

    state: str = NOT_STARTED
    step: str = ""
    index: int = 0
    total: int = 0
    batch: int = 0
    started: float = 0.0
    seconds: float = 0.0
    detail: str = ""
    label: str = ""  # the word shown for a finished host (ok, changed, failed, ...)
    note: str = ""  # what the running step is doing now (step_progress)


STATE_WIDTH = len("not started")


class _Guarded:
    """The output stream, minus a reader that went away: once a write or flush meets a
    closed pipe (`chatalot-db apply ... | head`), the rest of the output is dropped and
    the run goes on, never failing a host over a line nobody reads."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.closed_reader = False

    def write(self, text: str) -> None:
        if not self.closed_reader:
            try:
                self.out.write(text)
            except BrokenPipeError:
                self.closed_reader = True

    def flush(self) -> None:
        if not self.closed_reader:
            try:
                self.out.flush()
            except BrokenPipeError:
                self.closed_reader = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.out, name)


class Display:
    """Shows a run's progress; safe to call from several host threads at once.

    Host threads call host_started / step_started / step / unreachable / host_done;
    the main thread calls start, batch, tick (about 5 times a second), message,
    finish and recap.
    """

    def __init__(self, out: TextIO | None = None, *, multi_host: bool = False,
                 show_diff: bool = False, colour: bool | None = None,
                 live: bool | None = None, logs: HostLogs | None = None) -> None:
        self.out: Any = _Guarded(out or sys.stdout)
        self.multi_host = multi_host
        self.show_diff = show_diff
        tty = _isatty(out or sys.stdout)
        self.colour = (tty and "NO_COLOR" not in os.environ) if colour is None else colour
        self.live = (tty and os.environ.get("TERM") != "dumb") if live is None else live
        self.logs = logs
        self._lock = threading.RLock()
        self._rows: dict[str, _Row] = {}
        self._batches = 1
        self._drawn = 0  # lines of the live region currently on screen
        self._last_draw = 0.0
        self._finished = False

    # -- low level ------------------------------------------------------------
    def _paint(self, text: str, status: str) -> str:
        return paint(text, status, self.colour)

    def _size(self) -> tuple[int, int]:
        """The terminal's columns and lines (80x24 when it does not say)."""
        try:
            columns, lines = os.get_terminal_size(self.out.fileno())
        except (OSError, ValueError, AttributeError):
            columns, lines = 80, 24
        return columns or 80, lines or 24

    def _live_now(self) -> bool:
        return self.live and not self._finished

    def _erase(self) -> None:
        if self._drawn:
            self.out.write(f"\033[{self._drawn}A\r\033[J")
            self._drawn = 0

    def _draw(self) -> None:
        lines = self._region()
        for line in lines:
            self.out.write(line + "\n")
        self._drawn = len(lines)
        self._last_draw = time.monotonic()

    def _write(self, text: str) -> None:
        """Lines that stay: above the live region (redrawn under them), or plain."""
        with self._lock:
            if self._live_now():
                self._erase()
                self.out.write(text + "\n")
                self._draw()
            else:
                self.out.write(text + "\n")
            self.out.flush()

    def _redraw(self) -> None:
        with self._lock:
            if not self._live_now():
                return
            self._erase()
            self._draw()
            self.out.flush()

    def _log(self, host: str, text: str) -> None:
        if self.logs is not None:
            self.logs.write(host, text)

    # -- the live region ------------------------------------------------------
    def _row_text(self, name: str, row: _Row, width: int, now: float) -> str:
        elapsed = (now - row.started) if row.state == RUNNING else row.seconds
        state = row.state
        label = row.label or ("waiting" if state == NOT_STARTED and not self._finished
                              else state)
        status_key = "" if state in (RUNNING, NOT_STARTED) else label
        if state == RUNNING:
            rest = f"[{row.index}/{row.total}] {row.step}" if row.total else row.step
            if row.note:
                rest += f": {row.note}"
        elif state == NOT_STARTED:
            rest = f"batch {row.batch}/{self._batches}" if self._batches > 1 else ""
        else:
            rest = row.detail
        time_text = f"{elapsed:6.1f}s" if state != NOT_STARTED else " " * 7
        plain_head = f"{name:<{width}}  {label:<{STATE_WIDTH}}"
        columns, _ = self._size()
        line = f"{plain_head}  {time_text}  {rest}".rstrip()
        limit = max(20, columns - 1)
        if len(line) > limit:
            line = line[: limit - 1] + "…"
        # colour the state word only (after cutting, so the cut counts visible characters)
        head_len = len(name.ljust(width)) + 2
        if status_key and len(line) >= head_len + len(label):
            line = (line[:head_len] + self._paint(label, status_key)
                    + line[head_len + len(label):])
        return line

    def _region(self) -> list[str]:
        if not self._rows:
            return []
        now = time.monotonic()
        width = min(30, max(len(n) for n in self._rows))
        _, lines = self._size()
        room = max(3, lines - 3)
        names = list(self._rows)
        if len(names) > room:  # a big fleet: running hosts first, then a summary
            running = [n for n in names if self._rows[n].state == RUNNING][: room - 1]
            others: dict[str, int] = {}
            for n in names:
                if n not in running:
                    state = self._rows[n].state
                    others[state] = others.get(state, 0) + 1
            summary = ", ".join(f"{k} {v}" for k, v in others.items())
            return [self._row_text(n, self._rows[n], width, now) for n in running] + [
                f"{'… ' + str(len(names) - len(running)) + ' more':<{width}}  {summary}"]
        return [self._row_text(n, self._rows[n], width, now) for n in names]

    # -- run structure (main thread) -----------------------------------------
    def start(self, names: list[str], batches: list[list[str]] | None = None) -> None:
        """The hosts of the run, in order, and their batches."""
        with self._lock:
            batches = batches or [names]
            self._batches = len(batches)
            for i, batch in enumerate(batches, 1):
                for n in batch:
                    self._rows[n] = _Row(batch=i)
            self._redraw()

    def batch(self, index: int, count: int, names: list[str]) -> None:
        if count > 1:
            self._write(f"BATCH [{index}/{count}] {', '.join(names)}")

    def tick(self) -> None:
        """Redraw the live view (elapsed times) at most five times a second."""
        if self._live_now() and time.monotonic() - self._last_draw >= 0.2:
            self._redraw()

    def running(self) -> dict[str, str]:
        """Hosts running now and the step each is in."""
        with self._lock:
            return {n: r.step for n, r in self._rows.items() if r.state == RUNNING}

    def finish(self) -> None:
        """Leave the live view's last state on screen; from now on, plain lines."""
        with self._lock:
            if self.live and not self._finished:
                self._finished = True  # the last frame says "not started", not "waiting"
                self._erase()
                self._draw()
                self._drawn = 0
            self._finished = True
            self.out.flush()

    # -- host events (host threads) ---------------------------------------------
    def host_started(self, host: str) -> None:
        if self.logs is not None:
            self.logs.bind(host)
        with self._lock:
            row = self._rows.setdefault(host, _Row())
            row.state, row.started = RUNNING, time.monotonic()
            row.step = "connecting"
            self._redraw()

    def step_started(self, host: str, title: str, index: int = 0, total: int = 0) -> None:
        with self._lock:
            row = self._rows.setdefault(host, _Row(state=RUNNING, started=time.monotonic()))
            row.step, row.index, row.total, row.note = title, index, total, ""
            self._redraw()

    def step_progress(self, host: str, text: str) -> None:
        """What host's running step is doing now (a migration waiting for a lock): on its
        live row, or a plain line."""
        with self._lock:
            row = self._rows.get(host)
            if row is not None:
                row.note = text
            step = row.step if row is not None else ""
        if self._live_now():
            with self._lock:
                self._redraw()
        else:
            self._write(f"{host}: {step}: {text}" if step else f"{host}: {text}")

    def step(self, host: str, rec: StepRecord) -> None:
        def line(label: str, colour: bool) -> str:
            dots = "." * max(3, 44 - len(label))
            text = f"{label} {dots} {paint(rec.status, rec.status, colour)}"
            return text + (f"  ({rec.reason})" if rec.reason else "")

        task = f"TASK [{rec.name}]"
        diff = ""
        if self.show_diff and rec.diff:
            diff = "\n" + "\n".join("    " + ln for ln in rec.diff.rstrip("\n").splitlines())
        self._log(host, line(task, False) + diff)
        shown = line(f"{host:<16} {task}" if self.multi_host else task, self.colour)
        # in the live view of several hosts, only failures and diffs stay on screen
        if not self._live_now() or not self.multi_host or rec.status == Status.FAILED or diff:
            self._write(shown + diff)

    def unreachable(self, host: str, message: str) -> None:
        self._log(host, f"UNREACHABLE: {message}")
        self._write(f"{self._paint('UNREACHABLE', 'unreachable')} [{host}]: {message}")

    def host_done(self, report: HostReport) -> None:
        c = report.counts
        if report.state == FAILED:
            failed = next((s for s in report.steps if s.status == Status.FAILED), None)
            detail = (report.error if failed is None else
                      f"{failed.name}: {failed.reason}" if failed.reason else failed.name)
        elif report.state == UNREACHABLE:
            detail = report.error
        elif report.state == STOPPED:
            detail = f"before {report.stopped_before}"
        else:
            detail = f"ok={c['ok']} changed={c['changed']} skipped={c['skipped']}"
        label = report.state
        if report.state == DONE:
            label = "changed" if c["changed"] else "ok"
        summary = (f"{report.state}: ok={c['ok']} changed={c['changed']} "
                   f"unreachable={c['unreachable']} failed={c['failed']} "
                   f"skipped={c['skipped']} in {report.seconds:.1f}s")
        if report.state == STOPPED:
            summary += f", stopped before {report.stopped_before}"
        if report.state != NOT_STARTED:
            self._log(report.name, summary)
        with self._lock:
            row = self._rows.setdefault(report.name, _Row())
            row.state, row.seconds, row.detail = report.state, report.seconds, detail
            row.label = label
            self._redraw()
        if self.logs is not None and self.logs.host_of_thread() == report.name:
            self.logs.unbind()

    # -- messages and the recap (main thread) -------------------------------------
    def message(self, text: str) -> None:
        self._write(text)

    def recap(self, reports: list[HostReport], *, stopped: str | None = None,
              interrupted: bool = False) -> None:
        self.finish()
        columns = max(79, self._size()[0] - 1) if _isatty(self.out) else 79
        self._write("\n".join(recap_lines(reports, colour=self.colour, columns=columns)))
        for r in reports:
            for note in r.notes:
                self._write(f"{r.name}: {note}" if self.multi_host else note)
        halted = [r for r in reports if r.state == STOPPED]
        for r in halted:
            self._write(f"{r.name}: stopped before {r.stopped_before}")
        waiting = [r.name for r in reports if not r.ran]
        why = "interrupted" if interrupted else stopped
        if waiting:
            self._write(f"NOT STARTED ({why or 'run stopped'}): {', '.join(waiting)}")
        if interrupted:
            self._write("INTERRUPTED: the steps that were running ended; rerun to finish")
        elif stopped:
            self._write(f"STOPPED: {stopped}")


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
