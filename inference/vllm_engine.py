"""The in-process vLLM engine: AsyncLLM in this process, streaming text deltas, abortable by id."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from .config import EngineConfig, validate
from .engine import (
    ChatTemplate,
    Delta,
    EngineHealth,
    EngineState,
    EngineStats,
    EngineTokenizer,
    Sampling,
)
from .errors import EngineConfigError, EngineNotReady, EngineStartError
from .gpu import free_memory_problem, start_failure, vram, vram_wire, wait_for_vram
from .hybrid_cache import CacheFacts, cache_facts
from .routing import RoutingProbe
from .routing_worker import EXTENSION as ROUTING_EXTENSION
from .tokenizer import FolderTokenizer, HfTokenizerAdapter, chat_template_of
from .torch_extras import hide_mismatched

log = logging.getLogger(__name__)

_VRAM_TO_RECOVER: list[int] = []
"""Free bytes per GPU before the last engine of this process started, set when it stopped: the
next start waits (up to 30 s) to see them free again, a server's exit does not."""


def _on_cpu() -> bool:
    hide_mismatched()  # before vLLM imports transformers, which imports torchvision when present
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def _quiet_env(config: EngineConfig, model_dir: str, on_cpu: bool) -> None:
    """Environment vLLM reads at start: privacy, offline local folders (unless the user set
    HF_HUB_OFFLINE), CPU KV cache size, and spawn for the engine's processes."""
    vc = config.vllm
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("VLLM_DO_NOT_TRACK", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if Path(model_dir).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if on_cpu:
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(max(1, math.ceil(vc.cpu_kv_cache_gib)))
    # vLLM forks its engine core and workers on CUDA unless CUDA is already initialised
    # (vllm/utils/system_utils.py `_maybe_force_spawn`); only its CPU platform forces spawn.
    # Spawned children import the server's main module again, which starts their orphan
    # watch (lsp/orphans.py): so they end with the server even after a SIGKILL.
    if os.environ.get("VLLM_WORKER_MULTIPROC_METHOD", "spawn") != "spawn":
        log.warning(
            "VLLM_WORKER_MULTIPROC_METHOD=%s replaced by spawn (engine processes must "
            "end with the server)",
            os.environ["VLLM_WORKER_MULTIPROC_METHOD"],
        )
    os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "spawn"


CPU_SPECULATIVE: dict[str, Any] = {
    "method": "ngram",
    "num_speculative_tokens": 4,
    "prompt_lookup_max": 4,
    "prompt_lookup_min": 2,
}
"""Speculative decoding on CPU when none is set: n-gram prompt lookup (code repeats itself).
In the typing replay (README) it gave more useful ghost text within 300 ms than none."""


def build_engine_args(config: EngineConfig, model_dir: str, *, on_cpu: bool) -> dict[str, Any]:
    """AsyncEngineArgs keyword arguments for `config` (pure, so it is testable)."""
    vc = config.vllm
    args: dict[str, Any] = {
        "model": model_dir,
        "dtype": vc.dtype_for(on_cpu=on_cpu),
        "max_model_len": vc.max_model_len,
        "max_num_seqs": vc.max_num_seqs,
        "enable_prefix_caching": True,
        "enforce_eager": on_cpu if vc.enforce_eager is None else vc.enforce_eager,
        "tensor_parallel_size": vc.tensor_parallel_size,
        "pipeline_parallel_size": vc.pipeline_parallel_size,
        "data_parallel_size": vc.data_parallel_size,
        "enable_expert_parallel": vc.enable_expert_parallel,
        "trust_remote_code": vc.trust_remote_code,
        "disable_log_stats": True,
        # Interactive requests before prefetches (Sampling.priority), across all sessions.
        "scheduling_policy": "priority",
        # Gate hooks in the worker count the tokens each expert gets (moe/experts).
        "worker_extension_cls": ROUTING_EXTENSION,
    }
    block = vc.block_size if vc.block_size is not None else (32 if on_cpu else None)
    if block is not None:
        args["block_size"] = block
    if vc.distributed_executor_backend:
        args["distributed_executor_backend"] = vc.distributed_executor_backend
    spec = vc.speculative_config
    if spec is None and on_cpu:
        spec = CPU_SPECULATIVE  # {} turns it off
    if spec:
        args["speculative_config"] = dict(spec)
    if not on_cpu:
        # vLLM's default share of GPU memory, unless set; a KV cache size replaces the share
        # when it is given (vllm/config/cache.py: kv_cache_memory_bytes).
        if vc.gpu_memory_utilization is not None:
            args["gpu_memory_utilization"] = vc.gpu_memory_utilization
        if vc.kv_cache_gib is not None:
            args["kv_cache_memory_bytes"] = int(vc.kv_cache_gib * 1024**3)
    args.update(vc.extra_engine_args)
    return args


class VllmEngine:
    """`Engine` on vLLM's AsyncLLM, running in this process (engine core in a child process)."""

    def __init__(self, config: EngineConfig, model_dir: str) -> None:
        self.config = config
        self.model_dir = model_dir
        self._llm: Any = None
        self._state = EngineState.STOPPED
        self._message = ""
        self._stats = EngineStats()
        self._live: set[str] = set()
        self.routing = RoutingProbe()
        """Tokens per layer and expert over recent requests (inference/routing.py)."""
        self.tokenizer: EngineTokenizer | None = None
        """The model's tokenizer (set by `start`)."""
        self.chat_template: ChatTemplate | None = None
        """Renders chat messages with the model's template (None when the model has none)."""
        self.model_type: str | None = None
        """config.json's model_type (breaks a tie when choosing the prompt profile)."""
        self.cache: CacheFacts | None = None
        """The KV cache layout vLLM chose (block size, hybrid Mamba caching), after start."""
        self._vram_before: list[int] = []
        """Free bytes per GPU before the engine started (shutdown waits to get them back)."""

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Load the model and start the engine (blocking; call from a worker thread)."""
        self._state = EngineState.LOADING
        t0 = time.monotonic()
        on_cpu = True
        try:
            on_cpu = _on_cpu()
            validate(self.config, self.model_dir, on_cpu=on_cpu)
            _quiet_env(self.config, self.model_dir, on_cpu)
            if not on_cpu and _VRAM_TO_RECOVER:  # a restart: the old engine's processes may
                wait_for_vram(list(_VRAM_TO_RECOVER))  # still be giving their memory back
                _VRAM_TO_RECOVER.clear()
            devices = None if on_cpu else vram()
            self._vram_before = [d.free for d in devices or ()]
            if self.config.vllm.kv_cache_gib is None:  # else vLLM does not check the share
                vc = self.config.vllm
                gpus = vc.tensor_parallel_size * vc.pipeline_parallel_size * vc.data_parallel_size
                problem = free_memory_problem(devices, vc.gpu_memory_utilization, gpus)
                if problem:
                    raise EngineConfigError(problem)
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM

            kwargs = build_engine_args(self.config, self.model_dir, on_cpu=on_cpu)
            log.info("starting vLLM engine: %s", {k: v for k, v in kwargs.items() if k != "model"})
            self._llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**kwargs))
            hf_tok = self._llm.get_tokenizer()
            if (Path(self.model_dir) / "tokenizer.json").is_file():
                self.tokenizer = FolderTokenizer.from_folder(self.model_dir)
            else:
                self.tokenizer = HfTokenizerAdapter(hf_tok)
            self.chat_template = chat_template_of(hf_tok)
            hf_config = self._llm.vllm_config.model_config.hf_config
            self.model_type = getattr(hf_config, "model_type", None)
            self.cache = cache_facts(self._llm.vllm_config)
            self.cache.log(self.config.vllm.max_model_len)
        except EngineConfigError as err:
            self._fail(str(err))
            raise
        except Exception as err:
            log.exception("engine failed to start")
            self._fail(_short_start_error(err, on_gpu=not on_cpu))
            raise EngineStartError(self._message) from err
        self._stats.load_seconds = time.monotonic() - t0
        self._state = EngineState.READY
        self._message = ""
        log.info("engine ready in %.1f s", self._stats.load_seconds)

    def _fail(self, message: str) -> None:
        self._state = EngineState.FAILED
        self._message = message

    def shutdown(self) -> None:
        """Stop the engine and its processes (blocking, a few seconds)."""
        llm, self._llm = self._llm, None
        self._state = EngineState.STOPPED
        if llm is not None:
            try:
                llm.shutdown()
            except Exception:
                log.exception("engine shutdown failed")
            if self._vram_before:  # the next start waits for this memory to be free again
                _VRAM_TO_RECOVER[:] = self._vram_before

    # -- requests -----------------------------------------------------------------------------
    async def stream(
        self, request_id: str, prompt_ids: Sequence[int], sampling: Sampling
    ) -> AsyncIterator[Delta]:
        """Stream deltas; closing the iterator or cancelling the task aborts the engine request."""
        llm = self._llm
        if llm is None or self._state is not EngineState.READY:
            raise EngineNotReady(self._message or "The model is still loading.")
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            stop=list(sampling.stop) or None,
            stop_token_ids=list(sampling.stop_token_ids) or None,
            seed=sampling.seed,
            allowed_token_ids=list(sampling.allowed_token_ids) or None,
            skip_special_tokens=sampling.skip_special_tokens,
            output_kind=RequestOutputKind.DELTA,
        )
        self._stats.requests += 1
        self._stats.prompt_tokens += len(prompt_ids)
        self._live.add(request_id)
        finished = False
        first = True
        try:
            await self.routing.ensure_started(llm)
            gen = llm.generate(
                TokensPrompt(prompt_token_ids=list(prompt_ids)),
                params,
                request_id,
                priority=sampling.priority,
            )
            async for out in gen:
                comp = out.outputs[0]
                n = len(comp.token_ids)
                self._stats.generated_tokens += n
                finished = bool(out.finished)
                cached = None
                if first:
                    cached = int(out.num_cached_tokens or 0)
                    self._stats.cached_prompt_tokens += cached
                    first = False
                yield Delta(
                    comp.text,
                    n,
                    finished,
                    comp.finish_reason if finished else None,
                    cached,
                    tuple(comp.token_ids),
                )
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception:
            self._stats.failed += 1
            if llm.errored:
                self._fail("The engine stopped unexpectedly.")
            raise
        finally:
            self._live.discard(request_id)
            self.routing.take_soon(llm)
            if finished:
                self._stats.finished += 1
            else:
                self._stats.aborted += 1
                try:
                    await llm.abort(request_id)
                except Exception:
                    log.debug("abort of %s failed", request_id, exc_info=True)

    def routed_experts(self) -> dict[str, Any]:
        """Tokens per layer and expert over the last requests, with imbalance figures."""
        return self.routing.report()

    async def abort(self, request_id: str) -> None:
        """Abort `request_id` in the engine; unknown ids are ignored."""
        if self._llm is not None:
            await self._llm.abort(request_id)

    def gpu_memory(self) -> dict[str, object]:
        """{gpu: [{device, freeGib, totalGib}]} for moe/status; {} on CPU."""
        return vram_wire(vram()) if self._vram_before else {}

    def health(self) -> EngineHealth:
        """Current state, with the failure message when there is one."""
        if self._llm is not None and self._llm.errored:
            self._fail("The engine stopped unexpectedly.")
        return EngineHealth(self._state, self._message)

    def stats(self) -> EngineStats:
        """Counters; `running` is what vLLM itself still holds."""
        running = self._llm.get_num_unfinished_requests() if self._llm is not None else 0
        s = self._stats
        return EngineStats(
            requests=s.requests,
            finished=s.finished,
            aborted=s.aborted,
            failed=s.failed,
            prompt_tokens=s.prompt_tokens,
            cached_prompt_tokens=s.cached_prompt_tokens,
            generated_tokens=s.generated_tokens,
            running=int(running),
            load_seconds=s.load_seconds,
            extra={"streams_open": len(self._live)},
        )


def _short_start_error(err: BaseException, *, on_gpu: bool = False) -> str:
    """One line for the user out of whatever vLLM raised."""
    text = f"{type(err).__name__}: {err}".strip().splitlines()[0][:300]
    return start_failure(text, on_gpu=on_gpu)
