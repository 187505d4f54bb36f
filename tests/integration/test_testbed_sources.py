"""Chatalot's releases as the migration source, on a test-bed host (debian12, as root).

No internet here: the tests build a local git repository shaped like Chatalot's (a
`migrations/` folder, tagged releases), and serve a release archive from a local HTTP
server. The fetching is real `git` and real HTTP on the control machine; the migrations
are applied over SSH on the host, into an app of the module's own (`src_bed`).

The sequence (one module fixture, in order): v0.1.0 (3 migrations), its rerun, v0.2.0
(2 more, one `-- no-transaction`), v0.2.0's commit id, an archive of v0.3.0 with a wrong
and a right pin, `migrate run --target-version` on v0.4.0, `--ignore-missing`, a CRLF
checkout, bad sources, then with the repository moved away and the server stopped: the
cached tag and the pinned archive still work, a branch does not.
"""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import host_of_kind
from tests.integration.helpers import cli, inventory, run_apply

pytestmark = pytest.mark.testbed

APP = "src_bed"
ENV_FILE = f"/etc/chatalot/{APP}.env"

#: the releases: each tag adds these files to migrations/
RELEASES: dict[str, dict[str, str]] = {
    "v0.1.0": {
        "20240101000000_users.sql": "CREATE TABLE users (id bigint PRIMARY KEY, name text);\n",
        "20240102000000_messages.sql": (
            "CREATE TABLE messages (\n    id bigint PRIMARY KEY,\n"
            "    user_id bigint REFERENCES users (id),\n    body text\n);\n"),
        "20240103000000_seed.sql": "INSERT INTO users VALUES (1, 'system');\n",
    },
    "v0.2.0": {
        "20240201000000_reactions.sql": (
            "CREATE TABLE reactions (message_id bigint, emoji text);\n"
            "ALTER TABLE messages ADD COLUMN edited_at timestamptz;\n"),
        "20240202000000_messages_user_idx.sql": (
            "-- no-transaction\nCREATE INDEX CONCURRENTLY messages_user_idx "
            "ON messages (user_id);\n"),
    },
    "v0.3.0": {
        "20240301000000_channels.sql": "CREATE TABLE channels (id bigint PRIMARY KEY);\n",
    },
    "v0.4.0": {
        "20240401000000_pins.sql": "CREATE TABLE pins (message_id bigint);\n",
        "20240402000000_topics.sql": "ALTER TABLE channels ADD COLUMN topic text;\n",
    },
}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def _make_repository(root: Path) -> Path:
    """A Chatalot-shaped repository: a README, src/, migrations/ growing tag by tag; a
    `main` branch at the last tag."""
    repo = root / "chatalot"
    (repo / "migrations").mkdir(parents=True)
    (repo / "src").mkdir()
    _git(root, "init", "-q", "-b", "main", str(repo))
    (repo / "README.md").write_text("Chatalot\n")
    (repo / "src" / "main.rs").write_text("fn main() {}\n")
    for tag, files in RELEASES.items():
        for name, text in files.items():
            (repo / "migrations" / name).write_bytes(text.encode())
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"release {tag}")
        _git(repo, "tag", "-a", tag, "-m", tag)
    return repo


class _Server:
    """A local HTTP server for the release archives (a thread of this process)."""

    def __init__(self, folder: Path) -> None:
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
            *a, directory=str(folder), **k)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _sql(bed: Any, host: str, query: str) -> str:
    r = bed.ssh(host, f"cd / && runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 -d {APP}",
                input=query)
    assert r.returncode == 0, r.stderr
    return str(r.stdout).strip()


def _ledger(bed: Any, host: str) -> list[tuple[int, str, str, str]]:
    rows = _sql(bed, host, "SELECT version, description, encode(checksum, 'hex'), success "
                           "FROM _sqlx_migrations ORDER BY version")
    out = []
    for line in rows.splitlines():
        v, d, c, s = line.split("|")
        out.append((int(v), d, c, s))
    return out


