"""Tables of cases for cursor analysis: region, scopes, empty blocks and the completion decision."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moe_lsp.prompts.cursor import (
    CursorContext,
    Decision,
    Region,
    Scope,
    ScopeKind,
    analyze_cursor,
)
from moe_lsp.prompts.languages import LANGUAGES, PLAIN_TEXT, language_for
from moe_lsp.prompts.prompt import Mode
from moe_lsp.prompts.syntax import SyntaxTree

CURSOR = "<CURSOR>"
CODE, COMMENT, STRING = Region.CODE, Region.COMMENT, Region.STRING
NONE, SINGLE, MULTI = Decision.NONE, Decision.SINGLE_LINE, Decision.MULTI_LINE


def analyze(language: str, code: str) -> CursorContext:
    """Analyze `code` at its <CURSOR> marker, with the language's tree (none for plain text)."""
    offset = code.index(CURSOR)
    text = code.replace(CURSOR, "", 1)
    spec = language_for(language) if language != "plaintext" else PLAIN_TEXT
    return analyze_cursor(SyntaxTree.create(spec, text), text, offset)


def scope_path(scopes: tuple[Scope, ...]) -> str:
    """'class A > method m > block if' (a nameless scope shows its kind alone)."""
    return " > ".join(f"{s.kind} {s.name}".strip() for s in scopes)


