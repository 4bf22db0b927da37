"""Tables of cases for typing through a shown completion."""

from __future__ import annotations

import pytest

from moe_lsp.lsp.typing_cache import TypingCache

SHOWN_AT = ("def f(x):\n    return ", "\n")
TEXT = "x * 2 + 1"


@pytest.mark.parametrize(
    ("prefix", "suffix", "expected"),
    [
        ("def f(x):\n    return x", "\n", " * 2 + 1"),  # typed one character of it
        ("def f(x):\n    return x * 2", "\n", " + 1"),
        ("def f(x):\n    return ", "\n", None),  # nothing typed: ask the model again
        ("def f(x):\n    return y", "\n", None),  # typed something else
        ("def f(x):\n    return x * 2 + 1", "\n", None),  # typed all of it
        ("def f(x):\n    return x * 2 +", "\n", " 1"),
        ("def f(x):\n    return x", "\nprint()\n", None),  # the text after changed
        ("def g(x):\n    return x", "\n", None),  # elsewhere
    ],
)
def test_lookup(prefix: str, suffix: str, expected: str | None) -> None:
    cache = TypingCache()
    cache.remember("u", *SHOWN_AT, TEXT)
    assert cache.lookup("u", prefix, suffix) == expected


def test_other_document_and_forget() -> None:
    cache = TypingCache()
    cache.remember("u", *SHOWN_AT, TEXT)
    assert cache.lookup("v", SHOWN_AT[0] + "x", "\n") is None
    cache.forget("u")
    assert cache.lookup("u", SHOWN_AT[0] + "x", "\n") is None


def test_bounded() -> None:
    cache = TypingCache(max_entries=3)
    for i in range(10):
        cache.remember(f"u{i}", "a", "b", "c")
    assert len(cache) == 3
    assert cache.lookup("u9", "ac", "b") is None  # only whitespace left is None; "c" fully typed
    cache.remember("u9", "a", "b", "cd")
    assert cache.lookup("u9", "ac", "b") == "d"
    assert cache.lookup("u0", "ac", "b") is None  # evicted