def _expected(repo: Path, ref: str) -> list[tuple[int, str, str, str]]:
    """The ledger sqlx would write for the release at `ref`: version, description,
    SHA-384 of the committed bytes, success."""
    names = sorted(_git(repo, "ls-tree", "--name-only", f"{ref}:migrations").splitlines())
    rows = []
    for name in names:
        data = subprocess.run(["git", "-C", str(repo), "show", f"{ref}:migrations/{name}"],
                              capture_output=True, check=True).stdout
        version, _, rest = name.removesuffix(".sql").partition("_")
        rows.append((int(version), rest.replace("_", " "), hashlib.sha384(data).hexdigest(),
                     "t"))
    return rows


def _step(doc: dict[str, Any], host: str, name: str = "apply migrations") -> dict[str, Any]:
    return next(s for s in doc["hosts"][host]["steps"] if s["name"] == name)


@pytest.fixture(scope="module")
def runs(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("sources")
    host = host_of_kind(bed, "debian12")
    bed.ssh(host, f"cd / && command -v psql >/dev/null && runuser -u postgres -- psql -Xq "
                  f"-c 'DROP DATABASE IF EXISTS {APP} WITH (FORCE)' -c 'DROP ROLE IF EXISTS "
                  f"{APP}'; true")
    repo = _make_repository(tmp)
    url = f"git+file://{repo}"
    www = tmp / "www"
    www.mkdir()
    # the v0.3.0 release archive, as a forge serves it: one top folder
    archive = www / "chatalot-0.3.0.tar.gz"
    data = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar.gz",
                           "--prefix=chatalot-0.3.0/", "v0.3.0"], capture_output=True,
                          check=True).stdout
    archive.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    server = _Server(www)
    out: dict[str, Any] = {"host": host, "repo": repo, "tmp": tmp}

    def inv(name: str, source: str) -> Path:
        return inventory(bed, tmp / f"{name}.ini", {host: "root"}, db_name=APP, db_user=APP,
                         db_env_file=ENV_FILE, migrations_source=source)

    def apply(name: str, source: str, *args: str) -> tuple[Any, dict[str, Any]]:
        return run_apply(inv(name, source), tmp / f"{name}.json", *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHATALOT_DB_CACHE", str(tmp / "cache"))
        out["a"] = apply("a", f"{url}@v0.1.0")
        out["ledger_a"] = _ledger(bed, host)
        out["a_again"] = apply("a_again", f"{url}@v0.1.0")
        out["b"] = apply("b", f"{url}@v0.2.0")
        out["ledger_b"] = _ledger(bed, host)
        out["commit_b"] = _git(repo, "rev-parse", "v0.2.0^{commit}")
        out["b_commit"] = apply("b_commit", f"{url}@{out['commit_b']}")
        wrong = "0" * 64
        out["c_wrong"] = apply("c_wrong", f"{server.url}/{archive.name}#sha256={wrong}")
        out["ledger_c_wrong"] = _ledger(bed, host)
        out["c"] = apply("c", f"{server.url}/{archive.name}#sha256={digest}")
        out["ledger_c"] = _ledger(bed, host)
        out["digest"] = digest
        # sqlx-cli's flags, on the host through the inventory
        d_inv = inv("d", f"{url}@v0.4.0")
        out["too_far"] = cli("migrate", "run", "-i", str(d_inv), "--target-version", "99")
        out["to_7"] = cli("migrate", "run", "-i", str(d_inv), "--target-version",
                          "20240401000000")
        out["too_old"] = cli("migrate", "run", "-i", str(d_inv), "--target-version",
                             "20240301000000")
        out["ledger_d"] = _ledger(bed, host)
        a_inv = inv("missing", f"{url}@v0.1.0")
        out["missing"] = cli("migrate", "run", "-i", str(a_inv))
        out["ignore_missing"] = cli("migrate", "run", "-i", str(a_inv), "--ignore-missing")
        # a checkout made with core.autocrlf=true (as on Windows): CRLF files
        crlf = tmp / "crlf"
        subprocess.run(["git", "-c", "core.autocrlf=true", "clone", "-q", "--branch",
                        "v0.4.0", str(repo), str(crlf)], check=True, capture_output=True)
        out["crlf_bytes"] = (crlf / "migrations" / "20240101000000_users.sql").read_bytes()
        out["crlf"] = apply("crlf", str(crlf))  # the checkout's root: its migrations/
        # bad sources: the run stops before any host is contacted
        empty = tmp / "empty"
        empty.mkdir()
        (empty / "notes.txt").write_text("no migrations here\n")
        twice = tmp / "twice"
        twice.mkdir()
        (twice / "1_a.sql").write_text("SELECT 1;\n")
        (twice / "1_b.sql").write_text("SELECT 2;\n")
        out["bad"] = {
            "unknown ref": apply("bad1", f"{url}@v9.9.9"),
            "unreachable": apply("bad2", f"git+file://{tmp}/nowhere.git@v0.1.0"),
            "no sqlx files": apply("bad3", str(empty)),
            "one version twice": apply("bad4", str(twice)),
        }
        out["ledger_bad"] = _ledger(bed, host)
        # offline: the repository moved away, the HTTP server stopped
        server.stop()
        repo.rename(tmp / "moved")
        out["off_tag"] = apply("off_tag", f"{url}@v0.4.0")
        # (the ledger is ahead of v0.3.0 now: sqlx-cli's --ignore-missing)
        out["off_archive"] = cli("migrate", "run", "--ignore-missing", "-i", str(
            inv("off_archive", f"{server.url}/{archive.name}#sha256={digest}")))
        out["off_branch"] = apply("off_branch", f"{url}@main")
        (tmp / "moved").rename(repo)
    yield out


def test_a_tag_is_applied_with_sqlxs_exact_ledger(runs: dict[str, Any]) -> None:
    p, doc = runs["a"]
    assert p.returncode == 0, p.stdout + p.stderr
    step = _step(doc, runs["host"])
    commit = _git(runs["repo"], "rev-parse", "v0.1.0^{commit}")
    assert step["status"] == "changed"
    assert step["reason"] == (
        "applied 20240101000000, 20240102000000, 20240103000000 (3 migrations); from "
        f"git+file://{runs['repo']}@v0.1.0 (commit {commit[:12]})")
    assert runs["ledger_a"] == _expected(runs["repo"], "v0.1.0")


def test_the_rerun_of_a_tag_changes_nothing_and_names_it(runs: dict[str, Any]) -> None:
    p, doc = runs["a_again"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert doc["hosts"][runs["host"]]["changed"] == 0
    commit = _git(runs["repo"], "rev-parse", "v0.1.0^{commit}")
    assert _step(doc, runs["host"])["reason"] == (
        f"3 applied, none pending (git+file://{runs['repo']}@v0.1.0 (commit {commit[:12]}))")


def test_the_next_tag_applies_only_its_new_migrations(runs: dict[str, Any]) -> None:
    p, doc = runs["b"]
    assert p.returncode == 0, p.stdout + p.stderr
    reason = _step(doc, runs["host"])["reason"]
    assert reason.startswith("applied 20240201000000, 20240202000000 (2 migrations); "), reason
    assert runs["ledger_b"] == _expected(runs["repo"], "v0.2.0")
    assert runs["ledger_b"][:3] == runs["ledger_a"]  # the earlier rows untouched


def test_a_commit_id_is_a_ref_too(runs: dict[str, Any]) -> None:
    p, doc = runs["b_commit"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert doc["hosts"][runs["host"]]["changed"] == 0
    assert _step(doc, runs["host"])["reason"].endswith(
        f"@{runs['commit_b']} (commit {runs['commit_b'][:12]}))")


def test_a_wrong_archive_pin_stops_the_run_before_the_host(runs: dict[str, Any]) -> None:
    p, doc = runs["c_wrong"]
    assert p.returncode == 1, p.stdout + p.stderr
    assert doc == {}  # no host ran
    assert "sha256 of the downloaded archive is " + runs["digest"] in p.stderr
    assert "the pin says " + "0" * 64 in p.stderr
    assert runs["ledger_c_wrong"] == runs["ledger_b"]


def test_a_pinned_archive_applies_its_release(runs: dict[str, Any]) -> None:
    p, doc = runs["c"]
    assert p.returncode == 0, p.stdout + p.stderr
    reason = _step(doc, runs["host"])["reason"]
    assert reason.startswith("applied 20240301000000 (1 migration); backup "), reason
    assert "; from http://127.0.0.1:" in reason, reason
    assert reason.endswith(f"#sha256={runs['digest']}"), reason
    assert runs["ledger_c"] == _expected(runs["repo"], "v0.3.0")


def test_target_version_as_sqlx_cli(runs: dict[str, Any]) -> None:
    far = runs["too_far"]
    assert far.returncode == 2, far.stdout + far.stderr
    assert "migration 99 is not present in the migration source" in far.stdout + far.stderr
    p = runs["to_7"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Applied 20240401000000/migrate pins (" in p.stdout
    assert "Skipped 20240402000000/migrate topics (0ns)" in p.stdout
    assert p.stdout.index("Applied 20240401000000") < p.stdout.index("Skipped 20240402000000")
    old = runs["too_old"]
    assert old.returncode == 2, old.stdout + old.stderr
    assert ("migration 20240301000000 is older than the latest applied migration "
            "20240401000000") in old.stdout + old.stderr
    assert runs["ledger_d"] == _expected(runs["repo"], "v0.4.0")[:7]


def test_ignore_missing_as_sqlx_cli(runs: dict[str, Any]) -> None:
    p = runs["missing"]
    assert p.returncode == 2, p.stdout + p.stderr
    assert ("migration 20240201000000 was previously applied but is missing in the "
            "resolved migrations") in p.stdout + p.stderr
    q = runs["ignore_missing"]
    assert q.returncode == 0, q.stdout + q.stderr
    assert "7 applied, none pending (git+file://" in q.stdout, q.stdout


def test_a_crlf_checkout_is_refused_saying_why(runs: dict[str, Any]) -> None:
    assert b"\r\n" in runs["crlf_bytes"]  # the checkout really converted the files
    p, doc = runs["crlf"]
    assert p.returncode == 2, p.stdout + p.stderr
    step = _step(doc, runs["host"])
    assert step["status"] == "failed"
    assert step["reason"].startswith(
        "migration 20240101000000 was previously applied but has been modified: the "
        "ledger's checksum is this file's with LF line endings"), step["reason"]
    assert "core.autocrlf=false" in step["reason"]


@pytest.mark.parametrize("case, says", [
    ("unknown ref", "no tag, branch or commit 'v9.9.9'"),
    ("unreachable", "cannot reach"),
    ("no sqlx files", "no sqlx migrations in"),
    ("one version twice", "migration 1 is defined twice (1_a.sql and 1_b.sql)"),
])
def test_a_bad_source_stops_the_run_before_any_host(runs: dict[str, Any], case: str,
                                                    says: str) -> None:
    p, doc = runs["bad"][case]
    assert p.returncode == 1, p.stdout + p.stderr
    assert doc == {}, doc
    assert "migrations_source '" in p.stderr and says in p.stderr, p.stderr
    assert "TASK [" not in p.stdout  # not one step ran
    assert runs["ledger_bad"] == _expected(runs["repo"], "v0.4.0")[:7]


def test_offline_the_cache_serves_tags_and_pinned_archives_never_branches(
        runs: dict[str, Any]) -> None:
    p, doc = runs["off_tag"]
    assert p.returncode == 0, p.stdout + p.stderr
    assert "using the cached" in p.stderr, p.stderr
    commit = _git(runs["repo"], "rev-parse", "v0.4.0^{commit}")
    reason = _step(doc, runs["host"])["reason"]
    assert reason.startswith("applied 20240402000000 (1 migration); backup "), reason
    assert "; from git+file://" in reason, reason
    assert f"(commit {commit[:12]})" in reason
    q = runs["off_archive"]  # the pinned archive from the cache, the server stopped
    assert q.returncode == 0, q.stdout + q.stderr
    assert "8 applied, none pending (http://" in q.stdout, q.stdout
    r, rdoc = runs["off_branch"]
    assert r.returncode == 1 and rdoc == {}, r.stdout + r.stderr
    assert "cannot reach" in r.stderr, r.stderr
