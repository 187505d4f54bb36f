"""installer.desired.envfile: the app's DATABASE_URL, written and read back."""

from __future__ import annotations

import pytest

from installer.desired import envfile
from installer.desired.envfile import app_password, database_url, render


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


@pytest.mark.parametrize(("given", "env_text", "want", "new"), [
    ("set by the user", render(database_url("app", "old", "localhost", 5432, "db")),
     "set by the user", False),
    (None, render(database_url("app", "k e p t/é", "localhost", 5432, "db")), "k e p t/é", False),
    # the env file's URL is another role's: its password is not this role's
    (None, render(database_url("other", "theirs", "localhost", 5432, "db")), None, True),
    (None, None, None, True),
    (None, "# no URL here\n", None, True),
])
def test_app_password_given_kept_or_new(given: str | None, env_text: str | None,
                                        want: str | None, new: bool) -> None:
    password, is_new = app_password("app", given, env_text)
    assert is_new == new
    if want is not None:
        assert password == want
    else:
        assert len(password) >= 40 and password != app_password("app", None, None)[0]
