import { test } from "node:test";
import * as assert from "node:assert/strict";
import {
  atSuggestion,
  current,
  decoration,
  DocumentNow,
  endOfInsert,
  NextEditEvent,
  NextEditState,
  NONE,
  parseAnswer,
  preview,
  shouldAsk,
  step,
  Suggestion,
} from "../src/logic/nextEdit";

const URI = "file:///w/report.py";
const LINES = [
  "def report(prices):",
  "    value = total(prices, 1.25)",
  "    again = total(prices, 1.2)",
  "    return value, again",
  "",
];
const doc = (version = 2, uri = URI): DocumentNow => ({
  uri,
  version,
  lineCount: LINES.length,
  lineLength: (i) => LINES[i].length,
});
const range = (sl: number, sc: number, el: number, ec: number) => ({
  start: { line: sl, character: sc },
  end: { line: el, character: ec },
});
const answer = (version = 2, r = range(2, 28, 2, 29), newText = "25", uri = URI) => ({
  textDocument: { uri, version },
  range: r,
  newText,
});
const SUGGESTION: Suggestion = { uri: URI, version: 2, range: range(2, 28, 2, 29), newText: "25" };
const SHOWN: NextEditState = { phase: "shown", suggestion: SUGGESTION };
const JUMPED: NextEditState = { phase: "jumped", suggestion: SUGGESTION };

test("answers: only a well-formed one for the current version and document is shown", () => {
  const cases: [string, unknown, DocumentNow, string][] = [
    ["an answer for the current version", answer(), doc(2), "shown"],
    ["a null answer (nothing to suggest)", null, doc(2), "none"],
    ["a stale version (the user typed since)", answer(2), doc(3), "none"],
    ["a newer version than the document (out of order)", answer(4), doc(3), "none"],
    ["another document", answer(2, undefined, undefined, "file:///w/other.py"), doc(2), "none"],
    ["a range past the last line", answer(2, range(9, 0, 9, 1)), doc(2), "none"],
    ["a range past the line's end", answer(2, range(0, 5, 0, 99)), doc(2), "none"],
    ["start after end", answer(2, range(2, 10, 2, 4)), doc(2), "none"],
    ["an edit that changes nothing", answer(2, range(1, 4, 1, 4), ""), doc(2), "none"],
    ["malformed: no textDocument", { range: range(0, 0, 0, 0), newText: "x" }, doc(2), "none"],
    ["malformed: newText missing", { textDocument: { uri: URI, version: 2 }, range: range(0, 0, 0, 0) }, doc(2), "none"],
    ["malformed: negative character", answer(2, range(0, -1, 0, 0)), doc(2), "none"],
    ["malformed: a string", "edit", doc(2), "none"],
    ["an insertion (empty range)", answer(2, range(3, 4, 3, 4), "print(value)\n    "), doc(2), "shown"],
    ["a deletion (empty text)", answer(2, range(2, 0, 3, 0), ""), doc(2), "shown"],
  ];
  for (const [name, a, d, phase] of cases) {
    const out = step(NONE, { kind: "answer", answer: a, doc: d });
    assert.equal(out.state.phase, phase, name);
    assert.equal(out.effect.kind, phase === "shown" ? "show" : "none", name);
  }
});

test("a null or stale answer leaves a shown suggestion as it is", () => {
  for (const a of [null, answer(1)]) {
    const out = step(SHOWN, { kind: "answer", answer: a, doc: doc(2) });
    assert.deepEqual(out, { state: SHOWN, effect: { kind: "none" } });
  }
  const newer = step(SHOWN, { kind: "answer", answer: answer(2, range(1, 0, 1, 1), "x"), doc: doc(2) });
  assert.equal(newer.state.phase, "shown");
  assert.deepEqual(current(newer.state)?.range, range(1, 0, 1, 1));
});

test("transitions: none → shown → jumped → applied, Escape, changes, stale versions", () => {
  const at = { line: 2, character: 28 };
  const elsewhere = { line: 0, character: 3 };
  const cases: [string, NextEditState, NextEditEvent, string, string][] = [
    ["Tab with the cursor elsewhere jumps", SHOWN, { kind: "tab", cursor: elsewhere, doc: doc(2) }, "jumped", "jump"],
    ["Tab at the suggestion applies", SHOWN, { kind: "tab", cursor: at, doc: doc(2) }, "applied", "apply"],
    ["Tab at the range's end applies", SHOWN, { kind: "tab", cursor: { line: 2, character: 29 }, doc: doc(2) }, "applied", "apply"],
    ["second Tab after the jump applies", JUMPED, { kind: "tab", cursor: at, doc: doc(2) }, "applied", "apply"],
    ["Tab after the jump, cursor moved away: jumps again", JUMPED, { kind: "tab", cursor: elsewhere, doc: doc(2) }, "jumped", "jump"],
    ["Tab on a changed document: stale, dismissed", SHOWN, { kind: "tab", cursor: at, doc: doc(3) }, "dismissed", "clear"],
    ["Tab after the jump on a changed document: stale", JUMPED, { kind: "tab", cursor: at, doc: doc(3) }, "dismissed", "clear"],
    ["Tab in another document does nothing", SHOWN, { kind: "tab", cursor: at, doc: doc(2, "file:///w/x.py") }, "shown", "none"],
    ["Tab with nothing shown does nothing", NONE, { kind: "tab", cursor: at, doc: doc(2) }, "none", "none"],
    ["Escape dismisses", SHOWN, { kind: "escape" }, "dismissed", "clear"],
    ["Escape after the jump dismisses", JUMPED, { kind: "escape" }, "dismissed", "clear"],
    ["Escape with nothing shown does nothing", NONE, { kind: "escape" }, "none", "none"],
    ["typing (a change) clears", SHOWN, { kind: "change", uri: URI }, "dismissed", "clear"],
    ["a change after the jump clears", JUMPED, { kind: "change", uri: URI }, "dismissed", "clear"],
    ["a change in another document clears too", SHOWN, { kind: "change", uri: "file:///w/x.py" }, "dismissed", "clear"],
    ["closing the document clears", SHOWN, { kind: "close", uri: URI }, "dismissed", "clear"],
    ["closing another document keeps it", SHOWN, { kind: "close", uri: "file:///w/x.py" }, "shown", "none"],
    ["after applying, a change is nothing to clear", { phase: "applied", suggestion: SUGGESTION }, { kind: "change", uri: URI }, "applied", "none"],
    ["after applying, Tab does nothing", { phase: "applied", suggestion: SUGGESTION }, { kind: "tab", cursor: at, doc: doc(2) }, "applied", "none"],
  ];
  for (const [name, state, event, phase, effect] of cases) {
    const out = step(state, event);
    assert.equal(out.state.phase, phase, name);
    assert.equal(out.effect.kind, effect, name);
  }
});

