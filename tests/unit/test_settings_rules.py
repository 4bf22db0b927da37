"""Typed settings: each bad value gets one message and keeps the old value; random JSON never
breaks the parser or a server session (the handlers over a scripted engine)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from lsprotocol import types as lsp

from moe_lsp.inference.engine import EngineState
from moe_lsp.lsp import handlers
from moe_lsp.lsp.server import MoeLanguageServer
from moe_lsp.lsp.service import Service
from moe_lsp.lsp.settings import CompletionSettings, ServerSettings, check, declared, snake
from moe_lsp.prompts.profiles import profile_by_name

from ..conftest import WordTokenizer
from ..fakes import ScriptedEngine

KEYS = [key for key, _, _ in declared()]
"""Every client setting's wire key ('completion.debounceFloorMs', 'logPrompts')."""


def options_for(key: str, value: Any) -> dict[str, Any]:
    """The settings object that sets `key` (dotted) to `value`."""
    head, _, rest = key.partition(".")
    return {head: {rest: value}} if rest else {head: value}


def value_of(settings: ServerSettings, key: str) -> Any:
    head, _, rest = key.partition(".")
    if rest:
        return getattr(settings.completion, snake(rest))
    return getattr(settings, snake(head))


# --- the probes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key", "expected", "message"),
    [
        # strings are never read as booleans
        ({"logPrompts": "false"}, "logPrompts", False, "must be true or false"),
        ({"logPrompts": "true"}, "logPrompts", False, "write it without quotes"),
        ({"logPrompts": "yes"}, "logPrompts", False, "must be true or false"),
        ({"logPrompts": 1}, "logPrompts", False, "must be true or false"),
        ({"logPrompts": True}, "logPrompts", True, None),
        ({"completion": {"syntaxStop": "0"}}, "completion.syntaxStop", True, "true or false"),
        ({"completion": {"streamGhostText": "null"}}, "completion.streamGhostText", False, "true"),
        # null puts back the default: an editor's way of saying its user unset the key
        ({"completion": {"streamGhostText": None}}, "completion.streamGhostText", False, None),
        ({"completion": {"debounceFloorMs": None}}, "completion.debounceFloorMs", 0.0, None),
        ({"logPrompts": None}, "logPrompts", False, None),
        # numbers: type, finiteness and range
        (
            {"completion": {"debounceFloorMs": "abc"}},
            "completion.debounceFloorMs",
            0.0,
            'completion.debounceFloorMs = "abc" was not applied: it must be a number from 0 to '
            "2000 ms; keeping 0.0.",
        ),
        ({"completion": {"debounceFloorMs": 1e7}}, "completion.debounceFloorMs", 0.0, "0 to 2000"),
        (
            {"completion": {"debounceFloorMs": "50"}},
            "completion.debounceFloorMs",
            0.0,
            "without quotes",
        ),
        ({"completion": {"debounceFloorMs": math.nan}}, "completion.debounceFloorMs", 0.0, "NaN"),
        ({"completion": {"debounceFloorMs": -math.inf}}, "completion.debounceFloorMs", 0.0, "to"),
        ({"completion": {"debounceFloorMs": [50]}}, "completion.debounceFloorMs", 0.0, "[50]"),
        ({"completion": {"debounceFloorMs": {}}}, "completion.debounceFloorMs", 0.0, "number"),
        ({"completion": {"debounceFloorMs": True}}, "completion.debounceFloorMs", 0.0, "number"),
        ({"completion": {"debounceFloorMs": 50}}, "completion.debounceFloorMs", 50.0, None),
        ({"completion": {"timeoutSeconds": 0}}, "completion.timeoutSeconds", 10.0, "0.1 to 300"),
        (
            {"completion": {"promptBudget": 10**400}},
            "completion.promptBudget",
            1536,
            "a number too large to use",
        ),
        ({"completion": {"promptBudget": 512.0}}, "completion.promptBudget", 512, None),
        ({"completion": {"promptBudget": 512.5}}, "completion.promptBudget", 1536, "whole number"),
        ({"completion": {"maxTokensSingle": 0}}, "completion.maxTokensSingle", 48, "1 to 1024"),
        ({"completion": {"hotStreakTokens": 0}}, "completion.hotStreakTokens", 0, None),
        ({"completion": {"contextShare": 1.5}}, "completion.contextShare", 0.25, "0 to 0.9"),
        (
            {"completion": {"profile": ""}},
            "completion.profile",
            "auto",
            "one of 'auto', 'qwen-fim'",
        ),
        ({"completion": {"profile": 3}}, "completion.profile", "auto", "must be one of"),
        ({"completion": {"profile": "qwen"}}, "completion.profile", "auto", "'prefix-only'"),
        ({"completion": {"profile": "qwen-fim"}}, "completion.profile", "qwen-fim", None),
        # snake_case and kebab-case spellings (the config file's) name the same setting
        ({"completion": {"max_tokens_multi": 64}}, "completion.maxTokensMulti", 64, None),
        ({"completion": {"max-tokens-multi": 64}}, "completion.maxTokensMulti", 64, None),
        ({"log_prompts": True}, "logPrompts", True, None),
        # a completion key at the top level is pointed to its place
        ({"debounceFloorMs": 5}, "completion.debounceFloorMs", 0.0, "go under 'completion'"),
        ({"completion": []}, "completion.debounceFloorMs", 0.0, "completion must be an object"),
    ],
)
def test_probe(options: dict, key: str, expected: Any, message: str | None) -> None:
    settings, problems = ServerSettings().apply(options)
    assert value_of(settings, key) == expected
    assert type(value_of(settings, key)) is type(expected)
    if message is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert message in problems[0]


