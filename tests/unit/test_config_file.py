"""The user config file (XDG paths, typed rules, precedence) and `moe-lsp config`'s sources."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from moe_lsp.lsp.cli import build_parser, log_choice, main
from moe_lsp.lsp.config_file import config_path, default_log_file, load
from moe_lsp.lsp.logs import setup_logging
from moe_lsp.lsp.settings import ServerSettings

DEFAULTS = ServerSettings().wire()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of its own: no XDG variables, no config override, no engine variables."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in (
        "XDG_CONFIG_HOME",
        "XDG_STATE_HOME",
        "MOE_LSP_CONFIG",
        "MOE_LSP_ENGINE_URL",
        "MOE_LSP_ENGINE_TOKENIZER",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def write(home: Path, text: str) -> Path:
    path = home / ".config" / "moe-lsp" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("env", "config", "log"),
    [
        ({}, ".config/moe-lsp/config.toml", ".local/state/moe-lsp/server.log"),
        (
            {"XDG_CONFIG_HOME": "/x/conf", "XDG_STATE_HOME": "/x/state"},
            "/x/conf/moe-lsp/config.toml",
            "/x/state/moe-lsp/server.log",
        ),
        # relative XDG values are ignored, as the XDG spec says
        ({"XDG_CONFIG_HOME": "rel"}, ".config/moe-lsp/config.toml", None),
        ({"MOE_LSP_CONFIG": "/etc/m.toml"}, "/etc/m.toml", None),
        ({"MOE_LSP_CONFIG": ""}, None, None),
    ],
)
def test_paths(home: Path, monkeypatch: pytest.MonkeyPatch, env, config, log) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert config_path() == (None if config is None else home / config)
    if log is not None:
        assert default_log_file() == home / log


@pytest.mark.parametrize(
    ("text", "check", "problem"),
    [
        ("", lambda f: f.keys == set(), None),
        (
            "[completion]\ndebounceFloorMs = 30\nmax_tokens_single = 32\n",
            lambda f: (
                f.settings.completion.debounce_floor_ms == 30.0
                and f.settings.completion.max_tokens_single == 32
                and f.keys == {"completion.debounceFloorMs", "completion.maxTokensSingle"}
            ),
            None,
        ),
        (
            "[engine]\nkv-cache-gib = 2\nmodel = '/m'\n",
            lambda f: f.settings.engine.vllm.kv_cache_gib == 2 and f.settings.engine.model == "/m",
            None,
        ),
        ('logLevel = "debug"\nlogFile = "/tmp/l.log"\n', lambda f: f.options.log_file, None),
        ('logPrompts = "false"\n', lambda f: f.settings.log_prompts is False, "logPrompts"),
        ("[completion]\ndebounceFloorMs = 1e7\n", lambda f: f.keys == set(), "0 to 2000"),
        (
            "[completion]\ndebounceFloorMs = nan\nmaxTokensSingle = 9\n",
            lambda f: f.settings.completion.max_tokens_single == 9,
            "debounceFloorMs",
        ),
        ("[engine]\nkvCacheGib = 'lots'\n", lambda f: f.keys == set(), "kvCacheGib"),
        ('logLevel = "LOUD"\n', lambda f: f.options.log_level == "INFO", "DEBUG, INFO"),
        ("colour = 1\n", lambda f: True, "Unknown setting 'colour'"),
        ("[completion\n", lambda f: not f.found, "is not valid TOML"),
        ("when = 2024-01-01T00:00:00\n", lambda f: True, "Unknown setting"),
        ("[completion]\nprofile = 2024-01-01\n", lambda f: True, "must be one of"),
    ],
)
def test_file(home: Path, text: str, check, problem: str | None) -> None:
    path = write(home, text)
    file = load()
    assert check(file)
    if problem is None:
        assert file.problems == []
    else:
        assert len(file.problems) == 1
        assert problem in file.problems[0] and str(path) in file.problems[0]


def test_an_unreadable_file_is_one_message(home: Path) -> None:
    path = write(home, "")
    path.unlink()
    path.mkdir()  # a folder where the file should be
    file = load()
    assert len(file.problems) == 1 and "cannot be read" in file.problems[0]


def test_missing_file_is_no_problem(home: Path) -> None:
    file = load()
    assert (file.found, file.problems) == (False, [])


@pytest.mark.parametrize(
    ("text", "argv", "env", "expected"),
    [
        # defaults < file < env < flag (engine settings)
        ("", [], {}, {"engine.kvCacheGib": (DEFAULTS["engine.kvCacheGib"], "default")}),
        ("[engine]\nkvCacheGib = 2\n", [], {}, {"engine.kvCacheGib": (2, "file")}),
        (
            "[engine]\nkvCacheGib = 2\n",
            ["--kv-cache-gib", "3"],
            {},
            {"engine.kvCacheGib": (3.0, "flag")},
        ),
        (
            "[engine]\nmodel = '/file'\n",
            ["--model", "/flag"],
            {"MOE_LSP_ENGINE_URL": "http://gpu:8000"},
            {
                "engine.model": ("/flag", "flag"),
                "engine.url": ("http://gpu:8000", "env"),
                "engine.backend": ("openai", "env"),
            },
        ),
        (
            "",
            ["--engine-url", "http://h:1"],
            {"MOE_LSP_ENGINE_URL": "http://gpu:8000"},
            {"engine.url": ("http://h:1", "flag")},
        ),
        (
            "logPrompts = true\n[completion]\ntimeoutSeconds = 5\n",
            [],
            {},
            {"logPrompts": (True, "file"), "completion.timeoutSeconds": (5.0, "file")},
        ),
        ("", ["--log-prompts"], {}, {"logPrompts": (True, "flag")}),
        ('logLevel = "DEBUG"\n', [], {}, {"logLevel": ("DEBUG", "file")}),
        ('logLevel = "DEBUG"\n', ["--log-level", "ERROR"], {}, {"logLevel": ("ERROR", "flag")}),
    ],
)
def test_config_command_sources(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    argv: list[str],
    env: dict[str, str],
    expected: dict,
) -> None:
    write(home, text)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["config", "--json", *argv]) == 0
    rows = json.loads(capsys.readouterr().out)
    for key, (value, source) in expected.items():
        assert (rows[key]["value"], rows[key]["source"]) == (value, source)
    assert rows["logFile"]["source"].startswith("default")


def test_config_command_text_and_problems(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(home, "[completion]\ndebounceFloorMs = 30\nhotStreakTokens = -1\n")
    assert main(["config"]) == 1
    out, err = capsys.readouterr()
    assert f"# config file: {path}" in out
    assert "completion.debounceFloorMs = 30.0" in out and "# file" in out
    assert "completion.hotStreakTokens = 96" in out
    assert "hotStreakTokens = -1 was not applied" in err


def test_serve_uses_the_file_below_its_flags(home: Path) -> None:
    from moe_lsp.lsp.cli import _settings_from

    write(home, '[engine]\nkvCacheGib = 2\nmodel = "/file"\n[completion]\nmaxTokensMulti = 64\n')
    args = build_parser().parse_args(["serve", "--model", "/flag"])
    settings = _settings_from(args)
    assert (settings.engine.model, settings.engine.vllm.kv_cache_gib) == ("/flag", 2)
    assert settings.completion.max_tokens_multi == 64
    assert args.config_problems == []


def test_log_choice_and_the_default_file(home: Path) -> None:
    write(home, 'logLevel = "WARNING"\n')
    args = build_parser().parse_args(["serve"])
    from moe_lsp.lsp.cli import _settings_from

    _settings_from(args)
    level, log_file, default_file = log_choice(args)
    assert (level, log_file) == ("WARNING", None)
    assert default_file == home / ".local/state/moe-lsp/server.log"
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("INFO", None, default_file)
        logging.getLogger("moe_lsp.test").info("to the default file")
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in root.handlers:
            if handler not in saved[0]:
                handler.close()
        root.handlers[:], root.level = saved
    assert "to the default file" in default_file.read_text()
    assert default_file.stat().st_mode & 0o777 == 0o600
    assert default_file.parent.stat().st_mode & 0o777 == 0o700
