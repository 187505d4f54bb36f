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


OURS = render(database_url("app", "pw", "localhost", 5432, "db"))


@pytest.mark.parametrize(("text", "meta", "problem"), [
    (None, None, None),                                            # missing: ours to create
    (None, "", None),
    (OURS, "600 root root regular file", None),
    (OURS, "644 root root regular file", None),                    # ours, the mode is fixed
    ("DATABASE_URL=postgres://a:b@h/d\n", "600 root root regular file", None),
    (OURS, "777 root root symbolic link", "is a symbolic link, not a file chatalot-db wrote"),
    (None, "755 root root directory", "is a directory, not a file chatalot-db wrote"),
    (None, "600 root root fifo", "is a fifo, not a file chatalot-db wrote"),
    (OURS, "600 chatalot root regular file", "belongs to chatalot, not root"),
    ("root:x:0:0:root:/root:/bin/bash\n", "644 root root regular file",
     "holds no postgres:// DATABASE_URL: not a file chatalot-db wrote"),
    ("root:$6$salt$hash:19000:0:99999:7:::\n", "640 root shadow regular file",
     "holds no postgres:// DATABASE_URL"),
    ("SECRET_KEY=abc\nDATABASE_URL=postgres://a:b@h/d\n", "600 root root regular file",
     "holds SECRET_KEY besides DATABASE_URL: not a file chatalot-db wrote"),
    ("DATABASE_URL=mysql://a:b@h/d\n", "600 root root regular file",
     "holds a DATABASE_URL that is not postgres://"),
    ("DATABASE_URL=postgres://a:b@h/d\nDATABASE_URL=postgres://c:d@h/d\n",
     "600 root root regular file", "holds several DATABASE_URL lines"),
    ("", "600 root root regular file", "holds no postgres:// DATABASE_URL"),
    ("API_KEY=k\nOTHER=v\n", "600 root root regular file",
     "holds API_KEY, OTHER and no postgres:// DATABASE_URL"),
])
def test_foreign_env_files(text: str | None, meta: str | None, problem: str | None) -> None:
    found = envfile.foreign(text, meta)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found
        for secret in ("$6$salt$hash", "abc", "0:0:root"):  # content is never quoted
            assert secret not in found


@pytest.mark.parametrize(("text", "masked"), [
    ("-DATABASE_URL=postgres://chatalot:old%40pw@localhost:5432/chatalot\n",
     "-DATABASE_URL=postgres://chatalot:********@localhost:5432/chatalot\n"),
    ("+DATABASE_URL=postgresql://u:p@h/d and postgres://v:q@h2/d2",
     "+DATABASE_URL=postgresql://u:********@h/d and postgres://v:********@h2/d2"),
    ("no url here: user:pass@host", "no url here: user:pass@host"),
    ("postgres://nopassword@host/db", "postgres://nopassword@host/db"),
])
def test_mask_secrets(text: str, masked: str) -> None:
    assert envfile.mask_secrets(text) == masked


def test_foreign_names_stray_lines_by_count_only() -> None:
    text = OURS + "some words\nmore words\n"
    assert envfile.foreign(text, "600 root root regular file") == (
        "holds 2 line(s) that are not NAME=value: not a file chatalot-db wrote "
        "(DATABASE_URL alone)")
