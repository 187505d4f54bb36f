"""The three contenders, each run as a user runs it, timed from outside (wall clock).

- ours: `chatalot-db apply -i INVENTORY -f N --json FILE --log-dir DIR`;
- ansible: `ansible-playbook -i INVENTORY bench/playbook.yml` from bench/.venv, with
  bench/ansible.cfg (pipelining, explicit facts, known interpreter) and forks = N;
- floor: `ssh HOST bash -s` fed a block of variables and bench/floor.sh, one ssh
  process per host, all at once.

Each reaches a host where BenchBed.endpoint() says (its address, or a latency relay in
front of it), with host keys checked against BenchBed.tools_known_hosts.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shlex
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.hosts import BenchBed

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

DB = "chatalot"
ROLE = "chatalot"
ENV_FILE = "/etc/chatalot/database.env"
ENV_HEADER = "# Written by chatalot-db: the Chatalot server reads DATABASE_URL from this file."
HBA_BLOCK = (
    "# BEGIN chatalot-db managed block for chatalot@chatalot: rewritten on every run\n"
    "host    chatalot        chatalot        127.0.0.1/32            scram-sha-256\n"
    "host    chatalot        chatalot        ::1/128                 scram-sha-256\n"
    "# END chatalot-db managed block for chatalot@chatalot"
)


@dataclass
class HostResult:
    """One host's outcome as the tool reported it."""

    ok: bool
    changed: int | None = None
    detail: str = ""


@dataclass
class ToolRun:
    """One run of one tool on some hosts."""

    seconds: float
    exit_code: int
    hosts: dict[str, HostResult]
    output_tail: str = ""
    #: tool-specific: ours' --json report and per-step commands
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and bool(self.hosts) and all(h.ok for h in self.hosts.values())


@dataclass(frozen=True)
class Job:
    """What every tool is asked to do: the same settings, role, password, migrations."""

    pg_major: int
    settings: dict[str, str]
    password: str
    verifier: str
    lock_id: int
    migrations_dir: Path

    def dropin(self) -> str:
        lines = ["# Managed by the benchmark (Ansible playbook or floor script)."]
        lines += [f"{name} = '{value}'" for name, value in self.settings.items()]
        return "\n".join(lines)

    def env_content(self) -> str:
        return f"{ENV_HEADER}\nDATABASE_URL=postgres://{ROLE}:{self.password}@localhost:5432/{DB}"


class Tool(Protocol):
    name: str

    def run(self, bed: BenchBed, names: list[str], work: Path) -> ToolRun: ...


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _timed(argv: list[str], env: dict[str, str] | None, out_path: Path,
           timeout: float) -> tuple[float, int, str]:
    """Run argv (stdin closed), output to out_path; (wall seconds, exit code, output)."""
    started = time.monotonic()
    with out_path.open("w") as out:
        try:
            done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = 124
    seconds = time.monotonic() - started
    return seconds, code, out_path.read_text(errors="replace")


# -- ours ------------------------------------------------------------------------------

_LOG_RUN = re.compile(r"^\d\d:\d\d:\d\d\.\d+ (\S+): run")
_LOG_TASK = re.compile(r"^\d\d:\d\d:\d\d\.\d+ TASK \[(.+?)\] \.")


def commands_per_step(log_text: str) -> list[tuple[str, int]]:
    """(step, commands) from a --log-dir file: a step's commands come before its TASK line."""
    out: list[tuple[str, int]] = []
    pending = 0
    for line in log_text.splitlines():
        if _LOG_RUN.match(line):
            pending += 1
        else:
            m = _LOG_TASK.match(line)
            if m:
                out.append((m.group(1), pending))
                pending = 0
    return out


