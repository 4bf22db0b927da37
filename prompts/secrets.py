"""Secrets stay out of prompts: secret-looking files are skipped, secret-looking text redacted."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

PLACEHOLDER = "<redacted>"
"""What a redacted secret becomes (it matches no pattern below, so `redact` is idempotent)."""

# --- paths -----------------------------------------------------------------------------------

_SECRET_NAMES = frozenset(
    {
        ".env",
        ".envrc",  # direnv: usually `export TOKEN=...`
        ".netrc",
        "_netrc",
        ".npmrc",
        ".pypirc",
        ".git-credentials",
        ".htpasswd",
        ".pgpass",
    }
)
"""Whole file names (lower case) that hold credentials."""
_SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".keystore", ".jks", ".ppk", ".env")
"""File extensions (lower case) of key stores and env files (`prod.env`)."""
_SECRET_PREFIXES = (
    ".env.",
    ".env-",  # .env-local
    ".env_",
    "dotenv.",
    ".dotenv.",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "credentials",
    "secrets.",
)
"""File name starts (lower case): `.env.local`, `id_rsa.pub`, `credentials.json`, `secrets.yaml`."""
_SECRET_DIRS = frozenset({".ssh", ".gnupg"})
"""Folders (lower case) whose every file is secret."""


_DOTENV_NAMES = frozenset({"dotenv", ".dotenv", "dot.env", "dot_env", "dot-env"})
"""dotenv-style names without the leading `.env`."""
_BACKUP_SUFFIXES = (".bak", ".orig", ".old", ".swp", ".swo", ".tmp", ".save", ".backup", ".sav")
"""Editor and tool copies of a file (`.env.bak`, `server.key.orig`): judged as the original."""
_VERSION_SUFFIX = re.compile(r";[^;/\\]*$")
"""A version suffix (`.env;v=1`, VMS-style `.env;1`)."""


def _path_parts(path: str) -> list[str]:
    """Path components of a file path or URI (`file:///a/b`, `untitled:x`), decoded."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", path) and not re.match(r"^[A-Za-z]:[\\/]", path):
        path = urlsplit(path).path
    return [p for p in re.split(r"[\\/]+", _unquote_all(path)) if p]


def _unquote_all(text: str) -> str:
    """Percent-escapes decoded until none is left (`%252e` is `%2e` is `.`), four rounds at most."""
    for _ in range(4):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def normal_name(name: str) -> str:
    """A file name as the path rules judge it: escapes decoded, Unicode compatibility forms
    folded (full-width dots), case-folded; trailing `~`, blanks, dots, version suffixes
    (`;v=1`), editor wrappers (`#.env#`, `.#.env`) and backup suffixes (`.bak`) removed."""
    name = unicodedata.normalize("NFKC", _unquote_all(name)).casefold()
    for _ in range(8):
        before = name
        name = _VERSION_SUFFIX.sub("", name).strip().rstrip("~.").strip("#")
        if name.startswith(".#"):
            name = name[2:]
        for suffix in _BACKUP_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
        if name == before:
            break
    return name


def is_secret_path(path: str) -> bool:
    """True for files whose content must never be context: env files, keys, credentials.
    Names are normalised first (`normal_name`): `.env~`, `.env%20`, `.env;v=1` are `.env`."""
    parts = [normal_name(p) for p in _path_parts(path)]
    parts = [p for p in parts if p]
    if not parts:
        return False
    name = parts[-1]
    return (
        name in _SECRET_NAMES
        or name in _DOTENV_NAMES
        or name.endswith(_SECRET_SUFFIXES)
        or name.startswith(_SECRET_PREFIXES)
        or any(p in _SECRET_DIRS for p in parts[:-1])
    )


# --- text ------------------------------------------------------------------------------------

