"""Shared-server settings: addresses, who may listen where, tokens files, connect's flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from moe_lsp.lsp.cli import build_parser
from moe_lsp.lsp.cli_shared import connect_args
from moe_lsp.lsp.listen import Endpoint, ListenError, Security, parse_endpoint, read_tokens_file
from moe_lsp.lsp.protocol import single_token


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unix:/run/moe.sock", Endpoint("unix", path="/run/moe.sock")),
        ("tcp:127.0.0.1:2087", Endpoint("tcp", host="127.0.0.1", port=2087)),
        ("tcp:[::1]:2087", Endpoint("tcp", host="::1", port=2087)),
        ("tcp:0.0.0.0:443", Endpoint("tcp", host="0.0.0.0", port=443)),
    ],
)
def test_parse_endpoint(text: str, expected: Endpoint) -> None:
    assert parse_endpoint(text) == expected
    assert str(parse_endpoint(text)).startswith(expected.kind + ":")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "unix:",
        "tcp:",
        "tcp:127.0.0.1",
        "tcp:127.0.0.1:0",
        "tcp:127.0.0.1:70000",
        "tcp:127.0.0.1:abc",
        "tcp::2087",
        "http://x:1",
        "udp:1.2.3.4:5",
        "tcp:1.2.3.4:-1",
    ],
)
def test_bad_endpoints_are_one_clear_error(text: str) -> None:
    with pytest.raises(ListenError, match="use unix:PATH or tcp:HOST:PORT"):
        parse_endpoint(text)


TOKEN = single_token("a-long-enough-token")


@pytest.mark.parametrize(
    ("endpoints", "security", "problem"),
    [
        (["unix:/tmp/s"], Security(), None),  # a unix socket: peer uid, no token
        (["tcp:127.0.0.1:1"], Security(), "needs a token"),
        (["tcp:127.0.0.1:1"], Security(authenticate=TOKEN), None),
        (["tcp:localhost:1"], Security(authenticate=TOKEN), None),
        (["tcp:0.0.0.0:1"], Security(authenticate=TOKEN), "needs TLS"),
        (["tcp:10.1.2.3:1"], Security(authenticate=TOKEN), "needs TLS"),
        (["unix:/tmp/s", "tcp:[::1]:1"], Security(), "needs a token"),
    ],
)
def test_security_check(endpoints: list[str], security: Security, problem: str | None) -> None:
    parsed = [parse_endpoint(e) for e in endpoints]
    if problem is None:
        security.check(parsed)
    else:
        with pytest.raises(ListenError, match=problem.replace("needs TLS", "it needs TLS")):
            security.check(parsed)


@pytest.mark.parametrize(
    ("given", "user"),
    [
        ("a-long-enough-token", "default"),
        ("a-long-enough-toke", None),
        ("a-long-enough-token ", None),
        ("", None),
        (None, None),
    ],
)
def test_single_token(given: str | None, user: str | None) -> None:
    assert TOKEN(given) == user


@pytest.mark.parametrize(
    ("content", "mode", "checks", "problem"),
    [
        (
            "alice 0123456789abcdefXYZ\nbob fedcba9876543210QQQ\n",
            0o600,
            {"0123456789abcdefXYZ": "alice", "fedcba9876543210QQQ": "bob", "nope": None},
            None,
        ),
        (
            "# team\n\nalice 0123456789abcdefXYZ  # laptop\n",
            0o600,
            {"0123456789abcdefXYZ": "alice"},
            None,
        ),
        ("alice 0123456789abcdefXYZ\n", 0o644, {}, "readable by other users"),
        ("alice short\n", 0o600, {}, "16\\+ chars"),
        ("alice\n", 0o600, {}, "USER TOKEN"),
        ("alice a b\n", 0o600, {}, "USER TOKEN"),
        ("# nothing\n", 0o600, {}, "holds no tokens"),
    ],
)
def test_tokens_file(
    tmp_path: Path, content: str, mode: int, checks: dict[str, str | None], problem: str | None
) -> None:
    path = tmp_path / "tokens"
    path.write_text(content)
    path.chmod(mode)
    if problem is not None:
        with pytest.raises(ListenError, match=problem):
            read_tokens_file(path)
        return
    check = read_tokens_file(path)
    for token, user in checks.items():
        assert check(token) == user
    assert check(None) is None


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["--idle-exit", "600.0", "--log-level", "INFO"]),
        (["--idle-exit", "5"], ["--idle-exit", "5.0", "--log-level", "INFO"]),
        (
            ["--model", "/m", "--tensor-parallel-size", "8", "--enable-expert-parallel"],
            [
                "--idle-exit",
                "600.0",
                "--log-level",
                "INFO",
                "--model",
                "/m",
                "--tensor-parallel-size",
                "8",
                "--enable-expert-parallel",
            ],
        ),
        (
            ["--engine-url", "http://gpu:8000", "--socket", "/tmp/x.sock"],
            ["--idle-exit", "600.0", "--log-level", "INFO", "--engine-url", "http://gpu:8000"],
        ),
    ],
)
def test_connect_passes_engine_flags_to_the_server_it_starts(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: list[str]
) -> None:
    for env in ("MOE_LSP_ENGINE_URL", "MOE_LSP_ENGINE_TOKENIZER"):
        monkeypatch.delenv(env, raising=False)
    args = build_parser().parse_args(["connect", *argv])
    assert connect_args(args.parser, args) == expected
