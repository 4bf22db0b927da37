"""Side-by-side typing replay: one typist, three clients (moe-lsp, llama.vim-like, llm-ls-like).

The typist writes standard-library functions at 8 keys/s. Each keystroke is shown to a client
as an editor shows it to its plugin; the client puts up ghost text whenever it has some, and the
typist presses Tab when the ghost text is exactly what it was going to type. Which client is
behind the keystrokes is the only difference between runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import random
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

KEY_GAP_S = (0.1, 0.15)
"""Pause between keys: uniform in this range (8 keys/s on average)."""
NEWLINE_PAUSE_S = 0.35
"""Extra pause after Enter."""
READ_S = 0.15
"""The typist reads ghost text this long before pressing Tab."""

TASKS = (("colorsys", "rgb_to_hls"), ("fnmatch", "filter"), ("shlex", "quote"))
"""(module, function) the typist writes: standard-library code, not textwrap."""
SMOKE_TASKS = (("fnmatch", "filter"),)
SMOKE_CHARS = 60


def task(module_name: str, function: str) -> tuple[str, int, str]:
    """(the module's source with the function's body removed, offset after the signature, body)."""
    import importlib

    module = importlib.import_module(module_name)
    source = inspect.getsource(module)
    func = inspect.getsource(getattr(module, function))
    lines = func.split("\n")
    sig = 1
    while not lines[sig - 1].rstrip().endswith(":"):  # a signature over several lines
        sig += 1
    head = "\n".join(lines[:sig]) + "\n"
    body = "\n".join(lines[sig:]).rstrip() + "\n"
    start = source.index(func)
    doc = source[:start] + head + source[start + len(func) :]
    return doc, start + len(head), body


# --- the editor and the typist -------------------------------------------------------------------


@dataclass
class Key:
    """One keystroke and what the client showed for it before the next key."""

    sent: float
    want: str
    """What the typist is going to type next (the rest of the body)."""
    shown_ms: float | None = None
    ghost: str = ""
    accepted: bool = False

    @property
    def useful(self) -> bool:
        return bool(self.ghost) and self.want.startswith(self.ghost)


@dataclass
class Editor:
    """One open document as a client sees it: text, cursor, and the ghost text slot."""

    uri: str
    text: str
    offset: int
    version: int = 1
    key: Key | None = None
    shown: asyncio.Event = field(default_factory=asyncio.Event)

    def show(self, ghost: str) -> None:
        """The client puts up ghost text for the current keystroke (first one counts)."""
        key = self.key
        if key is None or key.shown_ms is not None or not ghost:
            return
        key.shown_ms = (time.monotonic() - key.sent) * 1000
        key.ghost = ghost
        self.shown.set()

    def line_col(self, offset: int | None = None) -> tuple[int, int]:
        before = self.text[: self.offset if offset is None else offset]
        return before.count("\n"), len(before) - (before.rfind("\n") + 1)


class Client(Protocol):
    """An editor plugin: told of opens and keystrokes, shows ghost text through `editor.show`."""

    name: str

    async def open(self, editor: Editor) -> None: ...
    async def warm(self, editor: Editor) -> None:
        """One request at the cursor, awaited (the file was open before the typing starts)."""
        ...

    async def changed(self, editor: Editor, start: int, piece: str, accepted: bool) -> None: ...
    async def close(self, editor: Editor) -> None: ...
    async def tokens(self) -> int:
        """Engine tokens generated so far (prompt excluded)."""
        ...


async def type_body(
    client: Client, editor: Editor, body: str, rng: random.Random, keys: list[Key]
) -> int:
    """Type `body` at the editor's cursor; returns the characters accepted from ghost text."""
    spared = 0
    i = 0
    while i < len(body):
        ch = body[i]
        step = ch
        if ch == "\n":  # the editor's auto-indent: the typist does not type the indentation
            j = i + 1
            while j < len(body) and body[j] == " ":
                j += 1
            step = body[i:j]
        key = Key(time.monotonic(), body[i + len(step) :])
        keys.append(key)
        editor.key = key
        editor.shown.clear()
        start = editor.offset
        editor.text = editor.text[:start] + step + editor.text[start:]
        editor.offset += len(step)
        editor.version += 1
        await client.changed(editor, start, step, False)
        i += len(step)
        pause = rng.uniform(*KEY_GAP_S) + (NEWLINE_PAUSE_S if ch == "\n" else 0.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(editor.shown.wait(), pause)
        if key.useful:
            await asyncio.sleep(READ_S)
            ghost = key.ghost
            key.accepted = True
            accept = Key(time.monotonic(), body[i + len(ghost) :])
            keys.append(accept)  # Tab is a key too: what shows after it counts
            editor.key = accept
            editor.shown.clear()
            start = editor.offset
            editor.text = editor.text[:start] + ghost + editor.text[start:]
            editor.offset += len(ghost)
            editor.version += 1
            await client.changed(editor, start, ghost, True)
            i += len(ghost)
            spared += len(ghost)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(editor.shown.wait(), rng.uniform(*KEY_GAP_S))
            continue
        elapsed = time.monotonic() - key.sent
        if elapsed < pause:
            await asyncio.sleep(pause - elapsed)
    editor.key = None
    return spared


async def replay(
    client: Client,
    tasks: tuple[tuple[str, str], ...],
    seed: int,
    limit: int | None,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Type every task through `client`; the figures of the run."""
    rng = random.Random(seed)
    keys: list[Key] = []
    chars = spared = 0
    tokens0 = await client.tokens()
    t0 = time.monotonic()
    for module, function in tasks:
        doc, offset, body = task(module, function)
        body = body[:limit] if limit else body
        editor = Editor(f"file:///replay/{client.name}/{module}.py", doc, offset)
        await client.open(editor)
        await asyncio.wait_for(client.warm(editor), 120)
        say(f"{client.name}: typing {module}.{function} ({len(body)} characters)")
        spared += await type_body(client, editor, body, rng, keys)
        chars += len(body)
        await client.close(editor)
    await asyncio.sleep(0.5)
    tokens = await client.tokens() - tokens0
    return figures(client.name, keys, chars, spared, tokens, time.monotonic() - t0)


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile of `values` (nearest rank), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def figures(
    label: str, keys: list[Key], chars: int, spared: int, tokens: int, seconds: float
) -> dict[str, Any]:
    """The replay's figures from its keystrokes (pure; unit-tested)."""
    n = max(1, len(keys))
    shown = [k for k in keys if k.shown_ms is not None]
    useful = [k for k in shown if k.useful]
    ms = [k.shown_ms for k in shown if k.shown_ms is not None]
    return {
        "label": label,
        "keystrokes": len(keys),
        "characters": chars,
        "seconds": seconds,
        "shown_before_next_key": len(shown) / n,
        "shown_within_300ms": sum(1 for v in ms if v <= 300) / n,
        "useful_before_next_key": len(useful) / n,
        "useful_within_300ms": sum(1 for k in useful if (k.shown_ms or 0) <= 300) / n,
        "useful_share_of_shown": len(useful) / max(1, len(shown)),
        "accepted": sum(1 for k in keys if k.accepted),
        "chars_spared": spared / max(1, chars),
        "p50_ghost_ms": pct(ms, 0.5),
        "p95_ghost_ms": pct(ms, 0.95),
        "engine_tokens": tokens,
        "tokens_per_useful": tokens / len(useful) if useful else None,
        "ghost_ms": ms,
    }


# --- the llama.vim-like client -------------------------------------------------------------------


class LruCache:
    """llama.vim's response cache: context hash -> completion text, least recently used out."""

    def __init__(self, size: int = 250) -> None:
        self.size = size
        self.data: OrderedDict[str, str] = OrderedDict()

    def get(self, key: str) -> str | None:
        if key not in self.data:
            return None
        self.data.move_to_end(key)
        return self.data[key]

    def put(self, key: str, value: str) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)


@dataclass(frozen=True)
class Local:
    """llama.vim's local context: lines before, the line up to the cursor, the rest."""

    prefix: str
    middle: str
    suffix: str
    line_cur: str
    line_cur_suffix: str


def ctx_local(
    text: str, offset: int, prev: list[str] | None, n_prefix: int = 256, n_suffix: int = 64
) -> Local:
    """llama.vim's `s:fim_ctx_local`: the context at `offset`, or as if `prev` (the suggestion's
    lines) had been accepted there."""
    lines = text.split("\n")
    y = text[:offset].count("\n")
    x = offset - (text.rfind("\n", 0, offset) + 1)
    line = lines[y]
    after = lines[y + 1 : y + 1 + n_suffix]
    if not prev:
        before = lines[max(0, y - n_prefix) : y]
        cur_prefix, cur_suffix = line[:x], line[x:]
        if not line.strip():
            cur_prefix = cur_suffix = ""
        line_cur = line
    else:
        line_cur = line[:x] + prev[0] if len(prev) == 1 else prev[-1]
        cur_prefix, cur_suffix = line_cur, ""
        before = lines[max(0, y - n_prefix + len(prev) - 1) : y]
        if len(prev) > 1:
            before = [*before, line[:x] + prev[0], *prev[1:-1]]
    return Local(
        "\n".join(before) + "\n",
        cur_prefix,
        cur_suffix + "\n" + "\n".join(after) + "\n",
        line_cur,
        cur_suffix,
    )


def context_keys(local: Local) -> list[str]:
    """The hashes a response is cached under: the context, and with 1-3 first lines trimmed."""
    out = [_hash(local.prefix + local.middle + "Î" + local.suffix)]
    trimmed = local.prefix
    for _ in range(3):
        cut = trimmed.find("\n")
        trimmed = trimmed[cut + 1 :] if cut >= 0 else ""
        if not trimmed:
            break
        out.append(_hash(trimmed + local.middle + "Î" + local.suffix))
    return out


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cached_hint(cache: LruCache, local: Local, lookback: int = 128) -> str | None:
    """llama.vim's `s:fim_try_hint` lookup: the response for this context, or one cached up to
    `lookback` characters back whose start is what was typed since."""
    raw = cache.get(_hash(local.prefix + local.middle + "Î" + local.suffix))
    if raw is not None:
        return raw
    pm = local.prefix + local.middle
    best: str | None = None
    for i in range(min(lookback, len(pm))):
        removed = pm[len(pm) - (i + 1) :]
        hit = cache.get(_hash(pm[: len(pm) - (i + 1)] + "Î" + local.suffix))
        if not hit or hit[: i + 1] != removed:
            continue
        rest = hit[i + 1 :]
        if rest and (best is None or len(rest) > len(best)):
            best = rest
    return best


def render(content: str, local: Local) -> str:
    """The ghost text llama.vim draws: trailing blank lines dropped, a blank line's indentation
    taken from the suggestion, a copy of the line's own rest discarded."""
    parts = content.split("\n")
    while parts and parts[-1] == "":
        parts.pop()
    if not parts:
        return ""
    if not local.line_cur.strip():
        lead = min(len(parts[0]) - len(parts[0].lstrip()), len(local.line_cur))
        parts[0] = parts[0][lead:]
    if len(parts) == 1 and parts[0] == local.line_cur_suffix:
        return ""
    return "\n".join(parts)


def chunk_similarity(a: list[str], b: list[str]) -> float:
    """llama.vim's `s:chunk_sim`: 2 x common lines / all lines."""
    common = sum(1 for line in a if line in b)
    return 2.0 * common / max(1, len(a) + len(b))


class LlamaVimClient:
    """Behaves like llama.vim against `llama-server`: FIM per cursor move with the extra context
    ring, one request at a time (a newer one waits 100 ms), a response cache keyed by context
    with a 128-character look-back, and a speculative request for the context after the shown
    suggestion. `/infill` when the model has FIM tokens, else `/completion` on the same text."""

    name = "llama.vim-like"

    def __init__(self, base_url: str, infill: bool, n_predict: int = 128) -> None:
        import httpx

        self.base = base_url
        self.infill = infill
        self.n_predict = n_predict
        self.http = httpx.AsyncClient(timeout=60)
        self.cache = LruCache()
        self.job: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.predicted = 0
        self.requests = 0
        self.ring: list[list[str]] = []
        self.editor: Editor | None = None
        self.hint_shown = False

    async def open(self, editor: Editor) -> None:
        self.editor = editor
        y = editor.line_col()[0]
        lines = editor.text.split("\n")
        self.ring = [lines[max(0, y - 32) : y + 32]]  # BufEnter picks the lines around the cursor

    async def warm(self, editor: Editor) -> None:
        self.fim(editor, None, None)
        if self.job is not None:
            await self.job
        self.job = None

    async def close(self, editor: Editor) -> None:
        # first: a request finishing now starts no speculative one (it checks the editor)
        self.editor = None
        if self.timer:
            self.timer.cancel()
        while self.job is not None and not self.job.done():
            with contextlib.suppress(Exception):
                await self.job

    async def tokens(self) -> int:
        return self.predicted

    async def changed(self, editor: Editor, start: int, piece: str, accepted: bool) -> None:
        # CursorMovedI: s:on_move (hide, hint from the cache), then llama#fim(auto, use_cache)
        self.hint_shown = False
        self.try_hint(editor)
        self.fim(editor, None, None)

    def try_hint(self, editor: Editor) -> None:
        local = ctx_local(editor.text, editor.offset, None)
        raw = cached_hint(self.cache, local)
        if raw is None:
            return
        ghost = render(raw, local)
        if not ghost:
            return
        editor.show(ghost)
        self.hint_shown = True
        # speculative FIM for the context after this suggestion
        self.fim(editor, (editor.text, editor.offset), ghost.split("\n"))

    def fim(self, editor: Editor, at: tuple[str, int] | None, prev: list[str] | None) -> None:
        if self.job is not None and not self.job.done():
            if self.timer:
                self.timer.cancel()
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(0.1, self.fim, editor, at, prev)
            return
        text, offset = at if at is not None else (editor.text, editor.offset)
        local = ctx_local(text, offset, prev)
        keys = context_keys(local)
        if any(self.cache.get(k) is not None for k in keys):
            return
        self.ring = [c for c in self.ring if chunk_similarity(c, self._around(text, offset)) <= 0.5]
        body = self.body(local, prev)
        self.job = asyncio.create_task(self.request(editor, body, keys))

    @staticmethod
    def _around(text: str, offset: int) -> list[str]:
        lines = text.split("\n")
        y = text[:offset].count("\n")
        return lines[max(0, y - 32) : y + 32]

    def body(self, local: Local, prev: list[str] | None) -> dict[str, Any]:
        extra = [{"text": "\n".join(c) + "\n", "filename": "extra.py"} for c in self.ring]
        common = {
            "n_predict": self.n_predict,
            "top_k": 1,  # greedy, as the other two clients
            "cache_prompt": True,
            "t_max_prompt_ms": 500,
            "t_max_predict_ms": 1000 if prev else 250,
            "stream": False,
        }
        if self.infill:
            return {
                **common,
                "input_prefix": local.prefix,
                "input_suffix": local.suffix,
                "input_extra": extra,
                "prompt": local.middle,
                "samplers": ["top_k", "top_p", "infill"],
            }
        # no FIM tokens: the same text as one prefix prompt (the suffix cannot be used)
        prompt = "".join(c["text"] for c in extra) + local.prefix + local.middle
        return {**common, "prompt": prompt}

    async def request(self, editor: Editor, body: dict[str, Any], keys: list[str]) -> None:
        url = f"{self.base}/infill" if self.infill else f"{self.base}/completion"
        self.requests += 1
        try:
            resp = await self.http.post(url, json=body)
            data = resp.json()
        except Exception as err:  # a failed job: llama.vim echoes it and goes on
            print(f"llama.vim-like: request failed: {type(err).__name__} {err}", file=sys.stderr)
            return
        timings = data.get("timings") or {}
        self.predicted += int(timings.get("predicted_n") or data.get("tokens_predicted") or 0)
        content = data.get("content")
        if not isinstance(content, str):
            return
        for k in keys:
            self.cache.put(k, content)
        if not self.hint_shown and self.editor is editor:
            self.job = None
            self.try_hint(editor)


# --- the llm-ls / Continue-like client -------------------------------------------------------


class LlmLsClient:
    """Behaves like llm-ls or Continue against `vllm serve`: after a fixed debounce, one
    /v1/completions request (the prefix, fixed max tokens, stop at a newline); a newer keystroke
    drops the one in flight; no cache."""

    name = "llm-ls-like"

    def __init__(
        self,
        base_url: str,
        model: str,
        debounce_s: float = 0.15,
        max_tokens: int = 64,
        prefix_chars: int = 4000,
    ) -> None:
        import httpx

        self.base = base_url
        self.model = model
        self.debounce_s = debounce_s
        self.max_tokens = max_tokens
        self.prefix_chars = prefix_chars
        self.http = httpx.AsyncClient(timeout=60)
        self.task: asyncio.Task[None] | None = None

    async def open(self, editor: Editor) -> None:
        return None

    async def warm(self, editor: Editor) -> None:
        await self.ask(editor, -1)

    async def close(self, editor: Editor) -> None:
        if self.task:
            self.task.cancel()

    async def tokens(self) -> int:
        """vLLM's own count of generated tokens (aborted requests included), from /metrics."""
        resp = await self.http.get(f"{self.base}/metrics")
        total = 0.0
        for line in resp.text.splitlines():
            if line.startswith("vllm:generation_tokens_total"):
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    async def changed(self, editor: Editor, start: int, piece: str, accepted: bool) -> None:
        if self.task:
            self.task.cancel()
        self.task = asyncio.create_task(self.ask(editor, editor.version))

    async def ask(self, editor: Editor, version: int) -> None:
        await asyncio.sleep(self.debounce_s)
        prompt = editor.text[max(0, editor.offset - self.prefix_chars) : editor.offset]
        body = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": self.max_tokens,
            "temperature": 0,
            "stop": ["\n"],
        }
        try:
            resp = await self.http.post(f"{self.base}/v1/completions", json=body)
            data = resp.json()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            print(f"llm-ls-like: request failed: {type(err).__name__} {err}", file=sys.stderr)
            return
        choices = data.get("choices") or []
        text = choices[0].get("text", "") if choices else ""
        if editor.version == version and text.strip():
            editor.show(text)


