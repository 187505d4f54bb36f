"""installer.host.sections: one shell script, its output split back into sections."""

from __future__ import annotations

from installer.host.sections import SectionScript


def test_sections_round_trip() -> None:
    s = SectionScript()
    s.section("a", "echo 1")
    s.section("b", "echo 2")
    out = f"{s.marker} a\n1\n{s.marker} b\nline\n@@chatalot-other b\n"
    assert s.parse(out) == {"a": "1\n", "b": "line\n@@chatalot-other b\n"}
