"""The KV cache layout vLLM chose for the loaded model, and what it means for prefix caching
of hybrid (Mamba + attention) models such as Nemotron 3."""

# From vLLM 0.32's source:
# - vllm/platforms/interface.py `_align_hybrid_block_size`: for a hybrid model the attention
#   block size is raised until one attention page (block_size x bytes per token) holds one
#   Mamba state page ("Setting attention block size to %d tokens ..."), thousands of tokens
#   for Nemotron's large SSM states; the Mamba page is then padded to match.
# - vllm/model_executor/models/config.py `MambaModelConfig`: with prefix caching on,
#   mamba_cache_mode becomes "align" and mamba_block_size = block_size.
# - vllm/config/cache.py: "align" caches the Mamba state only at positions i x block_size
#   (and at the end of each scheduler step); "none" caches nothing. There is no finer mode.
# - vllm/v1/engine/core_client.py copies the block sizes the engine process chose back into
#   the front end's cache_config once the engine is ready; `cache_facts` reads them there.
#
# So a prompt reuses the cache only in whole blocks: the longest shared prefix rounded down
# to a multiple of the block size. A prompt shorter than one block never hits.

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheFacts:
    """What the engine's KV cache looks like after start."""

    block_size: int
    """Attention KV block size in tokens (raised by vLLM for hybrid models)."""
    hybrid: bool = False
    """The model has Mamba (state-space) layers besides attention."""
    prefix_caching: bool = True
    mamba_cache_mode: str = "none"
    """'align' (Mamba state cached at block boundaries) or 'none'."""
    mamba_block_size: int | None = None

    @property
    def reuse_unit(self) -> int:
        """Tokens a prefix-cache hit is made of: the Mamba block for a hybrid model (its state
        exists only at those positions), the attention block otherwise."""
        if self.hybrid:
            return self.mamba_block_size or self.block_size
        return self.block_size

    def useless_below(self, prompt_tokens: int) -> bool:
        """True when no prompt of up to `prompt_tokens` tokens can ever hit the cache."""
        if not self.prefix_caching:
            return True
        if self.hybrid and self.mamba_cache_mode != "align":
            return True
        return self.reuse_unit > prompt_tokens

    def note(self, prompt_tokens: int) -> str | None:
        """A line for the log about prefix caching with prompts of up to `prompt_tokens`
        tokens; None for a plain attention model with prefix caching on."""
        if not self.hybrid and self.prefix_caching:
            return None
        if self.useless_below(prompt_tokens):
            why = (
                f"a hybrid model's cache is reused only in whole blocks of {self.reuse_unit} "
                f"tokens and prompts are at most {prompt_tokens}"
                if self.hybrid and self.prefix_caching and self.mamba_cache_mode == "align"
                else "prefix caching is off for this model"
            )
            return f"prefix caching will not help: {why}; each request computes its whole prompt"
        return (
            f"hybrid model: the prefix cache is reused in whole blocks of {self.reuse_unit} "
            "tokens (a prompt shares only the blocks before its first changed token)"
        )

    def log(self, prompt_tokens: int) -> None:
        """Log `note` (a warning when caching cannot help) and the block size."""
        line = self.note(prompt_tokens)
        if line is None:
            log.info("KV cache block size %d tokens", self.block_size)
        elif self.useless_below(prompt_tokens):
            log.warning("%s", line)
        else:
            log.info("%s", line)


def cache_facts(vllm_config: Any) -> CacheFacts:
    """Read the block sizes and Mamba cache mode from vLLM's config after the engine started."""
    cache = vllm_config.cache_config
    model = vllm_config.model_config
    return CacheFacts(
        block_size=int(cache.block_size),
        hybrid=bool(getattr(model, "is_hybrid", False)),
        prefix_caching=bool(getattr(cache, "enable_prefix_caching", True)),
        mamba_cache_mode=str(getattr(cache, "mamba_cache_mode", "none")),
        mamba_block_size=getattr(cache, "mamba_block_size", None),
    )


def expected_hit(prompt_tokens: int, shared_tokens: int, unit: int) -> float:
    """Share of a prompt served from the cache when its first `shared_tokens` tokens equal a
    cached prompt's and the cache is reused in whole blocks of `unit` tokens."""
    if prompt_tokens <= 0 or unit <= 0:
        return 0.0
    shared = min(shared_tokens, prompt_tokens - 1)  # vLLM always computes the last token
    return (max(0, shared) // unit) * unit / prompt_tokens
