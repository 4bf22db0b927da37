"""Document store: position encodings, line ends, clamping, incremental sync, bounds."""

import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moe_lsp.lsp.documents import (
    MAX_DOCUMENT_BYTES,
    MAX_OPEN_DOCUMENTS,
    SETTLE_SECONDS,
    Document,
    DocumentStore,
    PositionEncoding,
    Snapshot,
    negotiate_encoding,
    offset_at,
    position_at,
)

U8, U16, U32 = PositionEncoding.UTF8, PositionEncoding.UTF16, PositionEncoding.UTF32
ALL = (U8, U16, U32)
URI = "file:///a.py"


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        (None, U16),
        ([], U16),
        (["utf-16"], U16),
        (["utf-16", "utf-8"], U8),
        (["utf-32", "utf-16"], U32),
        (["utf-32", "utf-8"], U8),
        (["UTF-8"], U8),
        (["latin-1", 7], U16),
    ],
)
def test_negotiate_encoding(offered, expected):
    assert negotiate_encoding(offered) is expected


OFFSETS = [
    # ASCII
    ("abc", 0, 0, U16, 0),
    ("abc", 0, 2, U8, 2),
    ("abc\ndef", 1, 1, U32, 5),
    # emoji: one code point, two UTF-16 units, four UTF-8 bytes
    ("a😀b", 0, 3, U16, 2),
    ("a😀b", 0, 5, U8, 2),
    ("a😀b", 0, 2, U32, 2),
    ("a😀b", 0, 4, U16, 3),
    ("a😀b", 0, 6, U8, 3),
    # inside a surrogate pair / a UTF-8 sequence -> start of the code point
    ("a😀b", 0, 2, U16, 1),
    ("a😀b", 0, 2, U8, 1),
    ("a😀b", 0, 4, U8, 1),
    # CJK: three UTF-8 bytes, one UTF-16 unit each
    ("中文", 0, 3, U8, 1),
    ("中文", 0, 6, U8, 2),
    ("中文", 0, 4, U8, 1),
    ("中文", 0, 1, U16, 1),
    ("中文", 0, 2, U32, 2),
    ("x\n中文y", 1, 6, U8, 4),
    # CRLF and lone CR end lines
    ("ab\r\ncd", 1, 0, U16, 4),
    ("ab\r\ncd", 1, 2, U16, 6),
    ("ab\rcd", 1, 1, U16, 4),
    ("a\r\rb", 1, 0, U16, 2),
    ("a\r\rb", 2, 1, U16, 4),
    ("a\n\r\nb", 2, 0, U16, 4),
    # character past the line end -> end of line, never into the terminator
    ("ab\r\ncd", 0, 99, U16, 2),
    ("ab\rcd", 0, 3, U8, 2),
    ("ab\ncd", 0, 3, U32, 2),
    ("a😀\nb", 0, 99, U8, 2),
    ("abc", 0, 99, U16, 3),
    # BOM is an ordinary code point (U+FEFF: 1 UTF-16 unit, 3 UTF-8 bytes)
    ("\ufeffab", 0, 1, U16, 1),
    ("\ufeffab", 0, 3, U8, 1),
    ("\ufeffab", 0, 1, U8, 0),
    ("\ufeffab", 0, 2, U32, 2),
    # line past the end -> end of document
    ("ab\ncd", 2, 0, U16, 5),
    ("ab\n", 1, 0, U16, 3),
    ("ab\n", 1, 5, U16, 3),
    ("ab\n", 2, 0, U16, 3),
    ("", 0, 0, U8, 0),
    ("", 3, 3, U8, 0),
    # negative -> 0
    ("ab\ncd", 1, -5, U16, 3),
    ("ab\ncd", -1, 1, U16, 1),
    ("ab\ncd", -1, -1, U8, 0),
    # enormous ints
    ("ab\ncd", 10**30, 10**30, U8, 5),
    ("ab\ncd", 0, 10**30, U32, 2),
    ("ab\ncd", -(10**30), -(10**30), U16, 0),
]


