import { test } from "node:test";
import * as assert from "node:assert/strict";
import { findServerCommand, ServerCommandInput, untrustedSkips } from "../src/logic/serverCommand";

const base = {
  workspaceFolders: [] as string[],
  platform: "linux",
  pathEnv: "",
  isExecutable: () => false,
  workspaceTrusted: true,
};

test("configured absolute command wins and keeps args", () => {
  const r = findServerCommand({
    ...base,
    configuredCommand: "/opt/moe/bin/moe-lsp",
    configuredArgs: ["serve", "--log-level", "debug"],
    isExecutable: () => true,
  });
  assert.deepEqual(r, { command: "/opt/moe/bin/moe-lsp", args: ["serve", "--log-level", "debug"], source: "setting" });
});

test("configured relative path resolves against the first workspace folder", () => {
  const r = findServerCommand({ ...base, configuredCommand: "./tools/moe-lsp", workspaceFolders: ["/ws/a", "/ws/b"] });
  assert.equal(r?.command, "/ws/a/tools/moe-lsp");
  assert.deepEqual(r?.args, ["connect"]);
});

test("configured bare name is left for PATH lookup by the OS", () => {
  const r = findServerCommand({ ...base, configuredCommand: "  moe-lsp  ", workspaceFolders: ["/ws/a"] });
  assert.equal(r?.command, "moe-lsp");
});

test("blank setting falls through to the workspace .venv", () => {
  const r = findServerCommand({
    ...base,
    configuredCommand: "   ",
    workspaceFolders: ["/ws/a", "/ws/b"],
    pathEnv: "/usr/bin",
    isExecutable: (f) => f === "/ws/b/.venv/bin/moe-lsp" || f === "/usr/bin/moe-lsp",
  });
  assert.deepEqual(r, { command: "/ws/b/.venv/bin/moe-lsp", args: ["connect"], source: "workspace" });
});

test("first workspace folder with a .venv wins", () => {
  const r = findServerCommand({
    ...base,
    workspaceFolders: ["/ws/a", "/ws/b"],
    isExecutable: (f) => f.endsWith(".venv/bin/moe-lsp"),
  });
  assert.equal(r?.command, "/ws/a/.venv/bin/moe-lsp");
});

test("PATH is searched in order after the workspace", () => {
  const r = findServerCommand({
    ...base,
    workspaceFolders: ["/ws/a"],
    pathEnv: "/usr/local/bin::/home/u/.local/bin:/usr/bin",
    isExecutable: (f) => f === "/home/u/.local/bin/moe-lsp" || f === "/usr/bin/moe-lsp",
  });
  assert.deepEqual(r, { command: "/home/u/.local/bin/moe-lsp", args: ["connect"], source: "path" });
});

test("nothing found gives undefined", () => {
  assert.equal(findServerCommand({ ...base, workspaceFolders: ["/ws"], pathEnv: "/usr/bin" }), undefined);
});

test("windows looks in .venv\\Scripts and splits PATH on ;", () => {
  const ws = findServerCommand({
    ...base,
    platform: "win32",
    workspaceFolders: ["C:\\ws"],
    isExecutable: (f) => f === "C:\\ws\\.venv\\Scripts\\moe-lsp.exe",
  });
  assert.equal(ws?.command, "C:\\ws\\.venv\\Scripts\\moe-lsp.exe");
  const onPath = findServerCommand({
    ...base,
    platform: "win32",
    pathEnv: "C:\\a;C:\\b",
    isExecutable: (f) => f === "C:\\b\\moe-lsp.exe",
  });
  assert.equal(onPath?.command, "C:\\b\\moe-lsp.exe");
});

// An untrusted workspace: nothing inside its folders is run.
const untrusted: ServerCommandInput = {
  ...base,
  workspaceTrusted: false,
  workspaceFolders: ["/ws/a"],
  pathEnv: "/usr/bin",
  isExecutable: (f: string) => f === "/ws/a/.venv/bin/moe-lsp" || f === "/usr/bin/moe-lsp",
};
const untrustedCases: [string, Partial<ServerCommandInput>, string | undefined, string[]][] = [
  ["the workspace .venv is skipped for PATH", {}, "/usr/bin/moe-lsp", ["workspace not trusted: not running /ws/a/.venv/bin/moe-lsp"]],
  [
    "a relative configured command is skipped",
    { configuredCommand: "./tools/moe-lsp" },
    "/usr/bin/moe-lsp",
    [
      "workspace not trusted: not running moeLsp.server.command ./tools/moe-lsp (inside the workspace)",
      "workspace not trusted: not running /ws/a/.venv/bin/moe-lsp",
    ],
  ],
  ["an absolute configured command still runs", { configuredCommand: "/opt/moe/bin/moe-lsp" }, "/opt/moe/bin/moe-lsp", ["workspace not trusted: not running /ws/a/.venv/bin/moe-lsp"]],
  ["a bare configured name still runs (PATH)", { configuredCommand: "moe-lsp" }, "moe-lsp", ["workspace not trusted: not running /ws/a/.venv/bin/moe-lsp"]],
  ["nothing on PATH: nothing found", { pathEnv: "" }, undefined, ["workspace not trusted: not running /ws/a/.venv/bin/moe-lsp"]],
  ["trusted: the .venv runs again", { workspaceTrusted: true }, "/ws/a/.venv/bin/moe-lsp", []],
];
for (const [name, over, command, skips] of untrustedCases) {
  test(`untrusted workspace: ${name}`, () => {
    const input = { ...untrusted, ...over };
    assert.equal(findServerCommand(input)?.command, command);
    assert.deepEqual(untrustedSkips(input), skips);
  });
}
