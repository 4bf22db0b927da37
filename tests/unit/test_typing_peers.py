"""The peer clients' pure logic (tests/bench/typing_peers.py): llama.vim's context and cache."""

from __future__ import annotations

import pytest

from tests.bench.typing_peers import (
    Key,
    LruCache,
    cached_hint,
    chunk_similarity,
    context_keys,
    ctx_local,
    figures,
    render,
    task,
)

DOC = "import os\n\ndef f(x):\n    return x\n\ny = 1\n"


@pytest.mark.parametrize(
    ("offset", "prev", "prefix", "middle", "suffix"),
    [
        # cursor after "    ret" on line 3
        (DOC.index("urn x"), None, "import os\n\ndef f(x):\n", "    ret", "urn x\n\ny = 1\n\n"),
        # a blank line: the middle and the line's rest are empty
        (DOC.index("\ny = 1"), None, "import os\n\ndef f(x):\n    return x\n", "", "\ny = 1\n\n"),
        # as if "urn x" had been accepted on the line
        (
            DOC.index("urn x"),
            ["urn x"],
            "import os\n\ndef f(x):\n",
            "    return x",
            "\n\ny = 1\n\n",
        ),
        # as if two lines were accepted: the first joins the line, the last is the middle
        (
            DOC.index("urn x"),
            ["urn x", "    z"],
            "import os\n\ndef f(x):\n    return x\n",
            "    z",
            "\n\ny = 1\n\n",
        ),
    ],
)
def test_ctx_local(
    offset: int, prev: list[str] | None, prefix: str, middle: str, suffix: str
) -> None:
    local = ctx_local(DOC, offset, prev)
    assert (local.prefix, local.middle, local.suffix) == (prefix, middle, suffix)


def test_cache_look_back_serves_typed_characters() -> None:
    cache = LruCache()
    at = DOC.index("urn x")
    for key in context_keys(ctx_local(DOC, at, None)):
        cache.put(key, "urn x + 1")
    typed = DOC[:at] + "ur" + DOC[at:]
    # two characters typed that agree with the cached response: the rest of it is served
    assert cached_hint(cache, ctx_local(typed, at + 2, None)) == "n x + 1"
    wrong = DOC[:at] + "ux" + DOC[at:]
    assert cached_hint(cache, ctx_local(wrong, at + 2, None)) is None


def test_lru_cache_is_bounded() -> None:
    cache = LruCache(size=2)
    cache.put("a", "1")
    cache.put("b", "2")
    assert cache.get("a") == "1"  # a is now the most recent
    cache.put("c", "3")
    assert cache.get("b") is None
    assert cache.get("a") == "1"


@pytest.mark.parametrize(
    ("content", "line", "at", "expected"),
    [
        ("x + 1\n\n", "    return ", 11, "x + 1"),
        ("        y = 2\n", "    ", 4, "    y = 2"),  # a blank line's indentation comes off
        ("x\n", "    return x", 11, ""),  # the line's own rest, repeated: discarded
        ("\n\n", "    a", 5, ""),
    ],
)
def test_render(content: str, line: str, at: int, expected: str) -> None:
    text = "def f():\n" + line + "\n"
    local = ctx_local(text, len("def f():\n") + at, None)
    assert render(content, local) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(["x", "y"], ["x", "y"], 1.0), (["x"], ["y"], 0.0), (["x", "y"], ["x", "z"], 0.5)],
)
def test_chunk_similarity(a: list[str], b: list[str], expected: float) -> None:
    assert chunk_similarity(a, b) == pytest.approx(expected)


def test_figures() -> None:
    keys = [
        Key(0.0, "abc", shown_ms=100, ghost="ab", accepted=True),  # useful, fast
        Key(0.0, "c", shown_ms=400, ghost="c"),  # useful, slow
        Key(0.0, "def", shown_ms=50, ghost="xyz"),  # shown, not useful
        Key(0.0, "ef"),  # nothing shown
    ]
    f = figures("x", keys, chars=10, spared=2, tokens=30, seconds=1.0)
    assert f["shown_before_next_key"] == pytest.approx(0.75)
    assert f["shown_within_300ms"] == pytest.approx(0.5)
    assert f["useful_before_next_key"] == pytest.approx(0.5)
    assert f["useful_within_300ms"] == pytest.approx(0.25)
    assert f["useful_share_of_shown"] == pytest.approx(2 / 3)
    assert f["chars_spared"] == pytest.approx(0.2)
    assert f["tokens_per_useful"] == pytest.approx(15.0)
    assert f["p50_ghost_ms"] == 100


@pytest.mark.parametrize(
    ("module", "function"), [("fnmatch", "filter"), ("colorsys", "rgb_to_hls")]
)
def test_task_removes_the_body(module: str, function: str) -> None:
    import importlib
    import inspect

    doc, offset, body = task(module, function)
    assert doc[:offset].rstrip().endswith(":")
    source = inspect.getsource(importlib.import_module(module))
    assert body.strip() and doc[:offset] + body + doc[offset:] == source
