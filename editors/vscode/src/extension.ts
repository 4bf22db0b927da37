/** VS Code glue: starts moe-lsp (by default `moe-lsp connect`: the user's shared server), shows
 * its state, gates completions by language, sends completion-setting changes live (engine
 * changes restart it), never runs a workspace binary in an untrusted workspace. */
import * as fs from "node:fs";
import * as vscode from "vscode";
import {
  CodeActionResolveRequest,
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";
import { ACTION_PREFIX, refusalMessage, STALE_MESSAGE, staleEdit } from "./logic/codeActions";
import { MoeSettings } from "./logic/initOptions";
import { isLanguageEnabled, LanguageRules, toggleLanguage } from "./logic/languages";
import { classifyChange, configurationAnswer, LaunchPlan, planLaunch } from "./logic/launch";
import { findServerCommand, ServerCommand, ServerCommandInput, untrustedSkips } from "./logic/serverCommand";
import { EngineState, formatStats, formatStatus, lastTotalMs, parseState } from "./logic/status";
import { NextEditController } from "./nextEditUi";

const SECTION = "moeLsp";
const REMOTE_TOKEN_KEY = "moeLsp.remoteToken";
/** Settings that reach the server; what a change to them needs is `classifyChange`'s call. */
const SERVER_KEYS = ["server", "engine", "completion", "logPrompts"].map((k) => `${SECTION}.${k}`);
const STATS_DELAY_MS = 400;

let client: LanguageClient | undefined;
/** The plan the running client was started with (updated when settings are sent live). */
let running: LaunchPlan | undefined;
let log: vscode.LogOutputChannel;
let statusItem: vscode.StatusBarItem;
let engineState: EngineState = "stopped";
let engineMessage = "";
let lastMs: number | undefined;
let statsTimer: NodeJS.Timeout | undefined;
let statsInFlight = false;
let nextEdits: NextEditController | undefined;

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

function languageRules(): LanguageRules {
  const c = config();
  return {
    enabled: c.get<boolean>("enabled", true),
    enabledLanguages: c.get<string[]>("enabledLanguages", []),
    disabledLanguages: c.get<string[]>("disabledLanguages", []),
  };
}

/** A document this client syncs (see `documentSelector`) whose language is enabled. */
function handles(document: vscode.TextDocument): boolean {
  const scheme = document.uri.scheme;
  return (scheme === "file" || scheme === "untitled") && isLanguageEnabled(document.languageId, languageRules());
}

/** The versions of open documents, by the URI string the client sends. */
function openVersion(uri: string): number | undefined {
  return vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri)?.version;
}

function readSettings(): MoeSettings {
  const c = config();
  return {
    engine: {
      model: c.get<string>("engine.model"),
      kvCacheGib: c.get<number | null>("engine.kvCacheGib"),
      maxModelLen: c.get<number | null>("engine.maxModelLen"),
      extra: c.get<Record<string, unknown>>("engine.extra"),
    },
    completion: {
      debounceCeilingMs: c.get<number | null>("completion.debounceCeilingMs"),
      extra: c.get<Record<string, unknown>>("completion.extra"),
    },
    logPrompts: c.get<boolean>("logPrompts", false),
  };
}

