"""Prompt profiles per model family: FIM tokens and order, repo-level context, stops, chat."""

# Formats, and where each comes from (checked against the families' own docs and code):
#
# qwen-fim       Qwen2.5-Coder / Qwen3-Coder (incl. Qwen3-Coder-30B-A3B):
#                  <|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>
#                Repo level (Qwen2.5-Coder tech report, arXiv 2409.12186, fig. 4, and
#                examples/Qwen2.5-Coder-repolevel-fim.py in QwenLM/Qwen2.5-Coder):
#                  <|repo_name|>{repo}\n<|file_sep|>{path}\n{text}\n ...
#                  <|file_sep|>{current path}\n<|fim_prefix|>{prefix}<|fim_suffix|>...
#                Stops: the eos_token_id list of that example (fim/repo tokens, <|im_end|>,
#                <|endoftext|>). The FIM tokens are added tokens with "special": false there.
# deepseek-fim   DeepSeek-Coder v1 and V2(-Lite) READMEs (bars are U+FF5C, "▁" is U+2581):
#                  <|fim▁begin|>{prefix}<|fim▁hole|>{suffix}<|fim▁end|>
#                after the BOS <|begin▁of▁sentence|> the HF tokenizer adds. PSM only (paper).
# starcoder-fim  StarCoder / StarCoder2: <fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>. Repo
#                level (StarCoder2 paper, arXiv 2402.19173, sec. 5.1): no newline after the repo
#                name, and <fim_prefix> comes BEFORE the current file's path:
#                  <repo_name>{repo}<file_sep>{path}\n{text}
#                  <file_sep><fim_prefix>{current path}\n{prefix}<fim_suffix>...
# codellama-fim  facebookresearch/codellama `infilling_prompt_tokens`:
#                  [BOS, ▁<PRE>] + encode(pre) + [▁<SUF>] + encode_infilling(suf) + [▁<MID>]
#                i.e. "<PRE> {pre} <SUF>{suf} <MID>": the space after <PRE> is SentencePiece's
#                dummy prefix on the prefix, the spaces before <SUF>/<MID> belong to the tokens,
#                which HF tokenizers spell "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>". SPM
#                (suffix_first): "<PRE> <SUF>{suf} <MID> {pre}". Stop: <EOT>.
# codestral-fim  mistral-common encode_fim and Mistral's tokenization guide (V2/V3 tokenizers,
#                Codestral-22B): "<s>[SUFFIX]{suffix}[PREFIX] {prefix}" (the space is
#                SentencePiece's dummy prefix on the prefix). No middle token.
# *-spm          The SPM variant of Bavarian et al. 2022 (app. D), as in bigcode's Megatron and
#                CodeLlama: <PRE><SUF>{suffix}<MID>{prefix}. Qwen documents PSM only.
#
# Snippets (cross-file context) keep the caller's order, which the caller keeps stable across
# keystrokes, and come before the file's own text so the engine's prefix cache keeps hitting.
# Without repo-level tokens they are line comments at the start of the prefix part:
#   {c} Path: {path}\n{c} {line}\n...   then {c} Path: {current path}\n before the file's text.

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum

from .chat_infill import CHAT_SYSTEM, MARKERS, _with_newline, chat_messages, extract_infill

__all__ = [
    "CHAT_FAMILIES",
    "CHAT_SYSTEM",
    "DETECTION_ORDER",
    "MARKERS",
    "PROFILES",
    "ChatTemplate",
    "Kind",
    "Order",
    "Profile",
    "PromptParts",
    "Rendered",
    "RepoFormat",
    "RepoTokens",
    "Slot",
    "Snippet",
    "chat_messages",
    "detect_profile",
    "extract_infill",
    "profile_by_name",
    "render",
]

ChatTemplate = Callable[[list[dict[str, str]]], str]
"""Messages -> prompt text; in production `apply_chat_template(m, add_generation_prompt=True,
tokenize=False)` of the model's tokenizer."""


