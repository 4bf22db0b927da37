"""Tables of clean-up cases: healing, stopping, suffix duplication, repeated lines."""

from __future__ import annotations

import pytest

from moe_lsp.prompts.postprocess import (
    cut,
    drop_repeated_lines,
    finish,
    indent_unit,
    is_done,
    is_repetitive,
    match_indentation,
    sound_prefix,
    strip_heal,
    trim_repetition,
    trim_suffix_overlap,
    unmatched_closers,
)
from moe_lsp.prompts.prompt import Mode, Prompt


def prompt(
    mode: Mode = Mode.SINGLE_LINE,
    heal: str = "",
    indent: str = "",
    opens: bool = False,
    line_suffix: str = "",
    next_lines: str = "",
) -> Prompt:
    return Prompt((1,), mode, heal, 48, indent, opens, line_suffix, next_lines, 10)


@pytest.mark.parametrize(
    ("raw", "heal", "expected"),
    [
        (" return x", " ", "return x"),
        ("  ", "    ", None),  # still inside the healed text
        ("foo", "fo", "o"),
        ("bar", "fo", ""),  # the model went elsewhere: nothing usable
        ("", "", ""),
    ],
)
def test_strip_heal(raw: str, heal: str, expected: str | None) -> None:
    assert strip_heal(raw, heal) == expected


SINGLE = prompt()
BODY = prompt(Mode.MULTI_LINE, indent="    ")
AFTER_DEF = prompt(Mode.MULTI_LINE, opens=True)


@pytest.mark.parametrize(
    ("text", "p", "expected", "ended"),
    [
        ("x + 1", SINGLE, "x + 1", False),
        ("x + 1\nprint(x)", SINGLE, "x + 1", True),
        ("\n", SINGLE, "", True),
        # an indented body: stops at a blank line or a dedent
        ("return a\n\ndef g():", BODY, "return a", True),
        ("a = 1\n    b = 2\nprint(a)", BODY, "a = 1\n    b = 2", True),
        ("a = 1\n    b = 2\n", BODY, "a = 1\n    b = 2\n", False),
        # after `def f():` the body is indented; a line back at the def's level ends it
        ("\n    return 1\ndef g():", AFTER_DEF, "\n    return 1", True),
        (
            "\n    if x:\n        y()\n    z()",
            AFTER_DEF,
            "\n    if x:\n        y()\n    z()",
            False,
        ),
        ("\n    return 1\n\n", AFTER_DEF, "\n    return 1", True),
    ],
)
def test_cut(text: str, p: Prompt, expected: str, ended: bool) -> None:
    assert cut(text, p) == (expected, ended)


def test_cut_bounds_lines() -> None:
    text = "\n".join(f"    x{i} = {i}" for i in range(20)).lstrip()
    out, ended = cut(text, BODY)
    assert ended
    assert len(out.split("\n")) == 8


@pytest.mark.parametrize(
    ("text", "n"),
    [("f(x)", 0), ("x)", 1), ("a, b))", 2), ("[1, 2]]", 1), ("(]", 1), ("", 0)],
)
def test_unmatched_closers(text: str, n: int) -> None:
    assert unmatched_closers(text) == n


@pytest.mark.parametrize(
    ("text", "line_suffix", "expected"),
    [
        ("a, b)", ")", "a, b"),  # duplicated closing bracket
        ("foo()", ")", "foo()"),  # balanced: the ) belongs to the completion
        ("x, y))", "))", "x, y"),
        ("1, 2]", "]", "1, 2"),
        ("name) + 1", ") + 1", "name"),  # the model re-typed the rest of the line
        ("value", ")", "value"),
        ("x", "", "x"),
        ("len(items)", "", "len(items)"),
    ],
)
def test_trim_suffix_overlap(text: str, line_suffix: str, expected: str) -> None:
    assert trim_suffix_overlap(text, line_suffix) == expected


@pytest.mark.parametrize(
    ("text", "next_lines", "expected"),
    [
        ("a = 1\nreturn a", "return a", "a = 1"),
        ("a = 1\nb = 2", "return a", "a = 1\nb = 2"),
        ("return a", "return a", "return a"),  # a single line is kept
        # the repeated line was the body of a header: the header goes too
        (
            "if n in primes:\n    total += 1\nelse:\n    total += 1",
            "total += 1",
            "if n in primes:\n    total += 1",
        ),
        ("if (x) {\n  y();\n} else {\n  y();", "y();", "if (x) {\n  y();"),
        # nothing repeated: a header at the end stays (the cut decides about it)
        ("a = 1\nif a:", "return a", "a = 1\nif a:"),
    ],
)
def test_drop_repeated_lines(text: str, next_lines: str, expected: str) -> None:
    assert drop_repeated_lines(text, next_lines) == expected


