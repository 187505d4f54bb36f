"""README.md and docs/*.md point only at things that exist.

Every relative link resolves (its #anchor to a heading of the target page); every
repository path named in backticks exists, and `file.py::test_name` names a test of that
file; no page cites material from outside the repository or tells who did what when.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: README.md is the landing page: what the tool is, two commands, where to read more
README_MAX_LINES = 150

_LINK = re.compile(r"(?<!!)\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TOKEN = re.compile(
    r"^(?:\./)?(?P<path>[A-Za-z0-9_.][A-Za-z0-9_.\-/]*?)"
    r"(?:::(?P<test>[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*))?$"
)
#: what no page may say: material outside the repository, or who did what when
_FORBIDDEN = [
    (re.compile(r"\.\./shared"), "cites ../shared (outside the repository)"),
    (re.compile(r"specs/"), "cites specs/ (outside the repository)"),
    (re.compile(r"\bsession\s+\d+\b", re.IGNORECASE), "tells who did what when (session N)"),
]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _prose(text: str) -> str:
    """The page without its fenced code blocks (their lines blanked, numbering kept)."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * len(m.group(1))
            out.append("")
        elif fence is not None:
            if line.strip().startswith(fence) and set(line.strip()) <= {fence[0]}:
                fence = None
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def code_spans(text: str) -> list[str]:
    """Inline code spans as CommonMark reads them (a run of n backticks closes on n)."""
    spans: list[str] = []
    i = 0
    while True:
        start = text.find("`", i)
        if start < 0:
            return spans
        n = start
        while n < len(text) and text[n] == "`":
            n += 1
        ticks = n - start
        close = re.compile(rf"(?<!`)`{{{ticks}}}(?!`)")
        m = close.search(text, n)
        if m is None:
            i = n
            continue
        body = text[n:m.start()].replace("\n", " ")
        if body.startswith(" ") and body.endswith(" ") and body.strip():
            body = body[1:-1]
        spans.append(body)
        i = m.end()


@cache
def _ignored_prefixes() -> tuple[str, ...]:
    """Anchored, literal .gitignore entries (`/bench/results/`): made at run time."""
    gitignore = ROOT / ".gitignore"
    if not gitignore.is_file():
        return ()
    out = []
    for line in gitignore.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("/") and not any(c in line for c in "*?[!"):
            out.append(line.strip("/"))
    return tuple(out)


@cache
def top_level() -> tuple[frozenset[str], frozenset[str]]:
    """The repository's top-level folders and files (not .git, not what git ignores)."""
    ignored = {".git"}
    gitignore = ROOT / ".gitignore"
    if gitignore.is_file():
        ignored |= {line.strip().strip("/") for line in
                    gitignore.read_text(encoding="utf-8").splitlines()
                    if line.strip() and not line.startswith("#")}
    folders = frozenset(p.name for p in ROOT.iterdir() if p.is_dir() and p.name not in ignored)
    files = frozenset(p.name for p in ROOT.iterdir() if p.is_file() and p.name not in ignored)
    return folders, files


def repo_paths(span: str) -> list[tuple[str, str | None]]:
    """(path, test) for each word of a code span that names a repository path."""
    folders, files = top_level()
    found: list[tuple[str, str | None]] = []
    for word in span.split():
        word = word.rstrip(",;")
        m = _TOKEN.match(word)
        if m is None:
            continue
        path = m.group("path")
        head, sep, _ = path.partition("/")
        if (sep and head in folders) or (not sep and path in files):
            found.append((path, m.group("test")))
    return found


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"`|\*\*|__", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LNM")
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in _prose(page.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = github_slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def defined_tests(path: Path) -> set[str]:
    """`name` and `Class::name` for every function defined in a test file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}::{item.name}")
    return names


# -- the helpers themselves ---------------------------------------------------------


def test_code_spans_follow_commonmark() -> None:
    text = "a `x` b ``y `z` w`` c ` ` d ``` e"
    assert code_spans(text) == ["x", "y `z` w", " "]


def test_repo_paths_are_told_from_other_code() -> None:
    assert repo_paths("installer/fleet/runner.py") == [("installer/fleet/runner.py", None)]
    assert repo_paths("tests/unit/test_x.py::test_y") == [("tests/unit/test_x.py", "test_y")]
    assert repo_paths(".venv/bin/python bench/run.py --smoke") == [("bench/run.py", None)]
    assert repo_paths("./scripts/test.sh") == [("scripts/test.sh", None)]
    assert repo_paths("README.md") == [("README.md", None)]
    for other in ("testbed", "hosts.ini", "/etc/chatalot/database.env", "pg_hba.conf",
                  "DIR/<host>.log", "chatalot-db apply -i hosts.ini"):
        assert repo_paths(other) == [], other


def test_github_slugs() -> None:
    assert github_slug("What `apply` does") == "what-apply-does"
    assert github_slug("Hardening: faults and bad inputs tried") == \
        "hardening-faults-and-bad-inputs-tried"
    assert github_slug("Interrupted `CREATE INDEX CONCURRENTLY`") == \
        "interrupted-create-index-concurrently"


# -- the pages -----------------------------------------------------------------------


def test_there_are_pages() -> None:
    assert (ROOT / "README.md").is_file()
    assert len(PAGES) > 1, "no docs/*.md"


def test_readme_is_a_landing_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines: move the detail to docs/")
    text = "\n".join(lines)
    for needed in ("./scripts/provision.sh", "./scripts/test.sh", ".ci/run"):
        assert needed in text


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in _LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if _SCHEME.match(target) or target.startswith("//"):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if ROOT not in (dest, *dest.parents) or not dest.exists():
            broken.append(f"{target}: no such file in the repository")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {_rel(dest)}")
    assert not broken, f"{_rel(page)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_named_paths_exist(page: Path) -> None:
    missing = []
    for span in code_spans(_prose(page.read_text(encoding="utf-8"))):
        for path, test in repo_paths(span):
            if any(path.rstrip("/") == p or path.startswith(p + "/")
                   for p in _ignored_prefixes()):
                continue  # made at run time (bench/results/, bench/.venv)
            where = ROOT / path
            if not where.exists() or (path.endswith("/") and not where.is_dir()):
                missing.append(path)
            elif test is not None and (not where.is_file()
                                       or test not in defined_tests(where)):
                missing.append(f"{path}::{test}")
    assert not missing, f"{_rel(page)} names what does not exist: {sorted(set(missing))}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_no_outside_material_or_history(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    found = [f"line {text.count(chr(10), 0, m.start()) + 1}: {why} ({m.group(0)!r})"
             for pattern, why in _FORBIDDEN for m in pattern.finditer(text)]
    assert not found, f"{_rel(page)}: " + "; ".join(found)


def test_nothing_in_the_repository_cites_the_shared_specs() -> None:
    """The design notes live in docs/: no source cites the folder they came from."""
    patterns = re.compile(r"\.\./shared|shared/" r"specs|(?<![\w/])specs/[\w.-]+\.md")
    skip = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}
    hits = []
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if any(part in skip for part in rel.parts) or not path.is_file():
            continue
        if path.suffix not in {".py", ".md", ".sh", ".ini", ".toml", ".cfg", ".yml", ".j2",
                               ".txt", ""}:
            continue
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        hits += [f"{rel.as_posix()}:{text.count(chr(10), 0, m.start()) + 1}"
                 for m in patterns.finditer(text)]
    assert not hits, "cites material outside the repository: " + ", ".join(hits)