_PEM_BEGIN = r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----"
_PEM_END = r"-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----"
_BREAK = r"(?:\r\n|\r|\n)"
_KEY_LINE = r"[ \t]*(?:[A-Za-z0-9+/=]{16,}|[A-Z][A-Za-z-]*: [^\r\n]*)?[ \t]*(?=[\r\n]|$)"
"""A line of a key block: base64, a header (`Proc-Type: 4,ENCRYPTED`) or blank."""
_PEM = re.compile(
    rf"{_PEM_BEGIN}(?:.{{0,16384}}?{_PEM_END}|(?P<rest>[^\r\n]*)(?P<body>(?:{_BREAK}{_KEY_LINE})*))",
    re.DOTALL,
)
"""A private key block; or, cut off before its END line, a BEGIN line and the key lines after."""
_PEM_TAIL = re.compile(
    rf"^((?:[ \t]*[A-Za-z0-9+/=]{{16,}}[ \t]*{_BREAK})++)(?=[^\r\n]*{_PEM_END})", re.MULTILINE
)
"""The base64 lines of a block whose BEGIN line was cut off, before its END line."""
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=\\]{40,}")
"""A key written on its BEGIN line (`\\n`-escaped in JSON)."""
_KEY_RUN = re.compile(r"[A-Za-z0-9+/=\\]{24,}")
"""Key material between two markers (any real key has it; prose and parsers do not)."""

_TOKENS = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"(?:AKIA|ASIA)[A-Z0-9]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{30,255}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{22,255}"
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|xox[baprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"  # JWT
    # OpenAI / Anthropic style: sk-, sk-proj-, sk-ant-api03-...; mixed case and a digit, so
    # kebab-case words (sk-learn, sk-fading-circle) are left alone.
    r"|sk-(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])[A-Za-z0-9_-]{20,}"
    r")(?![A-Za-z0-9_-])"
)
"""Vendor tokens recognisable by their shape alone."""
_MORE_TOKENS = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe secret and restricted keys
    r"|npm_[A-Za-z0-9]{36}"  # npm access token
    r"|pypi-AgE[A-Za-z0-9_-]{40,}"  # PyPI (and TestPyPI) API token: a macaroon
    r"|SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{30,64}"  # SendGrid API key
    r")(?![A-Za-z0-9_-])"
)
"""More vendor tokens, each with a fixed part (`_MORE_MARKERS`) a plain substring test finds
first: most texts have none, and the pattern is not run over them."""
_MORE_MARKERS = ("_live_", "_test_", "npm_", "pypi-AgE", "SG.")


_VALUE_SITE = re.compile(
    r"(?::=|=>|[:=])[ \t]*(?:[rRbBuUfF]{1,2})?"
    r"(?:\"([^\"\\\r\n]*(?:\\.[^\"\\\r\n]*)*)\""
    r"|'([^'\\\r\n]*(?:\\.[^'\\\r\n]*)*)'"
    r"|([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=]))"
)
"""An assignment's operator and its value: a quoted literal, or 40 bare characters (AWS)."""
_SECRET_WORD = (
    r"(?:password|passwd|passphrase|secret|token"
    r"|(?:api|secret|private|access|client|encryption|signing|master|auth)[_-]?key|apikey)"
)
_SHORT_WORD = r"(?:(?:[\w$.-]*?[_.-])?(?:pass|pwd)|[\w$.-]*?(?-i:[a-z0-9](?:Pass|Pwd)))"
"""`pass` and `pwd` name a password only as a whole part of the name (`DB_PASS`, `dbPass`,
`pwd`), never inside a word (`bypass`, `compass`)."""
_SECRET_NAME = re.compile(
    # the name starts a word (`self.db_password`, `"spring.datasource.password"`), not after
    # `::` (`"AWS::ApiGateway::ApiKey"` names a resource type)
    rf"(?<![\w$-])(?<!::)(?:[\w$.-]*?{_SECRET_WORD}|{_SHORT_WORD})(?![\w$-])"
    r"[\"']?[ \t]*(?::[ \t]*[\w.&|\[\]<> ]{1,30}?[ \t]*)?$",
    re.IGNORECASE,
)
"""Text before an operator that ends in a secret's name (`db_password`, `apiKey: str `, `"token"`),
not merely contains one (`password_field`); an optional type annotation is allowed."""
_AWS_SECRET_NAME = re.compile(r"(?:aws_?)?secret_?(?:access_?)?key[\"']?[ \t]*$", re.IGNORECASE)
"""Text before an operator that ends in `aws_secret_access_key` (its value may be unquoted)."""
MIN_SECRET_CHARS = 8
"""Quoted values shorter than this are kept (`token = "abc"` is no credential)."""
_NAME_WINDOW = 120
"""Characters before an operator searched for the name."""
_REFERENCE = re.compile(
    r"^(?:\$\{.*\}|\{\{.*\}\}|<.*>|%\(\w+\)s|\$[A-Za-z_]\w*"
    r"|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"  # AWS_SECRET_ACCESS_KEY: an environment variable's name
    r"|[a-z][a-z0-9]*(?:_[a-z0-9]+|[A-Z][a-z0-9]+)*"
    r"(?:_(?i:password|passwd|passphrase|secret|token|key|pass|pwd)"
    r"|(?<=[a-z0-9])(?:Password|Passwd|Passphrase|Secret|Token|Key)))$"
)
"""Values that name a secret kept elsewhere (`${DB_PASSWORD}`, `<your-token>`, an environment
variable, a field such as `next_token` or `challengePassword`): kept."""
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _breaks(text: str) -> list[str]:
    return _LINE_BREAK.findall(text)


