"""Secrets never reach a prompt or a log: the wider detectors and path rules as tables, and
detect-secrets as an oracle over sample files (whatever it flags must be gone)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from moe_lsp.lsp.completion import LOGGED_PROMPT_CHARS, Wait, complete
from moe_lsp.lsp.settings import ServerSettings
from moe_lsp.prompts.crossfile import gather_context
from moe_lsp.prompts.secrets import PLACEHOLDER, is_secret_path, normal_name, redact
from moe_lsp.prompts.snippet_index import OpenDocument, SnippetIndex

from ..fakes import ScriptedEngine, ready_session

R = PLACEHOLDER

# Fake credentials, assembled so that no scanner mistakes this file for a leak.
STRIPE = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_RESTRICTED = "rk_" + "live_" + "51H8sQ2eZvKYlo2C0aBcDeFgH"
NPM = "npm_" + "abcdefghijklmnopqrstuvwxyz0123456789"
PYPI = "pypi-" + "AgEIcHlwaS5vcmcCJGZmYjQ3ZjM2LWQxZjAtNGQ5Ni1hYjQ0LTk2NzBlYjJhNmUzNAACKlszLCJiYTk"
SENDGRID = "SG." + "abcdefghijklmnopqrstuv" + "." + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
GITHUB = "ghp_" + "a1B2c3D4" * 4 + "e5F6"
AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # password-like names, quoted or not
        ("DB_PASS=" + "hunter2hunter2", f"DB_PASS={R}"),
        ('DB_PASS = "' + "hunter2hunter2" + '"', f'DB_PASS = "{R}"'),
        ("pwd=" + "Tr0ub4dor&3", f"pwd={R}"),
        ("export API_TOKEN=" + "abcd1234efgh", f"export API_TOKEN={R}"),
        ("passwd: " + "s3cr3tpass", f"passwd: {R}"),
        ("  password: " + "Yh7&kLm9Qw2z" + "  # prod", f"  password: {R}  # prod"),
        ("secret=" + "hunter2hunter2", f"secret={R}"),
        ("api_key = " + "AbCdEfGhIjKlMnOpQr", f"api_key = {R}"),
        ("dbPass = '" + "c0rrectHorse!" + "'", f"dbPass = '{R}'"),
        # credentials inside URLs: the password only
        (
            'url = "postgres://user:' + "s3cretPassw0rd" + '@host/db"',
            f'url = "postgres://user:{R}@host/db"',
        ),
        ("mysql://root:" + "R00t" + "@localhost", f"mysql://root:{R}@localhost"),
        (
            "https://:" + "tok3nValue" + "@git.example.com/r.git",
            f"https://:{R}@git.example.com/r.git",
        ),
        # vendor tokens by shape
        (f"key = {STRIPE}", f"key = {R}"),
        (STRIPE_RESTRICTED, R),
        (NPM, R),
        ("//registry.npmjs.org/:_authToken=" + NPM, f"//registry.npmjs.org/:_authToken={R}"),
        (PYPI, R),
        (f"SENDGRID_API_KEY={SENDGRID}", f"SENDGRID_API_KEY={R}"),
    ],
)
def test_wider_detectors(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected


@pytest.mark.parametrize(
    "text",
    [
        'bypass = "something long"',
        "compass=north12345",
        "    token=settings.token",
        "password = get_password()",
        "TOKEN_URL=https://example.com/oauth/token",
        "DB_PASS=${DB_PASSWORD}",
        "postgres://user:${PW}@host/db",
        "git clone https://github.com/a/b",
        "def f(password):",
        "    return password",
        "password_field = form.password_field2",
        "password: str",
        "token: Optional[str] = None",
        "ssh://git@github.com:22/a/b.git",
        "npm_config_cache=/tmp/x",
        "sk_live_short",
        "SG.foo.bar",
    ],
)
def test_ordinary_code_is_untouched(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        (".env~", ".env"),
        (".env%20", ".env"),
        (".env;v=1", ".env"),
        (".ENV;1", ".env"),
        ("%2Eenv", ".env"),
        ("%252Eenv", ".env"),
        ("#.env#", ".env"),
        (".#.env", ".env"),
        (".env.bak", ".env"),
        ("server.key.orig~", "server.key"),
        ("\uff0eenv", ".env"),  # a full-width dot
        ("main.py", "main.py"),
    ],
)
def test_normal_name(name: str, normal: str) -> None:
    assert normal_name(name) == normal


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        ("/w/.env~", True),
        ("/w/.env%20", True),
        ("file:///w/.env%20", True),
        ("file:///w/.env%7E", True),
        ("/w/.env;v=1", True),
        ("/w/dotenv", True),
        ("/w/.dotenv", True),
        ("/w/.env-local", True),
        ("/w/.env_prod", True),
        ("/w/dotenv.production", True),
        ("/w/.env.bak", True),
        ("/w/prod.env.swp", True),
        ("/w/id_rsa~", True),
        ("/w/.SSH/config", True),
        ("/w/%2Essh/known_hosts", True),
        ("/w/.npmrc;2", True),
        ("/w/environment.py", False),
        ("/w/env.py", False),
        ("/w/dotenv_loader.py", False),
        ("/w/src/main.py", False),
        ("/w/README.md~", False),
    ],
)
def test_secret_paths_after_normalising(path: str, secret: bool) -> None:
    assert is_secret_path(path) is secret


# --- detect-secrets as an oracle ------------------------------------------------------------

SAMPLES = {
    "settings.py": (
        "import os\n"
        f"STRIPE_KEY = '{STRIPE}'\n"
        "DATABASE_URL = 'postgres://app:" + "Pg5ecretW0rd" + "@db.internal:5432/app'\n"
        'DB_PASS = "' + "hunter2hunter2" + '"\n'
        'api_key = "' + "9f8e7d6c5b4a39281706f5e4d3c2b1a0" + '"\n'
        "DEBUG = True\n"
    ),
    "deploy.sh": (
        "DB_PASS=" + "hunter2hunter2" + "\n"
        "pwd=" + "Tr0ub4dor&3" + "\n"
        f"SENDGRID={SENDGRID}\n"
        f"NPM_TOKEN={NPM}\n"
        "export SECRET=" + "Zq8vN2kLp4Rt" + "\n"
    ),
    "config.yaml": (
        "database:\n"
        "  user: app\n"
        "  password: " + "Yh7&kLm9Qw2z" + "\n"
        "  url: mysql://root:" + "R00tPassw0rd" + "@localhost/db\n"
        "pypi:\n"
        f"  token: {PYPI}\n"
    ),
    "settings.json": (
        '{\n  "auth_token": "' + GITHUB + '",\n'
        '  "aws_access_key_id": "' + AWS_ID + '",\n'
        '  "passwd": "' + "c0rrectHorse!" + '"\n}\n'
    ),
}
"""Sample files, each with credentials of several kinds."""

MIN_FLAGGED_CHARS = 8
"""Flagged values shorter than this are fragments detect-secrets reports (`ghp`), not secrets."""


@pytest.fixture(scope="module")
def flagged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """What detect-secrets (its default plugins and filters) flags in each sample."""
    pytest.importorskip("detect_secrets")
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    folder = tmp_path_factory.mktemp("samples")
    found: dict[str, set[str]] = {}
    for name, text in SAMPLES.items():
        path = folder / name
        path.write_text(text)
        with default_settings():
            secrets = SecretsCollection()
            secrets.scan_file(str(path))
        found[name] = {
            s.secret_value
            for _, s in secrets
            if s.secret_value and len(s.secret_value) >= MIN_FLAGGED_CHARS
        }
    return found


def test_the_oracle_flags_every_sample(flagged: dict[str, set[str]]) -> None:
    assert all(flagged[name] for name in SAMPLES)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_nothing_flagged_survives_redaction(flagged: dict[str, set[str]], name: str) -> None:
    out = redact(SAMPLES[name])
    assert out.count("\n") == SAMPLES[name].count("\n")
    assert [s for s in flagged[name] if s in out] == []


@pytest.mark.parametrize("name", list(SAMPLES))
def test_nothing_flagged_reaches_a_prompt_as_context(
    flagged: dict[str, set[str]], name: str
) -> None:
    other = OpenDocument(
        f"file:///w/notes/{name}.txt", f"notes/{name}.txt", "plaintext", SAMPLES[name], 1
    )
    current_text = "import os\n" + SAMPLES[name].splitlines()[1].split("=")[0]
    current = OpenDocument("file:///w/app.py", "app.py", "python", current_text, 1)
    found = gather_context(
        current,
        len(current_text),
        [other],
        budget=2000,
        count_tokens=lambda t: len(t.split()),
        index=SnippetIndex(),
    )
    context = "".join(s.text for s in found)
    assert PLACEHOLDER in context  # the sample did become context, redacted
    assert [s for s in flagged[name] if s in context] == []


@pytest.mark.parametrize("name", list(SAMPLES))
async def test_nothing_flagged_reaches_the_log(
    tok, caplog, flagged: dict[str, set[str]], name: str
) -> None:
    # the document before the cursor holds the sample, and the model writes it out again
    engine = ScriptedEngine([" 1", "\n", *SAMPLES[name].splitlines(keepends=True)], tokenizer=tok)
    session = ready_session(engine, replace(ServerSettings(), log_prompts=True))
    text = SAMPLES[name] + "\nvalue = "
    session.documents.open("file:///w/app.py", "python", 1, text)
    snap = session.snapshot("file:///w/app.py", text.count("\n"), len("value = "))
    assert snap is not None
    with caplog.at_level(logging.INFO):
        out = await complete(session, snap, Wait.WHOLE)
    session.close()
    assert out is not None and out.raw
    assert "value = " in caplog.text and PLACEHOLDER in caplog.text  # the prompt was logged
    assert [s for s in flagged[name] if s in caplog.text] == []


async def test_a_secret_split_by_the_log_cut_is_not_logged_in_part(tok, caplog) -> None:
    value = "Qz7" + "xW2vB9nM4kL8pR3tY6uH1jG5fD0sA" * 2
    line = f'password = "{value}"\n'
    tail = "x = 1\n" * ((LOGGED_PROMPT_CHARS - len(line) // 2) // 6)
    text = line + tail  # the 2,000-character cut falls inside the value
    assert LOGGED_PROMPT_CHARS - len(tail) < len(line) - 2
    engine = ScriptedEngine([" 2", "\n"], tokenizer=tok)
    session = ready_session(engine, replace(ServerSettings(), log_prompts=True))
    session.documents.open("file:///w/app.py", "python", 1, text)
    snap = session.snapshot("file:///w/app.py", text.count("\n"), 0)
    assert snap is not None
    with caplog.at_level(logging.INFO):
        await complete(session, snap, Wait.WHOLE)
    session.close()
    assert "x = 1" in caplog.text
    for start in range(0, len(value) - 8, 4):
        assert value[start : start + 8] not in caplog.text


@pytest.mark.parametrize(
    "uri", ["file:///w/.env~", "file:///w/.env%20", "file:///w/.env;v=1", "file:///w/dotenv"]
)
def test_env_files_under_other_names_never_become_context(uri: str) -> None:
    text = "DATABASE_HOST = 'db.internal'\nDATABASE_PORT = 5432\n"
    other = OpenDocument(uri, uri.rsplit("/", 1)[-1], "plaintext", text, 1)
    control = OpenDocument("file:///w/settings.txt", "settings.txt", "plaintext", text, 1)
    current = OpenDocument("file:///w/app.py", "app.py", "python", "DATABASE_HOST = ", 1)

    def context(doc: OpenDocument) -> str:
        found = gather_context(
            current,
            16,
            [doc],
            budget=2000,
            count_tokens=lambda t: len(t.split()),
            index=SnippetIndex(),
        )
        return "".join(s.text for s in found)

    assert "db.internal" in context(control)  # the same text under a plain name is context
    assert context(other) == ""
