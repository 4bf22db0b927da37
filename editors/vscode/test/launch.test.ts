import { test } from "node:test";
import * as assert from "node:assert/strict";
import { MoeSettings } from "../src/logic/initOptions";
import { classifyChange, configurationAnswer, liveSettings, planLaunch, serverMode } from "../src/logic/launch";

const BIN = "/ws/.venv/bin/moe-lsp";
const settings: MoeSettings = {
  engine: { model: "m", kvCacheGib: 2, extra: { dtype: "float16" } },
  completion: { debounceCeilingMs: 80, extra: { maxTokensMulti: 96 } },
  logPrompts: true,
};

test("serverMode: the first of connect/serve in the args", () => {
  assert.equal(serverMode(["connect"]), "connect");
  assert.equal(serverMode(["serve", "--log-level", "DEBUG"]), "serve");
  assert.equal(serverMode(["-m", "moe_lsp.lsp.cli", "connect", "--socket", "/x/serve"]), "connect");
  assert.equal(serverMode(["--stdio"]), "other");
  assert.equal(serverMode([]), "other");
});

test("connect: engine settings become flags, not initializationOptions", () => {
  const p = planLaunch({ command: BIN, args: ["connect"] }, settings);
  assert.deepEqual(p, {
    command: BIN,
    args: ["connect", "--model=m", "--dtype=float16", "--kv-cache-gib=2"],
    mode: "connect",
    initializationOptions: { completion: { maxTokensMulti: 96, debounceCeilingMs: 80 }, logPrompts: true },
    problems: [],
  });
});

test("connect: flags follow the configured args, so the settings win", () => {
  const p = planLaunch({ command: BIN, args: ["connect", "--idle-exit", "60", "--kv-cache-gib", "1"] }, settings);
  assert.deepEqual(p.args, ["connect", "--idle-exit", "60", "--kv-cache-gib", "1", "--model=m", "--dtype=float16", "--kv-cache-gib=2"]);
});

test("connect: a bad engine value is dropped with a message, the rest still start", () => {
  const p = planLaunch({ command: BIN, args: ["connect"] }, { engine: { kvCacheGib: "2" as unknown as number, extra: { enableExpertParallel: "yes" } } });
  assert.deepEqual(p.args, ["connect"]);
  assert.equal(p.problems.length, 2);
  assert.deepEqual(p.initializationOptions, {});
});

test("serve: today's behaviour, engine settings in initializationOptions", () => {
  const p = planLaunch({ command: BIN, args: ["serve"] }, settings);
  assert.deepEqual(p, {
    command: BIN,
    args: ["serve"],
    mode: "serve",
    initializationOptions: {
      engine: { dtype: "float16", model: "m", kvCacheGib: 2 },
      completion: { maxTokensMulti: 96, debounceCeilingMs: 80 },
      logPrompts: true,
    },
    problems: [],
  });
});

test("neither word: treated as serve (initializationOptions)", () => {
  const p = planLaunch({ command: "/opt/wrapper", args: [] }, settings);
  assert.equal(p.mode, "other");
  assert.deepEqual(p.initializationOptions.engine, { dtype: "float16", model: "m", kvCacheGib: 2 });
});

test("liveSettings: the didChangeConfiguration body", () => {
  assert.deepEqual(liveSettings(planLaunch({ command: BIN, args: ["connect"] }, settings)), {
    completion: { maxTokensMulti: 96, debounceCeilingMs: 80 },
    logPrompts: true,
  });
  assert.deepEqual(liveSettings(planLaunch({ command: BIN, args: ["connect"] }, {})), { completion: {}, logPrompts: false });
});

