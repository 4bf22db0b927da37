"""Tables of cases for prompt profiles: detection from family-shaped tokenizers, exact prompts."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from moe_lsp.prompts.profiles import (
    PROFILES,
    Kind,
    Order,
    PromptParts,
    Snippet,
    chat_messages,
    detect_profile,
    extract_infill,
    profile_by_name,
    render,
)

# --- small tokenizers shaped like each family's ----------------------------------------------

DS_BOS, DS_EOS = (
    "<\uff5cbegin\u2581of\u2581sentence\uff5c>",
    "<\uff5cend\u2581of\u2581sentence\uff5c>",
)
DS_FIM = (
    "<\uff5cfim\u2581begin\uff5c>",
    "<\uff5cfim\u2581hole\uff5c>",
    "<\uff5cfim\u2581end\uff5c>",
)


def byte_level(special: list[str], added: tuple[str, ...] | list[str] = ()) -> Tokenizer:
    """Byte-level BPE (Qwen, StarCoder, DeepSeek, SmolLM2 style): one token per byte, no merges."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(sorted(alphabet))}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(special)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in added])
    return tok


def sentencepiece_like(special: list[str]) -> Tokenizer:
    """Metaspace BPE (CodeLlama, Codestral-22B style): characters, '▁' for spaces."""
    chars = ["<unk>", "\u2581", *(chr(c) for c in range(33, 127)), "\n", "\t"]
    tok = Tokenizer(
        models.BPE(vocab={c: i for i, c in enumerate(chars)}, merges=[], unk_token="<unk>")
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.add_special_tokens(special)
    return tok


QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN_ADDED = [
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
]
STARCODER2 = [
    "<|endoftext|>",
    "<fim_prefix>",
    "<fim_middle>",
    "<fim_suffix>",
    "<fim_pad>",
    "<repo_name>",
    "<file_sep>",
    "<issue_start>",
]
SMOLLM2 = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<repo_name>",
    "<reponame>",
    "<file_sep>",
    "<filename>",
    "<gh_stars>",
]