# language, code, region, decision, scopes (outermost first), block_empty
CASES: list[tuple[str, str, Region, Decision, str, bool]] = [
    # -- python
    ("python", "x = fo<CURSOR>", CODE, SINGLE, "", False),
    ("python", "x = fo<CURSOR>o", CODE, NONE, "", False),
    ("python", "x = <CURSOR>foo", CODE, NONE, "", False),
    ("python", "print(<CURSOR>)", CODE, SINGLE, "", False),
    ("python", "x = foo(1)<CURSOR>", CODE, SINGLE, "", False),
    ("python", "# say hel<CURSOR>", COMMENT, SINGLE, "", True),
    ("python", "x = 1  # note <CURSOR>", COMMENT, SINGLE, "", False),
    ("python", 'x = "ab <CURSOR>"', STRING, SINGLE, "", False),
    ("python", 'x = "ab <CURSOR>', STRING, SINGLE, "", False),  # unterminated
    ("python", 'x = f"{a + <CURSOR>}"', CODE, SINGLE, "", False),  # in an interpolation
    ("python", 'def f():\n    """Doc <CURSOR>."""', STRING, SINGLE, "function f", True),
    ("python", "def f():\n    <CURSOR>", CODE, MULTI, "function f", True),
    ("python", "def f():\n    <CURSOR>\n\ndef g():\n    pass\n", CODE, MULTI, "function f", True),
    ("python", "def f():\n    # todo\n    <CURSOR>", CODE, MULTI, "function f", True),
    ("python", 'def f():\n    """Doc."""\n    <CURSOR>', CODE, MULTI, "function f", True),
    ("python", "def f():<CURSOR>", CODE, MULTI, "function f", True),
    ("python", "if x:\n    <CURSOR>", CODE, MULTI, "block if", True),
    ("python", "if x:\n<CURSOR>", CODE, MULTI, "block if", True),  # not indented yet
    ("python", "if x:<CURSOR>\n    y = 1\n", CODE, NONE, "block if", False),
    # a blank line above a deeper-indented body: the header is missing, one line fills it
    (
        "python",
        "def is_prime(k):\n    <CURSOR>\n        return False\n    return True\n",
        CODE,
        SINGLE,
        "function is_prime",
        False,
    ),
    # ... but a blank line after an opener, above code at its own indentation, gets lines
    ("python", "for x in y:\n    <CURSOR>\n    z = 1\n", CODE, MULTI, "block for", False),
    ("python", "if x:\n    <CURSOR>\n    y = 1\n", CODE, MULTI, "block if", False),
    ("python", "if a:\n    pass\nelse:\n    <CURSOR>", CODE, MULTI, "block if", True),
    (
        "python",
        "class A:\n    def m(self):\n        for x in y:\n            <CURSOR>",
        CODE,
        MULTI,
        "class A > method m > block for",
        True,
    ),
    (
        "python",
        "class A:\n    def m(self):\n        if x:\n            y = 1\n        <CURSOR>",
        CODE,
        SINGLE,
        "class A > method m",
        False,
    ),
    (
        "python",
        "class A:\n    def m(self):\n        return 1\n\n    <CURSOR>",
        CODE,
        SINGLE,
        "class A",
        False,
    ),
    ("python", "def f():\n    x = 1\n<CURSOR>", CODE, SINGLE, "", False),
    ("python", "def f():\n    x = 1\n    <CURSOR>", CODE, SINGLE, "function f", False),
    ("python", "x = [\n    <CURSOR>", CODE, MULTI, "", False),  # after an open bracket
    ("python", "f = lambda x: <CURSOR>", CODE, SINGLE, "", False),
    ("python", "x = {<CURSOR>}", CODE, SINGLE, "", False),  # a dict, not a block
    ("python", "<CURSOR>", CODE, MULTI, "", True),  # empty document
    # -- javascript
    ("javascript", "let x = fo<CURSOR>", CODE, SINGLE, "", False),
    ("javascript", "let x = fo<CURSOR>o;", CODE, NONE, "", False),
    ("javascript", "foo(<CURSOR>);", CODE, SINGLE, "", False),
    ("javascript", "let x = 1;<CURSOR>", CODE, NONE, "", False),
    ("javascript", "if (x) { y(); }<CURSOR>", CODE, NONE, "", False),
    ("javascript", "foo(x)<CURSOR>", CODE, SINGLE, "", False),  # `;` or `.then(...)` may follow
    ("javascript", "// say hel<CURSOR>", COMMENT, SINGLE, "", True),
    ("javascript", "/* a <CURSOR> */", COMMENT, SINGLE, "", True),
    ("javascript", "let s = 'ab <CURSOR>';", STRING, SINGLE, "", False),
    ("javascript", "let s = 'ab <CURSOR>", STRING, SINGLE, "", False),  # unterminated
    ("javascript", "let s = `a ${b + <CURSOR>}`;", CODE, SINGLE, "", False),
    ("javascript", "function f() {\n  <CURSOR>\n}", CODE, MULTI, "function f", True),
    ("javascript", "function f() {\n  <CURSOR>", CODE, MULTI, "function f", True),  # unclosed
    ("javascript", "function f() {<CURSOR>}", CODE, MULTI, "function f", True),
    ("javascript", "function f() {<CURSOR>\n}", CODE, MULTI, "function f", True),
    ("javascript", "function f() {<CURSOR>\n  return 1;\n}", CODE, NONE, "function f", False),
    ("javascript", "function f() {\n  x = 1;\n  <CURSOR>\n}", CODE, SINGLE, "function f", False),
    ("javascript", "const f = () => {\n  <CURSOR>\n};", CODE, MULTI, "closure f", True),
    (
        "javascript",
        "class A {\n  m() {\n    if (x) {\n      <CURSOR>\n    }\n  }\n}",
        CODE,
        MULTI,
        "class A > method m > block if",
        True,
    ),
    (
        "javascript",
        "function g() {\n  if (x) {\n    <CURSOR>",
        CODE,
        MULTI,
        "function g > block if",
        True,
    ),
    ("javascript", "switch (x) {\n  case 1:\n    <CURSOR>\n}", CODE, MULTI, "block switch", True),
    ("javascript", "const o = {\n  <CURSOR>", CODE, MULTI, "", False),  # after an open bracket
    ("javascript", "{<CURSOR>}", CODE, MULTI, "", True),  # a bare block
    ("javascript", "const o = {<CURSOR>};", CODE, SINGLE, "", False),  # an object, not a block
    # -- typescript
    ("typescript", "const x: number = 1;<CURSOR>", CODE, NONE, "", False),
    ("typescript", "let n: num<CURSOR>ber;", CODE, NONE, "", False),
    ("typescript", "// note<CURSOR>", COMMENT, SINGLE, "", True),
    ("typescript", 'const s: string = "a<CURSOR>";', STRING, SINGLE, "", False),
    ("typescript", "interface I {\n  <CURSOR>\n}", CODE, MULTI, "interface I", True),
    ("typescript", "enum E {\n  <CURSOR>\n}", CODE, MULTI, "enum E", True),
    ("typescript", "namespace N {\n  <CURSOR>\n}", CODE, MULTI, "namespace N", True),
    ("typescript", "function f(a: string): number {<CURSOR>}", CODE, MULTI, "function f", True),
    (
        "typescript",
        "class A {\n  m(): void {\n    <CURSOR>\n  }\n}",
        CODE,
        MULTI,
        "class A > method m",
        True,
    ),
    (
        "typescript",
        "class A {\n  m(): void {\n    <CURSOR>",
        CODE,
        MULTI,
        "class A > method m",
        True,
    ),
    ("typescript", "f(a, <CURSOR>);", CODE, SINGLE, "", False),
    # -- typescriptreact
    ("typescriptreact", "const C = () => {\n  <CURSOR>\n};", CODE, MULTI, "closure C", True),
    (
        "typescriptreact",
        "function C() {\n  return <div>{<CURSOR>}</div>;\n}",
        CODE,
        SINGLE,
        "function C",
        False,
    ),
    ("typescriptreact", "const x = <div>te<CURSOR>xt</div>;", CODE, NONE, "", False),
    ("typescriptreact", "// a <CURSOR>", COMMENT, SINGLE, "", True),
    ("typescriptreact", 'const s = "a <CURSOR>";', STRING, SINGLE, "", False),
    ("typescriptreact", "let y = 2;<CURSOR>", CODE, NONE, "", False),
    # -- go
    ("go", "func main() {\n\t<CURSOR>\n}", CODE, MULTI, "function main", True),
    ("go", "package main\n\nfunc main() {\n\t<CURSOR>", CODE, MULTI, "function main", True),
    ("go", "func main() {\n\tx := 1\n\t<CURSOR>\n}", CODE, SINGLE, "function main", False),
    ("go", "func main() {\n\tx := fo<CURSOR>\n}", CODE, SINGLE, "function main", False),
    ("go", "func main() {\n\tx := fo<CURSOR>o\n}", CODE, NONE, "function main", False),
    ("go", "func main() {\n\tfoo()<CURSOR>\n}", CODE, SINGLE, "function main", False),
    ("go", "func main() {}<CURSOR>", CODE, NONE, "", False),
    ("go", "// say <CURSOR>", COMMENT, SINGLE, "", True),
    ("go", 'var s = "ab <CURSOR>"', STRING, SINGLE, "", False),
    ("go", "var s = `raw <CURSOR>`", STRING, SINGLE, "", False),
    ("go", "type S struct {\n\t<CURSOR>\n}", CODE, MULTI, "struct S", True),
    ("go", "type I interface {\n\t<CURSOR>\n}", CODE, MULTI, "interface I", True),
    ("go", "f := func() {\n\t<CURSOR>\n}", CODE, MULTI, "closure", True),
    (
        "go",
        "func (s *S) M() {\n\tfor {\n\t\t<CURSOR>\n\t}\n}",
        CODE,
        MULTI,
        "method M > block for",
        True,
    ),
    (
        "go",
        "func (s *S) M() {\n\tswitch x {\n\tcase 1:\n\t\t<CURSOR>\n\t}\n}",
        CODE,
        MULTI,
        "method M > block switch",
        True,
    ),
    # -- rust
    ("rust", "fn main() {\n    <CURSOR>\n}", CODE, MULTI, "function main", True),
    ("rust", "fn main() {\n    <CURSOR>", CODE, MULTI, "function main", True),  # unclosed
    ("rust", "fn main() {<CURSOR>}", CODE, MULTI, "function main", True),
    ("rust", "fn main() {\n    let x = 1;\n    <CURSOR>\n}", CODE, SINGLE, "function main", False),
    ("rust", "let x = 1;<CURSOR>", CODE, NONE, "", False),
    ("rust", "fn f() {}<CURSOR>", CODE, NONE, "", False),
    ("rust", "let x = Foo { a: 1 }<CURSOR>", CODE, SINGLE, "", False),  # `;` missing
    ("rust", "let v = ve<CURSOR>c![1];", CODE, NONE, "", False),
    ("rust", "// say <CURSOR>\nfn f() {}", COMMENT, SINGLE, "", False),
    ("rust", "/// Doc <CURSOR>\nfn f() {}", COMMENT, SINGLE, "", False),
    ("rust", 'let s = "ab <CURSOR>";', STRING, SINGLE, "", False),
    ("rust", "struct S {\n    <CURSOR>\n}", CODE, MULTI, "struct S", True),
    ("rust", "let c = |x| {<CURSOR>};", CODE, MULTI, "closure c", True),
    (
        "rust",
        "impl A {\n    fn m(&self) {\n        for x in y {\n            <CURSOR>\n"
        "        }\n    }\n}",
        CODE,
        MULTI,
        "impl A > method m > block for",
        True,
    ),
    (
        "rust",
        "impl A {\n    fn m(&self) {\n        <CURSOR>",
        CODE,
        MULTI,
        "impl A > method m",
        True,
    ),
    ("rust", "trait T {\n    <CURSOR>\n}", CODE, MULTI, "interface T", True),
    # -- java
    (
        "java",
        "class A {\n  void m() {\n    <CURSOR>\n  }\n}",
        CODE,
        MULTI,
        "class A > method m",
        True,
    ),
    ("java", "class A {\n  void m() {\n    <CURSOR>", CODE, MULTI, "class A > method m", True),
    ("java", "class A {\n  <CURSOR>\n}", CODE, MULTI, "class A", True),
    ("java", "interface I {\n  <CURSOR>\n}", CODE, MULTI, "interface I", True),
    ("java", "class A {\n  A() {\n    <CURSOR>\n  }\n}", CODE, MULTI, "class A > method A", True),
    (
        "java",
        "class A {\n  void m() {\n    int x = 1;<CURSOR>\n  }\n}",
        CODE,
        NONE,
        "class A > method m",
        False,
    ),
    (
        "java",
        "class A {\n  void m() {\n    for (int i : xs) {\n      <CURSOR>\n    }\n  }\n}",
        CODE,
        MULTI,
        "class A > method m > block for",
        True,
    ),
    ("java", "class A {\n  // note<CURSOR>\n}", COMMENT, SINGLE, "class A", True),
    ("java", "class A {\n  /** Doc <CURSOR> */\n}", COMMENT, SINGLE, "class A", True),
    ("java", 'class A { String s = "a<CURSOR>"; }', STRING, SINGLE, "class A", False),
    ("java", "class A { int co<CURSOR>unt; }", CODE, NONE, "class A", False),
    ("java", "Runnable r = () -> {\n  <CURSOR>\n};", CODE, MULTI, "closure r", True),
    # -- c
    ("c", "int main() {\n  <CURSOR>\n}", CODE, MULTI, "function main", True),
    ("c", "int main() {\n  <CURSOR>", CODE, MULTI, "function main", True),  # unclosed
    ("c", "int main() {\n  int x = 1;\n  <CURSOR>", CODE, SINGLE, "function main", False),
    ("c", "int f(int x) {<CURSOR>}", CODE, MULTI, "function f", True),
    ("c", "int x = 1;<CURSOR>", CODE, NONE, "", False),
    ("c", "for (i = 0;<CURSOR>", CODE, SINGLE, "", False),  # a for header goes on
    ("c", "int co<CURSOR>unt = 0;", CODE, NONE, "", False),
    ("c", "/* c<CURSOR> */", COMMENT, SINGLE, "", True),
    ("c", "// c<CURSOR>", COMMENT, SINGLE, "", True),
    ("c", 'char *s = "ab<CURSOR>";', STRING, SINGLE, "", False),
    ("c", "#include <stdio.h><CURSOR>", CODE, SINGLE, "", False),
    ("c", "struct S {\n  <CURSOR>\n};", CODE, MULTI, "struct S", True),
    (
        "c",
        "int main(void) {\n  for (int i = 0; i < n; i++) {\n    <CURSOR>\n  }\n}",
        CODE,
        MULTI,
        "function main > block for",
        True,
    ),
    ("c", "switch (x) {\n  case 1:\n    <CURSOR>\n}", CODE, MULTI, "block switch", True),
    # -- cpp
    (
        "cpp",
        "class A {\n public:\n  void m() {\n    <CURSOR>\n  }\n};",
        CODE,
        MULTI,
        "class A > method m",
        True,
    ),
    ("cpp", "class A {\n  void m() {\n    <CURSOR>", CODE, MULTI, "class A > method m", True),
    ("cpp", "namespace n {\n<CURSOR>\n}", CODE, MULTI, "namespace n", True),
    ("cpp", "auto f = [](int x) {\n  <CURSOR>\n};", CODE, MULTI, "closure f", True),
    ("cpp", "void A::m() {\n  <CURSOR>\n}", CODE, MULTI, "function A::m", True),
    ("cpp", "int x = 1;<CURSOR>", CODE, NONE, "", False),
    ("cpp", 'std::string s = "ab<CURSOR>";', STRING, SINGLE, "", False),
    ("cpp", "// c<CURSOR>", COMMENT, SINGLE, "", True),
    ("cpp", "std::vec<CURSOR>tor<int> v;", CODE, NONE, "", False),
    ("cpp", "int main() {\n  int x = 1;\n  <CURSOR>\n}", CODE, SINGLE, "function main", False),
    # -- plain text: no tree, line rules
    ("plaintext", "hello wor<CURSOR>ld", CODE, NONE, "", False),
    ("plaintext", "hello <CURSOR>", CODE, SINGLE, "", False),
    ("plaintext", "hello (<CURSOR>) there", CODE, SINGLE, "", True),  # empty brackets
    ("plaintext", "items:\n<CURSOR>", CODE, MULTI, "", True),
    ("plaintext", "first line\n<CURSOR>", CODE, MULTI, "", False),
    ("plaintext", "<CURSOR>", CODE, MULTI, "", False),
]