// What a change needs, in both modes: [name, before, after, kind, (reason pattern)].
const connect = (s: MoeSettings) => planLaunch({ command: BIN, args: ["connect"] }, s);
const serve = (s: MoeSettings) => planLaunch({ command: BIN, args: ["serve"] }, s);
type Row = [string, ReturnType<typeof connect>, ReturnType<typeof connect>, "none" | "update" | "restart", RegExp?];
const ROWS: Row[] = [
  ["nothing", connect(settings), connect(settings), "none"],
  ["a completion setting changes (connect)", connect({}), connect({ completion: { debounceCeilingMs: 50 } }), "update"],
  ["a completion setting changes (serve)", serve({ completion: { debounceCeilingMs: 10 } }), serve({ completion: { debounceCeilingMs: 50 } }), "update"],
  ["logPrompts turned on", connect({}), connect({ logPrompts: true }), "update"],
  ["logPrompts turned off", connect({ logPrompts: true }), connect({ logPrompts: false }), "update"],
  ["completion extra key added", connect({}), connect({ completion: { extra: { maxTokensMulti: 64 } } }), "update"],
  ["completion setting unset", connect({ completion: { debounceCeilingMs: 50 } }), connect({}), "update"],
  ["engine setting (connect)", connect({}), connect({ engine: { kvCacheGib: 3 } }), "restart", /engine settings/],
  ["engine setting (serve)", serve({}), serve({ engine: { kvCacheGib: 3 } }), "restart", /engine settings changed/],
  ["engine model (serve)", serve({ engine: { model: "a" } }), serve({ engine: { model: "b" } }), "restart", /engine/],
  ["a bad engine value that stays dropped", connect({ engine: { kvCacheGib: -1 } }), connect({ engine: { kvCacheGib: -2 } }), "none"],
  ["serve → connect", serve({}), connect({}), "restart", /server command/],
  ["connect → serve", connect({}), serve({}), "restart", /server command/],
  ["another executable", connect({}), planLaunch({ command: "/other/moe-lsp", args: ["connect"] }, {}), "restart", /server command/],
];

for (const [name, before, after, kind, reason] of ROWS) {
  test(`change: ${name} → ${kind}`, () => {
    const c = classifyChange(before, after);
    assert.equal(c.kind, kind, JSON.stringify(c));
    if (c.kind === "restart" && reason) assert.match(c.reason, reason);
    if (c.kind === "update") {
      const unset = Object.keys(liveSettings(before).completion).filter((k) => !(k in liveSettings(after).completion));
      const expected = liveSettings(after);
      for (const k of unset) expected.completion[k] = null;
      assert.deepEqual(c.settings, expected);
    }
  });
}

test("an update never carries engine settings (the server refuses them live)", () => {
  const c = classifyChange(serve({ engine: { model: "m" } }), serve({ engine: { model: "m" }, completion: { debounceCeilingMs: 1 } }));
  assert.equal(c.kind, "update");
  assert.deepEqual(Object.keys(c.kind === "update" ? c.settings : {}).sort(), ["completion", "logPrompts"]);
});

test("an unset completion key goes to the server as null, beside the keys still set", () => {
  const before = connect({ completion: { debounceCeilingMs: 50, extra: { maxTokensMulti: 64, promptBudget: 900 } } });
  const after = connect({ completion: { extra: { maxTokensMulti: 32 } } });
  const c = classifyChange(before, after);
  assert.equal(c.kind, "update");
  if (c.kind === "update") {
    assert.deepEqual(c.settings.completion, { maxTokensMulti: 32, debounceCeilingMs: null, promptBudget: null });
  }
});

test("the server's pull of its moe section is answered with the settings sent live", () => {
  const plan = connect({ completion: { debounceCeilingMs: 50 }, logPrompts: true });
  const items = [{ section: "moe" }, { section: "editor" }, {}];
  const answer = configurationAnswer(items, plan, [null, { tabSize: 4 }]);
  assert.deepEqual(answer, [{ completion: { debounceCeilingMs: 50 }, logPrompts: true }, { tabSize: 4 }, null]);
  assert.deepEqual(configurationAnswer([], plan, []), []);
});