# name -> (tokenizer factory, has a chat template)
MODELS = {
    "Qwen/Qwen2.5-Coder-1.5B": (lambda: byte_level(QWEN_SPECIAL, QWEN_ADDED), False),
    "Qwen/Qwen3-Coder-30B-A3B-Instruct": (lambda: byte_level(QWEN_SPECIAL, QWEN_ADDED), True),
    "google/codegemma-2b": (
        lambda: byte_level(
            ["<bos>", "<eos>"],
            ["<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|file_separator|>"],
        ),
        False,
    ),
    "deepseek-ai/deepseek-coder-1.3b-base": (
        lambda: byte_level([DS_BOS, DS_EOS, *DS_FIM, "<|EOT|>"]),
        False,
    ),
    "deepseek-ai/DeepSeek-Coder-V2-Lite-Base": (
        lambda: byte_level([DS_BOS, DS_EOS, *DS_FIM]),
        False,
    ),
    "bigcode/starcoder2-3b": (lambda: byte_level(STARCODER2), False),
    "bigcode/starcoderbase-1b": (
        lambda: byte_level(
            [
                "<|endoftext|>",
                "<fim_prefix>",
                "<fim_middle>",
                "<fim_suffix>",
                "<fim_pad>",
                "<reponame>",
                "<filename>",
            ]
        ),
        False,
    ),
    # Decoy: the name says Qwen, the tokens are StarCoder's (CodeQwen1.5 really is like this).
    "Qwen/CodeQwen1.5-7B": (
        lambda: byte_level(
            [
                "<|endoftext|>",
                "<fim_prefix>",
                "<fim_middle>",
                "<fim_suffix>",
                "<reponame>",
                "<file_sep>",
            ]
        ),
        True,
    ),
    # Decoy: the name says StarCoder, the tokens are Qwen's.
    "someone/starcoder-distilled-qwen": (lambda: byte_level(QWEN_SPECIAL, QWEN_ADDED), False),
    "codellama/CodeLlama-7b-hf": (
        lambda: sentencepiece_like(
            ["<s>", "</s>", "\u2581<PRE>", "\u2581<SUF>", "\u2581<MID>", "\u2581<EOT>"]
        ),
        False,
    ),
    "local/codellama-plain-tokens": (
        lambda: sentencepiece_like(["<s>", "</s>", "<PRE>", "<SUF>", "<MID>", "<EOT>"]),
        False,
    ),
    "mistralai/Codestral-22B-v0.1": (
        lambda: sentencepiece_like(
            ["<s>", "</s>", "[INST]", "[/INST]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]"]
        ),
        True,
    ),
    "HuggingFaceTB/SmolLM2-135M": (lambda: byte_level(SMOLLM2), False),
    "HuggingFaceTB/SmolLM2-135M-Instruct": (lambda: byte_level(SMOLLM2), True),
    "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B": (
        lambda: byte_level(["<s>", "</s>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]),
        True,
    ),
    "Qwen/Qwen2.5-Coder-7B + stray StarCoder tokens": (
        lambda: byte_level([*QWEN_SPECIAL, *STARCODER2], QWEN_ADDED),
        False,
    ),
    "one stray FIM token": (lambda: byte_level(["<|endoftext|>", "<fim_prefix>"]), False),
}


def added_tokens(tok: Tokenizer) -> list[str]:
    """What production passes to detect_profile: every added token's content."""
    return [t.content for t in tok.get_added_tokens_decoder().values()]


def detect(model: str):
    factory, chat = MODELS[model]
    return detect_profile(added_tokens(factory()), has_chat_template=chat)


@pytest.mark.parametrize(
    ("model", "profile", "summary"),
    [
        ("Qwen/Qwen2.5-Coder-1.5B", "qwen-fim", "FIM PSM, repo-level tokens"),
        ("Qwen/Qwen3-Coder-30B-A3B-Instruct", "qwen-fim", "FIM PSM, repo-level tokens"),
        ("google/codegemma-2b", "qwen-fim", "FIM PSM"),
        ("deepseek-ai/deepseek-coder-1.3b-base", "deepseek-fim", "FIM PSM"),
        ("deepseek-ai/DeepSeek-Coder-V2-Lite-Base", "deepseek-fim", "FIM PSM"),
        ("bigcode/starcoder2-3b", "starcoder-fim", "FIM PSM, repo-level tokens"),
        ("bigcode/starcoderbase-1b", "starcoder-fim", "FIM PSM"),
        ("Qwen/CodeQwen1.5-7B", "starcoder-fim", "FIM PSM"),
        ("someone/starcoder-distilled-qwen", "qwen-fim", "FIM PSM, repo-level tokens"),
        ("codellama/CodeLlama-7b-hf", "codellama-fim", "FIM PSM"),
        ("local/codellama-plain-tokens", "codellama-fim", "FIM PSM"),
        ("mistralai/Codestral-22B-v0.1", "codestral-fim", "FIM SPM"),
        ("HuggingFaceTB/SmolLM2-135M", "prefix-only", "prefix only, suffix not in the prompt"),
        (
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            "chat-infill",
            "chat template, fill-the-hole instructions",
        ),
        (
            "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B",
            "chat-infill",
            "chat template, fill-the-hole instructions",
        ),
        (
            "Qwen/Qwen2.5-Coder-7B + stray StarCoder tokens",
            "qwen-fim",
            "FIM PSM, repo-level tokens",
        ),
        ("one stray FIM token", "prefix-only", "prefix only, suffix not in the prompt"),
    ],
)
def test_detect_profile_from_tokenizer_tokens(model: str, profile: str, summary: str) -> None:
    chosen = detect(model)
    assert (chosen.name, chosen.summary) == (profile, summary)
    assert chosen.description.startswith(f"profile {profile} ({summary}) chosen")


@pytest.mark.parametrize(
    ("model", "description"),
    [
        (
            "Qwen/Qwen2.5-Coder-1.5B",
            "profile qwen-fim (FIM PSM, repo-level tokens) chosen from tokenizer tokens "
            "<|fim_prefix|>, <|fim_suffix|>, <|fim_middle|>, <|repo_name|>, <|file_sep|>",
        ),
        (
            "codellama/CodeLlama-7b-hf",
            "profile codellama-fim (FIM PSM) chosen from tokenizer tokens ▁<PRE>, ▁<SUF>, ▁<MID>",
        ),
        (
            "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B",
            "profile chat-infill (chat template, fill-the-hole instructions) chosen: no FIM "
            "tokens among the tokenizer's 6 added tokens, and it has a chat template",
        ),
        (
            "HuggingFaceTB/SmolLM2-135M",
            "profile prefix-only (prefix only, suffix not in the prompt) chosen: no FIM tokens "
            "among the tokenizer's 8 added tokens and no chat template",
        ),
    ],
)
def test_description_for_the_log(model: str, description: str) -> None:
    assert detect(model).description == description


def test_detection_ignores_the_special_flag_and_needs_no_name() -> None:
    # Qwen's FIM tokens are added tokens with special=False: a special-only list misses them.
    tok = MODELS["Qwen/Qwen2.5-Coder-1.5B"][0]()
    special_only = [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
    assert detect_profile(special_only, has_chat_template=False).name == "prefix-only"
    assert detect_profile(added_tokens(tok), has_chat_template=False).name == "qwen-fim"


# --- profiles by name ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "order"),
    [
        ("qwen-fim", Order.PSM),
        ("qwen-fim-spm", Order.SPM),
        ("deepseek-fim", Order.PSM),
        ("starcoder-fim", Order.PSM),
        ("starcoder-fim-spm", Order.SPM),
        ("codellama-fim", Order.PSM),
        ("codellama-fim-spm", Order.SPM),
        ("codestral-fim", Order.SPM),
        ("prefix-only", None),
        ("chat-infill", None),
        (" Qwen-FIM ", Order.PSM),
    ],
)
def test_profile_by_name(name: str, order: Order | None) -> None:
    profile = profile_by_name(name)
    assert profile.name == name.strip().lower()
    assert profile.order == order
    assert profile.description.endswith("forced by configuration")


def test_profile_by_name_unknown_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown prompt profile 'gpt-fim'") as err:
        profile_by_name("gpt-fim")
    for profile in PROFILES:
        assert profile.name in str(err.value)


X_CTX = "# Path: x.py\n# y\n# Path: m.py\n"


@pytest.mark.parametrize(
    ("name", "model", "text"),
    [
        # Forced onto a tokenizer, a profile takes its spelling and drops what it lacks.
        ("codellama-fim", "local/codellama-plain-tokens", "<s><PRE> " + X_CTX + "a  <SUF>b <MID>"),
        (
            "codellama-fim-spm",
            "local/codellama-plain-tokens",
            "<s><PRE> <SUF>b <MID> " + X_CTX + "a ",
        ),
        ("codellama-fim", "codellama/CodeLlama-7b-hf", "<s>▁<PRE> " + X_CTX + "a ▁<SUF>b▁<MID>"),
        (
            "qwen-fim",
            "google/codegemma-2b",
            "<|fim_prefix|>" + X_CTX + "a <|fim_suffix|>b<|fim_middle|>",
        ),
        (
            "qwen-fim",
            "Qwen/Qwen2.5-Coder-1.5B",
            "<|repo_name|>r\n<|file_sep|>x.py\ny\n<|file_sep|>m.py\n"
            "<|fim_prefix|>a <|fim_suffix|>b<|fim_middle|>",
        ),
        (
            "deepseek-fim",
            "bigcode/starcoder2-3b",
            DS_FIM[0] + X_CTX + "a " + DS_FIM[1] + "b" + DS_FIM[2],
        ),
    ],
)
def test_profile_by_name_fitted_to_a_tokenizer(name: str, model: str, text: str) -> None:
    profile = profile_by_name(name, added_tokens(MODELS[model][0]()))
    parts = PromptParts("a ", "b", path="m.py", repo_name="r", snippets=(Snippet("x.py", "y"),))
    assert render(profile, parts).text == text


# --- exact prompts ---------------------------------------------------------------------------

PREFIX = "def add(a, b):\n    return "
SUFFIX = "\n\nprint(add(1, 2))\n"
SNIPPETS = (
    Snippet("util/math.py", "def sub(a, b):\n    return a - b\n"),
    Snippet("README.md", "Adds numbers."),
)
BARE = PromptParts(PREFIX, SUFFIX, path="app/main.py")
CONTEXT = PromptParts(PREFIX, SUFFIX, path="app/main.py", repo_name="calc", snippets=SNIPPETS)
REPO_ONLY = PromptParts(PREFIX, SUFFIX, path="app/main.py", repo_name="calc")
NO_REPO_NAME = PromptParts(PREFIX, SUFFIX, path="app/main.py", snippets=SNIPPETS)
NO_PATH = PromptParts(PREFIX, SUFFIX, repo_name="calc", snippets=SNIPPETS[:1])
JS = PromptParts(
    "const s = ",
    ";\n",
    path="src/main.js",
    snippets=(Snippet("src/lib.js", "export function sum(xs) {\n\n  return 0;\n}\n"),),
    comment="//",
)

COMMENTED = (
    "# Path: util/math.py\n# def sub(a, b):\n#     return a - b\n"
    "# Path: README.md\n# Adds numbers.\n# Path: app/main.py\n"
)
QWEN_FILES = (
    "<|file_sep|>util/math.py\ndef sub(a, b):\n    return a - b\n\n"
    "<|file_sep|>README.md\nAdds numbers.\n"
)
SC2_FILES = (
    "<file_sep>util/math.py\ndef sub(a, b):\n    return a - b\n<file_sep>README.md\nAdds numbers.\n"
)
JS_COMMENTED = (
    "// Path: src/lib.js\n// export function sum(xs) {\n//\n//   return 0;\n// }\n"
    "// Path: src/main.js\n"
)
DS_PRE, DS_HOLE, DS_END = DS_FIM

RENDER_CASES = [
    (
        "qwen-fim",
        BARE,
        "<|fim_prefix|>def add(a, b):\n    return "
        "<|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>",
    ),
    (
        "qwen-fim",
        CONTEXT,
        "<|repo_name|>calc\n"
        + QWEN_FILES
        + "<|file_sep|>app/main.py\n<|fim_prefix|>"
        + PREFIX
        + "<|fim_suffix|>"
        + SUFFIX
        + "<|fim_middle|>",
    ),
    (
        "qwen-fim",
        REPO_ONLY,
        "<|repo_name|>calc\n<|file_sep|>app/main.py\n<|fim_prefix|>"
        + PREFIX
        + "<|fim_suffix|>"
        + SUFFIX
        + "<|fim_middle|>",
    ),
    (
        "qwen-fim",
        NO_REPO_NAME,
        QWEN_FILES
        + "<|file_sep|>app/main.py\n<|fim_prefix|>"
        + PREFIX
        + "<|fim_suffix|>"
        + SUFFIX
        + "<|fim_middle|>",
    ),
    (
        "qwen-fim",
        NO_PATH,
        "<|repo_name|>calc\n<|file_sep|>util/math.py\ndef sub(a, b):\n    return a - b\n\n"
        "<|file_sep|><|fim_prefix|>" + PREFIX + "<|fim_suffix|>" + SUFFIX + "<|fim_middle|>",
    ),
    ("qwen-fim-spm", BARE, "<|fim_prefix|><|fim_suffix|>" + SUFFIX + "<|fim_middle|>" + PREFIX),
    (
        "qwen-fim-spm",
        CONTEXT,
        "<|repo_name|>calc\n"
        + QWEN_FILES
        + "<|file_sep|>app/main.py\n<|fim_prefix|><|fim_suffix|>"
        + SUFFIX
        + "<|fim_middle|>"
        + PREFIX,
    ),
    ("deepseek-fim", BARE, DS_BOS + DS_PRE + PREFIX + DS_HOLE + SUFFIX + DS_END),
    ("deepseek-fim", CONTEXT, DS_BOS + DS_PRE + COMMENTED + PREFIX + DS_HOLE + SUFFIX + DS_END),
    ("starcoder-fim", BARE, "<fim_prefix>" + PREFIX + "<fim_suffix>" + SUFFIX + "<fim_middle>"),
    (
        "starcoder-fim",
        CONTEXT,
        "<repo_name>calc"
        + SC2_FILES
        + "<file_sep><fim_prefix>app/main.py\n"
        + PREFIX
        + "<fim_suffix>"
        + SUFFIX
        + "<fim_middle>",
    ),
    (
        "starcoder-fim",
        REPO_ONLY,
        "<repo_name>calc<file_sep><fim_prefix>app/main.py\n"
        + PREFIX
        + "<fim_suffix>"
        + SUFFIX
        + "<fim_middle>",
    ),
    (
        "starcoder-fim",
        NO_REPO_NAME,
        SC2_FILES
        + "<file_sep><fim_prefix>app/main.py\n"
        + PREFIX
        + "<fim_suffix>"
        + SUFFIX
        + "<fim_middle>",
    ),
    (
        "starcoder-fim",
        NO_PATH,
        "<repo_name>calc<file_sep>util/math.py\ndef sub(a, b):\n    return a - b\n"
        "<file_sep><fim_prefix>" + PREFIX + "<fim_suffix>" + SUFFIX + "<fim_middle>",
    ),
    ("starcoder-fim-spm", BARE, "<fim_prefix><fim_suffix>" + SUFFIX + "<fim_middle>" + PREFIX),
    (
        "starcoder-fim-spm",
        CONTEXT,
        "<repo_name>calc"
        + SC2_FILES
        + "<file_sep><fim_prefix><fim_suffix>"
        + SUFFIX
        + "<fim_middle>app/main.py\n"
        + PREFIX,
    ),
    ("codellama-fim", BARE, "<s>▁<PRE> " + PREFIX + "▁<SUF>" + SUFFIX + "▁<MID>"),
    ("codellama-fim", CONTEXT, "<s>▁<PRE> " + COMMENTED + PREFIX + "▁<SUF>" + SUFFIX + "▁<MID>"),
    ("codellama-fim-spm", BARE, "<s>▁<PRE>▁<SUF>" + SUFFIX + "▁<MID> " + PREFIX),
    ("codestral-fim", BARE, "<s>[SUFFIX]" + SUFFIX + "[PREFIX] " + PREFIX),
    ("codestral-fim", CONTEXT, "<s>[SUFFIX]" + SUFFIX + "[PREFIX] " + COMMENTED + PREFIX),
    ("prefix-only", BARE, PREFIX),
    ("prefix-only", CONTEXT, COMMENTED + PREFIX),
    (
        "prefix-only",
        JS,
        JS_COMMENTED + "const s = ",
    ),
    (
        "deepseek-fim",
        JS,
        DS_BOS + DS_PRE + JS_COMMENTED + "const s = " + DS_HOLE + ";\n" + DS_END,
    ),
    (
        "starcoder-fim",
        JS,
        "<file_sep>src/lib.js\nexport function sum(xs) {\n\n  return 0;\n}\n"
        "<file_sep><fim_prefix>src/main.js\nconst s = <fim_suffix>;\n<fim_middle>",
    ),
]


@pytest.mark.parametrize(("name", "parts", "text"), RENDER_CASES)
def test_render_exact_text(name: str, parts: PromptParts, text: str) -> None:
    rendered = render(profile_by_name(name), parts)
    assert rendered.text == text
    assert rendered.uses_suffix is (name != "prefix-only") is profile_by_name(name).uses_suffix
    assert rendered.kind is (Kind.PREFIX if name == "prefix-only" else Kind.FIM)


@pytest.mark.parametrize(
    ("name", "stop"),
    [
        (
            "qwen-fim",
            (
                "<|endoftext|>",
                "<|fim_prefix|>",
                "<|fim_middle|>",
                "<|fim_suffix|>",
                "<|fim_pad|>",
                "<|repo_name|>",
                "<|file_sep|>",
                "<|im_start|>",
                "<|im_end|>",
            ),
        ),
        (
            "qwen-fim-spm",
            (
                "<|endoftext|>",
                "<|fim_prefix|>",
                "<|fim_middle|>",
                "<|fim_suffix|>",
                "<|fim_pad|>",
                "<|repo_name|>",
                "<|file_sep|>",
                "<|im_start|>",
                "<|im_end|>",
            ),
        ),
        ("deepseek-fim", (DS_EOS, "<|EOT|>", *DS_FIM)),
        (
            "starcoder-fim",
            (
                "<|endoftext|>",
                "<file_sep>",
                "<fim_prefix>",
                "<fim_suffix>",
                "<fim_middle>",
                "<fim_pad>",
                "<repo_name>",
            ),
        ),
        ("codellama-fim", ("▁<EOT>", "</s>", "▁<PRE>", "▁<SUF>", "▁<MID>")),
        ("codestral-fim", ("</s>", "[SUFFIX]", "[PREFIX]")),
        ("prefix-only", ()),
    ],
)
def test_stop_strings(name: str, stop: tuple[str, ...]) -> None:
    assert render(profile_by_name(name), BARE).stop == stop


def test_snippets_come_first_so_the_prompt_start_is_stable() -> None:
    """Typing at the cursor changes only the end of the prefix: the text before it stays."""
    for profile in PROFILES:
        if profile.kind is Kind.CHAT:
            continue
        before = render(profile, CONTEXT).text
        after = render(profile, replace(CONTEXT, prefix=PREFIX + "a")).text
        end_of_prefix = before.index(PREFIX) + len(PREFIX)
        assert after[:end_of_prefix] == before[:end_of_prefix], profile.name


# --- special tokens stay whole when the prompt is tokenized ----------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "Qwen/Qwen2.5-Coder-1.5B",
        "google/codegemma-2b",
        "deepseek-ai/deepseek-coder-1.3b-base",
        "bigcode/starcoder2-3b",
        "Qwen/CodeQwen1.5-7B",
        "codellama/CodeLlama-7b-hf",
        "local/codellama-plain-tokens",
        "mistralai/Codestral-22B-v0.1",
    ],
)
@pytest.mark.parametrize("parts", [BARE, CONTEXT], ids=["bare", "context"])
def test_special_tokens_are_single_tokens(model: str, parts: PromptParts) -> None:
    tok = MODELS[model][0]()
    profile = detect(model)
    text = render(profile, parts).text
    ids = tok.encode(text, add_special_tokens=False).ids
    controls = [t for t in added_tokens(tok) if t in text]
    assert set(profile.markers) <= set(controls)
    for token in controls:
        assert ids.count(tok.token_to_id(token)) == text.count(token), token
    assert tok.decode(ids, skip_special_tokens=False).replace("▁", " ").replace(" ", "") == (
        text.replace("▁", " ").replace(" ", "")
    )