# --- moe-lsp through the real server ----------------------------------------------------------


class MoeLspClient:
    """moe-lsp as VS Code drives it: didChange per keystroke, an inline-completion request per
    keystroke (the server cancels the older one: latest wins), `moe-lsp.accepted` on Tab."""

    name = "moe-lsp"

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pending: set[asyncio.Task[None]] = set()
        self.last: tuple[str, asyncio.Future[Any]] | None = None
        """The inline request in flight (its id), cancelled on the next keystroke."""

    async def open(self, editor: Editor) -> None:
        from lsprotocol import types as lsp

        self.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(
                    uri=editor.uri, language_id="python", version=editor.version, text=editor.text
                )
            )
        )

    async def warm(self, editor: Editor) -> None:
        await self.ask(editor, -1)

    async def close(self, editor: Editor) -> None:
        from lsprotocol import types as lsp

        await asyncio.gather(*self.pending, return_exceptions=True)
        self.client.text_document_did_close(
            lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=editor.uri))
        )

    async def tokens(self) -> int:
        stats = await self.client.protocol.send_request_async("moe/stats", {})
        for _ in range(100):  # let streaks finish so their tokens are counted
            if stats.engine.running == 0:
                break
            await asyncio.sleep(0.1)
            stats = await self.client.protocol.send_request_async("moe/stats", {})
        return int(stats.engine.generatedTokens)

    async def changed(self, editor: Editor, start: int, piece: str, accepted: bool) -> None:
        from lsprotocol import types as lsp

        line, col = editor.line_col(start)
        at = lsp.Position(line=line, character=col)
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(
                    uri=editor.uri, version=editor.version
                ),
                content_changes=[
                    lsp.TextDocumentContentChangePartial(
                        range=lsp.Range(start=at, end=at), text=piece
                    )
                ],
            )
        )
        if accepted:
            await self.client.workspace_execute_command_async(
                lsp.ExecuteCommandParams(
                    command="moe-lsp.accepted", arguments=[editor.uri, "inline"]
                )
            )
        if self.last is not None and not self.last[1].done():
            # VS Code cancels the provider's request when the document changes, then asks again
            self.client.protocol.notify("$/cancelRequest", lsp.CancelParams(id=self.last[0]))
        task = asyncio.create_task(self.ask(editor, editor.version))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def ask(self, editor: Editor, version: int) -> None:
        from lsprotocol import types as lsp

        line, col = editor.line_col()
        params = lsp.InlineCompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=editor.uri),
            position=lsp.Position(line=line, character=col),
            context=lsp.InlineCompletionContext(
                trigger_kind=lsp.InlineCompletionTriggerKind.Automatic
            ),
        )
        msg_id = str(uuid.uuid4())
        future = self.client.protocol.send_request_async(
            lsp.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id
        )
        self.last = (msg_id, future)
        try:
            result = await asyncio.wait_for(future, 30)
        except Exception:  # superseded by the next keystroke (RequestCancelled)
            return
        items = result.items if result is not None else []
        text = items[0].insert_text if items else ""
        if editor.version == version and isinstance(text, str) and text:
            editor.show(text)
