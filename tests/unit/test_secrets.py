"""Tables of cases for secret files and strings: what is skipped, redacted, and left alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moe_lsp.prompts.secrets import PLACEHOLDER, is_secret_path, redact

R = PLACEHOLDER

# Fake credentials, assembled so that no scanner mistakes this file for a leak.
AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
GITHUB = "ghp_" + "a1B2c3D4" * 4 + "e5F6"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0" + "x" * 12 + "_" + "Yz9" * 10
GITLAB = "glpat-" + "Ab3dEf5hIj" * 2
SLACK = "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
OPENAI = "sk-proj-" + "Ab1Cd2Ef3Gh4" * 3
ANTHROPIC = "sk-ant-api03-" + "Zx9Yw8Vu7Ts6" * 7 + "-AA"
GOOGLE = "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6q"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    + ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
PEM_BODY = "MIIEpAIBAAKCAQEA7vbqajDw4o6gJy8UtmIbkcpnkO3Kwc4qsEnSZp/TR+fQi62F\n" * 3


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "/home/u/proj/.env",
        "file:///home/u/proj/.env.local",
        ".env.production",
        "deploy/prod.env",
        ".ENV",
        ".envrc",
        "certs/server.pem",
        "TLS.KEY",
        "private.key",
        "/home/u/.ssh/id_rsa",
        "id_rsa.pub",
        "id_ed25519",
        "id_ecdsa",
        "credentials.json",
        "/home/u/.aws/credentials",
        "secrets.yaml",
        "config/secrets.json",
        "client.p12",
        "client.pfx",
        "/home/u/.netrc",
        ".npmrc",
        "~/.pypirc",
        "android/release.keystore",
        ".git-credentials",
        "/home/u/.ssh/config",
        "C:\\Users\\me\\proj\\.env",
        "file:///c%3A/Users/me/.npmrc",
        "vscode-remote://ssh-remote%2Bbox/home/u/app/.env.local",
    ],
)
def test_secret_paths(path: str) -> None:
    assert is_secret_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "environment.py",
        "keys.py",
        "monkey.py",
        "secretsanta.md",
        "env.py",
        "src/env/config.py",
        "keyboard.ts",
        "test_secrets.py",
        "credential.py",
        "my_credentials.py",
        "token.py",
        "password_utils.py",
        "keystore.md",
        "pemfile.txt",
        "README.md",
        "",
        "untitled:Untitled-1",
        "file:///home/u/envs/app.py",
        "file:///home/u/.environment/app.py",
    ],
)
def test_ordinary_paths(path: str) -> None:
    assert not is_secret_path(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # vendor tokens, wherever they stand
        (f"aws_access_key_id = {AWS_ID}", f"aws_access_key_id = {R}"),
        (f'client = boto3.client("s3", aws_access_key_id="{AWS_ID}")', None),
        (f"aws_secret_access_key = {AWS_SECRET}", f"aws_secret_access_key = {R}"),
        (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", f"AWS_SECRET_ACCESS_KEY={R}"),
        (f'headers = {{"Authorization": "token {GITHUB}"}}', None),
        (f"GH={GITHUB}", f"GH={R}"),
        (f"url = 'https://{GITHUB_PAT}@github.com/o/r'", f"url = 'https://{R}@github.com/o/r'"),
        (f"export GITLAB={GITLAB}", f"export GITLAB={R}"),
        (f"slack({SLACK!r})", f"slack('{R}')"),
        (f"openai.api_base, k = base, {OPENAI!r}", f"openai.api_base, k = base, '{R}'"),
        (f"client = Anthropic(api_key={ANTHROPIC!r})", f"client = Anthropic(api_key='{R}')"),
        (f"fetch(`https://maps.googleapis.com/x?key={GOOGLE}`)", None),
        (f"Authorization: Bearer {JWT}", f"Authorization: Bearer {R}"),
        # quoted values of secret-named assignments: the name stays
        ('password = "hunter2hunter2"', f'password = "{R}"'),
        ('DB_PASSWORD="correct horse"', f'DB_PASSWORD="{R}"'),
        ("api_key: 'abcd1234efgh'", f"api_key: '{R}'"),
        ('{"client_secret": "0123456789abcdef"}', f'{{"client_secret": "{R}"}}'),
        ("token = 'abcdefgh12'", f"token = '{R}'"),
        ('dbPassword := "s3cr3t-pass"', f'dbPassword := "{R}"'),
        ('const apiKey: string = "k-123456789";', f'const apiKey: string = "{R}";'),
        ('self.auth_token = "abcdefghijkl"', f'self.auth_token = "{R}"'),
        ('login(user, password="hunter2hunter2")', f'login(user, password="{R}")'),
        (
            'settings = {"SECRET_KEY": r"django-insecure-xyz"}',
            f'settings = {{"SECRET_KEY": r"{R}"}}',
        ),
        ('private_key => "abcdefgh"', f'private_key => "{R}"'),
        # a private key block: whole block, line count kept
        (
            f"KEY = '''-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}"
            "-----END RSA PRIVATE KEY-----'''\nx = 1",
            f"KEY = '''{R}\n\n\n\n'''\nx = 1",
        ),
        (
            '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC'
            '\\n-----END PRIVATE KEY-----\\n", "x": 1}',
            f'{{"private_key": "{R}", "x": 1}}',
        ),
        # a block cut in half (a window of a larger file): key lines go, markers and code stay
        (
            f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\n    def f():\n        pass",
            f"-----BEGIN OPENSSH PRIVATE KEY-----\n{R}\n\n\n\n    def f():\n        pass",
        ),
        (
            f"{PEM_BODY}-----END EC PRIVATE KEY-----\nok = True",
            f"{R}\n\n\n-----END EC PRIVATE KEY-----\nok = True",
        ),
        (
            'k = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ',
            f'k = "-----BEGIN PRIVATE KEY-----{R}',
        ),
        # weak but literal passwords are still passwords
        ('password = "supersecret"', f'password = "{R}"'),
        ("SECRET_KEY = 'development key'", f"SECRET_KEY = '{R}'"),
        ('PASSWD = "testPass"', f'PASSWD = "{R}"'),
    ],
)
def test_redacted(text: str, expected: str | None) -> None:
    out = redact(text)
    if expected is not None:
        assert out == expected
    assert R in out
    for secret in (AWS_ID, AWS_SECRET, GITHUB, GITLAB, SLACK, OPENAI, ANTHROPIC, GOOGLE, JWT):
        assert secret not in out
    assert "MIIE" not in out
    assert out.count("\n") == text.count("\n")
    assert redact(out) == out  # idempotent: the placeholder is never redacted again


@pytest.mark.parametrize(
    "text",
    [
        "token = tokenizer.encode(x)",
        'password_field = "password"',
        'password_hint = "at least eight characters"',
        "sk = sklearn",
        "import sklearn as sk",
        "pip install sk-learn scikit-learn",
        'class="sk-fading-circle-animation-delay-2"',
        "risk-assessment-report-2024-final",
        'password = "short"',
        'password = os.environ["DB_PASSWORD"]',
        'password = "${DB_PASSWORD}"',
        "password: '{{ vault_db_password }}'",
        'eos_token = "<|endoftext|>"',
        'if token == "identifier_name":',
        'TOKEN_URL = "https://example.com/oauth/token"',
        'secret_name = "my-app-secret-name"',
        'key = "some/long/path/value"',
        "tokens = ['alpha_beta_gamma']",
        "AKIAFOO = 1",
        "ghp_short = 2",
        "header = 'eyJhbGciOiJIUzI1NiJ9'",
        "def set_password(self, password: str) -> None:",
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUXXXXXXXXXXXX\n-----END CERTIFICATE-----",
        'if line.startswith("-----BEGIN"):\n    return parse(line)',
        # markers in code that parses keys, names of fields and environment variables
        '_SK_START = b"-----BEGIN OPENSSH PRIVATE KEY-----"\n'
        '_SK_END = b"-----END OPENSSH PRIVATE KEY-----"',
        'the "-----BEGIN RSA PRIVATE KEY-----" and\n'
        'after the "-----END RSA PRIVATE KEY-----" lines',
        '"AWS::ApiGateway::ApiKey": "48205d4ffd7feba3",',
        "ACCESS_KEY = 'AWS_ACCESS_KEY_ID'",
        "SECRET_KEY = 'AWS_SECRET_ACCESS_KEY'",
        '"input_token": "next_token",',
        'AttributeOID.CHALLENGE_PASSWORD: "challengePassword",',
        'ALLOW_CREDENTIALS = "allowCredentials"',
        "",
    ],
)
def test_ordinary_code_is_untouched(text: str) -> None:
    assert redact(text) is text


@pytest.mark.timeout(60)
def test_redact_one_megabyte_ends() -> None:
    """No pattern backtracks without bound on a megabyte of code (measured here: ~35 ms;
    the figure is printed by `make bench-context`, the timeout only catches a hang)."""
    chunk = (
        "def handler(request, token_store):\n"
        '    """Answer one request."""\n'
        "    token = token_store.get(request.user_id)\n"
        '    headers = {"Accept": "application/json", "X-Trace": request.trace_id}\n'
        "    return respond(request, headers=headers, password_hint=None)  # sk-learn\n"
    )
    text = chunk * (1_000_000 // len(chunk) + 1)
    text = text[:500_000] + f'api_key = "{OPENAI}"\n' + text[500_000:1_000_000]
    out = redact(text)
    assert OPENAI not in out and out.count("\n") == text.count("\n")
    assert redact(out) == out


PIECES = [
    "password = ",
    "api_key: ",
    '"',
    "'",
    "hunter2hunter2",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----",
    PEM_BODY.split("\n")[0],
    AWS_ID,
    "aws_secret_access_key=",
    AWS_SECRET,
    GITHUB,
    OPENAI,
    JWT,
    "\n",
    "\r\n",
    "\r",
    " ",
    "x",
    "<redacted>",
    "${TOKEN}",
]


@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
@settings(max_examples=300, deadline=None)
def test_redact_keeps_lines_and_is_idempotent(text: str) -> None:
    out = redact(text)
    assert out.count("\n") == text.count("\n") and out.count("\r") == text.count("\r")
    assert redact(out) == out
