"""Shared test helpers: a small deterministic tokenizer for pure prompt tests."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

_PIECES = re.compile(r"\n[ \t]*|[ \t]+(?=\S)|[ \t]+|\s|\w+| ?[^\w\s]")


class WordTokenizer:
    """Splits into words, single punctuation, and whitespace runs; ids assigned on first sight."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.inverse: dict[int, str] = {}

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in _PIECES.findall(text):
            if piece not in self.vocab:
                self.vocab[piece] = len(self.vocab)
                self.inverse[self.vocab[piece]] = piece
            ids.append(self.vocab[piece])
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.inverse[i] for i in ids)


@pytest.fixture
def tok() -> WordTokenizer:
    return WordTokenizer()
