import { test } from "node:test";
import * as assert from "node:assert/strict";
import { editVersions, refusalMessage, staleEdit } from "../src/logic/codeActions";

const URI = "file:///w/even.py";
const resolved = (version: number | null, uri = URI) => ({
  title: "moe-lsp: Implement is_even",
  edit: {
    documentChanges: [
      {
        textDocument: { uri, version },
        edits: [{ range: { start: { line: 2, character: 4 }, end: { line: 2, character: 8 } }, newText: "return n % 2 == 0" }],
      },
    ],
  },
});

test("the versions a resolved edit was made for", () => {
  assert.deepEqual(editVersions(resolved(3)), [{ uri: URI, version: 3 }]);
  assert.deepEqual(editVersions(resolved(null)), [{ uri: URI, version: null }]);
  assert.deepEqual(editVersions({ title: "x" }), []);
  assert.deepEqual(editVersions({ edit: { changes: { [URI]: [] } } }), []);
  assert.deepEqual(editVersions(null), []);
});

test("a resolved edit is stale when its document moved on", () => {
  const cases: [string, unknown, number | undefined, boolean][] = [
    ["same version", resolved(3), 3, false],
    ["the user typed while the model wrote", resolved(3), 4, true],
    ["the document was closed", resolved(3), undefined, true],
    ["no version in the edit: not checked", resolved(null), 9, false],
    ["no edit at all", { title: "x" }, 3, false],
  ];
  for (const [name, action, now, stale] of cases) {
    assert.equal(staleEdit(action, () => now) !== undefined, stale, name);
  }
  assert.deepEqual(staleEdit(resolved(3), () => 5), { uri: URI, expected: 3, now: 5 });
});

test("a refusal is one line naming the action", () => {
  const cases: [unknown, string][] = [
    [new Error("The model's edit does not parse in place; it was not applied."), "moe-lsp: Implement is_even: The model's edit does not parse in place; it was not applied."],
    [{ message: "The model wrote nothing usable here.\n  at x" }, "moe-lsp: Implement is_even: The model wrote nothing usable here."],
    [{ message: "" }, "moe-lsp: Implement is_even: the server could not write this edit."],
    [undefined, "moe-lsp: Implement is_even: the server could not write this edit."],
  ];
  for (const [err, text] of cases) {
    const msg = refusalMessage("moe-lsp: Implement is_even", err);
    assert.equal(msg, text);
    assert.ok(!msg.includes("\n"));
  }
});
