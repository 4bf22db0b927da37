"""The memory budget of a session's documents: texts first, then trees, oldest-edited dropped."""

from __future__ import annotations

import pytest

from moe_lsp.lsp.documents import DocumentStore
from moe_lsp.lsp.memory import MemoryBudget, text_cost, tree_cost


class Doc:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.dropped = 0

    def drop_tree(self) -> None:
        self.dropped += 1


# Steps: ("text", uri, bytes) | ("tree", uri, bytes, admitted?) | ("edit", uri, bytes, kept?) |
# ("forget", uri); then the documents expected to hold a tree.
BUDGET_CASES = [
    ("one tree fits", 100, [("text", "a", 10), ("tree", "a", 50, True)], ["a"]),
    ("too large beside the texts", 100, [("text", "a", 60), ("tree", "a", 50, False)], []),
    (
        "the tree edited longest ago goes first",
        100,
        [("tree", "a", 40, True), ("tree", "b", 40, True), ("tree", "c", 40, True)],
        ["b", "c"],
    ),
    (
        "an edit makes a tree the most recent",
        100,
        [
            ("tree", "a", 40, True),
            ("tree", "b", 40, True),
            ("edit", "a", 40, True),
            ("tree", "c", 40, True),
        ],
        ["a", "c"],
    ),
    (
        "growing texts push trees out",
        100,
        [("tree", "a", 40, True), ("tree", "b", 40, True), ("text", "x", 30)],
        ["b"],
    ),
    (
        "a tree that grows past the room is let go",
        100,
        [("tree", "a", 40, True), ("edit", "a", 120, False)],
        [],
    ),
    (
        "closing frees the room",
        100,
        [("tree", "a", 60, True), ("forget", "a"), ("tree", "b", 90, True)],
        ["b"],
    ),
]


@pytest.mark.parametrize(("name", "limit", "steps", "held"), BUDGET_CASES)
def test_budget(name: str, limit: int, steps: list[tuple], held: list[str]) -> None:
    budget = MemoryBudget(limit)
    docs: dict[str, Doc] = {}
    for step in steps:
        kind, uri = step[0], step[1]
        doc = docs.setdefault(uri, Doc(uri))
        if kind == "text":
            budget.set_text(uri, step[2])
        elif kind == "tree":
            assert budget.admit_tree(doc, step[2]) is step[3], step
        elif kind == "edit":
            assert budget.resize_tree(doc, step[2]) is step[3], step
        else:
            budget.forget(uri)
        assert budget.text_bytes + budget.tree_bytes <= max(limit, budget.text_bytes), step
    assert sorted(u for u in docs if u in budget._trees) == held


def python(n: int) -> str:
    return "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(n))


def test_store_keeps_trees_within_the_budget_and_parses_again_when_needed() -> None:
    text = python(200)
    each = text_cost(text) + tree_cost(len(text))
    store = DocumentStore(budget_bytes=int(each * 2.5))
    for name in "abc":
        store.open(f"file:///{name}.py", "python", 1, text)
        assert store.get(f"file:///{name}.py").tree is not None  # a request reads the tree
    a, b, c = (store.get(f"file:///{n}.py") for n in "abc")
    assert (a.has_tree, b.has_tree, c.has_tree) == (False, True, True)  # a: edited longest ago
    store.change(b.uri, 2, [(((0, 0), (0, 0)), "# b\n")])
    assert a.tree is not None  # needed again: parsed, and c (now the oldest edit) let go
    assert (a.has_tree, b.has_tree, c.has_tree) == (True, True, False)
    assert store.budget.text_bytes + store.budget.tree_bytes <= store.budget.limit


def test_a_document_too_large_for_the_tree_budget_is_plain_text() -> None:
    text = python(300)
    store = DocumentStore(budget_bytes=text_cost(text) + tree_cost(len(text)) // 2)
    assert store.open("file:///big.py", "python", 1, text)
    doc = store.get("file:///big.py")
    assert doc.tree is None and doc.text == text
    assert store.budget.tree_bytes == 0


def test_texts_over_the_budget_close_the_oldest_documents() -> None:
    text = "x" * 100_000
    store = DocumentStore(budget_bytes=text_cost(text) * 3 + 1000)
    for i in range(5):
        assert store.open(f"file:///{i}.txt", "plaintext", 1, text)
    assert [d.uri for d in store.recent(10)] == [f"file:///{i}.txt" for i in (4, 3, 2)]
    assert store.budget.text_bytes <= store.budget.limit
    assert not store.open("file:///huge.txt", "plaintext", 1, "x" * (store.budget.limit + 1))


def test_a_lower_budget_drops_trees_at_once() -> None:
    text = python(100)
    store = DocumentStore()
    for name in "ab":
        store.open(f"file:///{name}.py", "python", 1, text)
        assert store.get(f"file:///{name}.py").tree is not None
    store.set_budget(text_cost(text) * 2 + tree_cost(len(text)) + 1)
    held = [store.get(f"file:///{n}.py").has_tree for n in "ab"]
    assert held == [False, True]


def test_minified_code_takes_no_room_from_other_trees() -> None:
    """A document that cannot have a tree (a line over 16 KiB) drops no other document's tree."""
    text = python(200)
    minified = "a=1;" * 200_000
    texts = text_cost(text) + text_cost(minified)
    # The minified tree would fit by its estimate, but only by dropping a.py's.
    store = DocumentStore(budget_bytes=texts + tree_cost(len(minified)) + tree_cost(len(text)) // 2)
    store.open("file:///a.py", "python", 1, text)
    assert store.get("file:///a.py").tree is not None
    store.open("file:///app.min.js", "javascript", 1, minified)
    assert store.get("file:///app.min.js").tree is None
    assert store.get("file:///a.py").has_tree
