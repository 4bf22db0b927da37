"""Tables of cases for token-budget windows: line-aligned, bounded, and stable across typing."""

from __future__ import annotations

import pytest

from moe_lsp.prompts.window import fit_prefix, fit_suffix, stable_prefix_start

CODE = "".join(f"value_{i} = compute({i})\n" for i in range(400))


@pytest.mark.parametrize("budget", [1, 10, 57, 100, 1000, 100_000])
def test_fit_prefix_is_bounded_and_line_aligned(tok, budget: int) -> None:
    start = fit_prefix(CODE, tok, budget)
    assert start == 0 or CODE[start - 1] == "\n"
    assert len(tok.encode(CODE[start:])) <= budget or start == len(CODE)
    if start > 0:
        # The previous line would not have fit: the window is as large as allowed.
        prev = CODE.rfind("\n", 0, start - 1) + 1
        assert len(tok.encode(CODE[prev:])) > budget


@pytest.mark.parametrize(
    ("text", "budget", "expected_tokens_max"),
    [("x " * 10_000, 50, 50), ("", 10, 0), ("abc", 0, 0)],
)
def test_fit_prefix_edge_cases(tok, text: str, budget: int, expected_tokens_max: int) -> None:
    start = fit_prefix(text, tok, budget)
    assert len(tok.encode(text[start:])) <= expected_tokens_max


@pytest.mark.parametrize("step", [8, 32, 64])
def test_stable_start_snaps_to_step_lines(tok, step: int) -> None:
    start = stable_prefix_start(CODE, tok, 200, step)
    assert CODE[start - 1] == "\n"
    assert CODE.count("\n", 0, start) % step == 0
    assert len(tok.encode(CODE[start:])) <= 200


def test_stable_start_moves_rarely_while_typing(tok) -> None:
    """Type 64 more lines at the end: the plain window moves on every line, the stable one
    only when it crosses a step boundary."""
    plain, stable = set(), set()
    text = CODE
    for i in range(64):
        text += f"typed_{i} = {i}\n"
        plain.add(fit_prefix(text, tok, 300))
        stable.add(stable_prefix_start(text, tok, 300, 32))
    assert len(plain) >= 20
    assert len(stable) <= 3


@pytest.mark.parametrize(
    ("suffix", "budget", "expected"),
    [
        ("a = 1\nb = 2\nc = 3\n", 100, "a = 1\nb = 2\nc = 3\n"),
        ("a = 1\nb = 2\nc = 3\n", 7, "a = 1\n"),
        ("a = 1\nb = 2\nc = 3\n", 12, "a = 1\nb = 2\n"),
        ("a = 1\nb = 2", 100, "a = 1\nb = 2"),
        ("one_long_line_without_end", 0, ""),
        ("", 10, ""),
        ("x\r\ny\r\n", 3, "x\r\n"),
        ("x\r\ny\r\n", 2, ""),
    ],
)
def test_fit_suffix(tok, suffix: str, budget: int, expected: str) -> None:
    assert suffix[: fit_suffix(suffix, tok, budget)] == expected


def test_line_token_cache_is_bounded(tok, monkeypatch: pytest.MonkeyPatch) -> None:
    from moe_lsp.prompts import window

    monkeypatch.setattr(window, "LINE_CACHE_SIZE", 10)
    monkeypatch.setattr(window, "_LINE_TOKENS", {})
    for n in range(1, 60):  # a line typed one character at a time: a new key each time
        fit_prefix(CODE[:200] + "x" * n, tok, 10_000)
        assert len(window._LINE_TOKENS) <= 10