class Ours:
    name = "ours"

    def __init__(self, timeout: float = 1800) -> None:
        self.exe = ROOT / ".venv" / "bin" / "chatalot-db"
        self.timeout = timeout
        # bytecode as a pip (wheel) install leaves it, and as Ansible's venv has it: the
        # checkout's editable install compiles on first use, or on every use where the
        # environment sets PYTHONDONTWRITEBYTECODE
        subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "compileall", "-q",
                        str(ROOT / "installer")], check=True, stdout=subprocess.DEVNULL)

    def run(self, bed: BenchBed, names: list[str], work: Path) -> ToolRun:
        inventory = bed.write_inventory(names, work / "inventory.ini")
        report, logs = work / "report.json", work / "logs"
        # the job's migrations (the bundled 52, which the other tools apply too); the
        # tool's own default, none, would leave them to the Chatalot server
        argv = [str(self.exe), "apply", "-i", str(inventory), "-f", str(len(names)),
                "-e", "migrations_source=bundled",
                "--json", str(report), "--log-dir", str(logs)]
        seconds, code, output = _timed(argv, None, work / "output.txt", self.timeout)
        hosts: dict[str, HostResult] = {}
        data: dict[str, Any] = {}
        if report.is_file():
            data = json.loads(report.read_text())
        for name in names:
            h = data.get("hosts", {}).get(name)
            if h is None:
                hosts[name] = HostResult(False, None, "not in the --json report")
                continue
            good = h.get("failed") == 0 and h.get("unreachable") == 0 and h.get("state") == "done"
            hosts[name] = HostResult(good, int(h.get("changed", 0)), h.get("error", ""))
        steps: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            log = logs / f"{name}.log"
            counted = commands_per_step(log.read_text()) if log.is_file() else []
            by_step = dict(counted)
            steps[name] = [
                {"name": s["name"], "status": s["status"], "seconds": s["seconds"],
                 "commands": by_step.get(s["name"])}
                for s in data.get("hosts", {}).get(name, {}).get("steps", [])
            ]
        host_seconds = {n: data.get("hosts", {}).get(n, {}).get("seconds") for n in names}
        return ToolRun(seconds, code, hosts, _tail(output),
                       {"steps": steps, "host_seconds": host_seconds})


# -- Ansible ----------------------------------------------------------------------------

