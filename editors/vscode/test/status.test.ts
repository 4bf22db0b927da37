import { test } from "node:test";
import * as assert from "node:assert/strict";
import { formatLatency, formatStats, formatStatus, lastTotalMs, parseState } from "../src/logic/status";

test("latency formatting", () => {
  assert.equal(formatLatency(undefined), undefined);
  assert.equal(formatLatency(null), undefined);
  assert.equal(formatLatency(Number.NaN), undefined);
  assert.equal(formatLatency(87.4), "87 ms");
  assert.equal(formatLatency(1234), "1.2 s");
});

test("loading shows the progress message, shortened to one line", () => {
  const s = formatStatus({ state: "loading", message: "Loading model\n  upcycled-moe (42%)", enabled: true });
  assert.equal(s.text, "$(loading~spin) moe: Loading model upcycled-moe (42%)");
  assert.equal(s.severity, "normal");
  const long = formatStatus({ state: "loading", message: "x".repeat(100), enabled: true });
  assert.ok(long.text.length < 70);
  assert.ok(long.text.endsWith("…"));
  assert.match(long.tooltip, /x{100}/);
});

test("ready shows the last latency when known", () => {
  assert.equal(formatStatus({ state: "ready", enabled: true }).text, "$(sparkle) moe");
  const s = formatStatus({ state: "ready", enabled: true, lastTotalMs: 142.6 });
  assert.equal(s.text, "$(sparkle) moe 143 ms");
  assert.match(s.tooltip, /Last completion: 143 ms/);
});

test("failed is an error; disabled is a warning", () => {
  const f = formatStatus({ state: "failed", message: "not enough memory", enabled: true });
  assert.equal(f.text, "$(error) moe: failed");
  assert.equal(f.severity, "error");
  assert.match(f.tooltip, /not enough memory/);
  const off = formatStatus({ state: "ready", enabled: false, languageId: "markdown" });
  assert.equal(off.text, "$(circle-slash) moe: off");
  assert.equal(off.severity, "warning");
  assert.match(off.tooltip, /off for markdown/);
  assert.equal(formatStatus({ state: "failed", enabled: false }).severity, "error");
});

test("lastTotalMs reads moe/stats bodies defensively", () => {
  assert.equal(lastTotalMs({ last: { totalMs: 55.5 } }), 55.5);
  assert.equal(lastTotalMs({ last: null }), undefined);
  assert.equal(lastTotalMs({ last: { totalMs: "55" } }), undefined);
  assert.equal(lastTotalMs(null), undefined);
  assert.equal(lastTotalMs(undefined), undefined);
});

test("parseState maps unknown states to loading", () => {
  assert.equal(parseState("ready"), "ready");
  assert.equal(parseState("failed"), "failed");
  assert.equal(parseState("loading"), "loading");
  assert.equal(parseState("weird"), "loading");
  assert.equal(parseState(undefined), "loading");
});

test("formatStats renders a moe/stats body", () => {
  const text = formatStats({
    state: "ready",
    message: "model loaded",
    loadSeconds: 12.34,
    restarts: 0,
    counts: { requested: 5, answered: 4 },
    latencyMs: { total: { count: 3, p50: 120.456 } },
    engine: null,
    last: { mode: "single", totalMs: 99.04 },
  });
  assert.match(text, /^state: ready \(model loaded\)$/m);
  assert.match(text, /^model load: 12\.3 s$/m);
  assert.match(text, /^  requested: 5$/m);
  assert.match(text, /^  total: \{"count":3,"p50":120\.5\}$/m);
  assert.match(text, /^  totalMs: 99$/m);
  assert.match(text, /^  requested: 5$/m);
  assert.doesNotMatch(text, /engine:/);
  assert.equal(formatStats(null), "moe/stats: no answer");
});