def test_good_values_apply_beside_a_bad_one() -> None:
    options = {"completion": {"debounceFloorMs": "abc", "maxTokensSingle": 10}, "logPrompts": True}
    settings, problems = ServerSettings().apply(options)
    assert (settings.completion.max_tokens_single, settings.log_prompts) == (10, True)
    assert len(problems) == 1 and "debounceFloorMs" in problems[0]


def test_a_secret_in_the_wrong_setting_is_not_repeated() -> None:
    token = "ghp_" + "a1B2c3D4" * 4 + "e5F6"
    _, problems = ServerSettings().apply({"completion": {"profile": token}})
    assert len(problems) == 1 and token not in problems[0] and "<redacted>" in problems[0]


@pytest.mark.parametrize(
    ("key", "set_to", "default"),
    [
        ("completion.debounceFloorMs", 40, 25.0),
        ("completion.profile", "qwen-fim", "prefix-only"),
        ("completion.syntaxStop", True, False),
        ("logPrompts", True, False),
        ("memoryBudgetBytes", 1 << 30, 64 << 20),
    ],
)
def test_null_puts_back_the_servers_own_value(key: str, set_to: Any, default: Any) -> None:
    defaults = ServerSettings().merged(options_for(key, default))  # e.g. from the config file
    settings = defaults.merged(options_for(key, set_to))
    assert value_of(settings, key) == set_to
    settings, problems = settings.apply(options_for(key, None), defaults=defaults)
    assert (value_of(settings, key), problems) == (default, [])


def test_a_bad_value_keeps_the_previous_one_not_the_default() -> None:
    settings = ServerSettings().merged({"completion": {"debounceFloorMs": 40}})
    settings, problems = settings.apply({"completion": {"debounceFloorMs": 1e7}})
    assert settings.completion.debounce_floor_ms == 40.0
    assert problems and "keeping 40.0" in problems[0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"engine": {"kvCacheGib": math.nan}}, "engine.kvCacheGib must be a finite number"),
        (
            {"engine": {"vllm": {"kvCacheGib": math.inf}}},
            "engine.vllm.kvCacheGib must be a finite number",
        ),
        ({"engine": {"kvCacheGib": "2"}}, "kvCacheGib must be a number"),
        ({"engine": []}, "engine must be an object"),
        ("fast", 'settings must be an object, not "fast"'),
    ],
)
def test_engine_and_whole_object_problems(options: Any, message: str) -> None:
    settings, problems = ServerSettings().apply(options)
    assert settings.engine == ServerSettings().engine
    assert len(problems) == 1
    assert message in problems[0]


