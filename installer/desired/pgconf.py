"""postgresql.conf values and our drop-in file, pure: rendering, quoting, comparing."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

import jinja2

from installer.desired.tuning import conf_value, render_value
from installer.resources import templates_dir

_UNITS_KB = {"kb": 1, "mb": 1024, "gb": 1024**2, "tb": 1024**3}


def pg_value(value: object) -> str:
    """A value as written in postgresql.conf: bare tokens as they are, the rest quoted."""
    return conf_value(render_value(value))


@functools.lru_cache(maxsize=4)
def _template(directory: str) -> jinja2.Template:
    """The template, compiled once per process (a fleet run renders it for every host)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pgvalue"] = pg_value
    return env.get_template("postgresql.conf.j2")


def render(settings: Mapping[str, str], host: str, inputs: str = "") -> str:
    """Render templates/postgresql.conf.j2 (StrictUndefined: a missing value is an error)."""
    try:
        text = _template(str(templates_dir())).render(
            settings=dict(settings), host=host, inputs=inputs
        )
    except jinja2.TemplateError as e:
        lineno = getattr(e, "lineno", None)
        raise RuntimeError(f"templates/postgresql.conf.j2:{lineno}: {e}") from e
    return text.rstrip("\n") + "\n"


def _as_kb(text: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtT][bB])\s*", text)
    if not m:
        return None
    return int(m.group(1)) * _UNITS_KB[m.group(2).lower()]


def same_value(wanted: str, live: str, unit: str | None = None) -> bool:
    """Whether a live `current_setting()` equals the wanted value (units normalised).

    `unit` is pg_settings.unit ("8kB" for shared_buffers): PostgreSQL rounds a
    size to it, so sizes less than one unit apart are the same value.
    """
    w, v = str(wanted).strip().strip("'"), str(live).strip()
    if w.lower() == v.lower():
        return True
    wk, vk = _as_kb(w), _as_kb(v)
    if wk is not None and vk is not None:
        step = _as_kb(unit or "") or (_as_kb("1" + unit) if unit and unit[0].isalpha() else None)
        return abs(wk - vk) < (step or 1)
    try:
        return float(w) == float(v)
    except ValueError:
        pass
    bools = {"on": "on", "true": "on", "yes": "on", "1": "on",
             "off": "off", "false": "off", "no": "off", "0": "off"}
    if w.lower() in bools and v.lower() in bools:
        return bools[w.lower()] == bools[v.lower()]
    # lists like listen_addresses: compare as sets of items
    return {p.strip() for p in w.split(",")} == {p.strip() for p in v.split(",")}


# -- the include line our drop-in needs where postgresql.conf has none (Fedora, Arch) --

INCLUDE_LINE = "include_dir = 'conf.d'"
INCLUDE_MARK = "# Added by chatalot-db: conf.d/ is read last, so its drop-ins win."
_INCLUDE_DIR = re.compile(r"include_dir\s*=?\s*'(?:\./)?conf\.d/?'\s*(?:#.*)?")
_INCLUDE_FILE = re.compile(
    r"include(?:_if_exists)?\s*=?\s*'(?:\./)?conf\.d/50-chatalot\.conf'\s*(?:#.*)?")


def _directives(text: str) -> list[str]:
    """The lines that mean something (no blank lines, no comments), stripped."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def setting_names(text: str | None) -> list[str]:
    """The names a postgresql.conf-style file sets (`name = value` / `name value`), in order."""
    names = []
    for line in _directives(text or ""):
        m = re.match(r"([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=|\s)", line)
        if m and m[1] not in ("include", "include_dir", "include_if_exists"):
            names.append(m[1])
    return names


def includes_conf_d_last(text: str) -> bool:
    """Whether the last directive of postgresql.conf reads conf.d (or our drop-in in it)."""
    directives = _directives(text)
    return bool(directives) and bool(
        _INCLUDE_DIR.fullmatch(directives[-1]) or _INCLUDE_FILE.fullmatch(directives[-1]))


def with_conf_d_include(text: str) -> str:
    """postgresql.conf ending with exactly one include line of ours.

    Unchanged when its last directive already reads conf.d. Otherwise our line (with
    its comment) is appended; an earlier line of ours (the comment and the line after
    it, as we wrote them) is moved, so there is only ever one. Nothing else is touched.
    """
    if includes_conf_d_last(text):
        return text
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    skip = 0
    for i, line in enumerate(lines):
        if skip:
            skip -= 1
            continue
        if (line.strip() == INCLUDE_MARK and i + 1 < len(lines)
                and lines[i + 1].strip() == INCLUDE_LINE):
            skip = 1
            continue
        kept.append(line)
    body = "".join(kept)
    if body and not body.endswith("\n"):
        body += "\n"
    return f"{body}{INCLUDE_MARK}\n{INCLUDE_LINE}\n"
