"""Tables for the next-edit evaluation: the edit pairs found by rule, choosing tasks, scores,
and one task through `predict` over a scripted engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tree_sitter import Node

from moe_lsp.prompts.languages import language_for
from moe_lsp.prompts.next_edit import END
from moe_lsp.prompts.syntax import SyntaxTree
from tests.bench.eval_next_edit import (
    Edit,
    compare,
    grade,
    predict_task,
    recording_completions,
    summarize,
    table,
)
from tests.bench.next_edit_tasks import (
    CALL,
    LITERAL,
    RENAME,
    Candidate,
    EditTask,
    LineEdit,
    Pair,
    apply_line_edits,
    call_pairs,
    changed_literal,
    choose,
    literal_pairs,
    pairs_of,
    rename_pairs,
    split_limit,
    strided,
    task_of,
)

from ..fakes import ScriptedEngine, ready_session


def rename(first: tuple[int, str], second: tuple[int, str]) -> Pair:
    return Pair(RENAME, LineEdit(*first), LineEdit(*second))


def call(first: tuple[int, str], second: tuple[int, str]) -> Pair:
    return Pair(CALL, LineEdit(*first), LineEdit(*second))


def literal(first: tuple[int, str], second: tuple[int, str]) -> Pair:
    return Pair(LITERAL, LineEdit(*first), LineEdit(*second))


FAR = "\n".join(["def f():", "    x = 1", *["    pass"] * 8, "    return x", ""])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a parameter (renamed in the signature first) and an assigned local
        (
            "def f(a):\n    x = a + 1\n    return x\n",
            [
                rename((0, "def f(a2):"), (1, "    x = a2 + 1")),
                rename((1, "    x2 = a + 1"), (2, "    return x2")),
            ],
        ),
        # every use on a line is renamed with it
        ("def f(n):\n    return n * n\n", [rename((0, "def f(n2):"), (1, "    return n2 * n2"))]),
        # attribute and keyword names are not uses of the variable
        (
            "def f(o):\n    v = o.v\n    g(v=v)\n",
            [
                rename((0, "def f(o2):"), (1, "    v = o2.v")),
                rename((1, "    v2 = o.v"), (2, "    g(v=v2)")),
            ],
        ),
        # a nested function is a scope of its own
        (
            "def f():\n    def g(x):\n        return x\n    x = 1\n    return x\n",
            [
                rename((1, "    def g(x2):"), (2, "        return x2")),
                rename((3, "    x2 = 1"), (4, "    return x2")),
            ],
        ),
        # a for target and a tuple target are locals too
        (
            "def f(s):\n    for i in s:\n        a, b = i\n        print(a)\n",
            [
                rename((0, "def f(s2):"), (1, "    for i in s2:")),
                rename((1, "    for i2 in s:"), (2, "        a, b = i2")),
                rename((2, "        a2, b = i"), (3, "        print(a2)")),
            ],
        ),
        # globals, builtins and self are not renamed
        ("def f():\n    print(y)\n    print(y)\n", []),
        ("def m(self):\n    self.a = 1\n    return self.a\n", []),
        # the next use is out of the window the model rewrites
        (FAR, []),
        # the new name is taken already
        ("def f(a):\n    a2 = a\n    return a\n", []),
    ],
)
def test_rename_pairs(text: str, expected: list[Pair]) -> None:
    assert rename_pairs(text, lambda name, line: name + "2") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("g(a)\ng(a)\n", [call((0, "g(a, k=1)"), (1, "g(a, k=1)"))]),
        ("x = g()\ny = g()\n", [call((0, "x = g(k=1)"), (1, "y = g(k=1)"))]),
        ("g(a,)\ng(a,)\n", [call((0, "g(a, k=1,)"), (1, "g(a, k=1,)"))]),
        (
            "x = o.m(1, 'a')\nif o.m(1, 'a'):\n    pass\n",
            [call((0, "x = o.m(1, 'a', k=1)"), (1, "if o.m(1, 'a', k=1):"))],
        ),
        # nested calls: the outer and the inner one each make a pair
        (
            "f(g(a))\nf(g(a))\n",
            [
                call((0, "f(g(a), k=1)"), (1, "f(g(a), k=1)")),
                call((0, "f(g(a, k=1))"), (1, "f(g(a, k=1))")),
            ],
        ),
        # the next identical call is the one on the next line that has it
        (
            "g(a)\nh()\ng(a)\ng(a)\n",
            [call((0, "g(a, k=1)"), (2, "g(a, k=1)"))],
        ),
        ("g(a) + g(a)\ng(a)\n", []),  # twice on a line: which one is next is unclear
        ("g(k=2)\ng(k=2)\n", []),  # the keyword is there already
        ("g(a)\ng(b)\n", []),
        ("g(x for x in y)\ng(x for x in y)\n", []),  # a bare generator takes no more arguments
        ("g(a)\n" + "pass\n" * 8 + "g(a)\n", []),  # out of the window
    ],
)
def test_call_pairs(text: str, expected: list[Pair]) -> None:
    assert call_pairs(text, lambda call, line: "k=1") == expected


def first_literal(source: str) -> Node:
    tree = SyntaxTree.create(language_for("python"), source)
    assert tree is not None and tree.root is not None
    stack = [tree.root]
    while stack:
        node = stack.pop(0)
        if node.type in {"integer", "float", "string", "concatenated_string"}:
            return node
        stack = list(node.children) + stack
    raise AssertionError(f"no literal in {source!r}")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1", "2"),
        ("x = 0", "1"),
        ("x = 'a'", "'a2'"),
        ('x = ""', '"2"'),
        ('x = """doc"""', '"""doc2"""'),
        ("x = 1.5", None),
        ("x = 0x1f", None),
        ("x = b'a'", None),
        ("x = f'{y}'", None),
        ("x = 'a\\n'", None),
    ],
)
def test_changed_literal(source: str, expected: str | None) -> None:
    assert changed_literal(first_literal(source)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x += 1\ny = 0\nx += 1\n", [literal((0, "x += 2"), (2, "x += 2"))]),
        ("a('s', 3)\na('s', 3)\n", [literal((0, "a('s2', 3)"), (1, "a('s2', 3)"))]),
        # three alike: one pair, the third has no partner left
        ("i += 1\ni += 1\ni += 1\n", [literal((0, "i += 2"), (1, "i += 2"))]),
        (
            "i += 1\ni += 1\ni += 1\ni += 1\n",
            [literal((0, "i += 2"), (1, "i += 2")), literal((2, "i += 2"), (3, "i += 2"))],
        ),
        # the first literal the rule can change
        ("y = 1.5 + 2\ny = 1.5 + 2\n", [literal((0, "y = 1.5 + 3"), (1, "y = 1.5 + 3"))]),
        ("'doc'\n'doc'\n", []),  # a lone string
        ("x = 1.5\nx = 1.5\n", []),
        ("# 1\n# 1\n", []),
        ("x = 1\nx = 2\n", []),
        ("x = 1\n" + "pass\n" * 8 + "x = 1\n", []),  # out of the window
        # lines inside a string are no code
        ('s = """\nx = 1\nx = 1\n"""\n', []),
    ],
)
def test_literal_pairs(text: str, expected: list[Pair]) -> None:
    assert literal_pairs(text) == expected


def test_pairs_of_is_fixed_by_its_seed() -> None:
    text = "def f(a):\n    return g(a) + g(a, 1) - g(a)\n\nh(a)\nh(a)\n"
    assert pairs_of(text, "m.py", 1) == pairs_of(text, "m.py", 1)
    kinds = [p.kind for p in pairs_of(text, "m.py", 1)]
    assert kinds == [RENAME, CALL]


@pytest.mark.parametrize(
    ("first", "second", "made"),
    [
        (LineEdit(0, "x2 = 1"), LineEdit(1, "y = x2"), True),
        (LineEdit(0, "x2 = (1"), LineEdit(1, "y = x2"), False),  # the first adds an error
        (LineEdit(0, "x2 = 1"), LineEdit(1, "y = x2)"), False),  # the second adds one
    ],
)
def test_task_of(first: LineEdit, second: LineEdit, made: bool) -> None:
    text = "x = 1\ny = x\n"
    task = task_of(Candidate("m.py", text, Pair(RENAME, first, second)))
    if not made:
        assert task is None
        return
    assert task == EditTask(
        "m.py:rename:1-2",
        RENAME,
        "m.py",
        text,
        apply_line_edits(text, [first]),
        apply_line_edits(text, [first, second]),
        1,
        second.text,
    )


@pytest.mark.parametrize(
    ("n", "limit", "expected"),
    [
        (10, 3, [range(0, 3), range(3, 6), range(6, 10)]),
        (2, 5, [range(0, 1), range(1, 2)]),
        (3, None, [range(0, 1), range(1, 2), range(2, 3)]),
        (0, 3, []),
        (5, 0, []),
    ],
)
def test_strided(n: int, limit: int | None, expected: list[range]) -> None:
    assert strided(n, limit) == expected


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(30, [10, 10, 10]), (7, [3, 2, 2]), (1, [1, 0, 0]), (None, [None, None, None])],
)
def test_split_limit(limit: int | None, expected: list[int | None]) -> None:
    assert split_limit(limit, 3) == expected


def test_choose_shares_the_kinds_and_steps_past_refused_candidates() -> None:
    def candidate(kind: str, line: int) -> Candidate:
        return Candidate("m.py", "", Pair(kind, LineEdit(line, ""), LineEdit(line + 1, "")))

    cands = [candidate(RENAME, i) for i in range(10)] + [candidate(CALL, i) for i in range(2)]

    def make(c: Candidate) -> EditTask | None:
        line = c.pair.first.line
        if c.kind == RENAME and line in {0, 5, 6, 7, 8, 9}:
            return None  # the places at 0 and 5 are refused; their runs go on to 1 and none
        return EditTask(f"{c.kind}:{line}", c.kind, "m.py", "", "", "", line + 1, "")

    chosen = [t.task_id for t in choose(cands, 6, make)]
    assert chosen == ["rename:1", "call:0", "call:1"]
    assert [t.task_id for t in choose(cands, None, make)][:4] == [
        "rename:1",
        "rename:2",
        "rename:3",
        "rename:4",
    ]


TASK = EditTask("t", RENAME, "m.py", "a\nb\nc", "A\nb\nc", "A\nB\nc", 1, "B")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (None, (False, False, False)),
        (Edit(2, 3, "B"), (True, True, True)),
        (Edit(0, 5, "A\nB\nc"), (True, True, True)),  # the whole window, the one change in it
        (Edit(0, 5, "A\nB\nC"), (True, False, True)),  # the right line, and one more change
        (Edit(2, 3, "X"), (True, False, False)),
        (Edit(4, 5, "B"), (True, False, False)),  # another line
        (Edit(2, 2, "B\n"), (True, False, False)),  # inserted above it instead
    ],
)
def test_grade(edit: Edit | None, expected: tuple[bool, bool, bool]) -> None:
    got = grade(TASK, edit)
    assert (got["offered"], got["exact"], got["right_line"]) == expected


def row(kind: str, raw: tuple[bool, bool], checked: tuple[bool, bool], ms: float) -> dict:
    return {
        "kind": kind,
        "offered_raw": raw[0],
        "exact_raw": raw[1],
        "right_line_raw": raw[1],
        "offered_checked": checked[0],
        "exact_checked": checked[1],
        "right_line_checked": checked[1],
        "latency_ms": ms,
        "generated_tokens": 10,
        "finish_reason": "stop",
    }


def test_summarize_table_and_compare(tmp_path: Path) -> None:
    rows = [
        row(RENAME, (True, True), (True, True), 100.0),
        row(RENAME, (True, True), (False, False), 300.0),  # refused by the check
        row(CALL, (False, False), (False, False), 200.0),
    ]
    summary = summarize(rows)
    assert list(summary) == [RENAME, CALL, "all"]
    assert summary[RENAME]["exact_raw"] == 1.0 and summary[RENAME]["exact_checked"] == 0.5
    assert summary[RENAME]["refused_by_check"] == 1 and summary[RENAME]["exact_refused"] == 1
    assert summary["all"]["tasks"] == 3 and summary["all"]["offered_raw"] == 0.6667
    assert summary["all"]["median_latency_ms"] == 200.0
    text = table(summary)
    assert "exact checked" in text and "66.7%" in text and text.count("\n") == 6
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"summary": {RENAME: {**summary[RENAME], "exact_raw": 0.5}}}))
    delta = compare(old, summary)
    assert "+0.500" in delta and "(not in the old file)" in delta


# -- one task through predict, the engine scripted ----------------------------------------------

SOURCE = "def f(a):\n    x = g(a)\n    y = g(a)\n    return x + y"
TASK_CALL = task_of(
    Candidate(
        "m.py",
        SOURCE,
        Pair(CALL, LineEdit(1, "    x = g(a, k=1)"), LineEdit(2, "    y = g(a, k=1)")),
    )
)


@pytest.mark.parametrize(
    ("second_line", "offered", "exact"),
    [
        ("    y = g(a, k=1)", (True, True), (True, True)),
        ("    y = g(a, k=1", (True, False), (False, False)),  # a syntax error: refused
        ("    y = g(a)", (False, False), (False, False)),  # nothing more changed
    ],
)
async def test_predict_task_scores_raw_and_checked(
    tok, second_line: str, offered: tuple[bool, bool], exact: tuple[bool, bool]
) -> None:
    assert TASK_CALL is not None
    window = TASK_CALL.edited.split("\n")
    window[2] = second_line
    # the prompt's last newline is healed: the model writes it again, then the window
    written = "\n" + "\n".join(window) + "\n" + END + "\n"
    engine = ScriptedEngine([tok.decode([i]) for i in tok.encode(written)], tokenizer=tok)
    session = ready_session(engine)
    session.root_path = "/"
    try:
        row = await predict_task(session, TASK_CALL)
    finally:
        session.close()
    assert (row["offered_raw"], row["offered_checked"]) == offered
    assert (row["exact_raw"], row["exact_checked"]) == exact
    assert row["completed"] and row["hunks"] == 1
    assert session.documents.get("file:///m.py") is None  # closed after the task


async def test_recording_completions_restores_the_path() -> None:
    from moe_lsp.lsp import next_edit

    before = next_edit.complete
    seen: list = []
    with recording_completions(seen):
        assert next_edit.complete is not before
    assert next_edit.complete is before