# --- chat infill -----------------------------------------------------------------------------


def chatml(messages: list[dict[str, str]]) -> str:
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


def user_only(messages: list[dict[str, str]]) -> str:
    if any(m["role"] == "system" for m in messages):
        raise ValueError("System role not supported")
    return chatml(messages)


SYSTEM = (
    "You are a code completion engine. The user shows a file with a hole marked <CURSOR>. "
    "Reply with only the code that goes in place of <CURSOR>, in one fenced code block. "
    "Do not repeat code that is already before or after the hole, and do not explain."
)
USER_BARE = (
    "File app/main.py, with the hole marked <CURSOR>:\n```\n"
    "def add(a, b):\n    return <CURSOR>\n\nprint(add(1, 2))\n```\n\n"
    "Reply with the code that replaces <CURSOR>."
)
USER_CONTEXT = (
    "Code from other files of repository calc, for reference:\n\n"
    "util/math.py:\n```\ndef sub(a, b):\n    return a - b\n```\n\n"
    "README.md:\n```\nAdds numbers.\n```\n\n" + USER_BARE
)


@pytest.mark.parametrize(
    ("parts", "template", "text"),
    [
        (
            BARE,
            chatml,
            f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{USER_BARE}<|im_end|>\n<|im_start|>assistant\n",
        ),
        (
            CONTEXT,
            chatml,
            f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{USER_CONTEXT}<|im_end|>\n<|im_start|>assistant\n",
        ),
        (
            BARE,
            user_only,
            f"<|im_start|>user\n{SYSTEM}\n\n{USER_BARE}<|im_end|>\n<|im_start|>assistant\n",
        ),
    ],
)
def test_chat_infill_exact_text(parts: PromptParts, template, text: str) -> None:
    rendered = render(profile_by_name("chat-infill"), parts, template)
    assert (rendered.text, rendered.stop, rendered.uses_suffix, rendered.kind) == (
        text,
        (),
        True,
        Kind.CHAT,
    )


