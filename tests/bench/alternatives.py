"""Owns the engines compared with the in-process one: vLLM over HTTP, transformers, llama.cpp.

Each is timed as a client sees it, to the first token and to the last."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import llama_cpp


@dataclass(frozen=True)
class Run:
    """One generation as a client sees it."""

    ttft_ms: float | None
    """Request sent to the first generated token received."""
    total_ms: float
    """Request sent to the last token received."""
    tokens: int
    text: str = ""
    cached: int | None = None
    """Prompt tokens served from the prefix cache, where the engine says."""


_CLOSE = {"Connection": "close"}
"""A new connection per request: a server may close a kept-alive one after a stream."""


class StartError(RuntimeError):
    """An alternative engine could not be started; the message says why."""


# --- pure helpers (unit-tested) -----------------------------------------------------------------


def engine_cli_flags(args: Mapping[str, Any]) -> list[str]:
    """`vllm.entrypoints.openai.api_server` flags for AsyncEngineArgs keyword arguments.

    True booleans become bare flags, False and None are left out, dicts become JSON, and the
    model (a positional/`--model` value given separately) is skipped.
    """
    flags: list[str] = []
    for key, value in args.items():
        if key == "model" or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif isinstance(value, dict | list):
            flags += [flag, json.dumps(value)]
        else:
            flags += [flag, str(value)]
    return flags


def parse_sse(line: str) -> dict[str, Any] | None:
    """The JSON object of one server-sent-events line, or None (comments, [DONE], other lines)."""
    line = line.strip()
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if not payload or payload == "[DONE]":
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def openai_piece(chunk: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """(text of this /v1/completions chunk or None, completion tokens from its usage or None)."""
    usage = chunk.get("usage")
    used = usage.get("completion_tokens") if isinstance(usage, dict) else None
    choices = chunk.get("choices") or []
    text = choices[0].get("text") if choices and isinstance(choices[0], dict) else None
    return text, used if isinstance(used, int) else None


def llama_piece(chunk: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """(text of this llama-server /completion chunk or None, tokens predicted on the last one)."""
    text = chunk.get("content")
    if chunk.get("stop"):
        predicted = chunk.get("tokens_predicted")
        if predicted is None and isinstance(chunk.get("timings"), dict):
            predicted = chunk["timings"].get("predicted_n")
        # The closing chunk carries no new token text of its own unless it says so.
        return (text or None), predicted if isinstance(predicted, int) else None
    return (text if isinstance(text, str) else None), None


# --- streaming over HTTP -----------------------------------------------------------------------


def stream_http(
    client: Any,
    url: str,
    body: Mapping[str, Any],
    *,
    llama: bool = False,
) -> Run:
    """POST `body` to `url` and read the SSE stream: time to first token, total, tokens, text."""
    piece = llama_piece if llama else openai_piece
    t0 = time.perf_counter()
    first: float | None = None
    text: list[str] = []
    chunks = 0
    counted: int | None = None
    with client.stream("POST", url, json=dict(body)) as resp:
        if resp.status_code != 200:
            resp.read()
            raise RuntimeError(f"{url} answered {resp.status_code}: {resp.text[:300]}")
        for line in resp.iter_lines():
            data = parse_sse(line)
            if data is None:
                continue
            got, used = piece(data)
            if used is not None:
                counted = used
            if got is not None and (got or not llama):
                if first is None and (got or data.get("choices")):
                    first = time.perf_counter()
                text.append(got)
                chunks += 1
    end = time.perf_counter()
    return Run(
        None if first is None else (first - t0) * 1000,
        (end - t0) * 1000,
        counted if counted is not None else chunks,
        "".join(text),
    )


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(f"exited with {proc.returncode} while starting; see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise StartError(f"not ready after {timeout:.0f} s; see {log}")


@contextlib.contextmanager
def _server_process(
    cmd: Sequence[str], log: Path, env: Mapping[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `cmd` in its own process group with output to `log`; always kill the group after."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        out.write(("\n$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            llama_cpp.kill_group(proc)


# --- vLLM's OpenAI-compatible server -----------------------------------------------------------


class VllmHttp:
    """The same model and engine arguments behind `python -m vllm.entrypoints.openai.api_server`,
    asked with streaming `/v1/completions` (prompt as token ids)."""

    name = "vllm-http"

    def __init__(self, model_dir: str, engine_args: Mapping[str, Any], log: Path) -> None:
        self.model_dir = model_dir
        self.engine_args = dict(engine_args)
        self.log = log
        self.port = llama_cpp.free_port()
        self._stack = contextlib.ExitStack()
        self._client: Any = None

    def command(self) -> list[str]:
        """The server's command line."""
        return [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model_dir,
            "--served-model-name",
            "bench",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *engine_cli_flags(self.engine_args),
        ]

    def __enter__(self) -> VllmHttp:
        import httpx

        try:
            proc = self._stack.enter_context(_server_process(self.command(), self.log, os.environ))
            _wait_http(f"http://127.0.0.1:{self.port}/health", proc, 600, self.log)
            self._client = self._stack.enter_context(httpx.Client(timeout=300, headers=_CLOSE))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def complete(self, ids: Sequence[int], max_tokens: int) -> Run:
        """Greedy, exactly `max_tokens` tokens (end of sequence ignored), streamed."""
        body = {
            "model": "bench",
            "prompt": list(ids),
            "max_tokens": max_tokens,
            "temperature": 0,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        return stream_http(self._client, f"http://127.0.0.1:{self.port}/v1/completions", body)


# --- llama.cpp -----------------------------------------------------------------------------------


class LlamaServer:
    """llama.cpp's `llama-server` on the GGUF the default model comes from, one slot,
    prompt cache on, asked with streaming `/completion` (prompt as token ids)."""

    name = "llama.cpp"

    def __init__(self, binary: Path, gguf: Path, log: Path, threads: int, ctx: int = 4096) -> None:
        self.binary = binary
        self.gguf = gguf
        self.log = log
        self.threads = threads
        self.ctx = ctx
        self.port = llama_cpp.free_port()
        self._stack = contextlib.ExitStack()
        self._client: Any = None

    def __enter__(self) -> LlamaServer:
        import httpx

        cmd = llama_cpp.server_command(self.binary, self.gguf, self.port, self.threads, self.ctx)
        try:
            proc = self._stack.enter_context(
                _server_process(cmd, self.log, llama_cpp.server_env(self.binary))
            )
            _wait_http(f"http://127.0.0.1:{self.port}/health", proc, 300, self.log)
            self._client = self._stack.enter_context(httpx.Client(timeout=300, headers=_CLOSE))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def complete(self, ids: Sequence[int], max_tokens: int) -> Run:
        """Greedy, exactly `max_tokens` tokens (end of sequence ignored), streamed."""
        body = {
            "prompt": list(ids),
            "n_predict": max_tokens,
            "temperature": 0,
            "top_k": 1,
            "ignore_eos": True,
            "cache_prompt": True,
            "stream": True,
        }
        return stream_http(
            self._client, f"http://127.0.0.1:{self.port}/completion", body, llama=True
        )


# --- transformers ---------------------------------------------------------------------------------


class _TimingStreamer:
    """A transformers streamer that notes when the first generated token arrives."""

    def __init__(self) -> None:
        self.calls = 0
        self.first: float | None = None
        self.tokens = 0

    def put(self, value: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            return  # generate() passes the prompt first
        if self.first is None:
            self.first = time.perf_counter()
        self.tokens += int(value.numel()) if hasattr(value, "numel") else 1

    def end(self) -> None:
        return None


class HfGenerate:
    """Plain `transformers`: AutoModelForCausalLM on the same folder, greedy `generate`."""

    name = "transformers"

    def __init__(self, model_dir: str, threads: int) -> None:
        self.model_dir = model_dir
        self.threads = threads
        self.model: Any = None
        self.device = "cpu"
        self.load_seconds = 0.0

    def __enter__(self) -> HfGenerate:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        t0 = time.monotonic()
        if torch.cuda.is_available():
            self.device = "cuda"
        else:
            torch.set_num_threads(self.threads)
        config = AutoConfig.from_pretrained(self.model_dir)
        dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
        self.model = AutoModelForCausalLM.from_pretrained(
            self.model_dir, dtype=dtype or torch.bfloat16
        ).to(self.device)
        self.model.eval()
        self.load_seconds = time.monotonic() - t0
        return self

    def __exit__(self, *exc: object) -> None:
        self.model = None
        import gc

        gc.collect()
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def complete(self, ids: Sequence[int], max_tokens: int) -> Run:
        """Greedy, exactly `max_tokens` new tokens (min_new_tokens pins the length)."""
        import torch

        input_ids = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        streamer = _TimingStreamer()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=max_tokens,
                min_new_tokens=max_tokens,
                do_sample=False,
                streamer=streamer,
                pad_token_id=self.model.config.eos_token_id,
            )
        if self.device == "cuda":
            torch.cuda.synchronize()
        end = time.perf_counter()
        new = out[0, input_ids.shape[1] :].tolist()
        return Run(
            None if streamer.first is None else (streamer.first - t0) * 1000,
            (end - t0) * 1000,
            len(new),
            "",
        )
