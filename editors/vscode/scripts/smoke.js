#!/usr/bin/env node
// Smoke test against the real server (needs `make setup` and the model; not part of ci.sh):
// the extension's own logic finds the server and plans its launch (by default `moe-lsp connect`
// with the engine settings as flags), then a plain JSON-RPC client speaks the same requests the
// extension makes, including a live completion-setting change. The shared server gets a socket
// in a private temporary folder and a short idle exit, so it ends soon after the smoke test.
// Run: npm run smoke
"use strict";
const cp = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const assert = require("node:assert/strict");

const root = path.resolve(__dirname, "..");
const workspace = path.resolve(root, "../..");
const rpc = require(path.join(root, "node_modules/vscode-jsonrpc/lib/node/main.js"));
const { planLaunch, liveSettings } = require(path.join(root, "out-test/src/logic/launch.js"));
const { findServerCommand } = require(path.join(root, "out-test/src/logic/serverCommand.js"));
const { lastTotalMs, formatStats, formatStatus, parseState } = require(path.join(root, "out-test/src/logic/status.js"));
const timeoutMs = Number(process.env.MOE_SMOKE_TIMEOUT_S || 300) * 1000;

const found = findServerCommand({
  workspaceFolders: [workspace],
  workspaceTrusted: true,
  pathEnv: process.env.PATH,
  platform: process.platform,
  isExecutable: (f) => {
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return fs.statSync(f).isFile();
    } catch {
      return false;
    }
  },
});
assert.ok(found, "moe-lsp not found (run `make setup`)");
const settings = { engine: { kvCacheGib: 1, maxModelLen: 2048 }, completion: { debounceCeilingMs: 80 } };
const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "moe-smoke-")); // 0700
const extraArgs = found.args[0] === "connect" ? ["--socket", path.join(runDir, "server.sock"), "--idle-exit", "5"] : [];
const plan = planLaunch({ command: found.command, args: [...found.args, ...extraArgs] }, settings);
assert.deepEqual(plan.problems, []);
const opts = plan.initializationOptions;
console.log(`server: ${plan.command} ${plan.args.join(" ")} (${found.source}, ${plan.mode})`);
console.log(`initializationOptions: ${JSON.stringify(opts)}`);

const proc = cp.spawn(plan.command, plan.args, { cwd: workspace, stdio: ["pipe", "pipe", "pipe"] });
let stderr = "";
proc.stderr.on("data", (d) => (stderr += d));
const exited = new Promise((r) => proc.on("exit", (code) => r(code)));
const conn = rpc.createMessageConnection(new rpc.StreamMessageReader(proc.stdout), new rpc.StreamMessageWriter(proc.stdin));
const t0 = Date.now();
const messages = [];
let settle;
const settled = new Promise((r) => (settle = r));
conn.onNotification("moe/status", (x) => {
  const st = parseState(x.state);
  console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s  status bar: ${formatStatus({ state: st, message: x.message, enabled: true }).text}`);
  if (st !== "loading") settle(st);
});
conn.onNotification("window/showMessage", (x) => messages.push(x.message));
conn.onNotification("$/progress", () => {});
conn.onRequest("window/workDoneProgress/create", () => null);
conn.onRequest("client/registerCapability", () => null);
conn.onNotification(() => {});
conn.listen();

(async () => {
  const init = await conn.sendRequest("initialize", {
    processId: process.pid,
    rootUri: "file://" + workspace,
    capabilities: { window: { workDoneProgress: true }, textDocument: { inlineCompletion: {}, completion: {} } },
    initializationOptions: opts,
  });
  assert.ok(init.capabilities.inlineCompletionProvider, "no inlineCompletionProvider");
  assert.deepEqual(init.capabilities.executeCommandProvider?.commands, ["moe-lsp.accepted"]);
  conn.sendNotification("initialized", {});
  const state = await Promise.race([settled, new Promise((r) => setTimeout(() => r("timeout"), timeoutMs))]);
  assert.equal(state, "ready", `engine ${state}: ${messages.join("; ")}`);
  assert.deepEqual(messages, [], "server complained about the settings");

  const uri = "file:///tmp/moe-lsp-smoke.py";
  conn.sendNotification("textDocument/didOpen", {
    textDocument: { uri, languageId: "python", version: 1, text: "def fibonacci(n):\n    " },
  });
  const res = await conn.sendRequest("textDocument/inlineCompletion", {
    textDocument: { uri },
    position: { line: 1, character: 4 },
    context: { triggerKind: 1 },
  });
  const items = Array.isArray(res) ? res : res?.items ?? [];
  assert.ok(items.length > 0 && items[0].insertText, "no inline completion");
  assert.equal(items[0].command?.command, "moe-lsp.accepted");
  console.log(`ghost text: ${JSON.stringify(items[0].insertText)}`);

  // A completion setting changed in VS Code: sent live, no restart, no complaint.
  const live = liveSettings(planLaunch({ command: plan.command, args: found.args }, { ...settings, completion: { debounceCeilingMs: 40 } }));
  conn.sendNotification("workspace/didChangeConfiguration", { settings: live });
  console.log(`didChangeConfiguration: ${JSON.stringify(live)}`);

  const stats = await conn.sendRequest("moe/stats", {});
  const ms = lastTotalMs(stats);
  assert.equal(typeof ms, "number", "moe/stats has no last.totalMs");
  console.log(`status bar: ${formatStatus({ state: "ready", enabled: true, lastTotalMs: ms }).text}`);
  console.log(formatStats(stats));

  await conn.sendRequest("shutdown");
  conn.sendNotification("exit");
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("still running"), 15000))]);
  assert.equal(code, 0, `server exit: ${code}`);
  assert.deepEqual(messages, [], "server complained about the live settings");
  if (plan.mode === "connect") {
    const serverLog = path.join(runDir, "server.log");
    const gone = Date.now() + 60000;
    while (fs.existsSync(path.join(runDir, "server.sock")) && Date.now() < gone) await new Promise((r) => setTimeout(r, 500));
    console.log(`shared server ${fs.existsSync(path.join(runDir, "server.sock")) ? "still listening" : "exited idle"} (log: ${serverLog})`);
  }
  console.log("smoke: OK");
  process.exit(0);
})().catch((e) => {
  console.error("smoke: FAILED", e.message || e);
  console.error(stderr.slice(-3000));
  proc.kill();
  process.exit(1);
});