def _pem(m: re.Match[str]) -> str:
    """A whole block becomes the placeholder; a cut block keeps its BEGIN marker (code that
    parses keys writes it too) and loses the key lines after it."""
    body = m.group("body")
    if body is None:
        if not _KEY_RUN.search(m.group(0)):
            return m.group(0)  # two markers and no key between them (docs, parsers)
        return PLACEHOLDER + "".join(_breaks(m.group(0)))
    rest = m.group("rest")
    head = m.group(0)[: len(m.group(0)) - len(rest) - len(body)]
    if _BASE64_RUN.search(rest):
        rest = PLACEHOLDER
    if body.strip():
        breaks = _breaks(body)
        body = breaks[0] + PLACEHOLDER + "".join(breaks[1:])
    return head + rest + body


def _pem_tail(m: re.Match[str]) -> str:
    return PLACEHOLDER + "".join(_breaks(m.group(1)))


_BARE_VALUE = re.compile(
    r"[:=][ \t]*(?P<value>[^\s'\"#,;()\[\]{}<>`$=]{8,})[ \t]*(?:#[^\r\n]*)?$", re.MULTILINE
)
_BARE_NAME = re.compile(r"[ \t]*(?:export[ \t]+|-[ \t]+)?[\"']?(?P<name>[\w$.-]{1,80})[\"']?[ \t]*")
"""A whole-line assignment with an unquoted value, as env files, shells, INI and YAML write it:
`DB_PASS=hunter2hunter2`, `password: Tr0ub4dor&3`, `export API_TOKEN=...`."""
_DOTTED_PATH = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
"""`settings.token`, `os.environ`: code that reads a secret, not a secret."""
_PLAIN_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^@]*$")
"""A URL without credentials (`TOKEN_URL=https://host/oauth/token`)."""


def _bare_secret(value: str) -> bool:
    """True for an unquoted value that looks like a credential rather than a name or code."""
    if _REFERENCE.match(value) or _DOTTED_PATH.match(value) or _PLAIN_URL.match(value):
        return False
    if value.lower() in ("true", "false", "null", "none", "yes", "no", "required", "changeme"):
        return False
    # a digit or a symbol: `hunter2hunter2`, `Tr0ub4dor&3`; a plain word (`password_field`) is
    # a name; a long mixed-case run is a key even without digits
    return bool(re.search(r"[0-9!%&*+/@^|~?]", value)) or (
        len(value) >= 16 and value != value.lower() and value != value.upper()
    )


