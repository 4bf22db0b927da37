import { test } from "node:test";
import * as assert from "node:assert/strict";
import { buildInitializationOptions } from "../src/logic/initOptions";

test("defaults send nothing, so the server's defaults apply", () => {
  assert.deepEqual(buildInitializationOptions({}), {});
  assert.deepEqual(
    buildInitializationOptions({
      engine: { model: "", kvCacheGib: null, maxModelLen: null, extra: {} },
      completion: { debounceCeilingMs: null, extra: {} },
      logPrompts: false,
    }),
    {},
  );
});

test("named settings map to camelCase server keys", () => {
  assert.deepEqual(
    buildInitializationOptions({
      engine: { model: " Qwen/Qwen2.5-Coder-1.5B ", kvCacheGib: 2, maxModelLen: 8192 },
      completion: { debounceCeilingMs: 80 },
      logPrompts: true,
    }),
    {
      engine: { model: "Qwen/Qwen2.5-Coder-1.5B", kvCacheGib: 2, maxModelLen: 8192 },
      completion: { debounceCeilingMs: 80 },
      logPrompts: true,
    },
  );
});

test("zero is a value, not 'unset'", () => {
  assert.deepEqual(buildInitializationOptions({ completion: { debounceCeilingMs: 0 } }), {
    completion: { debounceCeilingMs: 0 },
  });
});

test("extra keys pass through; named settings win", () => {
  assert.deepEqual(
    buildInitializationOptions({
      engine: { kvCacheGib: 4, extra: { dtype: "float16", kvCacheGib: 1 } },
      completion: { extra: { maxTokensMulti: 96 } },
    }),
    { engine: { dtype: "float16", kvCacheGib: 4 }, completion: { maxTokensMulti: 96 } },
  );
});

test("non-finite numbers and non-object extras are ignored", () => {
  assert.deepEqual(
    buildInitializationOptions({
      engine: { kvCacheGib: Number.NaN, extra: ["x"] as unknown as Record<string, unknown> },
    }),
    {},
  );
});

test("only keys the server knows are produced (no language rules)", () => {
  const out = buildInitializationOptions({ engine: { model: "m" }, completion: { debounceCeilingMs: 1 }, logPrompts: true });
  assert.deepEqual(Object.keys(out).sort(), ["completion", "engine", "logPrompts"]);
});