@pytest.mark.parametrize(
    ("raw", "p", "expected"),
    [
        ("    return a + b\n", prompt(heal="    "), "return a + b"),
        (" b)\n", prompt(line_suffix=")"), " b"),
        ("   \n", SINGLE, ""),  # whitespace only
        ("\n    return x\n\n", AFTER_DEF, "\n    return x"),
        ("zzz", prompt(heal="ab"), ""),
        ("x = 1   ", SINGLE, "x = 1"),
    ],
)
def test_finish(raw: str, p: Prompt, expected: str) -> None:
    assert finish(raw, p) == expected


@pytest.mark.parametrize(
    ("raw", "p", "done"),
    [
        ("    ret", prompt(heal="    "), False),
        ("  ", prompt(heal="    "), False),
        ("x + 1\n", SINGLE, True),
        ("x + 1", SINGLE, False),
        ("other", prompt(heal="ab"), True),  # mismatch: stop at once
        ("\n    return 1\n", AFTER_DEF, False),
        ("\n    return 1\ndef", AFTER_DEF, True),
    ],
)
def test_is_done(raw: str, p: Prompt, done: bool) -> None:
    assert is_done(raw, p) is done


@pytest.mark.parametrize(
    ("text", "repetitive"),
    [
        ("a, a, a, a, a", True),
        ("x = 1\nx = 1\nx = 1", True),
        ("foo(bar)", False),
        ("return fibonacci(n - 1) + fibonacci(n - 2)", False),
        ("if x:\n    y()\nelse:\n    z()", False),
        ("))))))))", True),
    ],
)
def test_is_repetitive(text: str, repetitive: bool) -> None:
    assert is_repetitive(text) is repetitive


@pytest.mark.parametrize(
    ("document", "unit"),
    [
        ("def f():\n    return 1\n", "    "),
        ("func f() {\n\treturn 1\n}\n", "\t"),
        ("function f() {\n  if (x) {\n    y();\n  }\n}\n", "  "),
        ("x = 1\n", "    "),
    ],
)
def test_indent_unit(document: str, unit: str) -> None:
    assert indent_unit(document) == unit


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("\n    return 1", "\t", "\n\treturn 1"),  # the model wrote spaces, the file uses tabs
        ("\n\tif x:\n\t\ty()", "    ", "\n    if x:\n        y()"),
        ("\n  y();", "  ", "\n  y();"),
        ("one line", "\t", "one line"),
    ],
)
def test_match_indentation(text: str, unit: str, expected: str) -> None:
    assert match_indentation(text, unit) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a()\nb()\nb()\nb()", "a()\nb()"),  # consecutive duplicate
        ("x = 1\ny = 2\nx = 1\nz = 3\nx = 1", "x = 1\ny = 2\nx = 1\nz = 3"),  # third time
        ("if a:\n    f()\nelse:\n    g()", "if a:\n    f()\nelse:\n    g()"),
        ("", ""),
    ],
)
def test_trim_repetition(text: str, expected: str) -> None:
    assert trim_repetition(text) == expected


def test_a_looping_model_is_stopped_early() -> None:
    looping = "\n    w()\n    for f in x:\n        w()\n        w()\n"
    assert is_done(looping, AFTER_DEF)
    assert finish(looping, AFTER_DEF) == "\n    w()\n    for f in x:\n        w()"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\n    x = 1\n    y = compute(", "\n    x = 1"),  # unfinished last line dropped
        (
            "\n    x = f(\n        a,\n        b",
            "",
        ),  # the call is never closed: nothing sound is left
        ("\n    x = f(\n        a,\n    )\n    y", "\n    x = f(\n        a,\n    )"),
        ("single", "single"),
    ],
)
def test_sound_prefix(text: str, expected: str) -> None:
    assert sound_prefix(text) == expected


def test_truncated_multi_line_keeps_whole_statements() -> None:
    raw = "\n    total = 0\n    for x in items:\n        total += x\n    return tot"
    assert finish(raw, AFTER_DEF, truncated=True) == (
        "\n    total = 0\n    for x in items:\n        total += x"
    )
    assert finish(raw, AFTER_DEF) == raw.rstrip()
