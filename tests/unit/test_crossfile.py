"""Tables of cases for cross-file context: similar snippets, definitions, names, the whole mix."""

from __future__ import annotations

import pytest

from moe_lsp.prompts.crossfile import (
    MAX_DEFINITION_LINES,
    OpenDocument,
    Snippet,
    SnippetIndex,
    definitions_for,
    gather_context,
    names_near_cursor,
    query_around,
    similar_snippets,
)
from moe_lsp.prompts.languages import language_for
from moe_lsp.prompts.secrets import PLACEHOLDER


def words(text: str) -> int:
    """The fake tokenizer of these tests: one token per whitespace-separated word."""
    return len(text.split())


def doc(path: str, text: str, language: str = "python", version: int = 1) -> OpenDocument:
    return OpenDocument(f"file:///w/{path}", path, language, text, version)


def cost(snippets: list[Snippet]) -> int:
    return sum(words(s.text) + words(s.path) for s in snippets)


def filler(tag: str, lines: int = 40) -> str:
    """Unrelated code: each line uses its own made-up identifiers."""
    return "".join(f"unrelated_{tag}_{i} = other_{tag}_{i} + 1\n" for i in range(lines))


ORDERS = (
    "def order_total(order, tax_rate):\n"
    "    subtotal = sum(line.price * line.quantity for line in order.lines)\n"
    "    discount = order.coupon.discount if order.coupon else 0\n"
    "    return (subtotal - discount) * (1 + tax_rate)\n"
)
QUERY = (
    "def invoice_total(invoice, tax_rate):\n"
    "    subtotal = sum(line.price * line.quantity for line in invoice.lines)\n"
    "    discount = invoice.coupon.discount if invoice.coupon else 0\n"
)


# --- similar snippets -------------------------------------------------------------------------


def test_most_similar_window_is_chosen() -> None:
    docs = [
        doc("a_unrelated.py", filler("a")),
        doc("orders.py", filler("b", 30) + ORDERS + filler("c", 30)),
        doc("z_unrelated.py", filler("z")),
    ]
    found = similar_snippets(QUERY, docs, budget=1000, count_tokens=words, index=SnippetIndex())
    assert found, "the orders window should pass the similarity threshold"
    best = max(found, key=lambda s: s.score)
    assert best.path == "orders.py" and "order_total" in best.text
    assert {s.path for s in found} == {"orders.py"}
    assert all(s.kind == "similar" and 0 < s.score <= 1 for s in found)
    # the window's text is the document's lines from start_line on
    lines = docs[1].text.split("\n")
    assert best.text.split("\n")[0] == lines[best.start_line]


def test_windows_do_not_overlap_and_are_sorted() -> None:
    text = "".join(f"{ORDERS}# part {i}\n" for i in range(12))  # no two windows alike
    docs = [doc("b.py", text), doc("a.py", text.replace("order", "orders"))]
    found = similar_snippets(
        QUERY, docs, max_snippets=4, budget=10_000, count_tokens=words, index=SnippetIndex()
    )
    assert len(found) == 4
    assert [(s.path, s.start_line) for s in found] == sorted((s.path, s.start_line) for s in found)
    for i, s in enumerate(found):
        for t in found[i + 1 :]:
            if s.path == t.path:
                s_end = s.start_line + s.text.count("\n") + 1
                assert s_end <= t.start_line, "windows of one document overlap"


@pytest.mark.parametrize("budget", [0, 5, 20, 40, 80, 200, 10_000])
def test_similar_budget_is_respected(budget: int) -> None:
    docs = [doc(f"m{i}.py", filler(str(i), 10) + ORDERS * 3) for i in range(4)]
    found = similar_snippets(QUERY, docs, budget=budget, count_tokens=words, index=SnippetIndex())
    assert cost(found) <= budget
    if budget >= 200:
        assert found


def test_nothing_similar_below_threshold() -> None:
    docs = [doc("x.py", filler("x")), doc("y.py", filler("y"))]
    assert (
        similar_snippets(QUERY, docs, budget=1000, count_tokens=words, index=SnippetIndex()) == []
    )
    assert similar_snippets("", docs, budget=1000, count_tokens=words, index=SnippetIndex()) == []


def test_query_is_the_lines_around_the_cursor() -> None:
    text = "".join(f"line{i}\n" for i in range(100))
    query = query_around(text, text.index("line50"))
    assert query.startswith("line30\n") and query.endswith("line60\n")
    assert query_around("only line", 4) == "only line"