def test_the_declaration_covers_every_completion_field() -> None:
    declared_keys = {key for key, _, owner in declared() if owner is CompletionSettings}
    assert len(declared_keys) == len(CompletionSettings.__dataclass_fields__)
    for _, f, owner in declared():
        assert check(f, f.default, owner) == f.default  # every default is in its own range


# --- random JSON -------------------------------------------------------------------------------

SPELLED = st.sampled_from(
    ["true", "false", "0", "1", "yes", "no", "abc", "1e7", "nan", "inf", "", " 50 ", "null"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**30), 2**63, 0, 1, 2000, 2001])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
    | SPELLED
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@hsettings(max_examples=400, deadline=None)
@given(key=st.sampled_from(KEYS), value=JSON)
def test_random_json_gets_a_message_or_takes_effect(key: str, value: Any) -> None:
    before = ServerSettings().merged({"completion": {"maxTokensSingle": 7}})
    after, problems = before.apply(options_for(key, value))
    if problems:
        assert len(problems) == 1
        assert key in problems[0]
        assert after == before  # the bad value changed nothing
    elif value is None:
        assert value_of(after, key) == value_of(ServerSettings(), key)
    else:
        f = next(f for k, f, _ in declared() if k == key)
        owner = next(o for k, _, o in declared() if k == key)
        assert value_of(after, key) == check(f, value, owner)


@hsettings(max_examples=200, deadline=None)
@given(options=st.dictionaries(st.sampled_from([*KEYS, "completion", "engine", "x"]), JSON))
@example(options={"completion": {"\n": None}})  # an unknown name is shown on one line
@example(options={"completion": {"a\u2028b": 1}, "\r": 2})
@example(options={"completion.promptBudget": None, "engine": {"\n": None}})
@example(options={"engine": {"model": "a\nb", "x\u0085": 1}})
def test_random_objects_never_raise(options: dict[str, Any]) -> None:
    settings, problems = ServerSettings().apply(options)
    assert isinstance(settings, ServerSettings)
    assert all(isinstance(p, str) and p and p.isprintable() for p in problems)


# --- a server session over a scripted engine -------------------------------------------------

URI = "file:///work/a.py"


@pytest.fixture
def server() -> Iterator[tuple[MoeLanguageServer, list[str], asyncio.AbstractEventLoop]]:
    """A server whose engine is ready, with a document open; warnings are collected."""
    engine = ScriptedEngine([" b", ")", "\n", "x"], tokenizer=WordTokenizer())
    service = Service(lambda config, model_dir: engine)  # type: ignore[arg-type,return-value]
    engine.start()
    service.host.engine = engine  # type: ignore[assignment]
    service.host.state = EngineState.READY
    service.profile = profile_by_name("prefix-only")
    ls = MoeLanguageServer(service=service)
    warned: list[str] = []
    ls.warn = warned.append  # type: ignore[method-assign]
    ls.session.documents.open(URI, "python", 1, "print(a, )\n")
    loop = asyncio.new_event_loop()
    yield ls, warned, loop
    ls.session.close()
    loop.close()


async def inline(ls: MoeLanguageServer) -> lsp.InlineCompletionList:
    params = lsp.InlineCompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI),
        position=lsp.Position(line=0, character=9),
        context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked),
    )
    return await asyncio.wait_for(handlers.on_inline(ls, params), 10)


async def change(ls: MoeLanguageServer, body: Any) -> None:
    await handlers.on_configuration(ls, lsp.DidChangeConfigurationParams(settings=body))