@pytest.mark.parametrize(("language", "code", "region", "decision", "scopes", "empty"), CASES)
def test_check(
    language: str, code: str, region: Region, decision: Decision, scopes: str, empty: bool
) -> None:
    ctx = analyze(language, code)
    assert (ctx.region, ctx.decision, scope_path(ctx.scopes), ctx.block_empty) == (
        region,
        decision,
        scopes,
        empty,
    ), ctx.reason


def test_every_language_has_cases() -> None:
    covered = {case[0] for case in CASES}
    assert covered >= {spec.name for spec in LANGUAGES} | {"plaintext"}


@pytest.mark.parametrize(
    ("language", "code", "indent", "block_indent", "opens_block"),
    [
        ("python", "class A:\n    def m(self):\n        <CURSOR>", "        ", "    ", True),
        ("python", "if a:\n    pass\nelse:\n    <CURSOR>", "    ", "", True),
        ("python", "def f():\n    if x:\n        y = 1\n    <CURSOR>", "    ", "", False),
        ("javascript", "class A {\n  m() {\n    <CURSOR>\n  }\n}", "    ", "  ", True),
        ("javascript", "if (a) {\n} else {\n  <CURSOR>\n}", "  ", "", True),
        ("go", "func f() {\n\tif x {\n\t\t<CURSOR>\n\t}\n}", "\t\t", "\t", True),
        ("c", "int main()\n{\n    <CURSOR>\n}", "    ", "", True),  # brace on its own line
        ("rust", "fn f() {\n    let x = [\n        <CURSOR>", "        ", "", True),
        ("plaintext", "items:\n  - a\n  <CURSOR>", "  ", "", False),
        ("plaintext", "section {\n<CURSOR>", "", "", True),
    ],
)
def test_indents(
    language: str, code: str, indent: str, block_indent: str, opens_block: bool
) -> None:
    ctx = analyze(language, code)
    assert (ctx.indent, ctx.block_indent, ctx.opens_block) == (indent, block_indent, opens_block)


