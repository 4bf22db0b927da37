/** Finding the moe-lsp executable. Pure: file-system and PATH access come in as arguments. */
import * as path from "node:path";

export interface ServerCommandInput {
  /** `moeLsp.server.command`; empty or blank means "find it". */
  configuredCommand?: string;
  /** `moeLsp.server.args`; undefined means the default `["connect"]`. */
  configuredArgs?: string[];
  /** File-system paths of the open workspace folders, in order. */
  workspaceFolders: string[];
  /** PATH environment variable. */
  pathEnv?: string;
  /** `process.platform`. */
  platform: string;
  /** True if `file` exists and is a file the user may run. */
  isExecutable: (file: string) => boolean;
  /**
   * `vscode.workspace.isTrusted`. Untrusted: nothing inside a workspace folder is run (no
   * `.venv/bin/moe-lsp`, no relative `moeLsp.server.command`); PATH and absolute commands are.
   */
  workspaceTrusted: boolean;
}

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where the command came from, for the log. */
  source: "setting" | "workspace" | "path";
}

/** The user's shared server (one engine for every window), started on first use. */
export const DEFAULT_ARGS = ["connect"];

/** Relative locations of the server inside a workspace folder (after `make setup`). */
export function venvCandidates(platform: string): string[] {
  return platform === "win32"
    ? [path.join(".venv", "Scripts", "moe-lsp.exe"), path.join(".venv", "Scripts", "moe-lsp")]
    : [path.join(".venv", "bin", "moe-lsp")];
}

/** Names to look for on PATH. */
function pathNames(platform: string): string[] {
  return platform === "win32" ? ["moe-lsp.exe", "moe-lsp.cmd", "moe-lsp"] : ["moe-lsp"];
}

/**
 * The command to start: the setting if given (a relative path is taken from the first
 * workspace folder), else `.venv/bin/moe-lsp` in a workspace folder, else `moe-lsp` on PATH.
 * In an untrusted workspace the workspace's own candidates are skipped (`untrustedSkips`
 * says which). Undefined when nothing is found.
 */
export function findServerCommand(input: ServerCommandInput): ServerCommand | undefined {
  const args = input.configuredArgs ?? DEFAULT_ARGS;
  const configured = input.configuredCommand?.trim();
  const join = input.platform === "win32" ? path.win32 : path.posix;
  if (configured && !isWorkspaceRelative(configured, input)) {
    return { command: configured, args, source: "setting" };
  }
  if (configured && input.workspaceTrusted) {
    return { command: join.join(input.workspaceFolders[0], configured), args, source: "setting" };
  }
  for (const folder of input.workspaceTrusted ? input.workspaceFolders : []) {
    for (const rel of venvCandidates(input.platform)) {
      const candidate = join.join(folder, rel);
      if (input.isExecutable(candidate)) return { command: candidate, args, source: "workspace" };
    }
  }
  const sep = input.platform === "win32" ? ";" : ":";
  for (const dir of (input.pathEnv ?? "").split(sep)) {
    if (!dir) continue;
    for (const name of pathNames(input.platform)) {
      const candidate = join.join(dir, name);
      if (input.isExecutable(candidate)) return { command: candidate, args, source: "path" };
    }
  }
  return undefined;
}

/** A configured command that is a relative path, taken from the first workspace folder. */
function isWorkspaceRelative(configured: string, input: ServerCommandInput): boolean {
  const join = input.platform === "win32" ? path.win32 : path.posix;
  const looksLikePath = configured.includes("/") || configured.includes("\\");
  return looksLikePath && !join.isAbsolute(configured) && input.workspaceFolders.length > 0;
}

/** What an untrusted workspace kept from being run, one sentence each (for the log). */
export function untrustedSkips(input: ServerCommandInput): string[] {
  if (input.workspaceTrusted) return [];
  const join = input.platform === "win32" ? path.win32 : path.posix;
  const skipped: string[] = [];
  const configured = input.configuredCommand?.trim();
  if (configured && isWorkspaceRelative(configured, input)) {
    skipped.push(`moeLsp.server.command ${configured} (inside the workspace)`);
  }
  for (const folder of input.workspaceFolders) {
    for (const rel of venvCandidates(input.platform)) {
      const candidate = join.join(folder, rel);
      if (input.isExecutable(candidate)) skipped.push(candidate);
    }
  }
  return skipped.map((s) => `workspace not trusted: not running ${s}`);
}