@pytest.mark.parametrize(
    "body",
    [
        {"completion": {"debounceFloorMs": "abc"}},
        {"completion": {"debounceFloorMs": 1e7}},
        {"moe": {"completion": {"timeoutSeconds": math.inf}}},
        {"logPrompts": "false"},
    ],
)
def test_a_bad_value_is_told_and_requests_are_answered(server, body: Any) -> None:
    ls, warned, loop = server
    loop.run_until_complete(change(ls, body))
    assert len(warned) == 1 and "was not applied" in warned[0]
    assert ls.session.settings == ServerSettings()
    answer = loop.run_until_complete(inline(ls))
    assert [item.insert_text for item in answer.items] == ["b"]


def test_engine_settings_on_change_are_told_and_the_rest_applied(server) -> None:
    ls, warned, loop = server
    loop.run_until_complete(change(ls, {"engine": {"kvCacheGib": 2}, "logPrompts": True}))
    assert warned == ["Engine settings take effect when the server restarts."]
    assert ls.session.settings.log_prompts is True
    assert ls.session.settings.engine == ServerSettings().engine


def test_a_change_without_settings_pulls_them(server) -> None:
    ls, warned, loop = server
    ls.pulls_settings = True
    asked: list[str] = []

    async def pull(section: str, timeout: float = 5.0) -> Any:
        asked.append(section)
        return {"completion": {"maxTokensSingle": 9}, "engine": {"kvCacheGib": 3}}

    ls.pull_settings = pull  # type: ignore[method-assign]
    loop.run_until_complete(change(ls, None))
    assert asked == ["moe"]
    assert ls.session.settings.completion.max_tokens_single == 9
    assert ls.session.settings.engine == ServerSettings().engine  # read at initialize only
    assert warned == []


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.sampled_from(KEYS), value=JSON)
def test_random_json_through_the_session(server, key: str, value: Any) -> None:
    ls, warned, loop = server
    before = ls.session.settings
    warned.clear()
    loop.run_until_complete(change(ls, options_for(key, value)))
    if warned:
        assert len(warned) == 1 and key in warned[0]
        assert ls.session.settings == before
    elif value is None:
        assert value_of(ls.session.settings, key) == value_of(ls.session.defaults, key)
    else:
        f = next(f for k, f, _ in declared() if k == key)
        owner = next(o for k, _, o in declared() if k == key)
        assert value_of(ls.session.settings, key) == check(f, value, owner)
    answer = loop.run_until_complete(inline(ls))
    assert isinstance(answer, lsp.InlineCompletionList)
    ls.session.configure({"completion": {"debounceFloorMs": 0, "debounceCeilingMs": 120}})


def test_the_readme_table_states_each_declared_range() -> None:
    from pathlib import Path

    from moe_lsp.lsp.settings import describe

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip(): line for line in readme.splitlines() if line.startswith("| `")
    }
    for key, f, owner in declared():
        assert f"`{key}`" in rows, f"README's settings table has no row for {key}"
        assert describe(f, owner) in rows[f"`{key}`"], f"README's row for {key} is out of date"


MIB = 1 << 20


@pytest.mark.parametrize(
    ("shared", "asked", "kept", "message"),
    [
        (True, 1 << 40, 128 * MIB, "over the shared server's limit for a session (134217728)"),
        (True, 128 * MIB + 1, 128 * MIB, "using 134217728"),
        (True, 64 * MIB, 64 * MIB, None),  # lowering is the client's to choose
        (True, 128 * MIB, 128 * MIB, None),
        (True, None, 128 * MIB, None),  # null: back to the server's own value
        (True, "2000000000", 128 * MIB, "without quotes"),
        (False, 1 << 40, 1 << 40, None),  # a server of one's own: the user's choice
    ],
)
def test_a_shared_server_caps_each_sessions_memory_budget(
    shared: bool, asked: Any, kept: int, message: str | None
) -> None:
    settings = ServerSettings().merged({"memoryBudgetBytes": 128 * MIB})
    ls = MoeLanguageServer(settings, shared=shared)
    try:
        problems = ls.session.configure({"memoryBudgetBytes": asked})
        assert ls.session.settings.memory_budget_bytes == kept
        assert ls.session.documents.budget.limit == kept
        if message is None:
            assert problems == []
        else:
            assert len(problems) == 1 and message in problems[0], problems
    finally:
        ls.session.close()