# --- definitions ------------------------------------------------------------------------------

DEFINITIONS = [
    (
        "python",
        "store.py",
        'import os\n\nclass Store:\n    """Keeps items."""\n\n    def put(self, key, value):\n'
        "        self.items[key] = value\n\n\n"
        'def load_config(path: str) -> dict:\n    """Read the config."""\n    return {}\n',
        "load_config",
        'def load_config(path: str) -> dict:\n    """Read the config."""\n    return {}',
        9,
    ),
    (
        "python",
        "store.py",
        "class Store:\n    def put(self, k):\n        pass\n",
        "Store",
        "class Store",
        0,
    ),
    ("python", "consts.py", "x = 1\n\n# limits\nMAX_ITEMS = 10\n", "MAX_ITEMS", "# limits\nMAX", 2),
    (
        "javascript",
        "price.js",
        "export function formatPrice(amount, currency) {\n  return `${amount} ${currency}`;\n}\n",
        "formatPrice",
        "export function formatPrice(amount, currency) {",
        0,
    ),
    (
        "javascript",
        "query.js",
        'const x = 1;\nconst parseQuery = (q) => {\n  return q.split("&");\n};\n',
        "parseQuery",
        "const parseQuery = (q) => {",
        1,
    ),
    (
        "javascript",
        "cart.js",
        "class Cart {\n  total() {\n    return 0;\n  }\n}\n",
        "total",
        "total() {\n  return 0;\n}",
        1,
    ),
    (
        "typescript",
        "user.ts",
        "/** A user. */\nexport interface User {\n  id: UserId;\n  name: string;\n}\n",
        "User",
        "/** A user. */\nexport interface User {",
        0,
    ),
    (
        "typescript",
        "user.ts",
        "export type UserId = string;\n",
        "UserId",
        "type UserId = string;",
        0,
    ),
    (
        "typescriptreact",
        "view.tsx",
        "export const Avatar = (props: Props) => {\n  return <img src={props.url} />;\n};\n",
        "Avatar",
        "export const Avatar = (props: Props) => {",
        0,
    ),
    (
        "go",
        "geom.go",
        "package geom\n\n// Point is a point.\ntype Point struct {\n\tX, Y int\n}\n\n"
        "func (p *Point) Move(dx int) {\n\tp.X += dx\n}\n",
        "Move",
        "func (p *Point) Move(dx int) {\n\tp.X += dx\n}",
        7,
    ),
    (
        "go",
        "geom.go",
        "package geom\n\n// Point is a point.\ntype Point struct {\n\tX, Y int\n}\n",
        "Point",
        "// Point is a point.\ntype Point struct {",
        2,
    ),
    (
        "rust",
        "config.rs",
        "/// Settings.\n#[derive(Debug)]\npub struct Config {\n    pub verbose: bool,\n}\n\n"
        "impl Config {\n    pub fn new() -> Self {\n        Config { verbose: false }\n    }\n}\n",
        "Config",
        "#[derive(Debug)]\npub struct Config {",
        0,
    ),
    (
        "rust",
        "config.rs",
        "fn main() {}\n\npub fn parse_args(args: &[String]) -> Option<Config> {\n    None\n}\n",
        "parse_args",
        "pub fn parse_args(args: &[String]) -> Option<Config> {",
        2,
    ),
    (
        "java",
        "Account.java",
        "public class Account {\n    private long cents;\n\n"
        "    /** Adds money. */\n    public void deposit(long amount) {\n"
        "        cents += amount;\n    }\n}\n",
        "deposit",
        "/** Adds money. */\npublic void deposit(long amount) {",
        3,
    ),
    (
        "java",
        "Ledger.java",
        "interface Ledger {\n    void record(Account a);\n}\n",
        "Ledger",
        "interface Ledger {",
        0,
    ),
    (
        "c",
        "buffer.c",
        "#include <stdlib.h>\n\nstruct buffer {\n    char *data;\n    size_t len;\n};\n\n"
        "static struct buffer *buffer_new(size_t cap) {\n    return calloc(1, cap);\n}\n",
        "buffer_new",
        "static struct buffer *buffer_new(size_t cap) {",
        7,
    ),
    (
        "c",
        "buffer.h",
        "#define MAX_LEN 64\nint buffer_append(struct buffer *b, const char *s);\n",
        "buffer_append",
        "int buffer_append(struct buffer *b, const char *s);",
        1,
    ),
    ("c", "buffer.h", "struct buffer {\n    char *data;\n};\n", "buffer", "struct buffer {", 0),
    (
        "cpp",
        "matrix.cpp",
        "Matrix Matrix::multiply(const Matrix& other) const {\n    return other;\n}\n",
        "multiply",
        "Matrix Matrix::multiply(const Matrix& other) const {",
        0,
    ),
    (
        "cpp",
        "matrix.hpp",
        "namespace la {\nclass Matrix {\n public:\n  int rows() const { return n; }\n};\n}\n",
        "Matrix",
        "class Matrix {",
        1,
    ),
    (
        "cpp",
        "util.hpp",
        "template <typename T>\nT clamp(T v, T lo, T hi) {\n    return v < lo ? lo : v;\n}\n",
        "clamp",
        "template <typename T>\nT clamp(T v, T lo, T hi) {",
        0,
    ),
]


