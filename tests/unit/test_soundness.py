"""Tables of tree-sitter checks: has a completion closed its body, where is its last sound cut."""

from __future__ import annotations

import pytest

from moe_lsp.prompts.soundness import (
    AFTER_CHARS,
    BEFORE_CHARS,
    can_check,
    closes_scope,
    error_count,
    sound_cut,
    window_after,
    window_before,
)


@pytest.mark.parametrize(
    ("language", "before", "completed", "closed"),
    [
        # Python: a body ends where a line comes back to the outer indentation
        ("python", "def f(x):\n    ", "return x + 1\n", False),
        ("python", "def f(x):\n    ", "return x + 1\n\ndef g():\n", True),
        ("python", "class A:\n    def f(self):\n        ", "return 1\n    def g(self):\n", True),
        ("python", "def f(x):\n    ", "if x:\n        return 1\n    return 2\n", False),
        # a continuation line inside brackets is not a dedent
        ("python", "def f(x):\n    ", "y = g(\n1, 2)\n", False),
        # brace languages: the closing brace of the body ends it
        ("javascript", "function f() {\n  ", "return 1;\n", False),
        ("javascript", "function f() {\n  ", "return 1;\n}\n", True),
        ("javascript", "function f() {\n  ", "if (x) {\n    y();\n  }\n", False),
        ("typescript", "function f(): number {\n  ", "return 1;\n}\n", True),
        ("go", "func f() int {\n\t", "return 1\n}\n", True),
        ("rust", "fn f() -> i32 {\n    ", "let x = 1;\n    x\n}\n", True),
        ("c", "int f(void) {\n    ", "return 1;\n", False),
        ("cpp", "int f() {\n    ", "return 1;\n}\n", True),
        ("java", "class A {\n  int f() {\n    ", "return 1;\n  }\n", True),
        # nothing to check
        ("python", "def f(x):\n    ", "", False),
        ("plaintext", "a {\n", "b\n}\n", False),
        ("", "a {\n", "b\n}\n", False),
    ],
)
def test_closes_scope(language: str, before: str, completed: str, closed: bool) -> None:
    assert closes_scope(language, before, completed) is closed


@pytest.mark.parametrize(
    ("language", "before", "completion", "after", "expected"),
    [
        # whole: kept
        ("python", "x = ", "compute(a, b)", "\nprint(x)\n", "compute(a, b)"),
        # a half call is worse than nothing
        ("python", "x = ", "compute(a, b", "\nprint(x)\n", ""),
        # cut back to the last line that leaves no error and promises nothing more
        (
            "python",
            "def f(x):\n    ",
            "total = 0\n    for i in range(x):\n        total += foo(i,",
            "\n",
            "total = 0",
        ),
        (
            "javascript",
            "function f(xs) {\n  ",
            "let t = 0;\n  for (const x of xs) {\n    t += x;\n  }\n  return g(t",
            "\n}\n",
            "let t = 0;\n  for (const x of xs) {\n    t += x;\n  }",
        ),
        # the suffix's closing bracket is there: the completion may rely on it
        ("python", "print(", "a, b", ")\n", "a, b"),
        # errors already in the document do not count against the completion
        ("python", "def (:\n    pass\nx = ", "1", "\n", "1"),
        # no grammar: unchanged
        ("plaintext", "x = ", "compute(a, b", "\n", "compute(a, b"),
        ("python", "x = ", "", "\n", ""),
    ],
)
def test_sound_cut(language: str, before: str, completion: str, after: str, expected: str) -> None:
    assert sound_cut(language, before, completion, after) == expected


@pytest.mark.parametrize(
    ("language", "text", "errors"),
    [
        ("python", "x = 1\n", 0),
        ("python", "x = (1\n", 1),
        ("javascript", "let x = ;", 1),
        ("plaintext", "x = (1", 0),
    ],
)
def test_error_count(language: str, text: str, errors: int) -> None:
    assert (error_count(language, text) > 0) is (errors > 0)


@pytest.mark.parametrize(("language", "checkable"), [("python", True), ("go", True), ("", False)])
def test_can_check(language: str, checkable: bool) -> None:
    assert can_check(language) is checkable


def test_windows_are_bounded_and_keep_whole_lines() -> None:
    line = "value = compute(a, b)\n"
    text = line * 2000
    before, after = window_before(text), window_after(text)
    assert len(before) <= BEFORE_CHARS and before.startswith("value")
    assert len(after) <= AFTER_CHARS and after.endswith(")")
    assert window_before("short") == "short" and window_after("short") == "short"
