"""Next-edit tasks made from real code: pairs of related one-line edits, found by rule.

Each task applies the FIRST edit of a pair and expects the SECOND as the next edit. Kinds:

- rename: a local variable (or parameter) of a function renamed on the first line it occurs
  on; expected, the same rename on the next line it occurs on.
- call: a keyword argument added to a call; expected, the same argument added to the next
  identical call on a later line.
- literal: a literal changed on a line; expected, the same change on the next identical line.

The second edit is at most `WINDOW_LINES` lines below the first (inside the window the model
rewrites). Everything here is pure: text in, tasks out.
"""

from __future__ import annotations

import random
import sysconfig
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tree_sitter import Node

from moe_lsp.prompts.languages import language_for
from moe_lsp.prompts.next_edit import WINDOW_LINES
from moe_lsp.prompts.soundness import error_count
from moe_lsp.prompts.syntax import SyntaxTree

RENAME, CALL, LITERAL = "rename", "call", "literal"
KINDS = (RENAME, CALL, LITERAL)
STDLIB_FILES = (
    "json/decoder.py",
    "json/encoder.py",
    "textwrap.py",
    "difflib.py",
    "shlex.py",
    "csv.py",
    "calendar.py",
    "fractions.py",
    "heapq.py",
    "statistics.py",
    "configparser.py",
    "tokenize.py",
)
"""The standard-library files the tasks come from (relative to the stdlib folder)."""
SEED = 20240601
"""Seeds the new names and arguments (one random stream per task, from this and its place)."""
RENAME_SUFFIXES = ("_value", "_item", "_result", "_count", "_obj")
NEW_KEYWORDS = ("strict=True", "default=None", "limit=1", "verbose=False")
SKIPPED_NAMES = frozenset({"self", "cls", "_"})
_SCOPES = frozenset({"function_definition", "class_definition", "lambda"})
_ASSIGNING = frozenset({"assignment", "augmented_assignment", "for_statement", "for_in_clause"})
_PATTERNS = frozenset({"pattern_list", "tuple_pattern", "list_pattern", "list_splat_pattern"})
_PARAMETERS = frozenset(
    {
        "default_parameter",
        "typed_parameter",
        "typed_default_parameter",
        "list_splat_pattern",
        "dictionary_splat_pattern",
    }
)


@dataclass(frozen=True)
class LineEdit:
    """Line `line` (0-based) becomes `text`."""

    line: int
    text: str


@dataclass(frozen=True)
class Pair:
    """Two related edits: `first` is made, `second` should follow."""

    kind: str
    first: LineEdit
    second: LineEdit


@dataclass(frozen=True)
class EditTask:
    """One next-edit task: the document before the first edit, after it, after both."""

    task_id: str
    kind: str
    path: str
    """Where the text comes from, as the model sees it ("stdlib/json/decoder.py")."""
    before: str
    edited: str
    """`before` with the first edit."""
    expected: str
    """`before` with both edits: what the predicted edit, applied to `edited`, should give."""
    line: int
    """0-based line of the second edit."""
    expected_line: str
    """The second edit's line after the change."""


def apply_line_edits(text: str, edits: Sequence[LineEdit]) -> str:
    """`text` with each edit's line replaced."""
    lines = text.split("\n")
    for e in edits:
        lines[e.line] = e.text
    return "\n".join(lines)


def _tree(text: str) -> SyntaxTree:
    tree = SyntaxTree.create(language_for("python"), text)
    assert tree is not None and tree.root is not None
    return tree


def _walk(node: Node, skip: frozenset[str] = frozenset()) -> Iterator[Node]:
    """`node` and its descendants in document order, not entering nodes of a `skip` type
    (below the top)."""
    yield node
    for child in node.children:
        if child.type in skip:
            continue
        yield from _walk(child, skip)


def _one_line(node: Node) -> bool:
    return node.start_point.row == node.end_point.row


def _replace_spans(line: str, spans: Sequence[tuple[int, int]], new: str) -> str:
    """`line` with each (start, end) column span replaced by `new`."""
    for start, end in sorted(spans, reverse=True):
        line = line[:start] + new + line[end:]
    return line


class _Lines:
    """Str columns of tree nodes (tree-sitter gives UTF-8 byte offsets)."""

    def __init__(self, text: str, tree: SyntaxTree) -> None:
        self.tree = tree
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def span(self, node: Node) -> tuple[int, int, int]:
        """(line, start column, end column) of a one-line node."""
        row = node.start_point.row
        base = self.starts[row]
        return (
            row,
            self.tree.str_offset(node.start_byte) - base,
            self.tree.str_offset(node.end_byte) - base,
        )


# -- rename -----------------------------------------------------------------------------------


def _is_reference(node: Node) -> bool:
    """An identifier that names a variable (not an attribute, keyword or import name)."""
    parent = node.parent
    if parent is None:
        return False
    if parent.type == "attribute" and parent.child_by_field_name("attribute") == node:
        return False
    if parent.type == "keyword_argument" and parent.child_by_field_name("name") == node:
        return False
    return parent.type not in {
        "dotted_name",
        "aliased_import",
        "global_statement",
        "nonlocal_statement",
    }