function isExecutable(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    if (process.platform !== "win32") fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function updateStatus(): void {
  const editor = vscode.window.activeTextEditor;
  const languageId = editor?.document.languageId;
  const enabled = languageId ? isLanguageEnabled(languageId, languageRules()) : languageRules().enabled;
  const s = formatStatus({ state: engineState, message: engineMessage, lastTotalMs: lastMs, enabled, languageId });
  statusItem.text = s.text;
  statusItem.tooltip = s.tooltip;
  statusItem.backgroundColor =
    s.severity === "error"
      ? new vscode.ThemeColor("statusBarItem.errorBackground")
      : s.severity === "warning"
        ? new vscode.ThemeColor("statusBarItem.warningBackground")
        : undefined;
  statusItem.show();
}

/** Ask for `moe/stats` a little after a completion; one request at a time, coalesced. */
function scheduleStats(): void {
  if (statsTimer) clearTimeout(statsTimer);
  statsTimer = setTimeout(async () => {
    statsTimer = undefined;
    if (!client || !client.isRunning() || statsInFlight) return;
    statsInFlight = true;
    try {
      const stats = await client.sendRequest("moe/stats", {});
      const ms = lastTotalMs(stats);
      if (ms !== undefined) lastMs = ms;
      updateStatus();
    } catch (err) {
      log.debug(`moe/stats failed: ${err}`);
    } finally {
      statsInFlight = false;
    }
  }, STATS_DELAY_MS);
}

function workspaceFolders(): string[] {
  return (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === "file").map((f) => f.uri.fsPath);
}

function serverCommandInput(folders: string[]): ServerCommandInput {
  const c = config();
  return {
    configuredCommand: c.get<string>("server.command"),
    configuredArgs: c.get<string[]>("server.args"),
    workspaceFolders: folders,
    pathEnv: process.env.PATH,
    platform: process.platform,
    isExecutable,
    // Untrusted: never run a binary from the workspace (package.json untrustedWorkspaces).
    workspaceTrusted: vscode.workspace.isTrusted,
  };
}

function findServer(folders: string[]): ServerCommand | undefined {
  return findServerCommand(serverCommandInput(folders));
}

async function startClient(): Promise<void> {
  const folders = workspaceFolders();
  for (const skip of untrustedSkips(serverCommandInput(folders))) log.warn(skip);
  const found = findServer(folders);
  if (!found) {
    engineState = "failed";
    engineMessage = "moe-lsp not found";
    updateStatus();
    log.error("moe-lsp not found: set moeLsp.server.command, or run `make setup` in the workspace.");
    void vscode.window
      .showErrorMessage(
        "moe-lsp: server not found. Set moeLsp.server.command or run `make setup` in the workspace.",
        "Open Settings",
      )
      .then((choice) => {
        if (choice) void vscode.commands.executeCommand("workbench.action.openSettings", "moeLsp.server");
      });
    return;
  }
  const plan = planLaunch(found, readSettings());
  running = plan;
  log.info(`starting ${plan.command} ${plan.args.join(" ")} (from ${found.source})`);
  log.info(`initializationOptions: ${JSON.stringify(plan.initializationOptions)}`);
  if (plan.mode === "connect") {
    log.info(
      "connect: the shared server keeps the engine it started with until it exits idle; " +
        "new engine settings need that server restarted.",
    );
  }
  if (plan.problems.length > 0) {
    for (const p of plan.problems) log.warn(p);
    void vscode.window.showWarningMessage(`moe-lsp: ${plan.problems.join(" ")}`, "Open Settings").then((choice) => {
      if (choice) void vscode.commands.executeCommand("workbench.action.openSettings", "moeLsp.engine");
    });
  }

  const serverOptions: ServerOptions = {
    command: plan.command,
    args: plan.args,
    transport: TransportKind.stdio,
    options: { cwd: folders[0] },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    // A function: the client's own restarts (after a crash) send the settings of now.
    initializationOptions: () => running?.initializationOptions ?? plan.initializationOptions,
    outputChannel: log,
    middleware: {
      // The server pulls its `moe` section; these settings live under `moeLsp`: answer with them.
      workspace: {
        configuration: async (params, token, next) => {
          const answer = await next(params, token);
          if (!Array.isArray(answer)) return answer;
          return configurationAnswer(params.items, running ?? plan, answer);
        },
      },
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        if (!isLanguageEnabled(document.languageId, languageRules())) return undefined;
        const result = await next(document, position, context, token);
        if (!token.isCancellationRequested) scheduleStats();
        return result;
      },
      provideCompletionItem: async (document, position, context, token, next) => {
        if (!isLanguageEnabled(document.languageId, languageRules())) return undefined;
        const result = await next(document, position, context, token);
        if (!token.isCancellationRequested) scheduleStats();
        return result;
      },
      // The lightbulb lists moe-lsp's actions through the client as they are; resolving is
      // done here so that the server's one-line refusal is shown as it is and an edit made for
      // a version the document has left is dropped (the client's conversion loses the version).
      resolveCodeAction: async (item, token, next) => {
        if (!item.title.startsWith(ACTION_PREFIX) || !client) return next(item, token);
        const c = client;
        let raw: unknown;
        try {
          raw = await c.sendRequest(CodeActionResolveRequest.type, c.code2ProtocolConverter.asCodeActionSync(item), token);
        } catch (err) {
          if (token.isCancellationRequested) return item;
          const message = refusalMessage(item.title, err);
          log.warn(message);
          void vscode.window.showWarningMessage(message);
          return item;
        }
        if (token.isCancellationRequested) return item;
        const stale = staleEdit(raw, openVersion);
        if (stale) {
          log.warn(`${STALE_MESSAGE} (${stale.uri}: made for version ${stale.expected}, now ${stale.now ?? "closed"})`);
          void vscode.window.showWarningMessage(STALE_MESSAGE);
          return item;
        }
        return (await c.protocol2CodeConverter.asCodeAction(raw as Parameters<typeof c.protocol2CodeConverter.asCodeAction>[0], token)) ?? item;
      },
    },
  };
  const c2 = new LanguageClient("moeLsp", "moe-lsp", serverOptions, clientOptions);
  client = c2;
  c2.onDidChangeState((e) => {
    if (e.newState === State.Stopped) {
      nextEdits?.reset();
      engineState = "stopped";
      engineMessage = "";
    } else if (e.newState === State.Starting) {
      engineState = "starting";
    }
    updateStatus();
  });
  c2.onNotification("moe/status", (params: { state?: string; message?: string }) => {
    engineState = parseState(params?.state);
    engineMessage = params?.message ?? "";
    log.info(`moe/status: ${engineState}${engineMessage ? ` — ${engineMessage}` : ""}`);
    updateStatus();
  });
  engineState = "starting";
  engineMessage = "";
  updateStatus();
  try {
    await c2.start();
    if (engineState === "starting") engineState = "loading";
    updateStatus();
  } catch (err) {
    engineState = "failed";
    engineMessage = String(err);
    log.error(`could not start moe-lsp: ${err}`);
    updateStatus();
  }
}

