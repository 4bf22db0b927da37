"""Reasoning models answer with code: thinking off in the template, `</think>` kept in replies."""

from __future__ import annotations

from dataclasses import replace

import pytest

from moe_lsp.inference.engine import Sampling
from moe_lsp.inference.openai_wire import completion_body
from moe_lsp.inference.tokenizer import chat_template_of, close_thinking
from moe_lsp.lsp.generation import Generation
from moe_lsp.prompts.chat_infill import extract_infill
from moe_lsp.prompts.prompt import Mode, Prompt

from ..fakes import ScriptedEngine


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("<|im_start|>assistant\n<think>\n", "<|im_start|>assistant\n<think>\n\n</think>\n\n"),
        ("<|im_start|>assistant\n<think>", "<|im_start|>assistant\n<think>\n\n</think>\n\n"),
        ("<|im_start|>assistant\n", "<|im_start|>assistant\n"),
        (
            "<|im_start|>assistant\n<think>\n\n</think>\n\n",
            "<|im_start|>assistant\n<think>\n\n</think>\n\n",
        ),
    ],
)
def test_an_opened_reasoning_block_is_closed(prompt: str, expected: str) -> None:
    assert close_thinking(prompt) == expected


class FakeTemplate:
    """A tokenizer whose template thinks unless told `enable_thinking=False`."""

    chat_template = "{{ messages }}"

    def __init__(self, honours_flag: bool) -> None:
        self.honours_flag = honours_flag
        self.seen: dict = {}

    def apply_chat_template(self, messages, **kwargs):
        self.seen = kwargs
        thinking = not (self.honours_flag and kwargs.get("enable_thinking") is False)
        return "<|im_start|>assistant\n" + ("<think>\n" if thinking else "")


@pytest.mark.parametrize("honours_flag", [True, False])
def test_the_chat_template_is_asked_not_to_think(honours_flag: bool) -> None:
    tok = FakeTemplate(honours_flag)
    render = chat_template_of(tok)
    assert render is not None
    text = render([{"role": "user", "content": "x"}])
    assert tok.seen["enable_thinking"] is False
    assert not text.rstrip().endswith("<think>")


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("<think>\nlet me see\n</think>\n```python\nreturn 1\n```", "return 1"),
        ("\n</think>\n\n```python\nreturn 2\n```", "return 2"),
        ("<think>\nstill thinking", ""),
    ],
)
def test_the_code_after_reasoning_is_taken(reply: str, code: str) -> None:
    assert extract_infill(reply, "def f():\n    ", "\n") == code


LINE = Prompt((1,), Mode.SINGLE_LINE, "", 8, "", False, "", "", 1)


@pytest.mark.parametrize(("kind", "skip"), [("chat", False), ("prefix", True), ("fim", True)])
async def test_chat_replies_keep_special_tokens(kind: str, skip: bool) -> None:
    engine = ScriptedEngine(["x"])
    gen = Generation(engine, replace(LINE, kind=kind), timeout=5)
    await gen.done()
    assert engine.requests[0][2].skip_special_tokens is skip


@pytest.mark.parametrize(("skip", "sent"), [(True, None), (False, False)])
def test_the_remote_engine_is_told_to_keep_special_tokens(skip: bool, sent: bool | None) -> None:
    body = completion_body("m", [1, 2], Sampling(skip_special_tokens=skip))
    assert body.get("skip_special_tokens") is sent