test("the jump goes to the range's start; apply carries the version and the cursor after", () => {
  const jump = step(SHOWN, { kind: "tab", cursor: { line: 0, character: 0 }, doc: doc(2) });
  assert.deepEqual(jump.effect, { kind: "jump", to: { line: 2, character: 28 } });
  const apply = step(jump.state, { kind: "tab", cursor: { line: 2, character: 28 }, doc: doc(2) });
  assert.deepEqual(apply.effect, {
    kind: "apply",
    uri: URI,
    version: 2,
    range: range(2, 28, 2, 29),
    newText: "25",
    cursorAfter: { line: 2, character: 30 },
  });
  const dismissed = step(SHOWN, { kind: "tab", cursor: { line: 2, character: 28 }, doc: doc(5) });
  assert.deepEqual(dismissed.state, { phase: "dismissed", reason: "stale" });
});

test("range mapping: cursor inside, end of the inserted text", () => {
  const r = range(2, 4, 3, 2);
  const cases: [number, number, boolean][] = [
    [2, 3, false],
    [2, 4, true],
    [2, 40, true],
    [3, 0, true],
    [3, 2, true],
    [3, 3, false],
    [1, 10, false],
  ];
  for (const [line, character, inside] of cases) {
    assert.equal(atSuggestion({ line, character }, r), inside, `${line}:${character}`);
  }
  const ends: [string, { line: number; character: number }][] = [
    ["", { line: 2, character: 4 }],
    ["abc", { line: 2, character: 7 }],
    ["a\nbc", { line: 3, character: 2 }],
    ["a\n", { line: 3, character: 0 }],
    ["a\n\n    x = 1", { line: 4, character: 9 }],
  ];
  for (const [text, end] of ends) assert.deepEqual(endOfInsert({ line: 2, character: 4 }, text), end, JSON.stringify(text));
});

test("decoration: a replacement highlights its range; an insertion shows text only", () => {
  const rep = decoration(SUGGESTION);
  assert.deepEqual(rep.remove, range(2, 28, 2, 29));
  assert.deepEqual(rep.anchor, { line: 2, character: 29 });
  assert.equal(rep.text, "→ 25");
  assert.match(rep.hover, /replace the highlighted text with/);
  assert.match(rep.hover, /```\n25\n```/);
  const ins = decoration({ ...SUGGESTION, range: range(3, 4, 3, 4), newText: "log(value)\n    " });
  assert.equal(ins.remove, undefined);
  assert.equal(ins.text, "→ log(value) ⏎     ");
  assert.match(ins.hover, /insert/);
  const del = decoration({ ...SUGGESTION, newText: "" });
  assert.equal(del.text, "");
  assert.match(del.hover, /delete the highlighted text/);
  assert.equal(preview("x".repeat(200)).length, 80);
  assert.ok(preview("x".repeat(200)).endsWith("…"));
});

test("parseAnswer keeps only the fields it knows", () => {
  assert.deepEqual(parseAnswer({ ...answer(), extra: 1 }), answer());
  assert.equal(parseAnswer(undefined), undefined);
  assert.equal(parseAnswer({ ...answer(), textDocument: { uri: URI, version: "2" } }), undefined);
});

test("asking: enabled, a handled active document, no request running, engine ready", () => {
  const ok = { enabled: true, handled: true, inFlight: false, ready: true, active: true };
  const cases: [string, Partial<typeof ok>, boolean][] = [
    ["all set", {}, true],
    ["moeLsp.nextEdit.enabled off", { enabled: false }, false],
    ["a document the client does not handle", { handled: false }, false],
    ["a request still running", { inFlight: true }, false],
    ["engine not ready", { ready: false }, false],
    ["not the active editor's document", { active: false }, false],
  ];
  for (const [name, change, expected] of cases) assert.equal(shouldAsk({ ...ok, ...change }), expected, name);
});