async function stopClient(): Promise<void> {
  const c = client;
  client = undefined;
  running = undefined;
  if (c) {
    try {
      await c.stop();
    } catch (err) {
      log.warn(`stopping moe-lsp: ${err}`);
    }
  }
}

async function restart(): Promise<void> {
  await stopClient();
  lastMs = undefined;
  await startClient();
}

/** A setting that reaches the server changed: send it live, or restart the client. */
async function onServerSettingsChanged(): Promise<void> {
  const before = running;
  if (!before || !client) {
    log.info("settings changed: starting moe-lsp");
    await restart();
    return;
  }
  const found = findServer(workspaceFolders());
  if (!found) {
    await restart();
    return;
  }
  const after = planLaunch(found, readSettings());
  const change = classifyChange(before, after);
  switch (change.kind) {
    case "none":
      return;
    case "update":
      if (!client.isRunning()) {
        running = after;
        return;
      }
      log.info(`settings changed: sending ${JSON.stringify(change.settings)}`);
      running = after;
      try {
        await client.sendNotification(DidChangeConfigurationNotification.type, { settings: change.settings });
      } catch (err) {
        log.warn(`workspace/didChangeConfiguration failed (${err}): restarting moe-lsp`);
        await restart();
      }
      return;
    case "restart":
      log.info(`settings changed (${change.reason}): restarting moe-lsp`);
      if (after.mode === "connect" && before.mode === "connect" && change.reason.startsWith("engine")) {
        log.info(
          "connect reconnects to the running shared server, which keeps its model until it exits idle; " +
            "stop that server for new engine settings to apply.",
        );
      }
      await restart();
      return;
  }
}