@pytest.mark.parametrize(("text", "line", "char", "enc", "expected"), OFFSETS)
def test_offset_at(text, line, char, enc, expected):
    assert offset_at(text, line, char, enc) == expected


POSITIONS = [
    ("abc", 2, U16, (0, 2)),
    ("a😀b", 2, U16, (0, 3)),
    ("a😀b", 2, U8, (0, 5)),
    ("a😀b", 2, U32, (0, 2)),
    ("a😀b", 3, U16, (0, 4)),
    ("中文", 1, U8, (0, 3)),
    ("中文", 2, U8, (0, 6)),
    ("中文", 2, U16, (0, 2)),
    ("ab\r\ncd", 4, U16, (1, 0)),
    ("ab\r\ncd", 3, U16, (0, 2)),  # between \r and \n -> end of the line
    ("ab\r\ncd", 2, U16, (0, 2)),
    ("ab\rcd", 3, U8, (1, 0)),
    ("a\r\rb", 2, U16, (1, 0)),
    ("ab\n", 3, U16, (1, 0)),
    ("\ufeffab", 1, U8, (0, 3)),
    ("\ufeffab", 1, U16, (0, 1)),
    ("x\n中😀", 4, U8, (1, 7)),
    ("x\n中😀", 4, U16, (1, 3)),
    ("", 0, U8, (0, 0)),
    ("ab\ncd", 99, U16, (1, 2)),
    ("ab\ncd", -3, U16, (0, 0)),
    ("ab\ncd", 10**30, U8, (1, 2)),
]


@pytest.mark.parametrize(("text", "offset", "enc", "expected"), POSITIONS)
def test_position_at(text, offset, enc, expected):
    assert position_at(text, offset, enc) == expected


EDITS = [
    # (initial, encoding, changes, expected)
    ("abc", U16, [(((0, 1), (0, 1)), "X")], "aXbc"),  # insert
    ("abc", U16, [(((0, 3), (0, 3)), "\n")], "abc\n"),  # insert at end
    ("abc", U16, [(((0, 0), (0, 2)), "")], "c"),  # delete
    ("ab\ncd\nef", U16, [(((0, 1), (2, 1)), "Z")], "aZf"),  # replace spanning lines
    ("ab\ncd", U16, [(((0, 1), (1, 1)), "1\n2\n3")], "a1\n2\n3d"),
    ("ab\r\ncd", U16, [(((0, 2), (1, 0)), "")], "abcd"),  # delete a CRLF
    ("ab\r\ncd\r\n", U16, [(((1, 1), (1, 2)), "X\r\nY")], "ab\r\ncX\r\nY\r\n"),
    ("ab\r\ncd", U16, [(((0, 9), (0, 9)), "!")], "ab!\r\ncd"),  # never into the CRLF
    ("a\rb", U8, [(((1, 0), (1, 1)), "c")], "a\rc"),  # lone CR
    # the same emoji replacement in each encoding
    ("a😀b\n", U16, [(((0, 1), (0, 3)), "X")], "aXb\n"),
    ("a😀b\n", U8, [(((0, 1), (0, 5)), "X")], "aXb\n"),
    ("a😀b\n", U32, [(((0, 1), (0, 2)), "X")], "aXb\n"),
    ("中文", U8, [(((0, 3), (0, 6)), "国")], "中国"),
    ("中文", U16, [(((0, 1), (0, 2)), "国")], "中国"),
    # several changes apply in order, each on the result of the previous
    ("abc", U16, [(((0, 0), (0, 0)), "x"), (((0, 0), (0, 1)), "y")], "yabc"),
    ("abc", U16, [(None, "new\ntext"), (((1, 0), (1, 0)), ">")], "new\n>text"),
    # clamped: range past the end, reversed range
    ("abc", U16, [(((5, 0), (9, 9)), "!")], "abc!"),
    ("ab\ncd", U16, [(((1, 9), (1, 99)), "!")], "ab\ncd!"),
    ("abcd", U16, [(((0, 3), (0, 1)), "-")], "a-d"),
    ("ab", U16, [(((-1, -1), (0, 1)), "")], "b"),
]


