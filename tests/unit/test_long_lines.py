"""Keystrokes on a very long line (minified code): position conversion in chunks, no tree."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moe_lsp.lsp import documents
from moe_lsp.lsp.documents import (
    CHUNK_CHARS,
    DocumentStore,
    LineIndex,
    PositionEncoding,
    offset_at,
    position_at,
)
from moe_lsp.prompts.languages import language_for
from moe_lsp.prompts.syntax import MAX_LINE_BYTES, SyntaxTree, has_long_line

ENCODINGS = list(PositionEncoding)
MINIFIED = 'var a="é😀中";' * 200_000  # 2.2 million characters on one line, not ASCII


def reference_offset(text: str, line: int, character: int, enc: PositionEncoding) -> int:
    """The conversion one code point at a time (what offset_at did before chunks)."""
    index = LineIndex(text)
    if line >= len(index.starts):
        return len(text)
    start, end = index.starts[max(line, 0)], index.ends[max(line, 0)]
    if enc is PositionEncoding.UTF32:
        return min(start + max(character, 0), end)
    offset, units = start, 0
    while offset < end and character > 0:
        units += documents._units(text[offset], enc)
        if units > character:
            break
        offset += 1
    return offset


EDGE = CHUNK_CHARS - 1
TEXTS = [
    "a" * EDGE + "😀" + "b" * 10,  # an astral character across a chunk's end
    "中" * (CHUNK_CHARS * 3 + 5) + "\nx",
    "é" * CHUNK_CHARS + "😀" * CHUNK_CHARS + "\r\nend",
    "x😀" * (CHUNK_CHARS + 3),
]


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
@pytest.mark.parametrize("enc", ENCODINGS)
def test_chunked_conversion_matches_the_reference(text: str, enc: PositionEncoding) -> None:
    length = documents._length(text.split("\n")[0].rstrip("\r"), enc)
    for character in [
        0,
        1,
        EDGE,
        EDGE + 1,
        EDGE + 2,
        CHUNK_CHARS * 2 + 1,
        length - 1,
        length,
        10**9,
    ]:
        got = offset_at(text, 0, character, enc)
        assert got == reference_offset(text, 0, character, enc), (enc, character)
        if character <= length:
            assert position_at(text, got, enc)[1] <= character


def test_a_position_on_a_long_line_costs_one_chunk_of_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Per character steps are bounded by one chunk whatever the line's length (the rest is
    measured by the codec, in C); one by one, 2.2 million steps took ~0.5 s a keystroke."""
    steps = 0
    units = documents._units

    def counted(char: str, enc: PositionEncoding) -> int:
        nonlocal steps
        steps += 1
        return units(char, enc)

    monkeypatch.setattr(documents, "_units", counted)
    index = LineIndex(MINIFIED)
    for character in (len(MINIFIED) // 2, len(MINIFIED) * 2 - 7):
        steps = 0
        offset_at(MINIFIED, 0, character, PositionEncoding.UTF16, index)
        assert steps <= CHUNK_CHARS


@pytest.mark.parametrize(
    ("source", "start", "end", "long"),
    [
        (b"x" * MAX_LINE_BYTES, 0, 0, False),
        (b"x" * (MAX_LINE_BYTES + 1), 5, 5, True),
        (b"short\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\nshort", 2, 2, False),
        (b"short\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\nshort", 8, 8, True),
        (b"a\n" * MAX_LINE_BYTES, 0, 2 * MAX_LINE_BYTES, False),
        (b"a\n" * 10 + b"y" * (MAX_LINE_BYTES + 1), 0, 21, True),
    ],
)
def test_has_long_line(source: bytes, start: int, end: int, long: bool) -> None:
    assert has_long_line(source, start, end) is long


def test_minified_code_is_plain_text() -> None:
    js = language_for("javascript", "a.min.js")
    assert SyntaxTree.create(js, "x;\n" + "a=1;" * 3000) is not None
    assert SyntaxTree.create(js, "x;\n" + "a=1;" * 3000 + "b" * MAX_LINE_BYTES) is None
    tree = SyntaxTree.create(js, "x;\n" + "a=1;" * 4000)
    assert tree is not None
    tree.apply_edit(3, 3, "c" * MAX_LINE_BYTES)  # an edit that makes a line too long
    assert tree.tree is None


def test_keystrokes_on_a_long_line_do_not_scan_it_one_character_at_a_time() -> None:
    store = DocumentStore()
    uri = "file:///w/app.min.js"
    assert store.open(uri, "javascript", 1, MINIFIED)
    length = documents._length(MINIFIED, PositionEncoding.UTF16)
    t0 = time.perf_counter()
    for i in range(20):
        at = (0, length - 100 + i)
        store.change(uri, 2 + i, [((at, at), "x")])
    per_keystroke = (time.perf_counter() - t0) / 20
    doc = store.get(uri)
    assert doc is not None and doc.tree is None
    assert doc.text[len(MINIFIED) - 100 - 14 :].count("x") >= 20
    assert per_keystroke < 0.2, f"{per_keystroke * 1000:.0f} ms a keystroke"


PIECES = st.text(alphabet="ab\r\n😀", max_size=12)


@settings(max_examples=400, deadline=None)
@given(text=PIECES, new=PIECES, a=st.integers(0, 12), b=st.integers(0, 12))
def test_line_index_update_matches_a_rebuild(text: str, new: str, a: int, b: int) -> None:
    """Only the edit and one character either side are searched ("\\r\\n" forms or breaks)."""
    start, end = sorted((min(a, len(text)), min(b, len(text))))
    index = LineIndex(text)
    edited = text[:start] + new + text[end:]
    index.edited(edited, start, end, len(new))
    fresh = LineIndex(edited)
    assert (index.starts, index.ends) == (fresh.starts, fresh.ends)


def test_positions_after_keystrokes_match_a_fresh_document() -> None:
    """The anchor kept on a long line and the updated line index give the same answers as a
    document opened with the resulting text."""
    store = DocumentStore()
    uri = "file:///w/a.js"
    line = "é😀x" * (CHUNK_CHARS // 2)
    store.open(uri, "javascript", 1, "top\n" + line + "\nend")
    doc = store.get(uri)
    assert doc is not None
    edits = [((1, 10), (1, 10), "A"), ((1, 11), (1, 11), "\r"), ((2, 0), (2, 0), "\n")]
    edits += [((1, 5000), (1, 5003), "z"), ((1, 4000), (1, 4000), "q")]
    for version, (s, e, new) in enumerate(edits, 2):
        store.change(uri, version, [((s, e), new)])
    fresh = DocumentStore()
    fresh.open(uri, "javascript", 1, doc.text)
    other = fresh.get(uri)
    assert other is not None
    for enc in ENCODINGS:
        for pos in [(1, 0), (1, 3), (1, 4095), (1, 4999), (2, 7), (3, 5000), (3, 99999)]:
            assert (
                doc.offset_at(*pos, enc)
                == other.offset_at(*pos, enc)
                == offset_at(doc.text, *pos, enc)
            ), (enc, pos)