def _redact_bare(text: str) -> str:
    """Replace the unquoted values of whole-line secret assignments: operator sites with a bare
    value up to the line's end are found first (rare), then the line's start is checked for a
    secret's name alone (`DB_PASS=`, `  password: `, `export API_TOKEN=`)."""
    pieces: list[str] = []
    done = 0
    for m in _BARE_VALUE.finditer(text):
        lo = max(0, m.start() - _NAME_WINDOW)
        line_start = max(text.rfind("\n", lo, m.start()), text.rfind("\r", lo, m.start())) + 1
        if line_start == 0 and lo > 0:
            continue  # the line starts too far back for a name this short
        name = _BARE_NAME.fullmatch(text, line_start, m.start())
        if (
            name is not None
            and _SECRET_NAME.search(name.group("name"))
            and _bare_secret(m.group("value"))
        ):
            pieces += (text[done : m.start("value")], PLACEHOLDER)
            done = m.end("value")
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


_URL_CREDENTIALS = re.compile(r"://(?P<user>[^\s:/@'\"<>]{0,128}):(?P<pw>[^\s/@'\"<>]{1,256})@")
"""The password of credentials inside a URL (`postgres://user:pass@host`)."""


def _url_credential(m: re.Match[str]) -> str:
    pw = m.group("pw")
    if pw == PLACEHOLDER or _REFERENCE.match(pw):
        return m.group(0)
    return f"://{m.group('user')}:{PLACEHOLDER}@"


def _redact_values(text: str) -> str:
    """Replace the values of secret-named assignments; the operator sites are found first, since
    they are rarer than the names (an IGNORECASE scan for the names is ~10x slower)."""
    pieces: list[str] = []
    done = 0
    for m in _VALUE_SITE.finditer(text):
        lo = max(0, m.start() - _NAME_WINDOW)
        line_start = max(text.rfind("\n", lo, m.start()), text.rfind("\r", lo, m.start())) + 1
        before = text[max(line_start, lo) : m.start()]
        if m.group(3) is not None:
            group = 3
            secret = _AWS_SECRET_NAME.search(before) is not None
        else:
            group = 1 if m.group(1) is not None else 2
            value = m.group(group)
            secret = (
                len(value) >= MIN_SECRET_CHARS
                and _REFERENCE.match(value) is None
                and _SECRET_NAME.search(before) is not None
            )
        if secret:
            pieces += (text[done : m.start(group)], PLACEHOLDER)
            done = m.end(group)
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def redact(text: str) -> str:
    """`text` with private keys, vendor tokens, URL passwords and secret assignments (quoted,
    or unquoted on a line of their own) replaced by `PLACEHOLDER`; names are kept and the
    number of lines never changes.

    Returns `text` itself when nothing was found.
    """
    out = _redact_once(text)
    if out == text:
        return text
    # One pass can expose another secret (a quoted END marker redacted leaves a BEGIN line
    # followed by key material); passes repeat until nothing changes, so `redact` is
    # idempotent. Each pass only shrinks secrets to placeholders, so this ends quickly.
    for _ in range(_MAX_PASSES):
        again = _redact_once(out)
        if again == out:
            break
        out = again
    return out


_MAX_PASSES = 8
"""Bound on repeated passes (in practice two suffice)."""


def _redact_once(text: str) -> str:
    """One pass of every pattern: key blocks, vendor tokens, secret assignments."""
    out = text
    if "PRIVATE KEY" in out:
        out = _PEM.sub(_pem, out)
        if "-----END" in out:
            out = _PEM_TAIL.sub(_pem_tail, out)
    out = _TOKENS.sub(PLACEHOLDER, out)
    if any(marker in out for marker in _MORE_MARKERS):
        out = _MORE_TOKENS.sub(PLACEHOLDER, out)
    if "://" in out:
        out = _URL_CREDENTIALS.sub(_url_credential, out)
    return _redact_bare(_redact_values(out))
