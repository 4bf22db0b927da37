import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { SUPPORTED_LANGUAGES } from "../src/logic/languages";

// out-test/test/manifest.test.js → the extension folder
const manifest = JSON.parse(fs.readFileSync(path.resolve(__dirname, "../../package.json"), "utf8"));

test("activates on the supported languages only, not at startup", () => {
  assert.deepEqual(
    manifest.activationEvents,
    SUPPORTED_LANGUAGES.map((id) => `onLanguage:${id}`),
  );
  for (const early of ["*", "onStartupFinished"]) assert.ok(!manifest.activationEvents.includes(early));
});

test("untrusted workspaces: limited support, server settings restricted", () => {
  const u = manifest.capabilities.untrustedWorkspaces;
  assert.equal(u.supported, "limited");
  assert.match(u.description, /never runs a server from the folder/);
  for (const key of ["moeLsp.server.command", "moeLsp.server.args"]) assert.ok(u.restrictedConfigurations.includes(key), key);
});

test("moeLsp.trace.server: the client's trace setting (its id is moeLsp)", () => {
  const t = manifest.contributes.configuration.properties["moeLsp.trace.server"];
  assert.deepEqual(t.enum, ["off", "messages", "verbose"]);
  assert.equal(t.default, "off");
  const source = fs.readFileSync(path.resolve(__dirname, "../../src/extension.ts"), "utf8");
  assert.match(source, /new LanguageClient\("moeLsp",/);
});

test("every command the extension contributes has the moe-lsp category", () => {
  for (const c of manifest.contributes.commands) assert.equal(c.category, "moe-lsp", c.command);
});
