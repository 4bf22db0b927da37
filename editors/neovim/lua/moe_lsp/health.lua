-- :checkhealth moe_lsp: the Neovim version, the server binary and model, how the server is
-- set up, and the engine state of each attached client (moe/stats).
local M = {}

local health = vim.health

local function version_string()
  local v = vim.version()
  return ("%d.%d.%d"):format(v.major, v.minor, v.patch)
end

local function check_neovim()
  health.start("moe-lsp: Neovim")
  local v = version_string()
  if vim.fn.has("nvim-0.12") == 1 then
    health.ok(("Neovim %s: built-in inline completion (vim.lsp.inline_completion), vim.lsp.enable"):format(v))
  elseif vim.fn.has("nvim-0.11") == 1 then
    health.ok(("Neovim %s: vim.lsp.enable(\"moe_lsp\"); ghost text drawn by the plugin"):format(v))
  elseif vim.fn.has("nvim-0.10") == 1 then
    health.warn(("Neovim %s: use require(\"moe_lsp\").setup{} (vim.lsp.enable needs 0.11)"):format(v),
      { "Neovim 0.11 or newer is the tested version" })
  else
    health.error(("Neovim %s is too old"):format(v), { "moe-lsp needs Neovim 0.10 or newer (0.11+ tested)" })
  end
end

local function check_server()
  health.start("moe-lsp: server")
  local moe = require("moe_lsp")
  local cmd = moe.resolve_cmd(moe.server_cmd(moe.config))
  local exe = type(cmd) == "table" and cmd[1] or nil
  if not exe or vim.fn.executable(exe) ~= 1 then
    health.error(("server not found: %s"):format(exe or "no cmd"), {
      "install it (pipx install, uv tool install or `make setup` in the repository; see the README)",
      "or set cmd: vim.lsp.config(\"moe_lsp\", { cmd = { \"/path/to/moe-lsp\", \"connect\" } })",
    })
    return
  end
  local found, where = moe.find_server()
  local origin = (found and exe == found) and (" (from " .. where .. ")") or ""
  health.ok("server: " .. (vim.fn.exepath(exe) ~= "" and vim.fn.exepath(exe) or exe) .. origin)
  health.info("command: " .. table.concat(cmd, " "))
  -- The command before its subcommand (e.g. `python -m moe_lsp.lsp.cli`), then `model path`.
  local base = {}
  for _, a in ipairs(cmd) do
    if a == "connect" or a == "serve" then
      break
    end
    base[#base + 1] = a
  end
  local out = vim.fn.system(vim.list_extend(base, { "model", "path" }))
  if vim.v.shell_error == 0 then
    -- The folder is the last line (stderr, merged in, may hold a note before it).
    local lines = vim.split(vim.trim(out), "\n")
    local folder = vim.trim(lines[#lines] or "")
    if vim.fn.isdirectory(folder) == 1 then
      health.ok("default model prepared: " .. folder)
    else
      health.info(("default model not prepared yet (%s): the server prepares it on first use, "
        .. "or run `moe-lsp model prepare`"):format(folder))
    end
  else
    health.warn("`moe-lsp model path` failed: " .. vim.trim(out))
  end
end

local function check_setup()
  health.start("moe-lsp: set-up")
  local via_enable = false
  if vim.lsp.is_enabled then
    via_enable = vim.lsp.is_enabled("moe_lsp")
  elseif vim.lsp._enabled_configs then
    via_enable = vim.lsp._enabled_configs["moe_lsp"] ~= nil
  end
  local via_setup = #vim.api.nvim_get_autocmds({ group = vim.api.nvim_create_augroup("moe_lsp", { clear = false }) }) > 0
  if via_enable and via_setup then
    health.warn("both vim.lsp.enable(\"moe_lsp\") and setup{} start the server: two sessions per buffer",
      { "call require(\"moe_lsp\").setup({ start = false, ... }) when you use vim.lsp.enable" })
  elseif via_enable then
    health.ok("started by vim.lsp.enable(\"moe_lsp\") (lsp/moe_lsp.lua)")
  elseif via_setup then
    health.ok("started by require(\"moe_lsp\").setup{} on: " .. table.concat(require("moe_lsp").config.filetypes, ", "))
  else
    health.info("not set up yet: vim.lsp.enable(\"moe_lsp\") or require(\"moe_lsp\").setup{}")
  end
  if #vim.api.nvim_get_runtime_file("lsp/moe_lsp.lua", true) == 0 then
    health.warn("lsp/moe_lsp.lua is not on 'runtimepath' (add editors/neovim to it)")
  end
end

local function check_engine()
  health.start("moe-lsp: engine")
  local clients = vim.lsp.get_clients({ name = "moe_lsp" })
  if #clients == 0 then
    health.info("no moe_lsp client running (open a file of a supported filetype first)")
    return
  end
  for _, client in ipairs(clients) do
    local reply = client:request_sync("moe/stats", {}, 3000)
    if not reply or reply.err or not reply.result then
      health.warn(("client %d: moe/stats gave no answer (%s)"):format(client.id,
        reply and reply.err and vim.inspect(reply.err) or "timeout"))
    else
      local s = reply.result
      local line = ("client %d: engine %s"):format(client.id, tostring(s.state))
      if s.profile ~= nil and s.profile ~= vim.NIL then
        line = line .. ", prompt profile " .. tostring(s.profile)
      end
      if type(s.loadSeconds) == "number" then
        line = line .. (", loaded in %.0f s"):format(s.loadSeconds)
      end
      if s.state == "ready" then
        health.ok(line)
      elseif s.state == "failed" then
        health.error(line .. (type(s.message) == "string" and (": " .. s.message) or ""))
      else
        health.info(line .. (type(s.message) == "string" and s.message ~= "" and (": " .. s.message) or ""))
      end
    end
  end
  local status = require("moe_lsp").server_status
  health.info(("last moe/status: %s%s"):format(status.state,
    status.message and status.message ~= "" and (" — " .. status.message) or ""))
end

function M.check()
  check_neovim()
  check_server()
  check_setup()
  check_engine()
end

return M