@pytest.mark.parametrize(("language", "path", "source", "name", "expected", "line"), DEFINITIONS)
def test_definitions_per_language(
    language: str, path: str, source: str, name: str, expected: str, line: int
) -> None:
    found = definitions_for(
        [name], [doc(path, source, language)], budget=500, count_tokens=words, index=SnippetIndex()
    )
    assert found, f"no definition of {name} in {language}"
    assert found[0].kind == "definition" and found[0].path == path
    assert expected in found[0].text
    assert found[0].start_line == line


def test_unknown_names_and_languages_give_nothing() -> None:
    docs = [doc("a.py", "def f():\n    pass\n"), doc("notes.txt", "def g(): pass\n", "plaintext")]
    index = SnippetIndex()
    assert definitions_for(["nope"], docs, budget=100, count_tokens=words, index=index) == []
    assert definitions_for(["g"], docs, budget=100, count_tokens=words, index=index) == []


LONG_BODY = "".join(f"    step_{i} = compute({i})\n" for i in range(60))


@pytest.mark.parametrize(
    ("language", "path", "source", "name", "kept", "dropped"),
    [
        (
            "python",
            "p.py",
            f'def long_one(a, b):\n    """Does many steps."""\n{LONG_BODY}    return a\n',
            "long_one",
            ['def long_one(a, b):\n    """Does many steps."""\n    ...'],
            ["step_1", "return a"],
        ),
        (
            "python",
            "p.py",
            "class Big:\n    LIMIT = 3\n\n    def run(self):\n"
            + LONG_BODY.replace("    ", "        ")
            + "\n    def stop(self):\n        pass\n",
            "Big",
            ["class Big:\n    LIMIT = 3", "    def run(self):\n        ...", "def stop(self):"],
            ["step_1"],
        ),
        (
            "c",
            "c.c",
            "int long_one(int a) {\n" + LONG_BODY.replace("\n", ";\n") + "    return a;\n}\n",
            "long_one",
            ["int long_one(int a) { ... }"],
            ["step_1"],
        ),
        (
            "java",
            "J.java",
            "class Big {\n  int run() {\n"
            + LONG_BODY.replace("\n", ";\n")
            + "  return 1;\n  }\n  void stop() {}\n}\n",
            "Big",
            ["class Big {", "int run() { ... }", "void stop() { ... }"],
            ["step_1"],
        ),
        (
            "rust",
            "r.rs",
            "impl Big {\n    pub fn run(&self) -> u32 {\n"
            + LONG_BODY.replace("\n", ";\n")
            + "        1\n    }\n}\n",
            "Big",
            ["impl Big {\n    pub fn run(&self) -> u32 { ... }\n}"],
            ["step_1"],
        ),
        (
            "typescript",
            "t.ts",
            "export function longOne(a: number): number {\n"
            + LONG_BODY.replace("\n", ";\n")
            + "  return a;\n}\n",
            "longOne",
            ["export function longOne(a: number): number { ... }"],
            ["step_1"],
        ),
    ],
)
def test_long_bodies_are_elided(
    language: str, path: str, source: str, name: str, kept: list[str], dropped: list[str]
) -> None:
    found = definitions_for(
        [name], [doc(path, source, language)], budget=500, count_tokens=words, index=SnippetIndex()
    )
    assert len(found) == 1
    text = found[0].text
    assert text.count("\n") < MAX_DEFINITION_LINES
    for part in kept:
        assert part in text
    for part in dropped:
        assert part not in text