@pytest.mark.parametrize(("initial", "enc", "changes", "expected"), EDITS)
def test_incremental_edits(initial, enc, changes, expected):
    store = DocumentStore(encoding=enc)
    store.open(URI, "python", 1, initial)
    assert store.change(URI, 2, changes) is True
    doc = store.get(URI)
    assert doc is not None
    assert (doc.text, doc.version) == (expected, 2)


@pytest.mark.parametrize(
    ("uri", "version", "reason"),
    [
        (URI, 4, "stale change"),  # version going backwards
        ("file:///unknown.py", 9, "unknown document"),
    ],
)
def test_ignored_changes(caplog, uri, version, reason):
    store = DocumentStore()
    store.open(URI, "python", 5, "abc")
    with caplog.at_level(logging.WARNING, logger="moe_lsp.lsp.documents"):
        assert store.change(uri, version, [(None, "zzz")]) is False
    assert reason in caplog.text
    doc = store.get(URI)
    assert doc is not None
    assert (doc.text, doc.version) == ("abc", 5)
    assert store.get("file:///unknown.py") is None


def test_same_version_is_accepted():
    store = DocumentStore()
    store.open(URI, "python", 5, "abc")
    assert store.change(URI, 5, [(None, "x")]) is True


def test_open_close_get():
    store = DocumentStore()
    assert store.get(URI) is None
    assert store.open(URI, "python", 1, "x = 1\n") is True
    assert URI in store and len(store) == 1
    doc = store.get(URI)
    assert doc is not None
    assert (doc.uri, doc.language_id, doc.version, doc.text) == (URI, "python", 1, "x = 1\n")
    assert store.close(URI) is True
    assert store.close(URI) is False
    assert store.get(URI) is None
    assert store.change(URI, 2, [(None, "y")]) is False


@pytest.mark.parametrize(
    ("text", "line", "char", "enc", "prefix", "suffix"),
    [
        ("def f():\n    return x", 1, 4, U16, "def f():\n    ", "return x"),
        ("a😀b", 0, 3, U16, "a😀", "b"),
        ("a😀b", 0, 5, U8, "a😀", "b"),
        ("a😀b", 0, 2, U32, "a😀", "b"),
        ("ab\r\ncd", 0, 99, U16, "ab", "\r\ncd"),
        ("ab", 7, 7, U16, "ab", ""),
    ],
)
def test_snapshot(text, line, char, enc, prefix, suffix):
    store = DocumentStore()
    store.open(URI, "python", 3, text)
    doc = store.get(URI)
    assert doc is not None
    snap = doc.snapshot(line, char, enc)
    assert isinstance(snap, Snapshot)
    assert (snap.uri, snap.version, snap.language_id, snap.text) == (URI, 3, "python", text)
    assert (snap.prefix, snap.suffix) == (prefix, suffix)
    assert snap.offset == len(prefix)
    store.change(URI, 4, [(None, "changed")])
    assert (snap.text, snap.version) == (text, 3)  # a snapshot does not follow edits
    with pytest.raises(AttributeError):
        snap.offset = 0  # type: ignore[misc]


