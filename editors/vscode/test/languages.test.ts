import { test } from "node:test";
import * as assert from "node:assert/strict";
import { isLanguageEnabled, toggleLanguage } from "../src/logic/languages";

const rules = (enabledLanguages: string[] = [], disabledLanguages: string[] = [], enabled = true) => ({
  enabled,
  enabledLanguages,
  disabledLanguages,
});

test("empty allow-list means every language", () => {
  assert.equal(isLanguageEnabled("python", rules()), true);
  assert.equal(isLanguageEnabled("rust", rules()), true);
});

test("global switch off disables everything", () => {
  assert.equal(isLanguageEnabled("python", rules(["python"], [], false)), false);
});

test("allow-list restricts; deny-list wins; case-insensitive", () => {
  assert.equal(isLanguageEnabled("python", rules(["Python", "go"])), true);
  assert.equal(isLanguageEnabled("rust", rules(["python", "go"])), false);
  assert.equal(isLanguageEnabled("go", rules(["python", "go"], [" GO "])), false);
  assert.equal(isLanguageEnabled("markdown", rules([], ["markdown"])), false);
});

test("toggling an enabled language adds it to disabledLanguages", () => {
  const r = toggleLanguage("python", rules([], ["markdown"]));
  assert.deepEqual(r, { enabledLanguages: [], disabledLanguages: ["markdown", "python"], nowEnabled: false });
});

test("toggling a denied language removes it from disabledLanguages", () => {
  const r = toggleLanguage("markdown", rules([], ["Markdown", "plaintext"]));
  assert.deepEqual(r, { enabledLanguages: [], disabledLanguages: ["plaintext"], nowEnabled: true });
});

test("toggling a language outside the allow-list adds it there", () => {
  const r = toggleLanguage("rust", rules(["python"], []));
  assert.deepEqual(r, { enabledLanguages: ["python", "rust"], disabledLanguages: [], nowEnabled: true });
  assert.equal(isLanguageEnabled("rust", rules(r.enabledLanguages, r.disabledLanguages)), true);
});

test("toggling twice restores the effective state", () => {
  for (const start of [rules(), rules(["python"]), rules([], ["python"]), rules(["go"], ["python"])]) {
    for (const lang of ["python", "go", "rust"]) {
      const before = isLanguageEnabled(lang, start);
      const once = toggleLanguage(lang, start);
      const mid = rules(once.enabledLanguages, once.disabledLanguages);
      assert.equal(isLanguageEnabled(lang, mid), !before, `${lang} once`);
      const twice = toggleLanguage(lang, mid);
      assert.equal(isLanguageEnabled(lang, rules(twice.enabledLanguages, twice.disabledLanguages)), before);
    }
  }
});

test("toggling ignores the global switch (it flips the language rule only)", () => {
  const r = toggleLanguage("python", rules([], [], false));
  assert.equal(r.nowEnabled, false);
  assert.deepEqual(r.disabledLanguages, ["python"]);
});