class Kind(StrEnum):
    """How a prompt is built, and so how its output is read."""

    FIM = "fim"
    PREFIX = "prefix"
    CHAT = "chat"


class Order(StrEnum):
    """Order of the parts in a FIM prompt."""

    PSM = "PSM"
    SPM = "SPM"


class Slot(Enum):
    """Places in a FIM template filled with document text."""

    PREFIX = "prefix"
    SUFFIX = "suffix"


class RepoFormat(StrEnum):
    """Layout of repo-level context (other files of the repository)."""

    QWEN = "qwen"
    STARCODER2 = "starcoder2"


@dataclass(frozen=True)
class RepoTokens:
    """Repo-level tokens: the repository name marker and the file separator."""

    repo_name: str
    file_sep: str
    format: RepoFormat


@dataclass(frozen=True)
class Snippet:
    """Code from another file, already chosen and budgeted by the caller."""

    path: str
    """Path relative to the workspace."""
    text: str
    """The code, as it should appear in the prompt."""


@dataclass(frozen=True)
class PromptParts:
    """Everything a profile renders into a prompt."""

    prefix: str
    """Document text before the cursor (already windowed)."""
    suffix: str
    """Document text after the cursor (already windowed)."""
    path: str = ""
    """Relative path of the current file ('' if unknown)."""
    repo_name: str = ""
    """Repository (workspace folder) name ('' if unknown)."""
    snippets: tuple[Snippet, ...] = ()
    """Cross-file context, in a stable order."""
    comment: str = "#"
    """The language's line comment marker."""
    instruction: str = ""
    """What to write, for chat models (a code action's task); '' for a completion."""


@dataclass(frozen=True)
class Rendered:
    """A rendered prompt: text with special tokens written out, and how to run it."""

    text: str
    """Full prompt text; tokenize it with special tokens parsed and none added."""
    stop: tuple[str, ...]
    """Stop strings; those that are single tokens in the vocabulary are better sent as stop ids."""
    uses_suffix: bool
    """The suffix is in the prompt (else only post-processing sees it)."""
    kind: Kind


@dataclass(frozen=True)
class Profile:
    """How to prompt one model family."""

    name: str
    kind: Kind
    template: tuple[str | Slot, ...] = ()
    """FIM layout: literal text (special tokens included) and the two slots."""
    markers: tuple[str, ...] = ()
    """Tokens whose presence in the vocabulary identifies the family."""
    repo: RepoTokens | None = None
    bos: str = ""
    """Beginning-of-sequence token written first (the tokenizer is run without adding it)."""
    stop: tuple[str, ...] = ()
    reason: str = field(default="", compare=False)
    """Why this profile was chosen (filled by `detect_profile` / `profile_by_name`)."""

    @property
    def order(self) -> Order | None:
        """PSM or SPM for FIM profiles, None otherwise."""
        if Slot.PREFIX not in self.template:
            return None
        spm = self.template.index(Slot.SUFFIX) < self.template.index(Slot.PREFIX)
        return Order.SPM if spm else Order.PSM

    @property
    def uses_suffix(self) -> bool:
        """The suffix goes into the prompt (FIM and chat), so it needs a share of the budget."""
        return self.kind is not Kind.PREFIX

    @property
    def summary(self) -> str:
        """A few words on the format, e.g. 'FIM PSM, repo-level tokens'."""
        if self.kind is Kind.PREFIX:
            return "prefix only, suffix not in the prompt"
        if self.kind is Kind.CHAT:
            return "chat template, fill-the-hole instructions"
        return f"FIM {self.order}" + (", repo-level tokens" if self.repo else "")

    @property
    def description(self) -> str:
        """One line for the log: name, format and why it was chosen."""
        return f"profile {self.name} ({self.summary}) {self.reason}".strip()


# --- the profiles ----------------------------------------------------------------------------

