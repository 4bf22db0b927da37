/**
 * How the server is started and what a settings change needs. Pure.
 *
 * `moe-lsp connect` (the default) reaches the user's shared server, one engine for every window;
 * its engine settings are command-line flags. `moe-lsp serve` is a server of this window's own;
 * its engine settings are `initializationOptions.engine`. Completion settings and `logPrompts`
 * are per session either way: sent at `initialize`, and later by
 * `workspace/didChangeConfiguration`, which the server applies at once.
 */
import { engineFlags } from "./engineFlags";
import { buildInitializationOptions, InitializationOptions, MoeSettings } from "./initOptions";
import { ServerCommand } from "./serverCommand";

/** `connect`: shared server; `serve`: a server of its own; `other`: neither word in the args. */
export type ServerMode = "connect" | "serve" | "other";

export interface LaunchPlan {
  command: string;
  args: string[];
  mode: ServerMode;
  initializationOptions: InitializationOptions;
  /** Settings that were dropped, one sentence each. */
  problems: string[];
}

/** The body of `workspace/didChangeConfiguration`: the settings the server applies live. */
export interface LiveSettings {
  completion: Record<string, unknown>;
  logPrompts: boolean;
}

export type SettingsChange =
  | { kind: "none" }
  /** Send `workspace/didChangeConfiguration` with this body; no restart. */
  | { kind: "update"; settings: LiveSettings }
  /** Stop and start the client (with `connect`: a new connection to the same shared server). */
  | { kind: "restart"; reason: string };

/** The subcommand in `args`: the first of them that is `connect` or `serve`. */
export function serverMode(args: readonly string[]): ServerMode {
  for (const a of args) {
    if (a === "connect" || a === "serve") return a;
  }
  return "other";
}

/**
 * The command, arguments and initializationOptions to start. With `connect` the engine
 * settings become flags after the configured arguments (so they win over the same flag there)
 * and no `engine` is sent; otherwise they are `initializationOptions.engine` as before.
 */
export function planLaunch(found: Pick<ServerCommand, "command" | "args">, s: MoeSettings): LaunchPlan {
  const mode = serverMode(found.args);
  const options = buildInitializationOptions(s);
  if (mode !== "connect") {
    return { command: found.command, args: [...found.args], mode, initializationOptions: options, problems: [] };
  }
  const flags = engineFlags(s.engine ?? {});
  const { engine: _engine, ...rest } = options;
  return {
    command: found.command,
    args: [...found.args, ...flags.args],
    mode,
    initializationOptions: rest,
    problems: flags.problems,
  };
}

/** What `workspace/didChangeConfiguration` sends for a plan. */
export function liveSettings(plan: LaunchPlan): LiveSettings {
  return {
    completion: { ...(plan.initializationOptions.completion ?? {}) },
    logPrompts: plan.initializationOptions.logPrompts === true,
  };
}

/** The server's settings section, pulled with `workspace/configuration`. */
export const SERVER_SECTION = "moe";

/**
 * The answer to the server's `workspace/configuration` pull: the `moe` section is what this
 * extension sends live (its settings live under `moeLsp`), every other item is VS Code's own
 * answer (`others`, one per item).
 */
export function configurationAnswer(items: readonly { section?: string }[], plan: LaunchPlan, others: readonly unknown[]): unknown[] {
  return items.map((item, i) => (item.section === SERVER_SECTION ? liveSettings(plan) : others[i] ?? null));
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * What going from `before` (the running client's plan) to `after` needs. A new command,
 * arguments (engine flags included) or `initializationOptions.engine` restarts the client. A
 * changed completion setting or `logPrompts` is sent live. A completion setting that was set
 * and is now unset is sent as `null`, which puts back the server's own value (its config file,
 * else the built-in default) without a restart.
 */
export function classifyChange(before: LaunchPlan, after: LaunchPlan): SettingsChange {
  if (before.command !== after.command || !same(before.args, after.args)) {
    return {
      kind: "restart",
      reason: before.mode === "connect" && after.mode === "connect" && before.command === after.command
        ? "engine settings or server arguments changed"
        : "server command changed",
    };
  }
  if (!same(before.initializationOptions.engine, after.initializationOptions.engine)) {
    return { kind: "restart", reason: "engine settings changed" };
  }
  const a = liveSettings(before);
  const b = liveSettings(after);
  if (same(a, b)) return { kind: "none" };
  const completion: Record<string, unknown> = { ...b.completion };
  for (const k of Object.keys(a.completion)) if (!(k in b.completion)) completion[k] = null;
  return { kind: "update", settings: { ...b, completion } };
}