def test_bounds_are_module_constants():
    assert MAX_OPEN_DOCUMENTS == 1000
    assert MAX_DOCUMENT_BYTES == 16 * 1024 * 1024
    store = DocumentStore()
    assert (store.max_documents, store.max_bytes) == (MAX_OPEN_DOCUMENTS, MAX_DOCUMENT_BYTES)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("a" * 16, True),
        ("a" * 17, False),
        ("中" * 5, True),  # 15 bytes
        ("中" * 6, False),  # 18 bytes, 6 code points
        ("😀" * 4, True),
        ("😀" * 5, False),
    ],
)
def test_size_limit_on_open(caplog, text, accepted):
    store = DocumentStore(max_bytes=16)
    with caplog.at_level(logging.WARNING, logger="moe_lsp.lsp.documents"):
        assert store.open(URI, "python", 1, text) is accepted
    assert (store.get(URI) is not None) is accepted
    assert ("limit" in caplog.text) is not accepted


def test_growing_past_the_size_limit_drops_the_document(caplog):
    store = DocumentStore(max_bytes=8)
    store.open(URI, "python", 1, "abc")
    with caplog.at_level(logging.WARNING, logger="moe_lsp.lsp.documents"):
        assert store.change(URI, 2, [(((0, 3), (0, 3)), "defghi")]) is False
    assert "limit" in caplog.text
    assert store.get(URI) is None
    assert store.change(URI, 3, [(((0, 0), (0, 0)), "x")]) is False  # no stale text to corrupt


def test_open_document_limit_evicts_least_recently_used(caplog):
    store = DocumentStore(max_documents=2)
    store.open("file:///1", "python", 1, "1")
    store.open("file:///2", "python", 1, "2")
    store.change("file:///1", 2, [(None, "one")])  # 1 is now the most recently used
    with caplog.at_level(logging.WARNING, logger="moe_lsp.lsp.documents"):
        store.open("file:///3", "python", 1, "3")
    assert "file:///2" in caplog.text
    assert len(store) == 2
    assert store.get("file:///2") is None
    assert store.get("file:///1") is not None and store.get("file:///3") is not None


def test_reopen_replaces():
    store = DocumentStore(max_documents=1)
    store.open(URI, "python", 7, "old")
    assert store.open(URI, "python", 1, "new") is True
    doc = store.get(URI)
    assert doc is not None and (doc.text, doc.version) == ("new", 1)


@pytest.mark.parametrize("enc", ALL)
@pytest.mark.parametrize("text", ["\ud800x\udc00\n\ud83d\ude00", "\r", "\n\n", "\r\n\r"])
def test_odd_texts_never_raise(text, enc):
    for line in (-(10**20), -1, 0, 1, 2, 3, 10**20):
        for char in (-(10**20), -1, 0, 1, 2, 3, 5, 10**20):
            offset = offset_at(text, line, char, enc)
            assert 0 <= offset <= len(text)
            assert offset_at(text, *position_at(text, offset, enc), enc) == offset


# --- properties -------------------------------------------------------------------------

PIECES = ["a", "b", " ", "\t", "\n", "\r", "\r\n", "😀", "𝄞", "中", "文", "é", "\ufeff"]
texts = st.one_of(st.lists(st.sampled_from(PIECES), max_size=30).map("".join), st.text(max_size=30))
positions = st.tuples(st.integers(-2, 12), st.integers(-2, 14))
encodings = st.sampled_from(ALL)
_CODEC = {U8: ("utf-8", 1), U16: ("utf-16-le", 2)}


def reference_offset(text: str, line: int, char: int, enc: PositionEncoding) -> int:
    """An independent, slow oracle built on str.encode / bytes.decode."""
    parts = re.split(r"(\r\n|\r|\n)", text)
    contents, seps = parts[0::2], parts[1::2]
    if line >= len(contents):
        return len(text)
    line, char = max(line, 0), max(char, 0)
    start = sum(len(c) + len(s) for c, s in zip(contents[:line], seps, strict=False))
    content = contents[line]
    if enc is U32:
        return start + min(char, len(content))
    codec, width = _CODEC[enc]
    kept = content.encode(codec)[: char * width].decode(codec, errors="ignore")
    return start + len(kept)


