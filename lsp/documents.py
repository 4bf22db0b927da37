"""Open documents by URI: incremental sync, the one LSP position <-> offset conversion, and their
syntax trees within the session's memory budget."""

from __future__ import annotations

import enum
import logging
import re
import time
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from moe_lsp.prompts.languages import LanguageSpec, language_for
from moe_lsp.prompts.syntax import SyntaxTree

from .memory import DEFAULT_BUDGET_BYTES, MemoryBudget, text_cost, tree_cost

log = logging.getLogger(__name__)

MAX_OPEN_DOCUMENTS = 1000
"""Open documents kept at most; opening one more evicts the least recently used."""

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""Largest document text accepted, in UTF-8 bytes; larger texts are refused (and dropped)."""

SETTLE_SECONDS = 1.5
"""A document quiet this long shows its new text to other documents' prompts (see `settled`)."""

Position = tuple[int, int]
"""(line, character) with the character counted in the negotiated encoding."""

Range = tuple[Position, Position]
Change = tuple[Range | None, str]
"""One content change: a range to replace (None = the whole document) and its new text."""

_LINE_END = re.compile(r"\r\n|\r|\n")
CHUNK_CHARS = 4096
"""Characters measured at once (in C) when a position is found on a long non-ASCII line: a
2-million-character line takes ~500 steps, not 2 million."""


class PositionEncoding(enum.StrEnum):
    """What an LSP `Position.character` counts: bytes, UTF-16 code units or code points."""

    UTF8 = "utf-8"
    UTF16 = "utf-16"
    UTF32 = "utf-32"


def negotiate_encoding(client_offered: list[str] | None) -> PositionEncoding:
    """Pick utf-8, else utf-32, else utf-16 (the LSP default, the only one VS Code speaks)."""
    offered = {kind.lower() for kind in client_offered or () if isinstance(kind, str)}
    for enc in (PositionEncoding.UTF8, PositionEncoding.UTF32):
        if enc.value in offered:
            return enc
    return PositionEncoding.UTF16


def _units(char: str, enc: PositionEncoding) -> int:
    """Length of one code point in `enc` units (lone surrogates count as in surrogatepass)."""
    cp = ord(char)
    if enc is PositionEncoding.UTF16:
        return 2 if cp > 0xFFFF else 1
    return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4


def _length(text: str, enc: PositionEncoding) -> int:
    """Length of `text` in `enc` units."""
    if enc is PositionEncoding.UTF32 or text.isascii():
        return len(text)
    codec = "utf-8" if enc is PositionEncoding.UTF8 else "utf-16-le"
    size = len(text.encode(codec, "surrogatepass"))
    return size if enc is PositionEncoding.UTF8 else size // 2


class LineIndex:
    """Start and content-end offsets of every line; "\\n", "\\r\\n" and a lone "\\r" end a line."""

    __slots__ = ("ends", "starts")

    def __init__(self, text: str) -> None:
        self.starts = [0]
        self.ends: list[int] = []
        for match in _LINE_END.finditer(text):
            self.ends.append(match.start())
            self.starts.append(match.end())
        self.ends.append(len(text))

    def edited(self, text: str, start: int, end: int, length: int) -> None:
        """Update for old [start, end) replaced by `length` characters (`text`: the new text).

        Only the edit and one character either side are searched for line ends (a "\r\n" may
        form or break there); the others are kept or moved. Costs the edit plus the number of
        lines after it, not the length of the text or of the edited line."""
        delta = length - (end - start)
        starts, ends = self.starts, self.ends
        n = len(starts) - 1  # line ends: the k-th spans [ends[k], starts[k + 1])
        lo, hi = start - 1, end + 1
        i = bisect_right(starts, lo, 1) - 1  # line ends wholly before `lo` are kept
        j = max(bisect_left(ends, hi, 0, n), i)  # those from `hi` on are moved by `delta`
        if i < j:
            lo, hi = min(lo, ends[i]), max(hi, starts[j])
        lo, hi = max(lo, 0), min(hi + delta, len(text))
        found = list(_LINE_END.finditer(text, lo, hi)) if lo < hi else []
        self.ends = [
            *ends[:i],
            *(m.start() for m in found),
            *(x + delta for x in ends[j:n]),
            len(text),
        ]
        self.starts = [
            *starts[: i + 1],
            *(m.end() for m in found),
            *(x + delta for x in starts[j + 1 :]),
        ]