def test_definition_too_large_for_the_budget_shrinks_or_goes() -> None:
    source = f'def long_one(a, b):\n    """Does many steps."""\n{LONG_BODY}'
    docs = [doc("p.py", source)]
    small = definitions_for(["long_one"], docs, budget=12, count_tokens=words, index=SnippetIndex())
    assert [s.text for s in small] == ['def long_one(a, b):\n    """Does many steps."""\n    ...']
    assert definitions_for(["long_one"], docs, budget=3, count_tokens=words) == []


def test_definitions_inside_a_shown_definition_are_not_repeated() -> None:
    source = "class Store:\n    def put(self, k):\n        return k\n"
    found = definitions_for(
        ["Store", "put"],
        [doc("s.py", source)],
        budget=500,
        count_tokens=words,
        index=SnippetIndex(),
    )
    assert [s.text.split("\n")[0] for s in found] == ["class Store:"]


@pytest.mark.parametrize("budget", [0, 8, 15, 30, 1000])
def test_definitions_budget_is_respected(budget: int) -> None:
    source = "".join(f"def fn_{i}(a, b):\n    return a + b + {i}\n\n" for i in range(10))
    names = [f"fn_{i}" for i in range(10)]
    found = definitions_for(
        names, [doc("f.py", source)], budget=budget, count_tokens=words, index=SnippetIndex()
    )
    assert cost(found) <= budget
    assert [s.start_line for s in found] == sorted(s.start_line for s in found)


# --- names near the cursor --------------------------------------------------------------------

C = "<CURSOR>"
TEXT_LINES = "text line\n" * 30
OLD_CALLS = "  Foo(1);\n" * 30


@pytest.mark.parametrize(
    ("language", "text", "expected", "absent"),
    [
        (
            "python",
            f"from shop.cart import Cart, total as cart_total\n\ndef f(items):\n"
            f"    c = Cart(items)\n    print(len(items))\n    return cart_total(c){C}\n",
            ["Cart", "total"],
            ["cart_total", "print", "len", "f", "items"],
        ),
        (
            "python",
            f'def g(x):\n    """Returns The Thing, See Also."""\n    # Call Later\n'
            f'    return build_tree(x, "Label")  # Render(\n{C}',
            ["build_tree"],
            ["Returns", "The", "Thing", "See", "Also", "Call", "Label", "Render", "g"],
        ),
        (
            "python",
            '"""Module.\n\n' + TEXT_LINES + f'Still Docstring Words.\n"""\nrun_job(1){C}\n',
            ["run_job"],
            ["Still", "Docstring", "Words"],
        ),
        (
            "python",
            f"def helper():\n    pass\n\nclass Local:\n    pass\n\nhelper()\nLocal()\nremote(){C}",
            ["remote"],
            ["helper", "Local"],
        ),
        (
            "javascript",
            f'import {{ fetchUser, toId as id }} from "./api";\n'
            f"const u = await fetchUser(id(3));\nconsole.log(JSON.stringify(u));{C}",
            ["fetchUser", "toId"],
            ["id", "console", "log", "JSON"],
        ),
        (
            "typescript",
            f"function f(u: User): Promise<Order> {{\n  return loadOrder(u);{C}\n}}\n",
            ["User", "Order", "loadOrder"],
            ["Promise", "f", "function"],
        ),
        (
            "go",
            "func main() {\n\tp := geom.NewPoint(1, 2)\n\tvar s Shape = p\n"
            f"\tfmt.Println(len(s)){C}\n}}",
            ["NewPoint", "Shape", "Println"],
            ["main", "len", "geom"],
        ),
        (
            "rust",
            f"use crate::config::{{Config, Mode}};\n\nfn run() {{\n    let c = Config::new();\n"
            f"    let m: Mode = pick(&c);{C}\n}}",
            ["Config", "Mode", "pick"],
            ["run", "let", "Some"],
        ),
        (
            "java",
            "import com.bank.Ledger;\n\nclass T {\n  void t() {\n    Account a = new Account();\n"
            f"    ledger.record(a);{C}\n  }}\n}}",
            ["Account", "record"],
            ["String", "new", "t", "T"],
        ),
        (
            "c",
            f"void f(void) {{\n    struct buffer *b = buffer_new(16);\n    size_t n = strlen(s);\n"
            f"    buf_t x;{C}\n}}",
            ["buffer", "buffer_new", "buf_t"],
            ["strlen", "size_t", "f"],
        ),
        (
            "c",
            "/* Old code:\n" + OLD_CALLS + f"*/\nint y = real_call(2);{C}\n",
            ["real_call"],
            ["Foo"],
        ),
        (
            "cpp",
            f"auto m = Matrix::identity(3);\nstd::vector<int> v;\nv.push_back(m.rows());{C}",
            ["Matrix", "identity", "push_back", "rows"],
            ["std", "vector", "int"],
        ),
    ],
)
def test_names_near_cursor(
    language: str, text: str, expected: list[str], absent: list[str]
) -> None:
    offset = text.index(C)
    names = names_near_cursor(text.replace(C, ""), offset, language_for(language))
    for name in expected:
        assert name in names
    for name in absent:
        assert name not in names


