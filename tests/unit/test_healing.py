"""Constrained healing: the tokens that may start a completion, and the two-step generation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import pytest

from moe_lsp.inference.engine import Delta, Sampling
from moe_lsp.lsp.generation import Generation
from moe_lsp.prompts.healing import MAX_ALLOWED, HealIndex, allowed_first_tokens
from moe_lsp.prompts.prompt import Mode, Prompt

from ..fakes import ScriptedEngine

VOCAB = [(0, " begin"), (1, " beginning"), (2, " end"), (3, "\n    "), (4, "\n"), (5, "\ufffd")]


@pytest.mark.parametrize(
    ("prefix", "ids"),
    [
        (" begin", (0, 1)),
        (" beginning", (1,)),
        (" beginnings", ()),
        ("\n", (4, 3)),
        ("\n    ", (3,)),
        ("x", ()),
        ("", (4, 3, 0, 1, 2)),  # every token, in text order; undecodable ones left out
    ],
)
def test_starting_with(prefix: str, ids: tuple[int, ...]) -> None:
    assert HealIndex(VOCAB).starting_with(prefix) == ids


@pytest.mark.parametrize(
    ("text", "ids"),
    [(" beginning", (0,)), ("\n    ", (4,)), (" begin", ()), ("x", ()), ("", ())],
)
def test_prefixes_of(text: str, ids: tuple[int, ...]) -> None:
    assert HealIndex(VOCAB).prefixes_of(text) == ids


class Listed:
    """A tokenizer that lists its vocabulary."""

    def __init__(self, vocab: list[tuple[int, str]]) -> None:
        self.vocab = vocab

    def vocabulary(self) -> list[tuple[int, str]]:
        return self.vocab


@pytest.mark.parametrize(
    ("tok", "heal", "ids"),
    [
        (Listed(VOCAB), " begin", (0, 1)),
        # a token that is a start of the healed text is allowed too (the model's own split)
        (Listed(VOCAB), " beginning", (0, 1)),
        (Listed(VOCAB), "\n    ", (4, 3)),
        (Listed(VOCAB), "", ()),  # nothing healed: no constraint
        (object(), " begin", ()),  # no vocabulary listing: no constraint
        (Listed([(i, f" w{i}") for i in range(MAX_ALLOWED + 1)]), " w", ()),  # too many
    ],
)
def test_allowed_first_tokens(tok: object, heal: str, ids: tuple[int, ...]) -> None:
    assert allowed_first_tokens(tok, heal) == ids


class Constrained(ScriptedEngine):
    """Answers a constrained one-token request with the first allowed token, then the pieces."""

    async def stream(
        self, request_id: str, prompt_ids: Sequence[int], sampling: Sampling
    ) -> AsyncIterator[Delta]:
        self.requests.append((request_id, tuple(prompt_ids), sampling))
        if sampling.allowed_token_ids:
            tid = sampling.allowed_token_ids[0]
            yield Delta(dict(VOCAB)[tid], 1, True, "length", token_ids=(tid,))
            return
        for i, piece in enumerate(self.pieces):
            yield Delta(piece, 1, i == len(self.pieces) - 1, "stop", token_ids=(100 + i,))


LINE = Prompt((9, 9), Mode.SINGLE_LINE, " beginning", 48, "", False, "", "", 10)


async def test_the_first_token_is_chosen_among_the_healing_tokens() -> None:
    engine = Constrained([" of", " the", " line", "\n"])
    gen = Generation(engine, replace(LINE, heal_token_ids=(1,)), timeout=5)
    await gen.done()
    (_, _, first), (_, rest_ids, rest) = engine.requests
    assert first.max_tokens == 1 and first.allowed_token_ids == (1,)
    assert rest_ids == (9, 9, 1) and rest.max_tokens == 47 and not rest.allowed_token_ids
    assert gen.raw == " beginning of the line\n" and gen.reason == "stop"


async def test_without_healing_tokens_one_request_is_made() -> None:
    engine = Constrained([" of", "\n"])
    gen = Generation(engine, replace(LINE, heal=""), timeout=5)
    await gen.done()
    assert len(engine.requests) == 1 and gen.raw == " of\n"
