"""The one completion path over a scripted engine: early stop, cancel abort, clean-up, logs."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from moe_lsp.lsp.completion import Outcome, Wait, complete
from moe_lsp.lsp.documents import Snapshot
from moe_lsp.lsp.session import Session
from moe_lsp.lsp.settings import CompletionSettings, ServerSettings

from ..fakes import ScriptedEngine, ready_session

URI = "file:///t.py"


def open_at(session: Session, document: str) -> Snapshot:
    """Open `document` (the cursor is '|') in `session`; the snapshot at the cursor."""
    cursor = document.index("|")
    text = document.replace("|", "")
    session.documents.open(URI, "python", 1, text)
    doc = session.documents.get(URI)
    assert doc is not None
    line, character = doc.position_at(cursor, session.documents.encoding)
    snap = session.snapshot(URI, line, character)
    assert snap is not None and snap.offset == cursor
    return snap


def session_with(engine: ScriptedEngine, tok, **completion) -> Session:
    engine.tokenizer = tok
    settings = ServerSettings(completion=CompletionSettings(**completion))
    return ready_session(engine, settings)


async def run(engine, tok, document: str, wait: Wait = Wait.WHOLE, **completion) -> Outcome:
    session = session_with(engine, tok, **completion)
    out = await complete(session, open_at(session, document), wait)
    assert out is not None
    session.close()
    return out


@pytest.mark.parametrize("wait", [Wait.WHOLE, Wait.FIRST])
@pytest.mark.parametrize(
    ("document", "pieces", "expected", "stopped_early"),
    [
        # healed at "ret": the model re-emits it, then the line ends (the streak goes on)
        ("def f(x):\n    ret|", ["return", " x", "\n", "def", " g"], "urn x", True),
        # healed at the space; the closing bracket right of the cursor is not repeated
        ("print(a, |)\n", [" b", ")", "\n", "x"], "b", True),
        # an empty body: several lines, stopped at the dedent
        (
            "def f(x):\n|",
            ["\n    ", "y", " =", " x", "\n    ", "return", " y", "\n", "print", "("],
            "    y = x\n    return y",
            True,
        ),
        # the engine finishes by itself
        ("x = |", [" 1"], "1", False),
        # the model goes somewhere the healed text does not allow: nothing, stopped at once
        ("x = |", ["1", "2", "3"], "", True),
    ],
)
async def test_complete(tok, wait, document, pieces, expected, stopped_early) -> None:
    engine = ScriptedEngine(pieces)
    out = await run(engine, tok, document, wait)
    assert out.text == expected
    await asyncio.sleep(0.01)  # the session's close cancels a streak still going
    assert engine.running == 0
    request_id = engine.requests[0][0]
    assert (request_id in engine.closed) is stopped_early
    assert engine.yielded < len(pieces) or not stopped_early


@pytest.mark.parametrize(
    ("document", "streak_tokens", "streamed_mode", "max_tokens"),
    [
        # at a line's end a single-line request runs as a hot streak: multi-line rules
        ("x = 1\ny = |", 96, "multi-line", 96),
        # hot streaks off: the request's own prompt
        ("x = 1\ny = |", 0, "single-line", 48),
        # text right of the cursor: no streak
        ("print(|)\n", 96, "single-line", 48),
    ],
)
async def test_the_engine_runs_the_planned_prompt(
    tok, document, streak_tokens, streamed_mode, max_tokens
) -> None:
    engine = ScriptedEngine([" 2", "\n", "z", " = 3"])
    session = session_with(engine, tok, hot_streak_tokens=streak_tokens)
    await complete(session, open_at(session, document), Wait.WHOLE)
    _, _, sampling = engine.requests[-1]
    assert sampling.max_tokens == max_tokens
    assert sampling.priority == 0  # someone waits for it
    streak = session.streaks.get(URI)
    assert streak is not None and str(streak.gen.prompt.mode) == streamed_mode
    session.close()


@pytest.mark.parametrize("grace_ms", [0.0, 30.0])
async def test_cancel_closes_the_engine_stream(tok, grace_ms: float) -> None:
    engine = ScriptedEngine([" a"] + ["a"] * 99, delay=0.01)
    session = session_with(engine, tok, max_tokens_single=100, adopt_grace_ms=grace_ms)
    task = asyncio.ensure_future(complete(session, open_at(session, "x = |"), Wait.WHOLE))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.01)
    # within the grace the generation still runs, for a request that may adopt it
    assert (session.streaks.get(URI) is None) is (grace_ms == 0)
    await asyncio.sleep(grace_ms / 1000 + 0.02)
    assert engine.running == 0
    assert engine.closed == [engine.requests[0][0]]
    assert session.streaks.get(URI) is None  # cancelled by the client and nobody adopted it


async def test_a_request_after_a_cancel_adopts_the_generation(tok) -> None:
    # an editor cancels the old request on a keystroke, then asks again: the new request
    # reads the running generation instead of starting over
    engine = ScriptedEngine([" 1", "\n", "y", " =", " 2", "\n"], delay=0.02)
    session = session_with(engine, tok, adopt_grace_ms=500.0, debounce_ceiling_ms=0.0)
    snap = open_at(session, "x = |")
    task = asyncio.ensure_future(complete(session, snap, Wait.FIRST))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    out = await complete(session, snap, Wait.FIRST)
    assert out is not None and out.text == "1"
    assert len(engine.requests) == 1 and session.counts["from_streak"] == 1
    assert engine.closed == []
    session.close()


async def test_timeout_returns_text_so_far(tok) -> None:
    engine = ScriptedEngine([" a", "b", "c", "d", "e"], delay=0.05)
    out = await run(engine, tok, "x = |", timeout_seconds=0.12)
    assert out.finish_reason == "timeout"
    assert 0 < len(out.text) < 5
    assert engine.running == 0


async def test_empty_document_asks_nothing(tok) -> None:
    engine = ScriptedEngine(["x"])
    out = await run(engine, tok, "|")
    assert out.text == ""
    assert engine.requests == []


async def test_not_ready_is_answered_empty_at_once(tok) -> None:
    engine = ScriptedEngine(["x"])
    session = session_with(engine, tok)
    session.service.profile = None  # as before the engine is ready
    assert await complete(session, open_at(session, "x = |"), Wait.FIRST) is None
    assert session.counts["not_ready"] == 1 and engine.requests == []


async def test_a_second_request_at_the_same_place_is_served_by_the_streak(tok) -> None:
    engine = ScriptedEngine([" 1", "\n", "y", " =", " 2", "\n"])
    session = session_with(engine, tok)
    snap = open_at(session, "x = |")
    first = await complete(session, snap, Wait.FIRST)
    second = await complete(session, snap, Wait.FIRST)
    assert first is not None and second is not None
    assert first.text == second.text == "1"
    assert len(engine.requests) == 1 and session.counts["from_streak"] == 1
    session.close()


async def test_a_prefetch_starts_a_streak_and_answers_nothing(tok) -> None:
    engine = ScriptedEngine([" 1", "\n"])
    session = session_with(engine, tok)
    snap = open_at(session, "x = |")
    assert await complete(session, snap, Wait.NONE) is None
    assert session.counts["prefetched"] == 1 and session.streaks.get(URI) is not None
    served = await complete(session, snap, Wait.FIRST)
    assert served is not None and served.text == "1" and len(engine.requests) == 1
    assert engine.requests[0][2].priority == 1  # after every request someone waits for
    session.close()


async def test_a_stale_answer_is_never_given(tok) -> None:
    engine = ScriptedEngine([" 1", "2", "3", "\n"], delay=0.02)
    session = session_with(engine, tok)
    snap = open_at(session, "x = |")
    task = asyncio.ensure_future(complete(session, snap, Wait.WHOLE))
    await asyncio.sleep(0.03)
    session.documents.change(URI, 2, [(((0, 4), (0, 4)), "9")])
    assert await task is None
    assert session.counts["stale"] == 1
    session.close()


SECRET = "sk-proj-Abcdefghijklmnop1234567890QRSTuvwx"
DOCUMENT = f'API_KEY = "{SECRET}"\nunique_marker_name = 1\nx = |'


@pytest.mark.parametrize(
    ("log_prompts", "code_logged"),
    [
        (False, False),  # by default logs hold no code
        (True, True),  # the debug switch logs it, with secrets redacted
    ],
)
async def test_logs_hold_code_only_on_the_debug_switch_and_never_secrets(
    tok, caplog, log_prompts: bool, code_logged: bool
) -> None:
    engine = ScriptedEngine([" unique_marker_name", f" + {SECRET!r}", "\n"])
    engine.tokenizer = tok
    session = ready_session(engine, replace(ServerSettings(), log_prompts=log_prompts))
    with caplog.at_level(logging.DEBUG):
        out = await complete(session, open_at(session, DOCUMENT), Wait.WHOLE)
    assert out is not None and out.raw  # the engine did answer
    logged = caplog.text
    assert ("unique_marker_name" in logged) is code_logged
    assert SECRET not in logged
    session.close()


async def test_server_stats_show_sessions_requests_in_flight_and_generations(tok) -> None:
    engine = ScriptedEngine([" 1", "2", "3", "4", "\n"], delay=0.05)
    session = session_with(engine, tok)
    session.user = "alice"
    task = asyncio.ensure_future(complete(session, open_at(session, "x = |"), Wait.WHOLE))
    await asyncio.sleep(0.12)
    server = session.stats()["server"]
    assert server["sessions"] == 1 and server["users"] == ["alice"]
    assert server["inFlight"] == 1 and server["generating"] == 1
    assert server["requestsByUser"] == {"alice": 1}
    await task
    server = session.stats()["server"]
    assert server["inFlight"] == 0 and server["waitingForFirstToken"] == 0
    session.close()
    assert session.service.server_stats()["sessions"] == 0
