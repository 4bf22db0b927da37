"""Next-edit suggestions: edit hunks, the prompt text, the model's window back into one edit."""

from __future__ import annotations

import itertools

import pytest

from moe_lsp.prompts.next_edit import END, EditLog, Hunk, NextEdit, line_hunk, prompt_text, to_edit


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("a\nb\nc", "a\nB\nc", Hunk(1, "b", "B")),
        ("a\nb\nc", "a\nb\nx\nc", Hunk(2, "", "x")),
        ("a\nb\nc", "a\nc", Hunk(1, "b", "")),
        ("x = f(a)\n", "x = f(a, b)\n", Hunk(0, "x = f(a)", "x = f(a, b)")),
        ("same", "same", None),
    ],
)
def test_line_hunk(old: str, new: str, expected: Hunk | None) -> None:
    assert line_hunk(old, new) == expected


def test_typing_on_the_same_lines_grows_one_hunk_and_undoing_leaves_none() -> None:
    log = EditLog()
    texts = ["total = 0\n", "totals = 0\n", "totalsum = 0\n"]
    for old, new in itertools.pairwise(texts):
        log.record(old, new)
    assert list(log.hunks) == [Hunk(0, "total = 0", "totalsum = 0")]
    log.record("totalsum = 0\ny\n", "totalsum = 0\nz\n")
    assert len(log.hunks) == 2
    bounded = EditLog(max_hunks=3)
    for i in range(10):
        bounded.record(f"{i}\nx\n" * 1, f"{i}\ny{i}\n")
    assert len(bounded.hunks) == 3


def test_prompt_text_holds_the_edits_and_the_window() -> None:
    text = "\n".join(f"line {i}" for i in range(40))
    made = prompt_text("m.py", text, [Hunk(20, "line 20", "line twenty")])
    assert made is not None
    body, start, end = made
    assert "# - line 20" in body and "# + line twenty" in body
    assert text[start:end] in body and body.rstrip().endswith("next:")
    assert text[start:end].startswith("line 12") and text[start:end].endswith("line 28")
    assert END in body
    assert prompt_text("m.py", text, []) is None


TEXT = "def f(a):\n    x = g(a)\n    y = g(a)\n    return x + y"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # the next identical call changed as the last one was
        (
            "def f(a):\n    x = g(a, 2)\n    y = g(a, 2)\n    return x + y" + "\n" + END,
            NextEdit(TEXT.index("    y"), TEXT.index("\n    return"), "    y = g(a, 2)"),
        ),
        # nothing changed: no suggestion
        (TEXT, None),
        ("", None),
        # the last line changed (it has no newline of its own)
        (
            "def f(a):\n    x = g(a, 2)\n    y = g(a)\n    return x * y",
            NextEdit(TEXT.index("    return"), len(TEXT), "    return x * y"),
        ),
    ],
)
def test_to_edit(written: str, expected: NextEdit | None) -> None:
    last = Hunk(1, "    x = g(a)", "    x = g(a, 2)")
    text = TEXT.replace("x = g(a)", "x = g(a, 2)")
    if expected is not None and expected.new_text.startswith("    y"):
        # a whole middle line: it is replaced with its newline
        expected = NextEdit(text.index("    y"), text.index("    return"), expected.new_text + "\n")
    elif expected is not None:
        expected = NextEdit(text.index("    return"), len(text), expected.new_text)
    assert to_edit(text, 0, len(text), written, [last]) == expected


def test_an_edit_that_undoes_the_last_one_is_not_suggested() -> None:
    text = "a = 1\nb = 2"
    last = Hunk(0, "a = 0", "a = 1")
    assert to_edit(text, 0, len(text), "a = 0\nb = 2", [last]) is None


@pytest.mark.parametrize(
    ("text", "written", "expected"),
    [
        # an unchanged copy of a window ending in blank lines is no edit
        ("a = 1\nb = 2\n\n", "a = 1\nb = 2\n" + END, None),
        # replacing most of the window is a rewrite, not a next edit
        ("a\nb\nc\nd\ne\nf\n", "# x\n# y\n# z\n# w\n# v\nf\n", None),
        # the model echoing its prompt is no edit
        ("a = 1\nb = 2", "# The code around the last edit:\na = 1\nb = 2", None),
    ],
)
def test_what_is_not_a_next_edit(text: str, written: str, expected: NextEdit | None) -> None:
    assert to_edit(text, 0, len(text), written, []) == expected


CODE = "def f(a):\n    x = g(a)\n    y = g(a)\n    return x + y\n"


@pytest.mark.parametrize(
    ("start", "end", "new_text"),
    [
        ((1, 12), (1, 12), ", 2"),  # a keystroke inside a line
        ((1, 4), (1, 5), "z"),  # a replaced character
        ((2, 0), (3, 0), ""),  # a deleted line
        ((1, 12), (2, 11), ", 2)\n    q = h(a"),  # across lines
        ((3, 16), (3, 16), "\n    print(x)"),  # a new line at the end
        ((9, 0), (9, 0), "# tail\n"),  # past the end (clamped)
    ],
)
def test_a_keystroke_is_logged_as_the_whole_text_diff_would_log_it(start, end, new_text) -> None:
    from moe_lsp.lsp.service import Service
    from moe_lsp.lsp.session import Session

    ranged, whole = Session(Service()), Session(Service())
    for session in (ranged, whole):
        session.documents.open("file:///a.py", "python", 1, CODE)
    ranged.change_document("file:///a.py", 2, [((start, end), new_text)])
    new = ranged.documents.get("file:///a.py").text
    whole.change_document("file:///a.py", 2, [(None, new)])
    assert ranged.edit_logs.hunks("file:///a.py") == whole.edit_logs.hunks("file:///a.py")
    assert ranged.edit_logs.hunks("file:///a.py")