_P, _S = Slot.PREFIX, Slot.SUFFIX

_QWEN_FIM = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
_QWEN_REPO = RepoTokens("<|repo_name|>", "<|file_sep|>", RepoFormat.QWEN)
_QWEN_STOP = (
    "<|endoftext|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<|im_start|>",
    "<|im_end|>",
)


def _deepseek(name: str) -> str:
    """A DeepSeek special token: `name` between fullwidth bars (U+FF5C), e.g. <|fim▁begin|>."""
    return f"<\uff5c{name}\uff5c>"


_DEEPSEEK_FIM = (_deepseek("fim▁begin"), _deepseek("fim▁hole"), _deepseek("fim▁end"))
_DEEPSEEK_BOS = _deepseek("begin▁of▁sentence")
_STARCODER_FIM = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
_STARCODER_REPO = RepoTokens("<repo_name>", "<file_sep>", RepoFormat.STARCODER2)
_STARCODER_STOP = (
    "<|endoftext|>",
    "<file_sep>",
    "<fim_prefix>",
    "<fim_suffix>",
    "<fim_middle>",
    "<fim_pad>",
    "<repo_name>",
)
_CODESTRAL_FIM = ("[SUFFIX]", "[PREFIX]")
_SP_SPACE = "▁"
"""SentencePiece's space; CodeLlama's HF tokenizers spell the FIM tokens with it."""


def _psm(pre: str, suf: str, mid: str) -> tuple[str | Slot, ...]:
    return (pre, _P, suf, _S, mid)


def _spm(pre: str, suf: str, mid: str) -> tuple[str | Slot, ...]:
    return (pre, suf, _S, mid, _P)


def _codellama(spm: bool, spelling: str = _SP_SPACE) -> Profile:
    """CodeLlama with its FIM tokens spelled '▁<PRE>' (HF) or '<PRE>'."""
    pre, suf, mid, eot = (spelling + t for t in ("<PRE>", "<SUF>", "<MID>", "<EOT>"))
    gap = "" if spelling else " "  # the space before <SUF>/<MID> is in the '▁' spelling
    template: tuple[str | Slot, ...] = (
        (pre, gap + suf, _S, gap + mid, " ", _P)
        if spm
        else (pre, " ", _P, gap + suf, _S, gap + mid)
    )
    return Profile(
        name="codellama-fim-spm" if spm else "codellama-fim",
        kind=Kind.FIM,
        template=template,
        markers=(pre, suf, mid),
        bos="<s>",
        stop=(eot, "</s>", pre, suf, mid),
    )


PROFILES: tuple[Profile, ...] = (
    Profile("qwen-fim", Kind.FIM, _psm(*_QWEN_FIM), _QWEN_FIM, _QWEN_REPO, stop=_QWEN_STOP),
    Profile("qwen-fim-spm", Kind.FIM, _spm(*_QWEN_FIM), _QWEN_FIM, _QWEN_REPO, stop=_QWEN_STOP),
    Profile(
        "deepseek-fim",
        Kind.FIM,
        _psm(*_DEEPSEEK_FIM),
        _DEEPSEEK_FIM,
        bos=_DEEPSEEK_BOS,
        stop=(_deepseek("end▁of▁sentence"), "<|EOT|>", *_DEEPSEEK_FIM),
    ),
    Profile(
        "starcoder-fim",
        Kind.FIM,
        _psm(*_STARCODER_FIM),
        _STARCODER_FIM,
        _STARCODER_REPO,
        stop=_STARCODER_STOP,
    ),
    Profile(
        "starcoder-fim-spm",
        Kind.FIM,
        _spm(*_STARCODER_FIM),
        _STARCODER_FIM,
        _STARCODER_REPO,
        stop=_STARCODER_STOP,
    ),
    _codellama(spm=False),
    _codellama(spm=True),
    Profile(
        "codestral-fim",
        Kind.FIM,
        ("[SUFFIX]", _S, "[PREFIX]", " ", _P),
        _CODESTRAL_FIM,
        bos="<s>",
        stop=("</s>", *_CODESTRAL_FIM),
    ),
    Profile("prefix-only", Kind.PREFIX),
    Profile("chat-infill", Kind.CHAT),
)
"""Every profile, by name in `profile_by_name`."""

