"""Shared test helpers: a small deterministic tokenizer for pure prompt tests."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import pytest
from hypothesis import settings

# CI replays the same examples on every run, so a merge is never blocked by a new random find;
# local runs explore fresh examples each time (and keep failures in .hypothesis/).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Tests (and the servers they start) never read the developer's own config file.
os.environ.setdefault("MOE_LSP_CONFIG", "")

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
