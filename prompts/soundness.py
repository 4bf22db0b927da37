"""Syntax checks of a completion in place: does it add errors, has it closed its block."""

from __future__ import annotations

from functools import cache

from tree_sitter import Node, Parser

from .languages import LanguageSpec, language_for
from .syntax import encode

BEFORE_CHARS = 6000
"""Characters of text before the cursor parsed with a completion (whole lines)."""
AFTER_CHARS = 3000
"""Characters of text after the cursor parsed with a completion (whole lines)."""
MAX_CANDIDATES = 12
"""Most cut points tried by `sound_cut` (one parse each)."""


def window_before(prefix: str) -> str:
    """The tail of `prefix` parsed with a completion: whole lines, bounded."""
    if len(prefix) <= BEFORE_CHARS:
        return prefix
    cut = prefix.find("\n", len(prefix) - BEFORE_CHARS)
    return prefix[cut + 1 :] if cut >= 0 else prefix[-BEFORE_CHARS:]


def window_after(suffix: str) -> str:
    """The head of `suffix` parsed with a completion: whole lines, bounded."""
    if len(suffix) <= AFTER_CHARS:
        return suffix
    cut = suffix.rfind("\n", 0, AFTER_CHARS)
    return suffix[:cut] if cut >= 0 else suffix[:AFTER_CHARS]


@cache
def _parser(name: str) -> Parser | None:
    spec: LanguageSpec = language_for(name)
    if not spec.module:
        return None
    try:
        return Parser(spec.language)
    except (ImportError, AttributeError, OSError, ValueError, TypeError):
        return None


def can_check(language: str) -> bool:
    """True when `language` has a grammar (plain text has none)."""
    return bool(language) and _parser(language) is not None


def _errors(node: Node) -> int:
    """ERROR and MISSING nodes under `node` (subtrees without errors are skipped)."""
    if not node.has_error:
        return 0
    count = 1 if (node.is_error or node.is_missing) else 0
    return count + sum(_errors(child) for child in node.children)


def error_count(language: str, text: str) -> int:
    """Syntax errors tree-sitter finds in `text` (0 for a language without a grammar)."""
    parser = _parser(language)
    if parser is None:
        return 0
    return _errors(parser.parse(encode(text)).root_node)


def sound_cut(language: str, before: str, completion: str, after: str) -> str:
    """The longest whole-line start of `completion` (or all of it) with the fewest syntax
    errors once put between `before` and `after`, and no more than there are without it;
    '' when every start adds errors.

    Used where a completion was cut short (a token limit, a timeout): a half statement is
    worse than a shorter completion. Without a grammar, `completion` comes back unchanged."""
    if not can_check(language) or not completion:
        return completion
    baseline = error_count(language, before + after)
    candidates = [completion]
    end = len(completion)
    while len(candidates) < MAX_CANDIDATES:
        end = completion.rfind("\n", 0, end)
        if end <= 0:
            break
        candidates.append(completion[:end])
    best, fewest = "", baseline + 1
    for text in candidates:  # longest first: a later one must have strictly fewer errors
        if text.strip() and not text.rstrip().endswith(_DANGLING):
            errors = error_count(language, before + text + after)
            if errors < fewest:
                best, fewest = text, errors
                if errors == 0:
                    break
    return best


def closes_scope(language: str, before: str, completed: str) -> bool:
    """True when whole lines `completed`, typed after `before`, close the body the cursor is in
    (its closing brace, or a line back at the indentation outside it), so generation can stop.

    Only the text before the cursor and the completion are parsed: the suffix's own closer
    would close the body whatever the completion says."""
    parser = _parser(language) if completed.strip() else None
    if parser is None:
        return False
    source = encode(before + completed)
    cursor = len(encode(before))
    tree = parser.parse(source)
    scopes = language_for(language).nodes.fill_scopes
    node = tree.root_node.named_descendant_for_byte_range(max(cursor - 1, 0), cursor)
    # The innermost scope that starts before the cursor.
    while node is not None and not (node.type in scopes and node.start_byte < cursor):
        node = node.parent
    if node is None or node.has_error:
        return False
    last = node.children[-1] if node.children else None
    if last is None or last.is_missing:
        return False
    end = node.end_byte
    if not cursor < end <= len(source):
        return False
    if not last.is_named and last.type in _CLOSERS:
        return True  # its closing brace (or `end`) is in the completion
    # A body without a closer (Python) ends where the completion goes on at the outer level.
    return bool(source[end:].strip())


_DANGLING = (":", "{", "(", "[", ",", "\\", "=", "+", "-", "*", "/", "&&", "||", " and", " or")
"""Line ends that promise more (a block header, an open bracket, an operator): grammars with
empty blocks (Python) parse them without error, but a completion must not stop there."""
_CLOSERS = frozenset({"}", "end", ")", "]"})
"""Tokens that close a scope node."""