async function showStats(): Promise<void> {
  if (!client || !client.isRunning()) {
    log.info("moe/stats: server not running");
    log.show(true);
    return;
  }
  try {
    const stats = await client.sendRequest("moe/stats", {});
    const ms = lastTotalMs(stats);
    if (ms !== undefined) lastMs = ms;
    updateStatus();
    log.info("moe/stats\n" + formatStats(stats));
  } catch (err) {
    log.error(`moe/stats failed: ${err}`);
  }
  log.show(true);
}

async function toggle(): Promise<void> {
  const now = !config().get<boolean>("enabled", true);
  await config().update("enabled", now, vscode.ConfigurationTarget.Global);
  void vscode.window.showInformationMessage(`moe-lsp completions ${now ? "on" : "off"}.`);
}

async function toggleCurrentLanguage(): Promise<void> {
  const languageId = vscode.window.activeTextEditor?.document.languageId;
  if (!languageId) {
    void vscode.window.showWarningMessage("moe-lsp: open a file to toggle its language.");
    return;
  }
  const next = toggleLanguage(languageId, languageRules());
  await config().update("enabledLanguages", next.enabledLanguages, vscode.ConfigurationTarget.Global);
  await config().update("disabledLanguages", next.disabledLanguages, vscode.ConfigurationTarget.Global);
  void vscode.window.showInformationMessage(
    `moe-lsp completions ${next.nowEnabled ? "on" : "off"} for ${languageId}.`,
  );
}

async function setRemoteToken(context: vscode.ExtensionContext): Promise<void> {
  const value = await vscode.window.showInputBox({
    title: "moe-lsp: remote engine token",
    prompt: "Stored in VS Code SecretStorage, never in settings. Leave empty to delete it.",
    password: true,
    ignoreFocusOut: true,
  });
  if (value === undefined) return;
  if (value === "") {
    await context.secrets.delete(REMOTE_TOKEN_KEY);
    void vscode.window.showInformationMessage("moe-lsp: remote token deleted.");
  } else {
    await context.secrets.store(REMOTE_TOKEN_KEY, value);
    void vscode.window.showInformationMessage("moe-lsp: remote token stored (not used by the server yet).");
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  log = vscode.window.createOutputChannel("moe-lsp", { log: true });
  statusItem = vscode.window.createStatusBarItem("moeLsp.status", vscode.StatusBarAlignment.Right, 100);
  statusItem.name = "moe-lsp";
  statusItem.command = "moeLsp.showStats";
  context.subscriptions.push(
    log,
    statusItem,
    vscode.commands.registerCommand("moeLsp.restart", restart),
    vscode.commands.registerCommand("moeLsp.toggle", toggle),
    vscode.commands.registerCommand("moeLsp.toggleLanguage", toggleCurrentLanguage),
    vscode.commands.registerCommand("moeLsp.showLog", () => log.show()),
    vscode.commands.registerCommand("moeLsp.showStats", showStats),
    vscode.commands.registerCommand("moeLsp.setRemoteToken", () => setRemoteToken(context)),
    vscode.window.onDidChangeActiveTextEditor(() => updateStatus()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (SERVER_KEYS.some((k) => e.affectsConfiguration(k))) {
        void onServerSettingsChanged();
      } else if (e.affectsConfiguration(SECTION)) {
        updateStatus();
      }
    }),
    // Trust granted: the workspace's own server (its .venv) may be the one to run now.
    vscode.workspace.onDidGrantWorkspaceTrust(() => void onServerSettingsChanged()),
    vscode.workspace.onDidChangeWorkspaceFolders(() => {
      if (!client) void restart();
    }),
    { dispose: () => statsTimer && clearTimeout(statsTimer) },
  );
  nextEdits = new NextEditController({
    client: () => client,
    ready: () => engineState === "ready",
    handles,
    enabled: () => config().get<boolean>("nextEdit.enabled", true),
    log,
  });
  context.subscriptions.push(nextEdits);
  updateStatus();
  await startClient();
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