def _bound_names(function: Node) -> set[str]:
    """Parameters of `function` and names assigned in its own body (its local variables)."""
    names: set[str] = set()
    params = function.child_by_field_name("parameters")
    for p in params.children if params is not None else []:
        if p.type == "identifier":
            names.add(p.text.decode())
        elif p.type in _PARAMETERS:
            first = next((c for c in p.children if c.type == "identifier"), None)
            if first is not None:
                names.add(first.text.decode())
    body = function.child_by_field_name("body")
    for node in _walk(body, _SCOPES) if body is not None else []:
        if node.type not in _ASSIGNING:
            continue
        left = node.child_by_field_name("left")
        for target in _walk(left) if left is not None else []:
            if target.type == "identifier" and (target == left or target.parent.type in _PATTERNS):
                names.add(target.text.decode())
    return names - SKIPPED_NAMES


def rename_pairs(text: str, new_name: Callable[[str, int], str]) -> list[Pair]:
    """For each local variable of each function with uses on two lines at most
    `WINDOW_LINES` apart: rename it on its first line (every use there), and expect the same
    on its next line. `new_name(old, line)` gives the new name."""
    tree = _tree(text)
    where = _Lines(text, tree)
    pairs = []
    for function in _walk(tree.root):
        if function.type != "function_definition":
            continue
        names = _bound_names(function)
        uses: dict[str, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
        parts = [function.child_by_field_name("parameters"), function.child_by_field_name("body")]
        for part in parts:
            for node in _walk(part, _SCOPES) if part is not None else []:
                if node.type == "identifier" and node.text.decode() in names:
                    if _is_reference(node):
                        row, a, b = where.span(node)
                        uses[node.text.decode()][row].append((a, b))
        for name in sorted(names, key=lambda n: min(uses[n], default=0)):
            rows = sorted(uses[name])
            if len(rows) < 2 or rows[1] - rows[0] > WINDOW_LINES:
                continue
            new = new_name(name, rows[0])
            if new in names or new in text:
                continue
            edits = [
                LineEdit(r, _replace_spans(where.lines[r], uses[name][r], new)) for r in rows[:2]
            ]
            pairs.append(Pair(RENAME, edits[0], edits[1]))
    return sorted(pairs, key=lambda p: p.first.line)


# -- call -------------------------------------------------------------------------------------


def call_pairs(text: str, argument: Callable[[str, int], str]) -> list[Pair]:
    """For each call written the same on two lines at most `WINDOW_LINES` apart (once on
    each, and not between them): add `argument(call, line)` (a `name=value` keyword) to the
    first, and expect it added to the second."""
    tree = _tree(text)
    where = _Lines(text, tree)
    calls: dict[str, dict[int, list[Node]]] = defaultdict(lambda: defaultdict(list))
    for node in _walk(tree.root):
        args = node.child_by_field_name("arguments") if node.type == "call" else None
        if args is not None and args.type == "argument_list" and _one_line(node):
            calls[node.text.decode()][node.start_point.row].append(node)
    pairs = []
    for call, by_row in calls.items():
        rows = sorted(by_row)
        if len(rows) < 2 or rows[1] - rows[0] > WINDOW_LINES:
            continue
        if len(by_row[rows[0]]) != 1 or len(by_row[rows[1]]) != 1:
            continue
        keyword = argument(call, rows[0])
        if keyword.split("=", 1)[0] + "=" in call:
            continue
        node = by_row[rows[0]][0]
        args = node.child_by_field_name("arguments")
        assert args is not None
        last = args.named_children[-1] if args.named_children else None
        _, start, _ = where.span(node)
        if last is not None:
            cut = where.span(last)[2] - start
            new_call = call[:cut] + ", " + keyword + call[cut:]
        else:
            new_call = call[:-1] + keyword + ")"
        edits = []
        for r in rows[:2]:
            _, a, b = where.span(by_row[r][0])
            edits.append(LineEdit(r, _replace_spans(where.lines[r], [(a, b)], new_call)))
        pairs.append(Pair(CALL, edits[0], edits[1]))
    return sorted(pairs, key=lambda p: p.first.line)


# -- literal ----------------------------------------------------------------------------------


def changed_literal(literal: Node) -> str | None:
    """The literal changed by rule: a decimal integer plus one, a plain string's text with
    "2" added; None for others (f-strings, escapes, floats, ...)."""
    text = literal.text.decode()
    if literal.type == "integer":
        return str(int(text) + 1) if text.isdigit() else None
    if literal.type != "string" or text[:1] not in "'\"" or "\\" in text:
        return None
    if any(
        c.type not in {"string_start", "string_content", "string_end"} for c in literal.children
    ):
        return None
    quote = text[:3] if text[:3] in ('"""', "'''") else text[0]
    return text[: len(text) - len(quote)] + "2" + quote


def literal_pairs(text: str) -> list[Pair]:
    """For each line written the same twice at most `WINDOW_LINES` apart (not between them)
    with a literal `changed_literal` can change: change its first such literal, and expect
    the same change on the second."""
    tree = _tree(text)
    where = _Lines(text, tree)
    literals: dict[int, list[Node]] = defaultdict(list)
    for node in _walk(tree.root):
        if node.type in {"integer", "string"} and _one_line(node):
            literals[node.start_point.row].append(node)
    seen: dict[str, int] = {}
    pairs = []
    for row, line in enumerate(where.lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        first = seen.get(line)
        seen[line] = row
        if first is None or row - first > WINDOW_LINES:
            continue
        changes = [(n, changed_literal(n)) for n in literals.get(first, [])]
        found = next(((n, c) for n, c in changes if c is not None), None)
        if found is None or found[0].text.decode() == line.strip():
            continue  # nothing to change, or a lone string (a docstring)
        _, a, b = where.span(found[0])
        new_line = _replace_spans(line, [(a, b)], found[1])
        pairs.append(Pair(LITERAL, LineEdit(first, new_line), LineEdit(row, new_line)))
        del seen[line]  # the next pair of this line starts after this one
    return pairs


# -- tasks ------------------------------------------------------------------------------------


def _rng(path: str, kind: str, key: str, line: int, seed: int) -> random.Random:
    return random.Random(f"{seed}:{path}:{kind}:{key}:{line}")


def pairs_of(text: str, path: str, seed: int = SEED) -> list[Pair]:
    """Every pair of every kind in `text`, the names and arguments drawn from `seed`."""

    def name(old: str, line: int) -> str:
        return old + _rng(path, RENAME, old, line, seed).choice(RENAME_SUFFIXES)

    def keyword(call: str, line: int) -> str:
        return _rng(path, CALL, call, line, seed).choice(NEW_KEYWORDS)

    return [*rename_pairs(text, name), *call_pairs(text, keyword), *literal_pairs(text)]


@dataclass(frozen=True)
class Candidate:
    """A pair found in a file, not yet checked (checking parses the file twice)."""

    path: str
    text: str
    pair: Pair

    @property
    def kind(self) -> str:
        return self.pair.kind


@lru_cache(maxsize=16)
def _errors(text: str) -> int:
    return error_count("python", text)


def task_of(candidate: Candidate) -> EditTask | None:
    """The task of a candidate; None when an edit would add a syntax error."""
    pair, text, path = candidate.pair, candidate.text, candidate.path
    edited = apply_line_edits(text, [pair.first])
    expected = apply_line_edits(text, [pair.first, pair.second])
    errors = _errors(text)
    if error_count("python", edited) > errors or error_count("python", expected) > errors:
        return None
    task_id = f"{path}:{pair.kind}:{pair.first.line + 1}-{pair.second.line + 1}"
    return EditTask(
        task_id, pair.kind, path, text, edited, expected, pair.second.line, pair.second.text
    )


def strided(n: int, limit: int | None) -> list[range]:
    """`limit` runs of indices into `n` items, each starting at a fixed stride and running up
    to the next one's start (all items, one run each, without a limit)."""
    if limit is None or limit >= n:
        return [range(i, i + 1) for i in range(n)]
    if limit <= 0:
        return []
    starts = [i * n // limit for i in range(limit)]
    return [range(a, b) for a, b in zip(starts, [*starts[1:], n], strict=True)]


def split_limit(limit: int | None, kinds: int) -> list[int | None]:
    """`limit` shared out over `kinds` kinds as evenly as can be (the first get the rest)."""
    if limit is None:
        return [None] * kinds
    return [limit // kinds + (1 if i < limit % kinds else 0) for i in range(kinds)]


def choose(
    candidates: Sequence[Candidate],
    limit: int | None,
    make: Callable[[Candidate], EditTask | None] = task_of,
) -> list[EditTask]:
    """At most `limit` tasks, shared evenly over the kinds; in each kind, the first candidate
    `make` accepts from each place of a fixed stride (until the next place)."""
    out: list[EditTask] = []
    for kind, cap in zip(KINDS, split_limit(limit, len(KINDS)), strict=True):
        mine = [c for c in candidates if c.kind == kind]
        for run in strided(len(mine), cap):
            made = next((t for i in run if (t := make(mine[i])) is not None), None)
            if made is not None:
                out.append(made)
    return out


def stdlib_candidates(
    files: Sequence[str] = STDLIB_FILES, seed: int = SEED, root: Path | None = None
) -> list[Candidate]:
    """Every pair of the listed standard-library files (a file missing here is skipped)."""
    base = root or Path(sysconfig.get_paths()["stdlib"])
    out: list[Candidate] = []
    for name in files:
        path = base / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            shown = f"stdlib/{name}"
            out += [Candidate(shown, text, p) for p in pairs_of(text, shown, seed)]
    return out