@settings(max_examples=300)
@given(texts, positions)
def test_offset_at_matches_oracle_and_round_trips(text, pos):
    for enc in ALL:
        off = offset_at(text, *pos, enc)
        assert off == reference_offset(text, *pos, enc)
        canonical = position_at(text, off, enc)
        assert offset_at(text, *canonical, enc) == off
        assert position_at(text, offset_at(text, *canonical, enc), enc) == canonical


@settings(max_examples=300)
@given(texts)
def test_position_at_round_trips_on_every_offset(text):
    for enc in ALL:
        for off in range(len(text) + 1):
            if 0 < off < len(text) and text[off - 1 : off + 1] == "\r\n":
                continue  # between \r and \n: no LSP position there
            assert offset_at(text, *position_at(text, off, enc), enc) == off


edits = st.lists(
    st.tuples(
        st.one_of(st.none(), st.tuples(positions, positions)),
        st.lists(st.sampled_from(PIECES), max_size=5).map("".join),
    ),
    max_size=8,
)


@settings(max_examples=300)
@given(texts, encodings, st.lists(edits, max_size=4))
def test_store_edits_match_plain_string(text, enc, batches):
    store = DocumentStore(encoding=enc)
    store.open(URI, "python", 0, text)
    expected = text
    for version, batch in enumerate(batches, start=1):
        for range_, new_text in batch:
            if range_ is None:
                expected = new_text
                continue
            a = reference_offset(expected, *range_[0], enc)
            b = reference_offset(expected, *range_[1], enc)
            a, b = min(a, b), max(a, b)
            expected = expected[:a] + new_text + expected[b:]
        assert store.change(URI, version, batch) is True
        doc = store.get(URI)
        assert doc is not None
        assert (doc.text, doc.version) == (expected, version)


# (edits as (seconds after open, new text), seconds of the read, expected settled text)
SETTLED = [
    ([], 0.0, "a"),  # as opened
    ([(0.5, "ab")], 1.0, "a"),  # still typing: the opened text
    ([(0.5, "ab")], 0.5 + SETTLE_SECONDS, "ab"),  # quiet long enough: the new text
    ([(0.5, "ab"), (1.5, "abc")], 0.5 + SETTLE_SECONDS, "a"),  # a newer edit restarts the wait
    ([(0.5, "ab"), (1.5, "abc")], 1.5 + SETTLE_SECONDS, "abc"),
    ([(0.5, "ab"), (9.0, "abc")], 3.0, "ab"),  # read before the second edit
]


@pytest.mark.parametrize(("edits", "read_at", "expected"), SETTLED)
def test_settled_text_changes_only_after_a_pause(monkeypatch, edits, read_at, expected):
    clock = [100.0]
    monkeypatch.setattr("moe_lsp.lsp.documents.time.monotonic", lambda: clock[0])
    doc = Document("file:///a.py", "python", 1, "a")
    for version, (at, text) in enumerate(edits, start=2):
        if at > read_at:
            break
        clock[0] = 100.0 + at
        doc.apply_change(None, text, version)
    clock[0] = 100.0 + read_at
    version, text = doc.settled()
    assert text == expected
    assert version == (1 if expected == "a" else 1 + [t for _, t in edits].index(expected) + 1)


def test_settled_text_is_kept_until_the_next_pause(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("moe_lsp.lsp.documents.time.monotonic", lambda: clock[0])
    doc = Document("file:///a.py", "python", 1, "a")
    doc.apply_change(None, "ab", 2)
    clock[0] = SETTLE_SECONDS
    assert doc.settled() == (2, "ab")
    for step in range(1, 20):  # typing on, 0.2 s between keys: the view stays
        clock[0] += 0.2
        doc.apply_change(None, "ab" + "x" * step, 2 + step)
        assert doc.settled() == (2, "ab")
    clock[0] += SETTLE_SECONDS
    assert doc.settled() == (21, "ab" + "x" * 19)