@pytest.mark.parametrize(
    ("parts", "marker", "fence"),
    [
        (BARE, "<CURSOR>", "```"),
        (PromptParts("s = '<CURSOR>' + ", "\n"), "{{FILL_HERE}}", "```"),
        (PromptParts("<CURSOR> {{FILL_HERE}} ", "<<<HOLE>>>"), "<CURSOR0>", "```"),
        (PromptParts('doc = """\n```py\nx\n```\n', '"""\n'), "<CURSOR>", "````"),
        (PromptParts("x = ", "", snippets=(Snippet("a.md", "`````"),)), "<CURSOR>", "``````"),
    ],
)
def test_chat_marker_and_fence_avoid_the_code(parts: PromptParts, marker: str, fence: str) -> None:
    system, user = chat_messages(parts)
    assert f"hole marked {marker}" in system["content"]
    assert f"{parts.prefix}{marker}{parts.suffix}" in user["content"]
    assert f"\n{fence}\n" in user["content"] and f"\n{fence}`" not in user["content"]


def test_chat_infill_with_a_real_tokenizer_chat_template() -> None:
    """The production callable: the tokenizer's apply_chat_template with a generation prompt."""
    hf = PreTrainedTokenizerFast(
        tokenizer_object=MODELS["nvidia/NVIDIA-Nemotron-3-Super-120B-A12B"][0](),
        chat_template=(
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        ),
    )
    template = lambda messages: hf.apply_chat_template(  # noqa: E731
        messages, add_generation_prompt=True, tokenize=False
    )
    text = render(profile_by_name("chat-infill"), BARE, template).text
    assert text == chatml(chat_messages(BARE))
    ids = hf.encode(text, add_special_tokens=False)
    assert ids.count(hf.convert_tokens_to_ids("<|im_start|>")) == 3


