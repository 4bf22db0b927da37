"""Tables of cases for the prompt builder: decisions, healing, profiles, cross-file context."""

from __future__ import annotations

import pytest

from moe_lsp.prompts.builder import Budget, NoCompletion, Request, build, heal, looks_binary
from moe_lsp.prompts.crossfile import OpenDocument
from moe_lsp.prompts.cursor import decide_mode
from moe_lsp.prompts.languages import language_for
from moe_lsp.prompts.profiles import profile_by_name
from moe_lsp.prompts.prompt import Mode, Prompt
from moe_lsp.prompts.syntax import SyntaxTree


@pytest.mark.parametrize(
    ("line_prefix", "line_suffix", "mode", "opens"),
    [
        ("x = foo(", ")", Mode.SINGLE_LINE, True),
        ("    return ", "", Mode.SINGLE_LINE, False),
        ("def f(x):", "", Mode.MULTI_LINE, True),
        ("", "", Mode.MULTI_LINE, False),
        ("if (x) {", "", Mode.MULTI_LINE, True),
        ("total = a +", "", Mode.SINGLE_LINE, False),
    ],
)
def test_decide_mode_without_a_tree(line_prefix, line_suffix, mode, opens) -> None:
    assert decide_mode(line_prefix, line_suffix) == (mode, opens)


@pytest.mark.parametrize(
    ("text", "healed"),
    [
        ("def fib", "fib"),  # partial word: the model may extend it
        ("x = ", " "),  # trailing space
        ("def f():\n    ", "\n    "),  # start of an indented line
        ("print(", ""),  # punctuation stays
        ("a.b", "b"),
        ("abc", ""),  # never the whole prompt
        ("", ""),
    ],
)
def test_heal(tok, text: str, healed: str) -> None:
    assert heal(tok.encode(text), text, tok) == healed


def request(code: str, language: str = "python", others=(), path: str = "src/app.py") -> Request:
    offset = code.index("<CURSOR>")
    text = code.replace("<CURSOR>", "")
    spec = language_for(language)
    return Request(text, offset, path, spec, SyntaxTree.create(spec, text), tuple(others))


PREFIX_ONLY = profile_by_name("prefix-only")
QWEN = profile_by_name("qwen-fim")


@pytest.mark.parametrize(
    ("code", "language", "profile", "expected_text", "mode", "heal_text"),
    [
        (
            "def add(a, b):\n    return a<CURSOR>\n",
            "python",
            PREFIX_ONLY,
            "def add(a, b):\n    return ",
            Mode.SINGLE_LINE,
            "a",
        ),
        (
            "def add(a, b):\n    return a<CURSOR>\n\nprint(1)\n",
            "python",
            QWEN,
            "<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n\nprint(1)\n<|fim_middle|>",
            Mode.SINGLE_LINE,
            "a",
        ),
        (
            "function f() {\n  <CURSOR>\n}\n",
            "javascript",
            PREFIX_ONLY,
            "function f() {",
            Mode.MULTI_LINE,
            "\n  ",
        ),
    ],
)
def test_build_renders_the_profile(tok, code, language, profile, expected_text, mode, heal_text):
    p = build(request(code, language), tok, profile, Budget(total=500))
    assert isinstance(p, Prompt)
    assert tok.decode(list(p.token_ids)) == expected_text
    assert p.mode is mode
    assert p.heal == heal_text
    assert p.profile == profile.name


@pytest.mark.parametrize(
    "code",
    [
        "def f(x):\n    ret<CURSOR>urn x\n",  # inside an identifier
        "int main() {\n  return 0;<CURSOR>\n}\n",  # after a complete statement
    ],
)
def test_no_completion(tok, code: str) -> None:
    language = "c" if "int main" in code else "python"
    out = build(request(code, language), tok, PREFIX_ONLY)
    assert isinstance(out, NoCompletion)
    assert out.reason


def test_context_from_other_open_files_but_never_secret_ones(tok) -> None:
    helper = OpenDocument(
        "file:///w/geometry.py",
        "geometry.py",
        "python",
        'def area_of_circle(radius):\n    """Area."""\n    return 3.14159 * radius ** 2\n',
        1,
    )
    secret = OpenDocument(
        "file:///w/.env", ".env", "plaintext", "API_KEY=area_of_circle_secret_value\n", 1
    )
    code = "from geometry import area_of_circle\n\nprint(area_of_circle(<CURSOR>))\n"
    p = build(request(code, others=[helper, secret]), tok, PREFIX_ONLY)
    assert isinstance(p, Prompt)
    text = tok.decode(list(p.token_ids))
    assert "# Path: geometry.py" in text
    assert "def area_of_circle(radius):" in text
    assert "secret_value" not in text and ".env" not in text
    assert p.snippets >= 1
    # Context comes first, then the current file.
    assert text.index("area_of_circle(radius)") < text.index("from geometry import")


def test_prompt_start_is_stable_while_typing(tok) -> None:
    """Lines typed at the end rarely move the start of the token ids (prefix-cache hits),
    where a window that slides with every line would move it each time."""
    body = "".join(f"value_{i} = compute({i})\n" for i in range(300))
    starts = set()
    for k in range(12):
        typed = "".join(f"t{j} = {j}\n" for j in range(k))
        p = build(request(body + typed + "x = <CURSOR>"), tok, PREFIX_ONLY, Budget(total=400))
        assert isinstance(p, Prompt)
        starts.add(p.token_ids[:20])
    assert len(starts) <= 2


@pytest.mark.parametrize(
    ("text", "binary"),
    [
        ("def f():\n\treturn 1\n", False),
        ("abc\x00def", True),
        ("\x01\x02\x03\x04 hello", True),
        ("\ufffd\ufffd\ufffd\ufffd", True),
        ("日本語のテキスト 😀\r\n", False),
        ("", False),
    ],
)
def test_looks_binary(text: str, binary: bool) -> None:
    assert looks_binary(text, len(text) // 2) is binary


def test_binary_text_gets_no_completion(tok) -> None:
    out = build(request("x = 1\x00\x00<CURSOR>"), tok, PREFIX_ONLY)
    assert isinstance(out, NoCompletion) and "binary" in out.reason