def test_names_nearest_first_and_bounded() -> None:
    text = "far_call()\n" + "x = 1\n" * 10 + "mid_call()\nnear_call()\n"
    names = names_near_cursor(text, len(text), language_for("python"))
    assert names == ["near_call", "mid_call", "far_call"]
    many = "".join(f"call_{i}()\n" for i in range(100))
    assert len(names_near_cursor(many, len(many), language_for("python"))) <= 24


# --- the whole context ------------------------------------------------------------------------

CURRENT = doc(
    "app/billing.py",
    "from shop.orders import order_total\n\n" + QUERY + "    total = order_total(",
)


def others() -> list[OpenDocument]:
    return [
        doc("shop/orders.py", filler("o", 25) + ORDERS + filler("p", 25)),
        doc("shop/invoices.py", filler("i", 10) + ORDERS.replace("order", "invoice") * 2),
        doc("zz/unrelated.py", filler("u")),
    ]


def test_gather_context_definitions_then_similar() -> None:
    found = gather_context(
        CURRENT, len(CURRENT.text), others(), budget=400, count_tokens=words, index=SnippetIndex()
    )
    kinds = [s.kind for s in found]
    assert kinds[0] == "definition" and "similar" in kinds
    assert kinds == sorted(kinds)  # "definition" < "similar": definitions come first
    assert found[0].path == "shop/orders.py" and found[0].text.startswith("def order_total(")
    # the similar window does not repeat the definition
    for s in found[1:]:
        assert "def order_total(" not in s.text
    assert cost(found) <= 400


@pytest.mark.parametrize("budget", [0, 10, 30, 60, 120, 400, 5000])
def test_gather_context_budget(budget: int) -> None:
    found = gather_context(
        CURRENT,
        len(CURRENT.text),
        others(),
        budget=budget,
        count_tokens=words,
        index=SnippetIndex(),
    )
    assert cost(found) <= budget


def test_gather_context_is_stable() -> None:
    index = SnippetIndex()
    first = gather_context(CURRENT, len(CURRENT.text), others(), budget=400, count_tokens=words)
    again = gather_context(
        CURRENT, len(CURRENT.text), others()[::-1], budget=400, count_tokens=words, index=index
    )
    typed = doc(CURRENT.path, CURRENT.text + "x", version=2)
    later = gather_context(typed, len(typed.text), others(), budget=400, count_tokens=words)
    assert first == again == later
    for kind in ("definition", "similar"):
        group = [(s.path, s.start_line) for s in first if s.kind == kind]
        assert group == sorted(group)


def test_secret_files_current_document_and_copies_are_skipped() -> None:
    secret_text = ORDERS * 3 + 'TOKEN = "abc"\n'
    docs = [
        doc(".env", secret_text),
        doc("config/secrets.yaml", secret_text),
        doc("keys/server.pem", secret_text),
        CURRENT,
        OpenDocument("git:/w/app/billing.py", "app/billing.py", "python", CURRENT.text, 7),
    ]
    index = SnippetIndex()
    assert gather_context(CURRENT, 0, docs, budget=1000, count_tokens=words, index=index) == []
    assert similar_snippets(QUERY, docs[:3], budget=1000, count_tokens=words, index=index) == []
    assert len(index) == 0, "secret documents are never even indexed"


