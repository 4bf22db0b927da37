"""Profile detection and chat rendering on tokenizers built here with the real models' added
tokens (Nemotron 3 Super, Qwen3-Coder-30B-A3B, DeepSeek-Coder-V2-Lite, a Codestral-like one),
and a chat template reproducing Nemotron 3's thinking default."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from tokenizers import AddedToken, Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

from moe_lsp.inference.tokenizer import (
    FolderTokenizer,
    HfTokenizerAdapter,
    added_tokens_of,
    chat_template_of,
)
from moe_lsp.lsp.generation import Generation
from moe_lsp.lsp.service import choose_profile
from moe_lsp.prompts.chat_infill import REASONING_CAP_CHARS, extract_infill
from moe_lsp.prompts.postprocess import StopCheck
from moe_lsp.prompts.profiles import detect_profile
from moe_lsp.prompts.prompt import Mode, Prompt

from ..fakes import ScriptedEngine

# Mistral's Tekken control tokens, ids 0-19 (the `special_tokens` list of mistral-common's
# Tekken tokenizers, as llama.cpp and stable-diffusion.cpp spell them out); ids 20-999 are
# <SPECIAL_n> placeholders. Nemotron-H / Nemotron 3 keep this vocabulary and give some
# placeholders chat roles: <|im_start|>, <|im_end|>, <think>, </think> (its template's
# tokens; eos is <|im_end|>, bos <s>, unk <unk> in its special_tokens_map.json).
TEKKEN_CONTROL = [
    "<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]",
    "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]",
]  # fmt: skip
NEMOTRON_ROLES = ["<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>",
                  "</tool_call>"]  # fmt: skip

# Qwen3-Coder-30B-A3B-Instruct tokenizer_config.json added_tokens_decoder (ids 151643-151668):
# the FIM and repo tokens are added tokens with "special": false.
QWEN3_CODER = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False),
    ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False),
    ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
]  # fmt: skip

# DeepSeek-Coder tokenizer_config.json: sentence tokens special, FIM tokens not (the bars are
# U+FF5C, "▁" U+2581); V2-Lite has the same tokens from id 100000.
DEEPSEEK_CODER = [
    ("<\uff5cbegin▁of▁sentence\uff5c>", True), ("<\uff5cend▁of▁sentence\uff5c>", True),
    ("<\uff5cfim▁hole\uff5c>", False), ("<\uff5cfim▁begin\uff5c>", False),
    ("<\uff5cfim▁end\uff5c>", False), ("<|User|>", False), ("<|Assistant|>", False),
    ("<|EOT|>", True),
]  # fmt: skip

# Nemotron 3's published chat template, reduced to what decides the generation prompt: it
# reads `enable_thinking`, True unless given; thinking opens "<think>\n", off writes
# "<think></think>" (chat_template.jinja of the Nemotron 3 checkpoints).
NEMOTRON_TEMPLATE = (
    "{%- set enable_thinking = enable_thinking if enable_thinking is defined else True %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{%- if enable_thinking %}{{- '<|im_start|>assistant\\n<think>\\n' }}"
    "{%- else %}{{- '<|im_start|>assistant\\n<think></think>' }}{%- endif %}"
    "{%- endif %}"
)
# Qwen3's: the same switch, thinking off writes an empty closed block.
QWEN3_TEMPLATE = NEMOTRON_TEMPLATE.replace(
    "'<|im_start|>assistant\\n<think></think>'",
    "'<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n'",
)
PLAIN_TEMPLATE = (
    "{%- for message in messages %}{{- message['role'] + ': ' + message['content'] + '\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- 'assistant: ' }}{%- endif %}"
)


def build(added: list[tuple[str, bool]], template: str | None) -> PreTrainedTokenizerFast:
    """A word-level tokenizer with these added tokens (content, special) and chat template."""
    vocab = {"[UNK]": 0, "def": 1, "return": 2, "x": 3}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.add_tokens([AddedToken(text, special=special, normalized=False) for text, special in added])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, chat_template=template)
    specials = [t for t, special in added if special]
    if specials:
        fast.add_special_tokens({"additional_special_tokens": specials})
    return fast


MODELS: dict[str, tuple[list[tuple[str, bool]], str | None, str]] = {
    "nemotron-3-super": (
        [(t, True) for t in TEKKEN_CONTROL + NEMOTRON_ROLES],
        NEMOTRON_TEMPLATE,
        "nemotron_h",
    ),
    "qwen3-coder-30b-a3b": (QWEN3_CODER, QWEN3_TEMPLATE, "qwen3_moe"),
    "deepseek-coder-v2-lite": (DEEPSEEK_CODER, PLAIN_TEMPLATE, "deepseek_v2"),
    "codestral-like": ([(t, True) for t in TEKKEN_CONTROL], PLAIN_TEMPLATE, "mistral"),
}


@pytest.mark.parametrize(
    ("model", "profile"),
    [
        ("nemotron-3-super", "chat-infill"),
        ("qwen3-coder-30b-a3b", "qwen-fim"),
        ("deepseek-coder-v2-lite", "deepseek-fim"),
        ("codestral-like", "codestral-fim"),
    ],
)
def test_each_model_gets_its_profile_from_its_tokenizer(model: str, profile: str) -> None:
    added, template, model_type = MODELS[model]
    tok = HfTokenizerAdapter(build(added, template))
    has_chat = chat_template_of(tok._tok) is not None
    chosen, warning = choose_profile(
        tok.special_tokens,
        has_chat_template=has_chat,
        forced="auto",
        embedded_model=False,
        model_type=model_type,
    )
    assert (chosen.name, warning) == (profile, None)


@pytest.mark.parametrize("model", list(MODELS))
def test_a_folder_tokenizer_lists_the_same_added_tokens(model: str, tmp_path: Path) -> None:
    added, template, _ = MODELS[model]
    hf = build(added, template)
    hf.backend_tokenizer.save(str(tmp_path / "tokenizer.json"))
    from_folder = FolderTokenizer.from_folder(tmp_path).special_tokens
    assert set(from_folder) == set(HfTokenizerAdapter(hf).special_tokens) == {t for t, _ in added}


def test_all_special_tokens_alone_misses_qwens_fim_tokens() -> None:
    hf = build(QWEN3_CODER, QWEN3_TEMPLATE)
    assert "<|fim_prefix|>" not in hf.all_special_tokens  # why the full added list is read
    assert {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"} <= set(added_tokens_of(hf))


@pytest.mark.parametrize(
    ("model_type", "has_chat", "expected"),
    [
        ("nemotron_h", True, "chat-infill"),  # Tekken's [PREFIX]/[SUFFIX] are not its format
        ("NEMOTRON_H", True, "chat-infill"),
        ("nemotron_h", False, "codestral-fim"),  # no template: chat-infill is impossible
        ("mistral", True, "codestral-fim"),
        (None, True, "codestral-fim"),  # the config breaks the tie, the tokens alone do not
    ],
)
def test_the_model_type_breaks_the_tie_for_nemotron(
    model_type: str | None, has_chat: bool, expected: str
) -> None:
    tokens = TEKKEN_CONTROL + NEMOTRON_ROLES
    chosen = detect_profile(tokens, has_chat_template=has_chat, model_type=model_type)
    assert chosen.name == expected
    if expected == "chat-infill":
        assert "nemotron_h" in chosen.reason.lower()


def test_nemotron_template_thinks_by_default_and_not_when_asked() -> None:
    hf = build(MODELS["nemotron-3-super"][0], NEMOTRON_TEMPLATE)
    messages = [{"role": "user", "content": "fill"}]
    default = hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert default.endswith("<|im_start|>assistant\n<think>\n")  # the behaviour to defeat
    render = chat_template_of(hf)
    assert render is not None
    text = render(messages)
    assert text.endswith("<|im_start|>assistant\n<think></think>")
    # the reply then is the answer itself, read as code
    assert extract_infill("```python\nreturn x\n```", "def f():\n    ", "") == "return x"


def test_a_template_ignoring_the_flag_gets_its_reasoning_closed() -> None:
    always = NEMOTRON_TEMPLATE.replace(
        "enable_thinking if enable_thinking is defined else True", "True"
    )
    hf = build(MODELS["nemotron-3-super"][0], always)
    render = chat_template_of(hf)
    assert render is not None
    assert render([{"role": "user", "content": "fill"}]).endswith("<think>\n\n</think>\n\n")


CHAT = Prompt((1,), Mode.MULTI_LINE, "", 4000, "", False, "", "", 1, kind="chat")


@pytest.mark.parametrize(
    ("pieces", "reason", "code"),
    [
        # still reasoning past the cap: stopped early, nothing to show
        (["<think>\n"] + ["step " * 20] * 40, "complete", ""),
        # a short reasoning then code: runs to the end, the code is taken
        (["<think>\nok\n</think>\n", "```python\nreturn x\n```"], "stop", "return x"),
    ],
)
async def test_reasoning_is_capped(pieces: list[str], reason: str, code: str) -> None:
    engine = ScriptedEngine(pieces)
    gen = Generation(engine, CHAT, timeout=5, stop=StopCheck(CHAT))
    await gen.done()
    assert gen.reason == reason
    if reason == "complete":
        assert engine.yielded < len(pieces)  # stopped before the end
        assert len(gen.raw) < REASONING_CAP_CHARS + 200
    assert extract_infill(gen.raw, "def f():\n    ", "") == code


def test_the_cap_does_not_touch_a_fim_prompt() -> None:
    fim = replace(CHAT, kind="fim", mode=Mode.SINGLE_LINE)
    assert StopCheck(fim, syntax=False).done("<think>" + "x" * 5000) is False


@pytest.mark.parametrize(
    "switch",
    [
        # Qwen3, Nemotron 3
        "{%- set on = enable_thinking if enable_thinking is defined else True %}",
        "{%- set on = thinking if thinking is defined else True %}",  # DeepSeek-V3.1's variable
    ],
)
def test_every_known_thinking_switch_is_turned_off(switch: str) -> None:
    template = (
        switch + "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
        "{%- if on %}{{- '<think>\\n' }}{%- else %}{{- '</think>' }}{%- endif %}{%- endif %}"
    )
    render = chat_template_of(build(NEMOTRON_ROLES_ADDED, template))
    assert render is not None
    assert render([{"role": "user", "content": "x"}]) == "<|im_start|>assistant\n</think>"


NEMOTRON_ROLES_ADDED = [(t, True) for t in NEMOTRON_ROLES]