def _advance(
    text: str, offset: int, end: int, units: int, character: int, enc: PositionEncoding
) -> tuple[int, int]:
    """From `offset` on a line, `units` units into it, to the first offset where the line's
    units would pass `character` (or to `end`); returns (offset, units before it). Whole chunks
    are measured by the codec (in C), then one code point at a time within one chunk."""
    while offset < end:
        stop = min(offset + CHUNK_CHARS, end)
        size = _length(text[offset:stop], enc)
        if units + size > character:
            end = stop
            break
        units += size
        offset = stop
    while offset < end:
        step = _units(text[offset], enc)
        if units + step > character:
            break
        units += step
        offset += 1
    return offset, units


def offset_at(
    text: str, line: int, character: int, enc: PositionEncoding, index: LineIndex | None = None
) -> int:
    """Offset into `text` of an LSP position, clamped into the document; never raises.

    A line past the end maps to the end of the document, a character past the end of its
    line to the end of that line (before its terminator), negatives to 0, and a character
    inside a code point (half a surrogate pair, part of a UTF-8 sequence) to its start.
    Pass the document's `index` to make this O(line length) instead of O(document).
    """
    if index is None:
        index = LineIndex(text)
    if line >= len(index.starts):
        return len(text)
    start, end = index.starts[max(line, 0)], index.ends[max(line, 0)]
    if character <= 0:
        return start
    if enc is PositionEncoding.UTF32 or text[start:end].isascii():
        return min(start + character, end)
    return _advance(text, start, end, 0, character, enc)[0]


