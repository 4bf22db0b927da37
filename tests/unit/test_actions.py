"""Where code actions apply, what the model is asked, and where its text goes (tables)."""

from __future__ import annotations

import pytest

from moe_lsp.prompts.actions import ActionKind, Diagnostic, adds_no_error, find_actions
from moe_lsp.prompts.languages import language_for
from moe_lsp.prompts.prompt import Mode
from moe_lsp.prompts.syntax import SyntaxTree


def actions(language: str, document: str, **kw):
    cursor = document.index("|")
    text = document.replace("|", "")
    tree = SyntaxTree.create(language_for(language), text)
    return text, find_actions(tree, text, cursor, cursor, **kw)


@pytest.mark.parametrize(
    ("language", "document", "kinds"),
    [
        ("python", "def f(x):\n    pa|ss\n", {"implement", "docstring"}),
        ("python", "def f(x):\n    ...|\n", {"implement", "docstring"}),
        ("python", "def f(x):\n    raise NotImplementedError(|)\n", {"implement", "docstring"}),
        ("python", "def f(x):\n    # TODO|\n    pass\n", {"implement", "docstring"}),
        ("python", 'def f(x):\n    """Doc."""\n    pa|ss\n', {"implement"}),
        ("python", "def f(x):\n    return x| + 1\n", {"docstring"}),
        ("python", "class A:\n    x = |1\n", {"docstring"}),
        ("python", "x = |1\n", set()),
        ("javascript", "function f(a) {\n  |\n}\n", {"implement", "docstring"}),
        ("javascript", "// Adds.\nfunction f(a) {\n  return a|;\n}\n", set()),
        ("go", "func f(a int) int {\n\t|\n}\n", {"implement", "docstring"}),
        ("rust", "fn f(a: i32) -> i32 {\n    todo|!()\n}\n", {"docstring"}),
    ],
)
def test_where_actions_apply(language: str, document: str, kinds: set[str]) -> None:
    _, found = actions(language, document)
    assert {str(a.kind) for a in found} == kinds


@pytest.mark.parametrize(
    ("document", "completion", "expected"),
    [
        (
            "def f(x):\n    pa|ss\n\n\ny = 1\n",
            "return x * 2",
            "def f(x):\n    return x * 2\n\n\ny = 1\n",
        ),
        (
            "def f(x):\n    ...|\n",
            "if x:\n        return 1\n    return 0",
            "def f(x):\n    if x:\n        return 1\n    return 0\n",
        ),
    ],
)
def test_implement_replaces_the_stub(document: str, completion: str, expected: str) -> None:
    text, found = actions("python", document)
    (action,) = [a for a in found if a.kind is ActionKind.IMPLEMENT]
    assert action.mode is Mode.MULTI_LINE
    assert action.prompt_text[: action.cursor].endswith("):\n    ")
    assert text[: action.start] + action.new_text(completion) + text[action.end :] == expected


def test_a_docstring_is_inserted_above_the_body() -> None:
    text, found = actions("python", "def f(x):\n    return x| + 1\n")
    (action,) = found
    assert action.prompt_text[: action.cursor].endswith('    """')
    assert action.stop == ('"""',)
    edited = text[: action.start] + action.new_text("Add one.") + text[action.end :]
    assert edited == 'def f(x):\n    """Add one."""\n    return x + 1\n'


def test_a_fix_tells_code_models_the_problem_in_a_comment() -> None:
    text = "def area(r):\n    return 3.14 * r ** 2 +\n"
    at = text.index("return")
    tree = SyntaxTree.create(language_for("python"), text)
    (fix,) = [
        a
        for a in find_actions(tree, text, at, at, (Diagnostic(at, at + 5, "Expected  expression"),))
        if a.kind is ActionKind.FIX
    ]
    assert "    # Fixed: Expected expression\n    " in fix.prompt_text
    assert fix.prompt_text[: fix.cursor].endswith("# Fixed: Expected expression\n    ")
    assert text[fix.start : fix.end] == "    return 3.14 * r ** 2 +"
    assert "Expected expression" in fix.instruction and fix.mode is Mode.SINGLE_LINE


@pytest.mark.parametrize(
    ("chat", "instruction", "offered"),
    [
        (True, "use a loop", True),
        (False, "use a loop", False),
        (True, "  ", False),
    ],
)
def test_a_rewrite_needs_a_chat_model_and_an_instruction(
    chat: bool, instruction: str, offered: bool
) -> None:
    text = "x = [a * 2 for a in b]\n"
    tree = SyntaxTree.create(language_for("python"), text)
    found = find_actions(tree, text, 0, len(text) - 1, chat=chat, instruction=instruction)
    assert any(a.kind is ActionKind.REWRITE for a in found) is offered


@pytest.mark.parametrize(
    ("completion", "ok"),
    [("return x * 2", True), ("return (x", False), ("return )", False)],
)
def test_an_edit_is_offered_only_if_it_adds_no_error(completion: str, ok: bool) -> None:
    text, found = actions("python", "def f(x):\n    pa|ss\n")
    (action,) = [a for a in found if a.kind is ActionKind.IMPLEMENT]
    assert adds_no_error("python", text, action, completion) is ok