@pytest.mark.parametrize(
    ("code", "line_prefix", "line_suffix", "line_empty", "mid_line"),
    [
        ("x = 1\n    <CURSOR>  \ny", "    ", "  ", True, False),
        ("x = f(<CURSOR>a)\n", "x = f(", "a)", False, True),
        ("a\r\nb<CURSOR> \r\nc", "b", " ", False, False),  # CRLF
        ("a\rb<CURSOR>c\rd", "b", "c", False, True),  # lone CR
        ("a😀<CURSOR>日\n", "a😀", "日", False, True),
    ],
)
def test_line_facts(
    code: str, line_prefix: str, line_suffix: str, line_empty: bool, mid_line: bool
) -> None:
    ctx = analyze("python", code)
    assert (ctx.line_prefix, ctx.line_suffix, ctx.line_empty, ctx.mid_line) == (
        line_prefix,
        line_suffix,
        line_empty,
        mid_line,
    )


@pytest.mark.parametrize(
    ("decision", "mode"),
    [(NONE, None), (SINGLE, Mode.SINGLE_LINE), (MULTI, Mode.MULTI_LINE)],
)
def test_decision_mode(decision: Decision, mode: Mode | None) -> None:
    assert decision.mode is mode


@pytest.mark.parametrize(
    ("text", "offset", "line_prefix"),
    [
        ("x = 1", -10, ""),
        ("x = 1", 99, "x = 1"),
        ("a\r\nb", 2, "a"),  # between CR and LF: the end of the first line
        ("", 5, ""),
    ],
)
def test_offsets_are_clamped(text: str, offset: int, line_prefix: str) -> None:
    ctx = analyze_cursor(SyntaxTree.create(language_for("python"), text), text, offset)
    assert ctx.line_prefix == line_prefix


