"""Several probes in one shell script: each section's output follows a marker line."""

from __future__ import annotations

import secrets


class SectionScript:
    """Builds a script whose output splits back into named sections."""

    def __init__(self) -> None:
        self.marker = "@@chatalot-" + secrets.token_hex(6)
        self.parts: list[str] = ["cd / 2>/dev/null", "export LC_ALL=C"]

    def section(self, name: str, command: str) -> None:
        self.parts.append(f"echo '{self.marker} {name}'")
        self.parts.append(command)

    def raw(self, command: str) -> None:
        self.parts.append(command)

    @property
    def script(self) -> str:
        return "\n".join(self.parts) + "\n"

    def parse(self, output: str) -> dict[str, str]:
        out: dict[str, str] = {}
        current: str | None = None
        buf: list[str] = []
        for line in output.splitlines(keepends=True):
            if line.startswith(self.marker + " "):
                if current is not None:
                    out[current] = "".join(buf)
                current = line[len(self.marker) + 1 :].strip()
                buf = []
            elif current is not None:
                buf.append(line)
        if current is not None:
            out[current] = "".join(buf)
        return out


def file_section(s: SectionScript, name: str, path: str) -> None:
    """A section holding a file's text, or the word MISSING when it does not exist."""
    from installer.transport.shell import sh

    s.section(name, f"if [ -f {sh(path)} ]; then cat {sh(path)}; else echo MISSING; fi")


def file_value(sections: dict[str, str], name: str) -> str | None:
    text = sections.get(name)
    if text is None or text == "MISSING\n":
        return None
    return text
