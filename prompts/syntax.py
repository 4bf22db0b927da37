"""One tree-sitter tree per open document, kept in sync with its text by incremental edits."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

from tree_sitter import Node, Parser, Point, Tree

from .languages import LanguageSpec

MAX_PARSE_BYTES = 2 * 1024 * 1024
"""Documents larger than this (UTF-8 bytes) get no tree: completions then use line rules."""
MAX_LINE_BYTES = 16 * 1024
"""Documents with a line longer than this (UTF-8 bytes; minified or generated code) get no
tree either: a keystroke on such a line would re-lex and re-parse all of it."""
CHECKPOINT_CHARS = 1024
"""Characters between two cached (str offset, byte offset) pairs of non-ASCII text."""
_CONTINUATION = bytes(range(0x80, 0xC0))
"""UTF-8 continuation bytes: every other byte starts a character."""


def encode(text: str) -> bytes:
    """UTF-8 bytes of `text`; lone surrogates (possible after a UTF-16 edit) take 3 bytes each."""
    return text.encode("utf-8", "surrogatepass")


def point_at(source: bytes, byte: int) -> Point:
    """Tree-sitter point (row, byte column) of `byte`; rows are counted by '\\n' only."""
    row = source.count(b"\n", 0, byte)
    return Point(row, byte - (source.rfind(b"\n", 0, byte) + 1))


def end_point(start: Point, inserted: bytes) -> Point:
    """Point after `inserted` bytes placed at `start`."""
    rows = inserted.count(b"\n")
    if rows == 0:
        return Point(start.row, start.column + len(inserted))
    return Point(start.row + rows, len(inserted) - (inserted.rfind(b"\n") + 1))


def _parsable(source: bytes) -> bool:
    """Small enough to parse, not binary (no NUL byte), and no line too long."""
    return (
        len(source) <= MAX_PARSE_BYTES
        and b"\x00" not in source
        and not has_long_line(source, 0, len(source))
    )


def has_long_line(source: bytes, start: int, end: int) -> bool:
    """A line over `MAX_LINE_BYTES` among those that bytes [start, end) of `source` touch.
    Costs the length of those lines (in C), not of the whole text."""
    first = source.rfind(b"\n", 0, start) + 1
    last = source.find(b"\n", end)
    last = len(source) if last < 0 else last
    if last - first <= MAX_LINE_BYTES:
        return False
    return max(map(len, source[first:last].split(b"\n"))) > MAX_LINE_BYTES


class SyntaxTree:
    """A document's text, its UTF-8 bytes and its tree, updated in place by `apply_edit`.

    Offsets given to and returned by the public methods are Python str offsets (code points),
    as the document store uses; tree-sitter works in UTF-8 bytes, converted here.
    `tree` is None while the text is over `MAX_PARSE_BYTES` or holds a NUL byte; it comes back
    with a full parse once an edit makes the text parsable again.
    Not thread-safe (offset lookups fill a cache): one owner edits and reads it.
    """

    def __init__(self, spec: LanguageSpec, parser: Parser, text: str, source: bytes) -> None:
        """Use `SyntaxTree.create`; this constructor does not parse."""
        self._spec = spec
        self._parser = parser
        self._text = text
        self._source = source
        self._tree: Tree | None = None
        self._chars: list[int] = [0]
        """Checkpoint i: str offset i * CHECKPOINT_CHARS (only for non-ASCII text)."""
        self._bytes: list[int] = [0]
        """Byte offset of checkpoint i."""

    @staticmethod
    def may_parse(spec: LanguageSpec, text: str) -> bool:
        """False when `create` would surely give None, found without encoding or parsing: no
        grammar, more characters than `MAX_PARSE_BYTES`, or a line of more characters than
        `MAX_LINE_BYTES` (each character is at least one byte)."""
        if not spec.module or len(text) > MAX_PARSE_BYTES:
            return False
        return len(text) <= MAX_LINE_BYTES or max(map(len, text.split("\n"))) <= MAX_LINE_BYTES

    @classmethod
    def create(cls, spec: LanguageSpec, text: str) -> SyntaxTree | None:
        """Parse `text`; None for plain text, text over the size limit, binary text, no grammar."""
        if not SyntaxTree.may_parse(spec, text):
            return None
        source = encode(text)
        if not _parsable(source):
            return None
        try:
            parser = Parser(spec.language)
        except (ImportError, AttributeError, OSError, ValueError, TypeError):
            return None
        syntax = cls(spec, parser, text, source)
        syntax._tree = parser.parse(source)
        return syntax

    @property
    def spec(self) -> LanguageSpec:
        """The document's language."""
        return self._spec

    @property
    def text(self) -> str:
        """The current text."""
        return self._text

    @property
    def source(self) -> bytes:
        """The current text as UTF-8 bytes (what the tree's byte offsets index)."""
        return self._source

    @property
    def tree(self) -> Tree | None:
        """The tree of the current text; None while it is too large or binary."""
        return self._tree

    @property
    def root(self) -> Node | None:
        """The root node of `tree`."""
        return self._tree.root_node if self._tree is not None else None

    def apply_edit(self, start: int, end: int, new_text: str) -> None:
        """Replace str offsets [start, end) of the text by `new_text` and re-parse incrementally.

        Offsets are clamped to the text; a reversed range is swapped.
        """
        n = len(self._text)
        start, end = max(0, min(start, n)), max(0, min(end, n))
        if start > end:
            start, end = end, start
        start_byte, old_end_byte = self.byte_offset(start), self.byte_offset(end)
        inserted = encode(new_text)
        old_source = self._source
        source = old_source[:start_byte] + inserted + old_source[old_end_byte:]
        self._text = self._text[:start] + new_text + self._text[end:]
        self._source = source
        self._forget_checkpoints_after(start)
        if (
            len(source) > MAX_PARSE_BYTES
            or b"\x00" in source
            or has_long_line(source, start_byte, start_byte + len(inserted))
        ):
            self._tree = None
            return
        if self._tree is None:
            if _parsable(source):
                self._tree = self._parser.parse(source)
            return
        start_point = point_at(old_source, start_byte)
        self._tree.edit(
            start_byte=start_byte,
            old_end_byte=old_end_byte,
            new_end_byte=start_byte + len(inserted),
            start_point=start_point,
            old_end_point=point_at(old_source, old_end_byte),
            new_end_point=end_point(start_point, inserted),
        )
        self._tree = self._parser.parse(source, self._tree)

    def byte_offset(self, offset: int) -> int:
        """Byte offset of str offset `offset` (clamped to the text)."""
        offset = max(0, min(offset, len(self._text)))
        if len(self._source) == len(self._text):
            return offset
        i = offset // CHECKPOINT_CHARS
        self._extend_checkpoints(lambda: len(self._chars) > i)
        return self._bytes[i] + len(encode(self._text[self._chars[i] : offset]))

    def str_offset(self, byte: int) -> int:
        """Str offset of byte offset `byte` (clamped; a byte inside a character maps to it)."""
        source = self._source
        byte = max(0, min(byte, len(source)))
        if len(source) == len(self._text):
            return byte
        while 0 < byte < len(source) and 0x80 <= source[byte] < 0xC0:
            byte -= 1
        self._extend_checkpoints(lambda: self._bytes[-1] >= byte)
        i = bisect_right(self._bytes, byte) - 1
        chunk = source[self._bytes[i] : byte]
        return self._chars[i] + len(chunk.translate(None, _CONTINUATION))

    def node_at(self, offset: int) -> Node | None:
        """Smallest named node containing str offset `offset` (None without a tree)."""
        root = self.root
        if root is None:
            return None
        byte = self.byte_offset(offset)
        return root.named_descendant_for_byte_range(byte, byte)

    def _forget_checkpoints_after(self, offset: int) -> None:
        """Drop checkpoints an edit at str offset `offset` made stale."""
        keep = offset // CHECKPOINT_CHARS + 1
        del self._chars[keep:]
        del self._bytes[keep:]

    def _extend_checkpoints(self, done: Callable[[], bool]) -> None:
        """Add checkpoints until `done()` holds or the text ends."""
        text, step = self._text, CHECKPOINT_CHARS
        while not done() and self._chars[-1] + step <= len(text):
            c = self._chars[-1]
            self._bytes.append(self._bytes[-1] + len(encode(text[c : c + step])))
            self._chars.append(c + step)
