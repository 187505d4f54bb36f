"""installer.desired.envfile: the app's DATABASE_URL, written and read back."""

from __future__ import annotations

import pytest

from installer.desired import envfile


@pytest.mark.parametrize(
    ("user", "password", "url"),
    [("chatalot", "abc", "postgres://chatalot:abc@localhost:5432/chatalot"),
     ("chatalot", "p@ss:w/rd?#%", "postgres://chatalot:p%40ss%3Aw%2Frd%3F%23%25@localhost:5432/chatalot"),
     ("chatalot", "é ü", "postgres://chatalot:%C3%A9%20%C3%BC@localhost:5432/chatalot")],
)
def test_env_file_round_trip(user: str, password: str, url: str) -> None:
    assert envfile.database_url(user, password, "localhost", 5432, "chatalot") == url
    text = envfile.render(url)
    assert envfile.read_url(text) == url
    assert envfile.password_from_url(envfile.read_url(text), user) == password
    assert envfile.password_from_url(url, "someone_else") is None


@pytest.mark.parametrize("text", [None, "", "# nothing\n", "OTHER=1\n"])
def test_env_file_without_url(text: str | None) -> None:
    assert envfile.read_url(text) is None
