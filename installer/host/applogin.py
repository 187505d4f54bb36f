"""Log in as the app role with the env file's DATABASE_URL, on the host itself.

`script()` is a POSIX shell script run as root on the host. It reads
DATABASE_URL from the env file (the first `DATABASE_URL=` line, quotes
stripped, as `envfile.read_url` reads it), takes the password out of the URL
(percent-decoded) into PGPASSWORD, and runs psql with the URL *without* the
password. The password never leaves the host, never appears in an argv (the
shell's own, psql's or ssh's) and never in any output: `verify` and
`chatalot-db psql` both log in this way.

Pure: this module only builds text and reads output.
"""

from __future__ import annotations

from dataclasses import dataclass

from installer.transport.shell import sh

#: exit code of the script when the env file or its URL is unusable (psql's own are 0-3)
EXIT_BAD_ENV = 90
#: prefix of the line naming the login target (user@host:port/db, no password)
TARGET_MARKER = "chatalot-login: target "

# Percent-decoding (as urllib.parse.unquote does), in awk: no python or perl needed.
_AWK_UNQUOTE = r"""BEGIN { for (i = 0; i < 256; i++) hex[sprintf("%02x", i)] = i }
{ s = $0; out = ""
  while (match(s, /%[0-9A-Fa-f][0-9A-Fa-f]/)) {
    out = out substr(s, 1, RSTART - 1) sprintf("%c", hex[tolower(substr(s, RSTART + 1, 2))])
    s = substr(s, RSTART + 3)
  }
  printf "%s", out s }"""


def script(env_file: str, psql_args: list[str], *, announce: bool = False,
           connect_timeout: int = 10, psql: str = "psql") -> str:
    """Shell that runs `psql ARGS "postgres://USER@HOST:PORT/DB"` with PGPASSWORD from the env file.

    Exits EXIT_BAD_ENV with a message on stderr when the file or its URL is
    unusable; otherwise psql's exit code. With `announce`, first prints
    TARGET_MARKER + user@host:port/db (never the password, never URL parameters).
    `psql`: which binary (Strategy.psql()).
    """
    f = sh(env_file)
    bad = f"exit {EXIT_BAD_ENV}"
    lines = [
        f"f={f}",
        f'if [ ! -e "$f" ]; then echo "chatalot-db: $f does not exist" >&2; {bad}; fi',
        f'if [ ! -r "$f" ]; then echo "chatalot-db: cannot read $f (needs root)" >&2; {bad}; fi',
        # the first DATABASE_URL= line, blanks and quotes around the value stripped, as
        # envfile.read_url reads it: in the shell itself (no sed/awk: a no-op run does this
        # on every host, and each process costs the host a few ms)
        "url=",
        'while IFS= read -r l || [ -n "$l" ]; do',
        '  l=${l#"${l%%[![:space:]]*}"}',
        "  case $l in DATABASE_URL*) ;; *) continue ;; esac",
        '  v=${l#DATABASE_URL}; v=${v#"${v%%[![:space:]]*}"}',
        "  case $v in =*) ;; *) continue ;; esac",
        '  v=${v#=}; v=${v#"${v%%[![:space:]]*}"}; v=${v%"${v##*[![:space:]]}"}',
        "  while :; do case $v in [\\\"\\']*) v=${v#?} ;; *) break ;; esac; done",
        "  while :; do case $v in *[\\\"\\']) v=${v%?} ;; *) break ;; esac; done",
        "  url=$v; break",
        'done < "$f"',
        'case $url in',
        "  postgres://*|postgresql://*) ;;",
        f"  '') echo \"chatalot-db: no DATABASE_URL in $f\" >&2; {bad} ;;",
        f'  *) echo "chatalot-db: DATABASE_URL in $f is not a postgres:// URL" >&2; {bad} ;;',
        "esac",
        'rest=${url#*://}',
        'netloc=${rest%%/*}',
        'path=${rest#"$netloc"}',
        'case $netloc in',
        "  *@*:*|*:*@*) ;;",
        f'  *) echo "chatalot-db: DATABASE_URL in $f has no user:password" >&2; {bad} ;;',
        "esac",
        'cred=${netloc%@*}',
        'hostport=${netloc##*@}',
        'case $cred in',
        "  *:*) ;;",
        f'  *) echo "chatalot-db: DATABASE_URL in $f has no password" >&2; {bad} ;;',
        "esac",
        'user=${cred%%:*}',
        'PGPASSWORD=${cred#*:}',
        'case $PGPASSWORD in',
        f"  *%*) PGPASSWORD=$(printf '%s' \"$PGPASSWORD\" | LC_ALL=C awk {sh(_AWK_UNQUOTE)}) ;;",
        "esac",
        "unset cred url rest",
        "export PGPASSWORD",
        # the env file's password, not one from root's ~/.pgpass or a service file
        "PGPASSFILE=/dev/null; export PGPASSFILE",
        "unset PGSERVICE PGSERVICEFILE",
        f"PGCONNECT_TIMEOUT={int(connect_timeout)}; export PGCONNECT_TIMEOUT",
    ]
    if announce:
        lines.append(f'echo "{TARGET_MARKER}$user@$hostport${{path%%\\?*}}"')
    lines.append(f'exec {sh(psql, *psql_args)} "postgres://$user@$hostport$path"')
    return "\n".join(lines) + "\n"


#: What verify asks over the app role's connection: who, where, and over TCP or not.
LOGIN_QUERY = ("SELECT 'chatalot-login: result ' || current_user || ' ' || current_database() "
               "|| ' ' || (inet_server_addr() IS NOT NULL)::text")
LOGIN_PSQL_ARGS = ["-X", "-w", "-At", "-v", "ON_ERROR_STOP=1", "-c", LOGIN_QUERY]


#: the line after the login script's output, in the state probe's `login` section
EXIT_MARKER = "chatalot-login-exit: "


def probe_section(env_file: str, psql: str = "psql") -> str:
    """The login, as a section of a larger probe script: in a subshell (the script exits),
    its exit code on a last line (parse with `parse_probe_section`)."""
    return (f"( {script(env_file, LOGIN_PSQL_ARGS, announce=True, psql=psql)}) 2>&1 </dev/null\n"
            f'echo "{EXIT_MARKER}$?"')


def parse_probe_section(text: str) -> LoginOutcome:
    code = -1
    lines = []
    for line in text.splitlines():
        if line.startswith(EXIT_MARKER):
            rest = line[len(EXIT_MARKER):].strip()
            code = int(rest) if rest.isdigit() else -1
        else:
            lines.append(line)
    return parse_login("\n".join(lines), code)


@dataclass(frozen=True)
class LoginOutcome:
    """What the login script printed: the target, and who it logged in as (None: it did not)."""

    target: str | None
    user: str | None
    database: str | None
    tcp: bool
    exit_code: int
    error: str


def parse_login(output: str, exit_code: int) -> LoginOutcome:
    """Read what `script(env, LOGIN_PSQL_ARGS, announce=True)` printed (stdout and stderr)."""
    target = user = database = None
    tcp = False
    other: list[str] = []
    for line in output.splitlines():
        if line.startswith(TARGET_MARKER):
            target = line[len(TARGET_MARKER):].strip()
        elif line.startswith("chatalot-login: result "):
            words = line.split()[2:]
            if len(words) == 3:
                user, database, tcp = words[0], words[1], words[2] == "true"
        elif line.strip():
            other.append(line.strip())
    return LoginOutcome(target, user, database, tcp, exit_code, "; ".join(other))
