-- moe-lsp for Neovim: starts the server through vim.lsp and shows its inline completions.
-- Neovim 0.12+: the built-in vim.lsp.inline_completion. Neovim 0.10/0.11: ghost text drawn here.
-- By default the server is `moe-lsp connect`: the user's shared server (one model for every
-- editor), started on first use; engine settings are its command-line flags.
local M = {}

local NAME = "moe_lsp"
local ns = vim.api.nvim_create_namespace("moe_lsp_ghost")
local has_011 = vim.fn.has("nvim-0.11") == 1

M.config = {
  -- A bare "moe-lsp" not on PATH is taken from the repository's .venv (`make setup`).
  cmd = { "moe-lsp", "connect" },
  -- false: setup() starts nothing; `vim.lsp.enable("moe_lsp")` does (lsp/moe_lsp.lua).
  start = true,
  filetypes = { "python", "javascript", "typescript", "typescriptreact", "go", "rust", "java", "c", "cpp" },
  -- Engine settings (camelCase, as the server's engine.* keys). With `connect`: command-line
  -- flags (see ENGINE_FLAGS); with `serve`: initializationOptions.engine.
  engine = {},
  init_options = {},
  root_markers = { ".git" },
  debounce_ms = 75,
  -- nil: the built-in inline completion on 0.12+, the plugin's ghost text otherwise.
  -- false: always the plugin's ghost text.
  builtin = nil,
  keys = {
    accept = "<Tab>",
    accept_alt = "<C-l>",
    accept_word = "<C-Right>",
    accept_line = "<C-Down>",
    dismiss = "<C-]>",
  },
  -- Next-edit suggestions (moe/nextEdit): asked `delay_ms` after the last change of a buffer
  -- when `enabled` (require("moe_lsp").next_edit() asks at any time). The keys are mapped in
  -- `modes`, buffer-local, only while a suggestion is shown; `jump` and `apply` may be the same
  -- key (the first press jumps, the second applies). false or "" leaves a key unmapped.
  next_edit = {
    enabled = true,
    delay_ms = 700,
    modes = { "n", "i" },
    keys = {
      jump = "<Tab>",
      apply = "<Tab>",
      dismiss = "<Esc>",
    },
  },
}

-- Last moe/status notification: { state = "loading"|"ready"|"failed", message = "..." }
M.server_status = { state = "starting", message = "" }

-- Ghost state for the plugin's own renderer (one at a time, in the current buffer).
local ghost = nil -- { buf, row, col, text, item, client_id, tick, mark }
local pending = nil -- { client, id }
local timer = nil

---------------------------------------------------------------------------------------------
-- the server command

-- Every engine setting `moe-lsp connect` has a flag for, in the order the flags are given.
-- kind: "string" | "url" | "number" (above min, at most max) | "integer" (at least min, multiple
-- of step) | "boolean" | "choice" (one of choices). The ranges are the server's own checks.
local ENGINE_FLAGS = {
  { key = "model", flag = "--model", kind = "string" },
  { key = "dtype", flag = "--dtype", kind = "choice", choices = { "auto", "bfloat16", "float16", "float32" } },
  { key = "maxModelLen", flag = "--max-model-len", kind = "integer", min = 256,
    what = "a whole number of tokens, at least 256" },
  { key = "maxNumSeqs", flag = "--max-num-seqs", kind = "integer", min = 1,
    what = "a whole number, at least 1" },
  { key = "enforceEager", flag = "--enforce-eager", kind = "switch" },
  { key = "speculativeConfig", flag = "--speculative-config", kind = "json" },
  { key = "kvCacheGib", flag = "--kv-cache-gib", kind = "number", min = 0, what = "a number of GiB above 0" },
  { key = "blockSize", flag = "--block-size", kind = "integer", min = 16, step = 16,
    what = "a positive multiple of 16" },
  { key = "tensorParallelSize", flag = "--tensor-parallel-size", kind = "integer", min = 1,
    what = "a whole number, at least 1" },
  { key = "pipelineParallelSize", flag = "--pipeline-parallel-size", kind = "integer", min = 1,
    what = "a whole number, at least 1" },
  { key = "dataParallelSize", flag = "--data-parallel-size", kind = "integer", min = 1,
    what = "a whole number, at least 1" },
  { key = "enableExpertParallel", flag = "--enable-expert-parallel", kind = "boolean" },
  { key = "distributedExecutorBackend", flag = "--distributed-executor-backend", kind = "choice",
    choices = { "mp", "ray", "uni" } },
  { key = "gpuMemoryUtilization", flag = "--gpu-memory-utilization", kind = "number", min = 0, max = 1,
    what = "a number above 0 and at most 1" },
  { key = "trustRemoteCode", flag = "--trust-remote-code", kind = "boolean" },
  { key = "url", flag = "--engine-url", kind = "url" },
  { key = "tokenizer", flag = "--engine-tokenizer", kind = "string" },
  { key = "apiKeyFile", flag = "--engine-api-key-file", kind = "string" },
}
M.ENGINE_FLAGS = ENGINE_FLAGS
local BOOLEAN_WORDS = { "true", "false", "yes", "no", "on", "off", "1", "0" }

local function unset(v)
  return v == nil or v == vim.NIL or (type(v) == "string" and vim.trim(v) == "")
end

local function shown(v)
  if type(v) == "string" then
    return ("the string '%s'"):format(v)
  end
  return vim.inspect(v)
end

-- Why `v` cannot be the value of `spec`'s flag (nil when it can).
local function flag_problem(spec, v)
  local k = spec.kind
  if k == "json" then
    -- a table (sent as JSON) or a string holding a JSON object
    local obj = v
    if type(v) == "string" then
      local ok, decoded = pcall(vim.json.decode, v)
      obj = ok and decoded or nil
    end
    if type(obj) ~= "table" or (next(obj) ~= nil and vim.islist and vim.islist(obj)) then
      return "must be a table (or a JSON object string), not " .. shown(v)
    end
    return nil
  end
  if k == "boolean" or k == "switch" then
    if type(v) == "boolean" then
      return nil
    end
    if type(v) == "string" and vim.tbl_contains(BOOLEAN_WORDS, vim.trim(v):lower()) then
      return "must be true or false (a Lua boolean), not " .. shown(v)
    end
    return "must be true or false, not " .. shown(v)
  elseif k == "number" or k == "integer" then
    local what = spec.what or (k == "integer" and "a whole number" or "a number")
    if type(v) ~= "number" then
      return ("must be %s, not %s"):format(what, shown(v))
    end
    local bad = v ~= v or v == math.huge or v == -math.huge
      or (k == "integer" and math.floor(v) ~= v)
      or (k == "number" and v <= spec.min)
      or (k == "integer" and v < spec.min)
      or (spec.max and v > spec.max)
      or (spec.step and v % spec.step ~= 0)
    if bad then
      return ("must be %s, not %s"):format(what, tostring(v))
    end
    return nil
  elseif k == "choice" then
    if type(v) == "string" and vim.tbl_contains(spec.choices, vim.trim(v)) then
      return nil
    end
    return ("must be one of %s, not %s"):format(table.concat(spec.choices, ", "), shown(v))
  elseif k == "url" then
    if type(v) ~= "string" then
      return "must be a string, not " .. shown(v)
    end
    local u = vim.trim(v)
    if not (u:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/%s]+") and not u:find("%s")) then
      return ("must be an http:// or https:// URL with a host, not '%s'"):format(v)
    end
    return nil
  else -- string
    if type(v) ~= "string" then
      return "must be a string, not " .. shown(v)
    end
    if v:find("[%z\r\n]") then
      return "must be one line of text"
    end
    return nil
  end
end

local function flag_value(v)
  if type(v) == "string" then
    return vim.trim(v)
  end
  if math.floor(v) == v and math.abs(v) < 2 ^ 53 then
    return ("%d"):format(v)
  end
  return tostring(v)
end

--- `moe-lsp connect` flags for the engine settings `engine` (camelCase keys). Returns the flags
--- (`--flag=value`, so a value starting with "-" stays a value; booleans are bare flags) and a
--- list of problems: a value of the wrong type or out of range, or a key `connect` has no flag
--- for, is dropped with one sentence.
function M.engine_args(engine)
  local args, problems = {}, {}
  if engine == nil or engine == vim.NIL then
    return args, problems
  end
  if type(engine) ~= "table" or (next(engine) ~= nil and vim.islist and vim.islist(engine)) then
    return args, { "engine must be a table of settings; ignored." }
  end
  local known = {}
  for _, spec in ipairs(ENGINE_FLAGS) do
    known[spec.key] = true
    local v = engine[spec.key]
    if not unset(v) then
      local problem = flag_problem(spec, v)
      if problem then
        problems[#problems + 1] = ("engine.%s %s; ignored."):format(spec.key, problem)
      elseif spec.kind == "boolean" then
        if v then
          args[#args + 1] = spec.flag
        end
      elseif spec.kind == "switch" then
        -- both ways: false is --no-<flag> (the server's default depends on the device)
        args[#args + 1] = v and spec.flag or ("--no-" .. spec.flag:sub(3))
      elseif spec.kind == "json" then
        local obj = type(v) == "string" and vim.json.decode(v) or v
        args[#args + 1] = spec.flag .. "=" .. vim.json.encode(next(obj) == nil and vim.empty_dict() or obj)
      else
        args[#args + 1] = spec.flag .. "=" .. flag_value(v)
      end
    end
  end
  local unknown = {}
  for key, v in pairs(engine) do
    -- backend "openai" is what --engine-url selects; "vllm" is the default.
    local implied = key == "backend" and (v == "vllm" or (v == "openai" and type(engine.url) == "string"))
    if not known[key] and not unset(v) and not implied then
      unknown[#unknown + 1] = "engine." .. tostring(key)
    end
  end
  if #unknown > 0 then
    table.sort(unknown)
    problems[#problems + 1] = ("%s: `moe-lsp connect` has no flag for %s; ignored. "
      .. "Use cmd = { \"moe-lsp\", \"serve\" } to pass it in initializationOptions.")
      :format(table.concat(unknown, ", "), #unknown == 1 and "this setting" or "these settings")
  end
  return args, problems
end

--- "connect" or "serve": the first of the two words in `cmd` (a list); nil for neither.
function M.server_mode(cmd)
  if type(cmd) ~= "table" then
    return nil
  end
  for i = 2, #cmd do
    if cmd[i] == "connect" or cmd[i] == "serve" then
      return cmd[i]
    end
  end
  return nil
end

--- The command, initializationOptions and problems for a config. With `connect`, the engine
--- settings (`engine`, over `init_options.engine`) are flags after `cmd` and no engine is sent;
--- otherwise they are `init_options.engine`.
function M.server_cmd(cfg)
  local init = vim.deepcopy(cfg.init_options or {})
  local engine = vim.tbl_extend("force", {}, type(init.engine) == "table" and init.engine or {},
    type(cfg.engine) == "table" and cfg.engine or {})
  if M.server_mode(cfg.cmd) ~= "connect" then
    if next(engine) ~= nil then
      init.engine = engine
    end
    return cfg.cmd, init, {}
  end
  init.engine = nil
  local args, problems = M.engine_args(engine)
  if cfg.engine ~= nil and type(cfg.engine) ~= "table" then
    table.insert(problems, 1, "engine must be a table of settings; ignored.")
  end
  local cmd = vim.list_extend(vim.deepcopy(cfg.cmd), args)
  return cmd, init, problems
end

-- The repository this plugin folder is part of (editors/neovim/lua/moe_lsp/init.lua).
local REPO = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h:h:h:h:h")

--- The moe-lsp executable: `moe-lsp` on PATH, else the repository's .venv/bin/moe-lsp (after
--- `make setup`), else nil. The second value says where it was found.
function M.find_server()
  local on_path = vim.fn.exepath("moe-lsp")
  if on_path ~= "" then
    return on_path, "PATH"
  end
  local venv = REPO .. "/.venv/bin/moe-lsp"
  if vim.fn.executable(venv) == 1 then
    return venv, "the repository's .venv"
  end
  return nil, nil
end

--- `cmd` with a bare `moe-lsp` not on PATH replaced by the repository's .venv/bin/moe-lsp.
function M.resolve_cmd(cmd)
  if type(cmd) == "table" and cmd[1] == "moe-lsp" and vim.fn.executable("moe-lsp") ~= 1 then
    local found = M.find_server()
    if found then
      cmd = vim.deepcopy(cmd)
      cmd[1] = found
    end
  end
  return cmd
end

-- The resolved command and initializationOptions (set by setup).
local server = nil

---------------------------------------------------------------------------------------------
-- helpers

local function request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function cancel(client, id)
  if has_011 then
    client:cancel_request(id)
  else
    client.cancel_request(id)
  end
end

local function get_client(bufnr)
  local clients = (vim.lsp.get_clients or vim.lsp.get_active_clients)({ bufnr = bufnr, name = NAME })
  return clients[1]
end

-- LSP character index on `line` -> byte index.
local function byte_index(line, index, encoding)
  if encoding == "utf-8" then
    return math.min(index, #line)
  end
  local ok, res = pcall(vim.str_byteindex, line, encoding, index, false) -- 0.11+
  if ok and type(res) == "number" then
    return res
  end
  ok, res = pcall(vim.str_byteindex, line, index, encoding == "utf-16") -- 0.10
  if ok and type(res) == "number" then
    return res
  end
  return math.min(index, #line)
end

local function item_text(item)
  local t = item.insertText
  if type(t) == "table" then
    t = t.value or ""
  end
  return t or ""
end

local function buf_line(buf, row)
  return vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
end

---------------------------------------------------------------------------------------------
-- rendering (0.10/0.11)

local function clear()
  if ghost and vim.api.nvim_buf_is_valid(ghost.buf) then
    pcall(vim.api.nvim_buf_del_extmark, ghost.buf, ns, ghost.mark)
  end
  ghost = nil
end

local function cancel_pending()
  if pending then
    pcall(cancel, pending.client, pending.id)
    pending = nil
  end
end

local function render(g)
  local lines = vim.split(g.text, "\n", { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], "MoeLspGhost" } }
  end
  local opts = {
    virt_text = { { lines[1], "MoeLspGhost" } },
    virt_text_pos = "inline",
    hl_mode = "combine",
  }
  if #virt_lines > 0 then
    opts.virt_lines = virt_lines
  end
  if g.mark then
    opts.id = g.mark
  end
  g.mark = vim.api.nvim_buf_set_extmark(g.buf, ns, g.row, g.col, opts)
  ghost = g
end

--- Whether ghost text is shown now.
function M.visible()
  if M.use_builtin() then
    return false
  end
  return ghost ~= nil and ghost.text ~= ""
end

--- The ghost text shown now (or nil), for tests and statuslines.
function M.ghost_text()
  return ghost and ghost.text or nil
end

local function show(buf, client, item)
  local cur = vim.api.nvim_win_get_cursor(0)
  local row, col = cur[1] - 1, cur[2]
  local text = item_text(item)
  if item.range then
    -- The item replaces range; what the user already typed in it is not ghost text.
    local s, e = item.range.start, item.range["end"]
    if s.line ~= row or e.line ~= row then
      return
    end
    local line = buf_line(buf, row)
    local sb = byte_index(line, s.character, client.offset_encoding)
    local eb = byte_index(line, e.character, client.offset_encoding)
    if sb > col then
      return
    end
    local typed = line:sub(sb + 1, col)
    if text:sub(1, #typed) ~= typed then
      return
    end
    text = text:sub(#typed + 1)
    -- Text right of the cursor inside the range is replaced; keep only ranges ending at the cursor
    -- or whose replaced tail the completion repeats (then it is shown and accepted as is).
    if eb > col then
      local tail = line:sub(col + 1, eb)
      if text:sub(-#tail) == tail then
        text = text:sub(1, #text - #tail)
      end
    end
  end
  if text == "" then
    return
  end
  clear()
  render({ buf = buf, row = row, col = col, text = text, item = item, client_id = client.id,
           tick = vim.api.nvim_buf_get_changedtick(buf) })
end

--- Ask the server for an inline completion at the cursor now (no debounce).
function M.request(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = get_client(bufnr)
  if not client then
    return false
  end
  cancel_pending()
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = 2 } -- Automatic
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local cur = vim.api.nvim_win_get_cursor(0)
  local ok, id
  ok, id = request(client, "textDocument/inlineCompletion", params, function(err, result)
    if pending and pending.id == id then
      pending = nil
    end
    if err or not result then
      return
    end
    -- Drop stale answers: the buffer or the cursor changed since the request.
    if vim.api.nvim_get_current_buf() ~= bufnr
      or vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
      or not vim.deep_equal(vim.api.nvim_win_get_cursor(0), cur)
      or not vim.startswith(vim.api.nvim_get_mode().mode, "i") then
      return
    end
    local items = result.items or result
    if type(items) == "table" and items[1] then
      show(bufnr, client, items[1])
    end
  end, bufnr)
  if ok and id then
    pending = { client = client, id = id }
  end
  return ok
end

local function schedule_request(bufnr)
  if not timer then
    timer = (vim.uv or vim.loop).new_timer()
  end
  timer:stop()
  cancel_pending()
  timer:start(M.config.debounce_ms, 0, vim.schedule_wrap(function()
    if vim.api.nvim_buf_is_valid(bufnr) and vim.api.nvim_get_current_buf() == bufnr
      and vim.startswith(vim.api.nvim_get_mode().mode, "i") then
      M.request(bufnr)
    end
  end))
end

local function on_change(bufnr)
  if ghost and ghost.buf == bufnr then
    local cur = vim.api.nvim_win_get_cursor(0)
    local row, col = cur[1] - 1, cur[2]
    -- Our own partial accept: the ghost was moved already.
    if ghost.tick == vim.api.nvim_buf_get_changedtick(bufnr) and row == ghost.row and col == ghost.col then
      return
    end
    -- Typed what the ghost text shows: keep the rest.
    if row == ghost.row and col > ghost.col then
      local typed = buf_line(bufnr, row):sub(ghost.col + 1, col)
      local first = vim.split(ghost.text, "\n", { plain = true })[1]
      if #typed < #first and first:sub(1, #typed) == typed then
        local g = ghost
        g.text = ghost.text:sub(#typed + 1)
        g.col = col
        g.tick = vim.api.nvim_buf_get_changedtick(bufnr)
        render(g)
        return
      end
    end
    if row == ghost.row and col == ghost.col and ghost.tick == vim.api.nvim_buf_get_changedtick(bufnr) then
      return
    end
    clear()
  end
  schedule_request(bufnr)
end

---------------------------------------------------------------------------------------------
-- accepting

local function exec_command(client, item, bufnr)
  local cmd = item.command
  if not cmd then
    return
  end
  if has_011 and client.exec_cmd then
    client:exec_cmd(cmd, { bufnr = bufnr })
  else
    request(client, "workspace/executeCommand", { command = cmd.command, arguments = cmd.arguments },
      function() end, bufnr)
  end
end

-- Insert `text` at the ghost's position and move the cursor after it.
local function insert(g, text)
  local lines = vim.split(text, "\n", { plain = true })
  vim.api.nvim_buf_set_text(g.buf, g.row, g.col, g.row, g.col, lines)
  local row = g.row + #lines - 1
  local col = (#lines == 1) and (g.col + #lines[1]) or #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { row + 1, col })
  return row, col
end

-- kind: "all" | "word" | "line"
function M.accept(kind)
  kind = kind or "all"
  if not M.visible() then
    return false
  end
  local g = ghost
  local part = g.text
  if kind == "word" then
    part = g.text:match("^%s*[%w_]+") or g.text:match("^%s*[^%w_%s]+") or g.text:match("^%s+") or g.text
  elseif kind == "line" then
    local nl = g.text:find("\n", 1, true)
    if nl == 1 then
      part = "\n" .. (g.text:match("^\n([^\n]*)") or "")
    elseif nl then
      part = g.text:sub(1, nl - 1)
    end
  end
  local rest = g.text:sub(#part + 1)
  cancel_pending()
  if timer then
    timer:stop()
  end
  local row, col = insert(g, part)
  local client = vim.lsp.get_client_by_id(g.client_id)
  if rest == "" then
    clear()
    if client then
      exec_command(client, g.item, g.buf)
    end
  else
    g.row, g.col, g.text = row, col, rest
    g.tick = vim.api.nvim_buf_get_changedtick(g.buf)
    render(g)
  end
  return true
end

function M.dismiss()
  cancel_pending()
  if timer then
    timer:stop()
  end
  local was = ghost ~= nil
  clear()
  return was
end

---------------------------------------------------------------------------------------------
-- next edits (moe/nextEdit)
--
-- none -> shown (an answer for the buffer's current version) -> jumped (the jump key, cursor
-- elsewhere) -> applied (the apply key at the suggestion, version checked) or dismissed (the
-- dismiss key, any change of the buffer, a stale version). One suggestion at a time.

local ne_ns = vim.api.nvim_create_namespace("moe_lsp_next_edit")
local nedit = nil -- { buf, client_id, version, range, text, phase, srow, scol, erow, ecol, marks }
local ne_pending = nil -- { client, id, buf }
local ne_timer = nil
local ne_maps = {} -- { { buf, mode, lhs, saved } }: the keys set while a suggestion is shown
-- The last request's outcome, for tests and statuslines: "pending", "null", "shown", "stale",
-- "error: …".
local ne_last = nil

-- The version vim.lsp sent for the buffer (its changedtick, as util.buf_versions holds it).
local function buf_version(buf)
  local v = vim.lsp.util.buf_versions and vim.lsp.util.buf_versions[buf]
  if type(v) == "number" and v > 0 then
    return v
  end
  return vim.api.nvim_buf_get_changedtick(buf)
end

local function ne_unmap()
  for _, m in ipairs(ne_maps) do
    if vim.api.nvim_buf_is_valid(m.buf) then
      pcall(vim.keymap.del, m.mode, m.lhs, { buffer = m.buf })
      if m.saved and not vim.tbl_isempty(m.saved) and vim.fn.exists("*mapset") == 1 then
        pcall(vim.fn.mapset, m.mode, false, m.saved)
      end
    end
  end
  ne_maps = {}
end

local function ne_clear()
  if nedit and vim.api.nvim_buf_is_valid(nedit.buf) then
    vim.api.nvim_buf_clear_namespace(nedit.buf, ne_ns, 0, -1)
  end
  nedit = nil
  ne_unmap()
end

local function ne_cancel()
  if ne_pending then
    pcall(cancel, ne_pending.client, ne_pending.id)
    ne_pending = nil
    if ne_last == "pending" then
      ne_last = "cancelled"
    end
  end
end

-- A line's length in the encoding's units.
local function line_units(line, encoding)
  if encoding == "utf-8" then
    return #line
  end
  local ok, res = pcall(vim.str_utfindex, line, encoding) -- 0.11+
  if ok and type(res) == "number" then
    return res
  end
  local ok10, u32, u16 = pcall(vim.str_utfindex, line) -- 0.10
  if ok10 then
    return encoding == "utf-16" and u16 or u32
  end
  return #line
end

-- Byte positions of an LSP range in `buf`, or nil when it does not fit the buffer.
local function byte_range(buf, range, encoding)
  local n = vim.api.nvim_buf_line_count(buf)
  local s, e = range.start, range["end"]
  if type(s) ~= "table" or type(e) ~= "table" or s.line >= n or e.line >= n or s.line < 0
    or (s.line > e.line) or (s.line == e.line and s.character > e.character) then
    return nil
  end
  local sl, el = buf_line(buf, s.line), buf_line(buf, e.line)
  if s.character > line_units(sl, encoding) or e.character > line_units(el, encoding) then
    return nil
  end
  return s.line, byte_index(sl, s.character, encoding), e.line, byte_index(el, e.character, encoding)
end

local function ne_render(n)
  vim.api.nvim_buf_clear_namespace(n.buf, ne_ns, 0, -1)
  n.marks = {}
  if n.srow ~= n.erow or n.scol ~= n.ecol then
    n.marks[#n.marks + 1] = vim.api.nvim_buf_set_extmark(n.buf, ne_ns, n.srow, n.scol, {
      end_row = n.erow, end_col = n.ecol, hl_group = "MoeLspNextEditRemove", hl_mode = "combine",
    })
  end
  local lines = vim.split(n.text, "\n", { plain = true })
  local first = lines[1]
  if n.text == "" then
    first = "⌫"
  end
  local opts = {
    virt_text = { { first, "MoeLspNextEdit" } },
    virt_text_pos = "inline",
    hl_mode = "combine",
  }
  if #lines > 1 then
    local virt_lines = {}
    for i = 2, #lines do
      virt_lines[#virt_lines + 1] = { { lines[i], "MoeLspNextEdit" } }
    end
    opts.virt_lines = virt_lines
  end
  n.marks[#n.marks + 1] = vim.api.nvim_buf_set_extmark(n.buf, ne_ns, n.erow, n.ecol, opts)
end

local function ne_map_keys(buf)
  local cfg = M.config.next_edit or {}
  local keys = cfg.keys or {}
  local wanted = {}
  local function add(lhs, fn)
    if lhs and lhs ~= "" then
      wanted[#wanted + 1] = { lhs = lhs, fn = fn }
    end
  end
  if keys.jump and keys.jump == keys.apply then
    add(keys.jump, "tab")
  else
    add(keys.jump, "jump")
    add(keys.apply, "apply")
  end
  add(keys.dismiss, "dismiss")
  for _, mode in ipairs(cfg.modes or { "n", "i" }) do
    for _, w in ipairs(wanted) do
      local saved = vim.fn.maparg(w.lhs, mode, false, true)
      if not (type(saved) == "table" and saved.buffer == 1) then
        saved = nil
      end
      vim.keymap.set(mode, w.lhs, function()
        -- Ghost text first: its own keys keep working while a suggestion is shown.
        if mode == "i" and w.fn ~= "dismiss" then
          if M.visible() then
            return M.accept("all")
          end
          if M.use_builtin() and vim.lsp.inline_completion.get() then
            return
          end
        end
        if w.fn == "tab" then
          return M.jump_next_edit() or M.apply_next_edit()
        elseif w.fn == "jump" then
          return M.jump_next_edit()
        elseif w.fn == "apply" then
          return M.apply_next_edit()
        end
        M.dismiss_next_edit()
        if mode == "i" then
          -- The key still does what it always does (e.g. <Esc> leaves insert mode).
          vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(w.lhs, true, false, true), "n", false)
        end
      end, { buffer = buf, desc = "moe-lsp: next edit " .. w.fn })
      ne_maps[#ne_maps + 1] = { buf = buf, mode = mode, lhs = w.lhs, saved = saved }
    end
  end
end

-- Show an answer of moe/nextEdit for `buf`; returns the outcome word.
local function ne_show(buf, client, result)
  if result == nil or result == vim.NIL or type(result) ~= "table" then
    return "null"
  end
  local doc, range, text = result.textDocument, result.range, result.newText
  if type(doc) ~= "table" or type(range) ~= "table" or type(text) ~= "string" then
    return "error: malformed answer"
  end
  if doc.uri ~= vim.uri_from_bufnr(buf) or doc.version ~= buf_version(buf) then
    return "stale"
  end
  local srow, scol, erow, ecol = byte_range(buf, range, client.offset_encoding)
  if not srow then
    return "stale"
  end
  if text == "" and srow == erow and scol == ecol then
    return "null"
  end
  ne_clear()
  nedit = { buf = buf, client_id = client.id, version = doc.version, range = range, text = text,
            phase = "shown", srow = srow, scol = scol, erow = erow, ecol = ecol }
  ne_render(nedit)
  ne_map_keys(buf)
  return "shown"
end

--- Ask the server for the next edit of a buffer now (default: the current one). Returns false
--- when no moe-lsp client is attached or a request is already running.
function M.next_edit(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = get_client(bufnr)
  if not client or ne_pending then
    return false
  end
  local params = { textDocument = { uri = vim.uri_from_bufnr(bufnr) } }
  ne_last = "pending"
  local ok, id
  ok, id = request(client, "moe/nextEdit", params, function(err, result)
    if not (ne_pending and ne_pending.id == id) then
      return -- cancelled: the buffer changed since
    end
    ne_pending = nil
    if err then
      ne_last = "error: " .. tostring(err.message or err)
      return
    end
    if not vim.api.nvim_buf_is_valid(bufnr) then
      ne_last = "stale"
      return
    end
    ne_last = ne_show(bufnr, client, result)
  end, bufnr)
  if ok and id then
    ne_pending = { client = client, id = id, buf = bufnr, tick = vim.api.nvim_buf_get_changedtick(bufnr) }
  else
    ne_last = "error: request not sent"
  end
  return ok and true or false
end

-- The suggestion, if it is still for the buffer as it is now (else it is dropped).
local function ne_live()
  if not nedit then
    return nil
  end
  if not vim.api.nvim_buf_is_valid(nedit.buf) or buf_version(nedit.buf) ~= nedit.version then
    ne_clear()
    ne_last = "stale"
    return nil
  end
  return nedit
end

local function cursor_at(n)
  if vim.api.nvim_get_current_buf() ~= n.buf then
    return false
  end
  local c = vim.api.nvim_win_get_cursor(0)
  local row, col = c[1] - 1, c[2]
  local after_start = row > n.srow or (row == n.srow and col >= n.scol)
  local before_end = row < n.erow or (row == n.erow and col <= n.ecol)
  return after_start and before_end
end

--- Move the cursor to the suggestion's start when it is elsewhere. Returns true if it moved.
function M.jump_next_edit()
  local n = ne_live()
  if not n or cursor_at(n) then
    return false
  end
  if vim.api.nvim_get_current_buf() ~= n.buf then
    local win = vim.fn.bufwinid(n.buf)
    if win == -1 then
      return false
    end
    vim.api.nvim_set_current_win(win)
  end
  vim.api.nvim_win_set_cursor(0, { n.srow + 1, n.scol })
  n.phase = "jumped"
  return true
end

--- Apply the suggestion (only to the buffer version it was made for). Returns true if applied.
function M.apply_next_edit()
  local n = ne_live()
  if not n then
    return false
  end
  local client = vim.lsp.get_client_by_id(n.client_id)
  local encoding = client and client.offset_encoding or "utf-16"
  local buf, srow, scol, text = n.buf, n.srow, n.scol, n.text
  ne_clear()
  ne_last = "applied"
  vim.lsp.util.apply_text_edits({ { range = n.range, newText = text } }, buf, encoding)
  if vim.api.nvim_get_current_buf() == buf then
    local lines = vim.split(text, "\n", { plain = true })
    local row = srow + #lines - 1
    local col = (#lines == 1) and (scol + #lines[1]) or #lines[#lines]
    pcall(vim.api.nvim_win_set_cursor, 0, { row + 1, col })
  end
  return true
end

--- Hide the suggestion (and stop a request still running). Returns true if one was shown.
function M.dismiss_next_edit()
  local was = nedit ~= nil
  ne_cancel()
  ne_clear()
  if was then
    ne_last = "dismissed"
  end
  return was
end

--- The suggestion shown now and the last request's outcome (a copy, for tests and statuslines):
--- { last = "pending"|"null"|"shown"|"stale"|"applied"|"dismissed"|"cancelled"|"error: …",
---   pending = bool, shown = nil | { buf, phase, version, range, text, marks = { {row, col, details}… } } }
function M.next_edit_state()
  local out = { last = ne_last, pending = ne_pending ~= nil }
  if nedit then
    local marks = {}
    for _, m in ipairs(vim.api.nvim_buf_get_extmarks(nedit.buf, ne_ns, 0, -1, { details = true })) do
      marks[#marks + 1] = { m[2], m[3], m[4] }
    end
    out.shown = { buf = nedit.buf, phase = nedit.phase, version = nedit.version,
                  range = vim.deepcopy(nedit.range), text = nedit.text, marks = marks }
  end
  return out
end

-- For tests: show an answer as if the server sent it (client: a table with offset_encoding).
function M._show_next_edit(bufnr, answer, encoding)
  ne_last = ne_show(bufnr, { id = -1, offset_encoding = encoding or "utf-8" }, answer)
  return ne_last
end

-- A buffer changed: the suggestion goes, a request for the old text is cancelled, and the next
-- one is asked `delay_ms` after the last change.
local function ne_on_change(bufnr)
  if nedit and nedit.buf == bufnr and buf_version(bufnr) ~= nedit.version then
    ne_clear()
  end
  if ne_pending and ne_pending.buf == bufnr and ne_pending.tick ~= vim.api.nvim_buf_get_changedtick(bufnr) then
    ne_cancel() -- its answer would be for text that is gone
  end
  local cfg = M.config.next_edit or {}
  if not cfg.enabled then
    return
  end
  if not ne_timer then
    ne_timer = (vim.uv or vim.loop).new_timer()
  end
  ne_timer:stop()
  ne_timer:start(cfg.delay_ms or 700, 0, vim.schedule_wrap(function()
    if vim.api.nvim_buf_is_valid(bufnr) and vim.api.nvim_get_current_buf() == bufnr and not ne_pending then
      M.next_edit(bufnr)
    end
  end))
end

local function attach_next_edit(bufnr)
  if vim.b[bufnr].moe_lsp_next_edit then
    return
  end
  vim.b[bufnr].moe_lsp_next_edit = true
  vim.api.nvim_buf_attach(bufnr, false, {
    on_lines = function(_, b)
      vim.schedule(function()
        if vim.api.nvim_buf_is_valid(b) then
          ne_on_change(b)
        end
      end)
    end,
    on_detach = function(_, b)
      vim.schedule(function()
        if nedit and nedit.buf == b then
          ne_clear()
        end
      end)
    end,
  })
end
M._attach_next_edit = attach_next_edit

---------------------------------------------------------------------------------------------
-- built-in (0.12+)

function M.use_builtin()
  if M.config.builtin == false then
    return false
  end
  return vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.enable ~= nil
end

---------------------------------------------------------------------------------------------
-- keys

local function termcodes(k)
  return vim.api.nvim_replace_termcodes(k, true, false, true)
end

-- What `lhs` did in insert mode before the plugin mapped it in a buffer (a mapping of the
-- user, another plugin or Neovim's own, e.g. <Tab>'s snippet jump), as a function giving the
-- keys an expr mapping returns; the key itself when nothing was mapped.
M._fallbacks = {}
function M._fallback(id)
  local f = M._fallbacks[id]
  if f then
    f()
  end
end

local function previous(lhs)
  local prev = vim.fn.maparg(lhs, "i", false, true)
  if vim.tbl_isempty(prev) or (prev.desc or ""):find("^moe%-lsp") then
    return function()
      return termcodes(lhs)
    end
  end
  if prev.callback and prev.expr ~= 1 then
    -- A plain Lua callback may edit text, which an expr mapping may not: run it through <Cmd>.
    table.insert(M._fallbacks, prev.callback)
    local cmd = termcodes(("<Cmd>lua require('moe_lsp')._fallback(%d)<CR>"):format(#M._fallbacks))
    return function()
      return cmd
    end
  end
  return function()
    local keys
    if prev.callback then
      keys = prev.callback()
    elseif prev.expr == 1 then
      keys = vim.api.nvim_eval(prev.rhs)
    else
      keys = prev.rhs
    end
    if type(keys) ~= "string" then
      return ""
    end
    if not prev.callback or prev.replace_keycodes == 1 then
      keys = termcodes(keys)
    end
    if prev.noremap == 1 then
      return keys
    end
    vim.api.nvim_feedkeys(keys, "m", false) -- a recursive mapping: its keys are mapped again
    return ""
  end
end

-- Buffer-local insert-mode mappings; with no ghost text each key does what it did before (a
-- real <Tab>, or the <Tab> mapping that was there), and other buffers are left alone.
local function map(bufnr, lhs, fn_name, arg, builtin_fn)
  if not lhs or lhs == "" then
    return
  end
  local fallback = previous(lhs)
  vim.keymap.set("i", lhs, function()
    if M.use_builtin() then
      if builtin_fn and builtin_fn() then
        return ""
      end
      return fallback()
    end
    if M.visible() then
      return termcodes(("<Cmd>lua require('moe_lsp').%s(%s)<CR>"):format(fn_name, arg and ("%q"):format(arg) or ""))
    end
    return fallback()
  end, { buffer = bufnr, expr = true, replace_keycodes = false,
         desc = "moe-lsp: " .. fn_name .. (arg and (" " .. arg) or "") })
end

local function set_keys(bufnr, keys)
  local builtin_accept = function()
    return vim.lsp.inline_completion.get()
  end
  map(bufnr, keys.accept, "accept", "all", builtin_accept)
  map(bufnr, keys.accept_alt, "accept", "all", builtin_accept)
  map(bufnr, keys.accept_word, "accept", "word", nil)
  map(bufnr, keys.accept_line, "accept", "line", nil)
  map(bufnr, keys.dismiss, "dismiss", nil, nil)
end

---------------------------------------------------------------------------------------------
-- setup

local function root_dir(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local found = vim.fs.find(M.config.root_markers, { path = vim.fs.dirname(name), upward = true })[1]
  return found and vim.fs.dirname(found) or vim.fn.getcwd()
end

local function attach_ghost(bufnr)
  if vim.b[bufnr].moe_lsp_attached then
    return
  end
  vim.b[bufnr].moe_lsp_attached = true
  set_keys(bufnr, M.config.keys)
  local group = vim.api.nvim_create_augroup("moe_lsp_buf_" .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd({ "TextChangedI", "TextChangedP", "CursorMovedI", "InsertEnter" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      on_change(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.dismiss()
    end,
  })
end

-- For tests: show `text` as ghost text at the cursor (item may carry a command), and attach the
-- insert-mode autocommands to a buffer without starting a server.
function M._show_text(text, item)
  local cur = vim.api.nvim_win_get_cursor(0)
  clear()
  render({ buf = vim.api.nvim_get_current_buf(), row = cur[1] - 1, col = cur[2], text = text,
           item = item or { insertText = text }, client_id = -1,
           tick = vim.api.nvim_buf_get_changedtick(0) })
end
M._attach = attach_ghost

-- initializationOptions to send: nil for an empty table (which would go out as a JSON array,
-- and the server warns "settings must be an object, not []").
local function init_or_nil(init)
  if type(init) ~= "table" or next(init) == nil then
    return nil
  end
  return init
end

local function define_highlights()
  vim.api.nvim_set_hl(0, "MoeLspGhost", { link = "Comment", default = true })
  vim.api.nvim_set_hl(0, "MoeLspNextEdit", { link = "DiffAdd", default = true })
  vim.api.nvim_set_hl(0, "MoeLspNextEditRemove", { link = "DiffDelete", default = true })
end

local function on_status(_, params)
  M.server_status = params or M.server_status
  if params and params.state == "failed" then
    vim.notify("moe-lsp: " .. (params.message or "engine failed"), vim.log.levels.ERROR)
  end
  pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "MoeLspStatus", modeline = false })
end

--- What a buffer gets once the server is attached: ghost text (built-in on 0.12+, the plugin's
--- before), its buffer-local keys, next-edit suggestions.
function M.on_attach(_, bufnr)
  define_highlights()
  if M.use_builtin() then
    if not vim.b[bufnr].moe_lsp_attached then
      vim.b[bufnr].moe_lsp_attached = true
      set_keys(bufnr, M.config.keys)
    end
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  else
    attach_ghost(bufnr)
  end
  attach_next_edit(bufnr)
end

--- The `vim.lsp.config` table of lsp/moe_lsp.lua (Neovim 0.11+: `vim.lsp.enable("moe_lsp")`):
--- the server command (engine settings as flags with `connect`), filetypes, root markers, the
--- moe/status handler and `on_attach`. Options given to setup() (without its FileType start)
--- are used; `vim.lsp.config("moe_lsp", {...})` overrides any field.
function M.lsp_config()
  local cmd, init = M.server_cmd(M.config)
  return {
    cmd = M.resolve_cmd(cmd),
    filetypes = M.config.filetypes,
    root_markers = M.config.root_markers,
    init_options = init_or_nil(init),
    handlers = { ["moe/status"] = on_status },
    on_attach = M.on_attach,
  }
end

function M.start(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if not server then
    local cmd, init = M.server_cmd(M.config)
    server = { cmd = cmd, init_options = init }
  end
  local client_id = vim.lsp.start({
    name = NAME,
    cmd = M.resolve_cmd(server.cmd),
    root_dir = root_dir(bufnr),
    init_options = init_or_nil(server.init_options),
    handlers = { ["moe/status"] = on_status },
  }, { bufnr = bufnr })
  if not client_id then
    return nil
  end
  M.on_attach(nil, bufnr)
  return client_id
end

function M.setup(opts)
  opts = opts or {}
  local keys = vim.tbl_extend("force", M.config.keys, opts.keys or {})
  local ne_opts = type(opts.next_edit) == "table" and opts.next_edit or {}
  local next_edit = vim.tbl_extend("force", M.config.next_edit, ne_opts)
  next_edit.keys = vim.tbl_extend("force", M.config.next_edit.keys, ne_opts.keys or {})
  M.config = vim.tbl_extend("force", M.config, opts)
  M.config.keys = keys
  M.config.next_edit = next_edit
  local cmd, init, problems = M.server_cmd(M.config)
  server = { cmd = cmd, init_options = init }
  if #problems > 0 then
    vim.notify("moe-lsp: " .. table.concat(problems, " "), vim.log.levels.WARN)
  end
  define_highlights()
  if M.config.start == false then
    return -- vim.lsp.enable("moe_lsp") starts the server (lsp/moe_lsp.lua)
  end
  local group = vim.api.nvim_create_augroup("moe_lsp", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.config.filetypes,
    callback = function(ev)
      if vim.bo[ev.buf].buftype == "" then
        M.start(ev.buf)
      end
    end,
  })
  -- Buffers already open when setup runs.
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.tbl_contains(M.config.filetypes, vim.bo[b].filetype)
      and vim.bo[b].buftype == "" then
      M.start(b)
    end
  end
end

return M