def test_stale_tree_is_ignored() -> None:
    syntax = SyntaxTree.create(language_for("python"), "def f():\n    pass\n")
    ctx = analyze_cursor(syntax, "x = 'ab", 7)
    assert ctx.region is CODE and ctx.scopes == () and ctx.reason.startswith("no syntax tree")


def test_scope_lines_and_kinds() -> None:
    ctx = analyze("rust", "mod m {\n    impl A {\n        fn f() {\n            <CURSOR>")
    assert ctx.scopes == (
        Scope(ScopeKind.NAMESPACE, "m", 0),
        Scope(ScopeKind.IMPL, "A", 1),
        Scope(ScopeKind.METHOD, "f", 2),
    )


# -- property: any text, any offset, any language: no exception, consistent facts -------------

PIECES = [
    *"abxyz019 _.,:;=+-*/#\\\n\n\n\t\r(){}[]<>\"'`",
    *("😀", "日本", "    ", "def ", "fn ", "if ", "class ", "case ", "return ", "function "),
    *('"""', "//", "/*", "*/", "\x00"),
]


@pytest.mark.parametrize("language", [spec.name for spec in LANGUAGES] + ["plaintext"])
@settings(max_examples=150, deadline=None)
@given(
    text=st.lists(st.sampled_from(PIECES), max_size=40).map("".join),
    where=st.floats(-0.1, 1.1),
)
def test_never_raises(language: str, text: str, where: float) -> None:
    spec = language_for(language) if language != "plaintext" else PLAIN_TEXT
    offset = int(where * len(text))
    ctx = analyze_cursor(SyntaxTree.create(spec, text), text, offset)
    assert "failed" not in ctx.reason
    assert ctx.line_empty == (not (ctx.line_prefix + ctx.line_suffix).strip())
    assert ctx.mid_line == bool(ctx.line_suffix.strip())
    if ctx.line_suffix[:1].isalnum():
        assert ctx.decision is NONE
    assert "\n" not in ctx.line_prefix + ctx.line_suffix
