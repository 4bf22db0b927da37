"""Tables of cases for the adaptive debounce."""

from __future__ import annotations

import pytest

from moe_lsp.lsp.debounce import MAX_DOCUMENTS, Debouncer, debounce_ms


@pytest.mark.parametrize(
    ("interval", "floor", "ceiling", "expected"),
    [
        (None, 0, 120, 0),  # first request: no wait
        (1000, 0, 120, 0),  # after a pause: no wait
        (100, 0, 120, 60),  # typing at 10 keys/s: wait 60 ms
        (300, 0, 120, 120),  # capped at the ceiling
        (10, 20, 120, 20),  # at least the floor
    ],
)
def test_debounce_ms(interval, floor, ceiling, expected) -> None:
    assert debounce_ms(interval, floor, ceiling) == pytest.approx(expected)


def test_rhythm_per_document() -> None:
    d = Debouncer(0, 120)
    assert d.delay("a", now=0.0) == 0
    assert d.delay("a", now=0.1) == pytest.approx(0.06)
    assert d.delay("b", now=0.15) == 0  # another document has its own rhythm
    assert d.delay("a", now=2.0) == 0  # a pause resets


def test_bounded() -> None:
    d = Debouncer()
    for i in range(MAX_DOCUMENTS + 50):
        d.delay(f"u{i}", now=float(i))
    assert len(d) == MAX_DOCUMENTS