_BY_NAME = {p.name: p for p in PROFILES}

DETECTION_ORDER: tuple[str, ...] = (
    "qwen-fim",
    "deepseek-fim",
    "starcoder-fim",
    "codellama-fim",
    "codestral-fim",
)
"""FIM families tried in this order; the first whose markers are all in the vocabulary wins.
Markers are matched as whole tokens, so '<|fim_prefix|>' (Qwen, CodeGemma) and '<fim_prefix>'
(StarCoder, CodeQwen1.5) never mix; a vocabulary holding several sets takes the earliest."""


# --- choosing a profile ----------------------------------------------------------------------


def _bind(profile: Profile, tokens: Collection[str]) -> Profile:
    """`profile` fitted to a vocabulary: token spellings, repo tokens and BOS it really has."""
    tokens = set(tokens)
    if profile.name.startswith("codellama") and not set(profile.markers) <= tokens:
        plain = _codellama(profile.order is Order.SPM, spelling="")
        if set(plain.markers) <= tokens:
            profile = plain  # '<PRE>' rather than HF's '▁<PRE>'
    repo = profile.repo
    if repo is not None and not {repo.repo_name, repo.file_sep} <= tokens:
        profile = replace(profile, repo=None)
    if profile.bos and profile.bos not in tokens:
        profile = replace(profile, bos="")
    return profile


def _found(profile: Profile) -> list[str]:
    found = list(profile.markers)
    if profile.repo is not None:
        found += [profile.repo.repo_name, profile.repo.file_sep]
    return found


CHAT_FAMILIES: dict[str, str] = {
    "nemotron_h": "Nemotron-H / Nemotron 3 documents no FIM format",
}
"""Model types (config.json `model_type`) with a chat template and no FIM format of their own,
whose vocabulary may still hold another family's FIM tokens: Nemotron 3's vocabulary derives
from Mistral's Tekken, which keeps [PREFIX] and [SUFFIX], tokens it was never trained to infill
with. For these, chat-infill comes before any FIM profile."""


def detect_profile(
    special_tokens: Collection[str], *, has_chat_template: bool, model_type: str | None = None
) -> Profile:
    """The profile for a tokenizer, from its added tokens (special or not), never its name.

    Pass every added token's content: Qwen's FIM tokens are added tokens marked "special": false.
    A tokenizer with no known FIM tokens gets chat-infill if it has a chat template, else
    prefix-only. `model_type` (the model config's) only breaks a tie: a family in
    `CHAT_FAMILIES` with a chat template gets chat-infill even if foreign FIM tokens are in
    its vocabulary. The result's `description` says what was chosen and why.
    """
    tokens = set(special_tokens)
    family = CHAT_FAMILIES.get((model_type or "").strip().lower())
    if family is not None and has_chat_template:
        why = f"chosen: model type {model_type} has a chat template and {family}"
        return replace(_BY_NAME["chat-infill"], reason=why)
    for name in DETECTION_ORDER:
        bound = _bind(_BY_NAME[name], tokens)
        if set(bound.markers) <= tokens:
            why = "chosen from tokenizer tokens " + ", ".join(_found(bound))
            return replace(bound, reason=why)
    none = f"chosen: no FIM tokens among the tokenizer's {len(tokens)} added tokens"
    if has_chat_template:
        return replace(_BY_NAME["chat-infill"], reason=none + ", and it has a chat template")
    return replace(_BY_NAME["prefix-only"], reason=none + " and no chat template")