def position_at(
    text: str, offset: int, enc: PositionEncoding, index: LineIndex | None = None
) -> Position:
    """LSP (line, character) of an offset into `text`, clamped into the document; never raises.

    An offset inside a "\\r\\n" maps to the end of its line.
    """
    if index is None:
        index = LineIndex(text)
    offset = min(max(offset, 0), len(text))
    line = bisect_right(index.starts, offset) - 1
    start = index.starts[line]
    return line, _length(text[start : min(offset, index.ends[line])], enc)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An immutable view of one document version with a cursor offset into its text."""

    uri: str
    version: int
    language_id: str
    text: str
    offset: int

    @property
    def prefix(self) -> str:
        """Text before the cursor."""
        return self.text[: self.offset]

    @property
    def suffix(self) -> str:
        """Text from the cursor on."""
        return self.text[self.offset :]


class Document:
    """One open text document; its line index is rebuilt lazily after each change."""

    def __init__(
        self,
        uri: str,
        language_id: str,
        version: int,
        text: str,
        now: float | None = None,
        budget: MemoryBudget | None = None,
    ) -> None:
        self.uri = uri
        self.language_id = language_id
        self.version = version
        self._text = text
        self._index: LineIndex | None = None
        self._anchor: tuple[int, int, int, PositionEncoding] | None = None
        """(line, offset, units before it on the line, encoding) of the last position found on
        a long line: the next one near it (the next keystroke) is found from there."""
        self.spec: LanguageSpec = language_for(language_id, uri)
        self._budget = budget
        self._tree: SyntaxTree | None = None
        self._no_tree_at: int | None = None
        """The version for which a tree was found impossible (plain text, too large, a long
        line, over the budget): not tried again until the text changes."""
        self.edited_at = time.monotonic() if now is None else now
        self._settled = (version, text)
        if budget is None:
            self._build_tree()  # no budget: parsed at once, as before budgets

    def settled(self, now: float | None = None, quiet: float = SETTLE_SECONDS) -> tuple[int, str]:
        """(version, text) as other documents' prompts see it: the text as of the last time
        this document was quiet for `quiet` seconds (or as opened).

        While the user types here, context taken from here for another document stays the
        same, so that document's prompts keep their cached prefix in the engine; an edit
        shows there once typing here pauses."""
        now = time.monotonic() if now is None else now
        if self._settled[0] != self.version and now - self.edited_at >= quiet:
            self._settled = (self.version, self._text)
        return self._settled

    @property
    def tree(self) -> SyntaxTree | None:
        """The syntax tree of the current text; None for plain text, a text too large or with a
        line too long to parse, or a tree that does not fit the memory budget. Built on first
        use (and again after the budget dropped it, if it fits again)."""
        if self._tree is None and self._no_tree_at != self.version:
            self._build_tree()
        return self._tree

    @property
    def has_tree(self) -> bool:
        """A tree is held now (reading `tree` may build one)."""
        return self._tree is not None

    def drop_tree(self) -> None:
        """Let the tree go (the memory budget needs the room); `tree` builds it again."""
        self._tree = None

    def _build_tree(self) -> None:
        cost = tree_cost(len(self._text))
        if not SyntaxTree.may_parse(self.spec, self._text) or (
            self._budget is not None and not self._budget.admit_tree(self, cost)
        ):
            self._no_tree_at = self.version
            return
        try:
            self._tree = SyntaxTree.create(self.spec, self._text)
        except Exception:
            log.exception("parsing %s failed; completing without a syntax tree", self.uri)
            self._tree = None
        if self._tree is None:
            self._no_tree_at = self.version
            if self._budget is not None:
                self._budget.release_tree(self.uri)

    @property
    def text(self) -> str:
        return self._text

    @property
    def index(self) -> LineIndex:
        if self._index is None:
            self._index = LineIndex(self._text)
        return self._index

    def offset_at(self, line: int, character: int, enc: PositionEncoding) -> int:
        index, text = self.index, self._text
        if not 0 <= line < len(index.starts) or index.ends[line] - index.starts[line] < CHUNK_CHARS:
            return offset_at(text, line, character, enc, index)
        start, end = index.starts[line], index.ends[line]
        anchor = self._anchor
        if character <= 0:
            return start
        if enc is PositionEncoding.UTF32:
            return min(start + character, end)
        if anchor is not None and anchor[0] == line and anchor[3] is enc and anchor[2] <= character:
            offset, units = _advance(text, anchor[1], end, anchor[2], character, enc)
        else:
            offset, units = _advance(text, start, end, 0, character, enc)
        self._anchor = (line, offset, units, enc)
        return offset

    def position_at(self, offset: int, enc: PositionEncoding) -> Position:
        return position_at(self._text, offset, enc, self.index)

    def apply_change(
        self,
        range_or_none: Range | None,
        new_text: str,
        version: int,
        enc: PositionEncoding = PositionEncoding.UTF16,
    ) -> None:
        """Replace `range_or_none` (clamped; None = whole text) by `new_text`, set `version`."""
        if range_or_none is None:
            self._text = new_text
            self._tree = None  # parsed again when needed
            self._index = self._anchor = None
        else:
            (start_line, start_char), (end_line, end_char) = range_or_none
            start = self.offset_at(start_line, start_char, enc)
            end = start
            if (end_line, end_char) != (start_line, start_char):
                end = self.offset_at(end_line, end_char, enc)
            start, end = min(start, end), max(start, end)
            self._text = "".join((self._text[:start], new_text, self._text[end:]))
            if self._index is not None:
                self._index.edited(self._text, start, end, len(new_text))
            if self._anchor is not None and self._anchor[1] > start:
                self._anchor = None  # what lies before the edit is unchanged
            if self._tree is not None:
                try:
                    self._tree.apply_edit(start, end, new_text)
                except Exception:
                    log.exception("incremental parse of %s failed; parsing again", self.uri)
                    self._tree = None
                if self._tree is not None and self._tree.tree is None:
                    self._tree = None  # too large or a line too long now: plain text
        self.version = version
        self.edited_at = time.monotonic()
        self._no_tree_at = None
        if self._budget is not None:
            self._budget.set_text(self.uri, text_cost(self._text))
            if self._tree is None:
                self._budget.release_tree(self.uri)
            elif not self._budget.resize_tree(self, tree_cost(len(self._text))):
                self._tree = None

    def snapshot(self, line: int, character: int, enc: PositionEncoding) -> Snapshot:
        offset = self.offset_at(line, character, enc)
        return Snapshot(self.uri, self.version, self.language_id, self._text, offset)


class DocumentStore:
    """Open documents by URI, as the client sent them; never reads from disk.

    `encoding` is the negotiated position encoding used to read change ranges.
    """

    def __init__(
        self,
        encoding: PositionEncoding = PositionEncoding.UTF16,
        max_documents: int = MAX_OPEN_DOCUMENTS,
        max_bytes: int = MAX_DOCUMENT_BYTES,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        self.encoding = encoding
        self.max_documents = max_documents
        self.max_bytes = max_bytes
        self.budget = MemoryBudget(budget_bytes)
        """Texts and trees of these documents; over it, trees go first, then old documents."""
        self._docs: OrderedDict[str, Document] = OrderedDict()

    def set_budget(self, budget_bytes: int) -> None:
        """A new memory budget (setting `memoryBudgetBytes`): trees and, if need be, the
        documents edited longest ago are let go until the rest fits."""
        self.budget.limit = budget_bytes
        for doc in list(self._docs.values()):
            self.budget.set_text(doc.uri, text_cost(doc.text))  # drops trees until they fit
        self._fit_texts(keep="")

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, uri: object) -> bool:
        return uri in self._docs

    def _too_big(self, uri: str, text: str) -> bool:
        if text_cost(text) > self.budget.limit:
            log.warning("ignoring %s: its text alone is over the memory budget", uri)
            return True
        if len(text) * 4 <= self.max_bytes:  # UTF-8 takes at most 4 bytes a code point
            return False
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        if size > self.max_bytes:
            log.warning("ignoring %s: %d bytes is over the %d limit", uri, size, self.max_bytes)
            return True
        return False

    def open(self, uri: str, language_id: str, version: int, text: str) -> bool:
        """Open (or reopen) a document; False if its text is over the size limit."""
        self._forget(uri)
        if self._too_big(uri, text):
            return False
        while len(self._docs) >= max(self.max_documents, 1):
            evicted = next(iter(self._docs))
            self._forget(evicted)
            log.warning("too many open documents (%d): dropping %s", self.max_documents, evicted)
        self._docs[uri] = Document(uri, language_id, version, text, budget=self.budget)
        self.budget.set_text(uri, text_cost(text))
        self._fit_texts(keep=uri)
        return True

    def _forget(self, uri: str) -> bool:
        self.budget.forget(uri)
        doc = self._docs.pop(uri, None)
        if doc is not None:
            doc.drop_tree()
        return doc is not None

    def _fit_texts(self, keep: str) -> None:
        """Texts over the budget: the documents opened or changed longest ago are dropped."""
        while self.budget.texts_over() and len(self._docs) > 1:
            evicted = next(iter(self._docs))
            if evicted == keep:
                return
            self._forget(evicted)
            log.warning("memory budget: dropping %s (opened or changed longest ago)", evicted)

    def change(self, uri: str, version: int, changes: Iterable[Change]) -> bool:
        """Apply content changes in order; False (and logged) if ignored.

        Ignored: an unknown URI, or a version lower than the current one. A document that
        grows past the size limit is dropped, so later changes cannot apply to stale text.
        """
        doc = self._docs.get(uri)
        if doc is None:
            log.warning("change to unknown document %s ignored", uri)
            return False
        if version < doc.version:
            log.warning("stale change to %s ignored: version %d < %d", uri, version, doc.version)
            return False
        for range_or_none, text in changes:
            doc.apply_change(range_or_none, text, version, self.encoding)
        doc.version = version  # also when `changes` is empty
        if self._too_big(uri, doc.text):
            self._forget(uri)
            return False
        self._docs.move_to_end(uri)
        self._fit_texts(keep=uri)
        return True

    def close(self, uri: str) -> bool:
        """Forget a document; False if it was not open."""
        return self._forget(uri)

    def recent(self, limit: int, exclude: str = "") -> list[Document]:
        """Up to `limit` open documents, most recently opened or changed first."""
        out: list[Document] = []
        for uri in reversed(self._docs):
            if len(out) >= limit:
                break
            if uri != exclude:
                out.append(self._docs[uri])
        return out

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)