_RECAP = re.compile(
    r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def parse_recap(output: str) -> dict[str, tuple[int, int, int, int]]:
    """PLAY RECAP lines: host -> (ok, changed, unreachable, failed)."""
    found: dict[str, tuple[int, int, int, int]] = {}
    recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            recap = True
            continue
        m = _RECAP.match(line) if recap else None
        if m:
            found[m.group(1)] = (int(m.group(2)), int(m.group(3)), int(m.group(4)),
                                 int(m.group(5)))
    return found


class Ansible:
    name = "ansible"

    def __init__(self, venv: Path, job: Job, timeout: float = 2400) -> None:
        self.exe = venv / "bin" / "ansible-playbook"
        self.job = job
        self.timeout = timeout

    def extra_vars(self) -> dict[str, Any]:
        j = self.job
        return {"pg_major": j.pg_major, "db_name": DB, "db_user": ROLE,
                "pg_settings": j.settings, "app_password": j.password,
                "app_verifier": j.verifier, "env_file": ENV_FILE,
                "migrations_dir": str(j.migrations_dir)}

    def run(self, bed: BenchBed, names: list[str], work: Path) -> ToolRun:
        inventory = bed.write_inventory(names, work / "inventory.ini")
        variables = work / "vars.json"
        fd = os.open(variables, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.extra_vars(), f)
        control = work / "cp"
        control.mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update({
            "ANSIBLE_CONFIG": str(BENCH_DIR / "ansible.cfg"),
            "ANSIBLE_FORKS": str(len(names)),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
            "ANSIBLE_LOCAL_TEMP": str(work / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        })
        argv = [str(self.exe), "-i", str(inventory), str(BENCH_DIR / "playbook.yml"),
                "-e", f"@{variables}"]
        try:
            seconds, code, output = _timed(argv, env, work / "output.txt", self.timeout)
        finally:
            close_control_masters(control)
            variables.unlink(missing_ok=True)
        recap = parse_recap(output)
        hosts: dict[str, HostResult] = {}
        for name in names:
            r = recap.get(name)
            if r is None:
                hosts[name] = HostResult(False, None, "not in the PLAY RECAP")
            else:
                hosts[name] = HostResult(r[2] == 0 and r[3] == 0, r[1])
        return ToolRun(seconds, code, hosts, _tail(output))


def close_control_masters(control: Path) -> None:
    """End the ControlPersist masters this run left, so the next run connects afresh."""
    for sock in control.iterdir() if control.is_dir() else []:
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "bench-host"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=15, check=False)


# -- the floor --------------------------------------------------------------------------

def migrations_tarball(folder: Path) -> str:
    """The *.sql files of folder as a base64 tar.gz (their bytes unchanged)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(folder.glob("*.sql")):
            tar.add(path, arcname=path.name)
    return base64.encodebytes(buf.getvalue()).decode()


def _heredoc(name: str, text: str) -> str:
    return f"{name}=$(cat <<'CHATALOT_BENCH_EOF'\n{text}\nCHATALOT_BENCH_EOF\n)\n"


def floor_script(job: Job) -> str:
    """The block of variables, then bench/floor.sh."""
    head = "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in {
        "PG_MAJOR": job.pg_major, "DB": DB, "ROLE": ROLE, "ENV_FILE": ENV_FILE,
        "LOCK_ID": job.lock_id, "VERIFIER": job.verifier, "APP_PASSWORD": job.password,
    }.items())
    head += _heredoc("DROPIN", job.dropin())
    head += _heredoc("HBA_BLOCK", HBA_BLOCK)
    head += _heredoc("ENV_CONTENT", job.env_content())
    head += _heredoc("MIGRATIONS_TGZ_B64", migrations_tarball(job.migrations_dir).strip())
    return head + (BENCH_DIR / "floor.sh").read_text()


class Floor:
    name = "floor"

    def __init__(self, job: Job, timeout: float = 1800) -> None:
        self.script = floor_script(job)
        self.timeout = timeout

    def run(self, bed: BenchBed, names: list[str], work: Path) -> ToolRun:
        results: dict[str, tuple[int, str, float]] = {}
        argvs = {n: [*bed.tool_ssh_argv(n), "bash -s"] for n in names}

        def one(name: str, proc: subprocess.Popen[str], started: float) -> None:
            try:
                out, _ = proc.communicate(self.script, timeout=self.timeout)
                results[name] = (proc.returncode, out, time.monotonic() - started)
            except subprocess.TimeoutExpired:
                proc.kill()
                results[name] = (124, "timed out", time.monotonic() - started)

        started = time.monotonic()
        threads = []
        for name in names:
            proc = subprocess.Popen(argvs[name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            t = threading.Thread(target=one, args=(name, proc, time.monotonic()))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        seconds = time.monotonic() - started
        hosts: dict[str, HostResult] = {}
        outputs = []
        for name in names:
            code, out, _ = results[name]
            (work / f"{name}.out").write_text(out)
            outputs.append(f"== {name} (exit {code})\n{_tail(out, 10)}")
            m = re.search(r"^floor: changed=(\d+)$", out, re.M)
            hosts[name] = HostResult(code == 0 and m is not None,
                                     int(m.group(1)) if m else None,
                                     "" if code == 0 else _tail(out, 5))
        code = max((results[n][0] for n in names), default=1)
        phases = {n: floor_phases(results[n][1]) for n in names}
        return ToolRun(seconds, code, hosts, "\n".join(outputs),
                       {"host_seconds": {n: round(results[n][2], 3) for n in names},
                        "phases_ms": phases})


def floor_phases(output: str) -> dict[str, int]:
    """`floor: timings packages=812ms ...` as {phase: ms}."""
    m = re.search(r"^floor: timings(.*)$", output, re.M)
    phases: dict[str, int] = {}
    for word in (m.group(1).split() if m else []):
        name, _, value = word.partition("=")
        if value.endswith("ms") and value[:-2].isdigit():
            phases[name] = int(value[:-2])
    return phases