def test_chat_infill_needs_a_template() -> None:
    with pytest.raises(ValueError, match="chat template"):
        render(profile_by_name("chat-infill"), BARE)


# --- reading the chat reply ------------------------------------------------------------------

FN_PREFIX = "def add(a, b):\n    return "
FN_SUFFIX = "\n\nprint(add(1, 2))\n"


@pytest.mark.parametrize(
    ("reply", "prefix", "suffix", "expected"),
    [
        # fences, prose, bare code
        ("```python\na + b\n```", FN_PREFIX, FN_SUFFIX, "a + b"),
        ("a + b", FN_PREFIX, FN_SUFFIX, "a + b"),
        ("a + b\n", FN_PREFIX, FN_SUFFIX, "a + b"),
        ("`a + b`", FN_PREFIX, FN_SUFFIX, "a + b"),
        (
            "Here is the missing code:\n\n```python\na + b\n```\n\nThis returns the sum.",
            FN_PREFIX,
            FN_SUFFIX,
            "a + b",
        ),
        ("~~~\na + b\n~~~", FN_PREFIX, FN_SUFFIX, "a + b"),
        ("```\n\na + b\n\n```", FN_PREFIX, FN_SUFFIX, "a + b"),
        ("```python\na + b\n```\n```python\nprint('other')\n```", FN_PREFIX, FN_SUFFIX, "a + b"),
        ("```python\na + b", FN_PREFIX, FN_SUFFIX, "a + b"),  # cut by max_tokens
        ("```python\na + b```", FN_PREFIX, FN_SUFFIX, "a + b"),
        # reasoning models
        ("<think>they want the sum</think>\n```python\na + b\n```", FN_PREFIX, FN_SUFFIX, "a + b"),
        ("<think>still thinking about", FN_PREFIX, FN_SUFFIX, ""),
        # echoed code around the hole
        ("```python\n    return a + b\n```", FN_PREFIX, FN_SUFFIX, "a + b"),
        ("```python\nreturn a + b\n```", FN_PREFIX, FN_SUFFIX, "a + b"),
        ("```python\ndef add(a, b):\n    return a + b\n```", FN_PREFIX, FN_SUFFIX, "a + b"),
        ("```python\na + b\n\nprint(add(1, 2))\n```", FN_PREFIX, FN_SUFFIX, "a + b"),
        (
            "```python\ndef add(a, b):\n    return a + b\n\nprint(add(1, 2))\n```",
            FN_PREFIX,
            FN_SUFFIX,
            "a + b",
        ),
        (
            "```\n    total = sum(xs)\n    return total\n```",
            "def f(xs):\n    ",
            "\n",
            "total = sum(xs)\n    return total",
        ),
        ("```js\n1, 2);\n```", "const s = add(", ");\nlog(s);\n", "1, 2"),
        # text that only looks like an echo stays
        ("```\nlen(items)\n```", "print(", ")\n", "len(items)"),
        ("(1)", "x = foo", "", "(1)"),
        ("a + b  # sum", FN_PREFIX, FN_SUFFIX, "a + b  # sum"),
        # nothing
        ("", FN_PREFIX, FN_SUFFIX, ""),
        ("   \n\n", FN_PREFIX, FN_SUFFIX, ""),
        ("```python\n```", FN_PREFIX, FN_SUFFIX, ""),
        ("```python\n    return \n```", FN_PREFIX, FN_SUFFIX, ""),
    ],
)
def test_extract_infill(reply: str, prefix: str, suffix: str, expected: str) -> None:
    assert extract_infill(reply, prefix, suffix) == expected