def profile_by_name(name: str, special_tokens: Collection[str] | None = None) -> Profile:
    """The profile called `name` (forced in configuration); ValueError lists the valid names.

    With the tokenizer's added tokens it is fitted to them like a detected one (CodeLlama's
    token spelling, repo-level tokens and BOS only if the vocabulary has them).
    """
    profile = _BY_NAME.get(name.strip().lower())
    if profile is None:
        valid = ", ".join(_BY_NAME)
        raise ValueError(f"unknown prompt profile {name!r}; valid profiles: {valid}")
    if special_tokens is not None:
        profile = _bind(profile, special_tokens)
    return replace(profile, reason="forced by configuration")


# --- rendering -------------------------------------------------------------------------------


def _comment_block(path: str, text: str, comment: str) -> str:
    """A snippet as line comments under a 'Path:' line."""
    lines = [f"{comment} Path: {path}"]
    lines += [f"{comment} {line}" if line.strip() else comment for line in text.splitlines()]
    return "\n".join(lines) + "\n"


def _commented_context(parts: PromptParts) -> str:
    """Snippets as comments, then the current file's path ('' without snippets)."""
    if not parts.snippets:
        return ""
    comment = parts.comment.strip() or "#"
    blocks = [_comment_block(s.path, s.text, comment) for s in parts.snippets]
    if parts.path:
        blocks.append(f"{comment} Path: {parts.path}\n")
    return "".join(blocks)


def _repo_context(repo: RepoTokens, parts: PromptParts) -> tuple[str, str]:
    """(text before the FIM template, text at the start of the prefix slot).

    An empty repository name leaves out the name token; an empty current path leaves out the
    path line (StarCoder2 saw files without metadata; Qwen gets '<|file_sep|><|fim_prefix|>').
    """
    if repo.format is RepoFormat.QWEN:
        head = f"{repo.repo_name}{parts.repo_name}\n" if parts.repo_name else ""
        head += "".join(f"{repo.file_sep}{s.path}\n{s.text}\n" for s in parts.snippets)
        head += f"{repo.file_sep}{parts.path}\n" if parts.path else repo.file_sep
        return head, ""
    head = f"{repo.repo_name}{parts.repo_name}" if parts.repo_name else ""
    head += "".join(f"{repo.file_sep}{s.path}\n{_with_newline(s.text)}" for s in parts.snippets)
    return head + repo.file_sep, f"{parts.path}\n" if parts.path else ""


def _render_fim(profile: Profile, parts: PromptParts) -> Rendered:
    if profile.repo is not None and (parts.snippets or parts.repo_name):
        head, lead = _repo_context(profile.repo, parts)
    else:
        head, lead = "", _commented_context(parts)
    slots = {Slot.PREFIX: lead + parts.prefix, Slot.SUFFIX: parts.suffix}
    body = "".join(slots[p] if isinstance(p, Slot) else p for p in profile.template)
    return Rendered(profile.bos + head + body, profile.stop, True, Kind.FIM)


def _render_chat(parts: PromptParts, chat_template: ChatTemplate | None) -> Rendered:
    if chat_template is None:
        raise ValueError("profile chat-infill needs the model's chat template")
    messages = chat_messages(parts)
    try:
        text = chat_template(messages)
    except Exception:
        # Some templates (Gemma, early Mistral) refuse a system message: fold it into the user's.
        system, user = messages
        text = chat_template(
            [{"role": "user", "content": f"{system['content']}\n\n{user['content']}"}]
        )
    return Rendered(text, (), True, Kind.CHAT)


def render(
    profile: Profile, parts: PromptParts, chat_template: ChatTemplate | None = None
) -> Rendered:
    """The prompt text for `parts` in `profile`'s format (chat-infill needs `chat_template`)."""
    if profile.kind is Kind.FIM:
        return _render_fim(profile, parts)
    if profile.kind is Kind.CHAT:
        return _render_chat(parts, chat_template)
    return Rendered(_commented_context(parts) + parts.prefix, profile.stop, False, Kind.PREFIX)