def test_snippets_are_redacted() -> None:
    key = "sk-proj-" + "Ab1Cd2Ef3Gh4" * 3
    leaky = doc(
        "shop/orders.py",
        ORDERS
        + f'    api_key = "{key}"\n'
        + "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0\n",
    )
    found = gather_context(
        CURRENT, len(CURRENT.text), [leaky], budget=1000, count_tokens=words, index=SnippetIndex()
    )
    assert found
    text = "\n".join(s.text for s in found)
    assert key not in text and "MIIE" not in text
    assert PLACEHOLDER in text


def test_definitions_come_from_the_same_language_family() -> None:
    js = doc("orders.js", "function order_total(order) {\n  return 0;\n}\n", "javascript")
    found = gather_context(
        CURRENT, len(CURRENT.text), [js], budget=400, count_tokens=words, index=SnippetIndex()
    )
    assert all(s.kind == "similar" for s in found)
    header = doc("buf.h", "int buffer_len(const char *s);\n", "c")
    current = doc("main.cpp", "int main() {\n  return buffer_len(s);\n}\n", "cpp")
    found = gather_context(current, 30, [header], budget=400, count_tokens=words)
    assert [s.kind for s in found] == ["definition"]


# --- the index --------------------------------------------------------------------------------


def test_index_is_bounded_and_keyed_by_version() -> None:
    index = SnippetIndex(max_documents=3)
    docs = [doc(f"m{i}.py", ORDERS + filler(str(i), 5)) for i in range(5)]
    for d in docs:
        similar_snippets(QUERY, [d], budget=1000, count_tokens=words, index=index)
    assert len(index) == 3
    assert all(d.uri in index for d in docs[2:]) and docs[0].uri not in index
    # one call looks at no more documents than the index holds (no rebuild on every call)
    found = similar_snippets(QUERY, docs[::-1], budget=1000, count_tokens=words, index=index)
    assert {s.path for s in found} <= {"m4.py", "m3.py", "m2.py"}
    assert all(d.uri in index for d in docs[2:])
    # a new version of a document replaces its entry, it does not take another place
    newer = doc("m4.py", ORDERS.replace("order", "invoice"), version=2)
    found = similar_snippets(QUERY, [newer], budget=1000, count_tokens=words, index=index)
    assert len(index) == 3 and "invoice_total" in found[0].text
    # same version but different text (a caller without versions): the text wins
    same_version = doc("m4.py", ORDERS, version=2)
    found = similar_snippets(QUERY, [same_version], budget=1000, count_tokens=words, index=index)
    assert "order_total" in found[0].text
    index.clear()
    assert len(index) == 0


@pytest.mark.timeout(120)
def test_twenty_open_documents_give_both_kinds_of_context() -> None:
    """20 open 2,000-line files (measured here: first call ~110 ms, then ~6-10 ms per
    keystroke; timing belongs to `make bench-context`, the timeout only catches a hang)."""

    def module(k: int) -> str:
        parts = [f"from pkg.m{k + 1} import helper_{k + 1}_1\n\n"]
        for i in range(290):
            parts.append(
                f"def helper_{k}_{i}(items, limit=None):\n    out = []\n    for item in items:\n"
                f"        out.append(helper_{k + 1}_{i % 7}(item, limit))\n    return out\n\n"
            )
        return "".join(parts)

    docs = [doc(f"pkg/m{k}.py", "\n".join(module(k).split("\n")[:2000])) for k in range(21)]
    current, rest = docs[0], docs[1:]
    offset = len(current.text) // 2
    index = SnippetIndex()
    first = gather_context(current, offset, rest, budget=600, count_tokens=words, index=index)
    assert any(s.kind == "definition" for s in first) and any(s.kind == "similar" for s in first)
    for i in range(1, 4):
        typed = doc(
            current.path, current.text[:offset] + "x" * i + current.text[offset:], version=i
        )
        again = gather_context(typed, offset + i, rest, budget=600, count_tokens=words, index=index)
        # typing a few characters does not reorder the context (the prefix cache relies on it)
        assert [s.path for s in again] == [s.path for s in first]


def test_names_remembered_as_absent_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from moe_lsp.prompts import snippet_index as crossfile

    monkeypatch.setattr(crossfile, "MAX_ABSENT_NAMES", 8)
    entry = crossfile._Entry(OpenDocument("file:///a.py", "a.py", "python", "x = 1\n", 1))
    for i in range(50):
        assert entry.definitions(f"name_{i}") == []
        assert len(entry._absent) <= 8
