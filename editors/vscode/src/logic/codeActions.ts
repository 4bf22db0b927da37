/** moe-lsp code actions in VS Code: the checks around `codeAction/resolve`. Pure.
 *
 * The server lists its actions at once and writes the edit on `codeAction/resolve` (the model
 * runs then, seconds on a CPU). Its edit is a `WorkspaceEdit` whose `documentChanges` carry the
 * document version it was made for; vscode-languageclient drops that version when it converts
 * the edit, so the extension checks it against the document before the edit reaches VS Code. */

export const ACTION_PREFIX = "moe-lsp: ";

/** Versions each `TextDocumentEdit` of a resolved action's raw LSP edit was made for. */
export function editVersions(action: unknown): { uri: string; version: number | null }[] {
  const edit = (action as { edit?: { documentChanges?: unknown } } | null)?.edit;
  const changes = edit?.documentChanges;
  if (!Array.isArray(changes)) return [];
  const out: { uri: string; version: number | null }[] = [];
  for (const c of changes) {
    const doc = (c as { textDocument?: { uri?: unknown; version?: unknown } } | null)?.textDocument;
    if (!doc || typeof doc.uri !== "string") continue;
    out.push({ uri: doc.uri, version: typeof doc.version === "number" ? doc.version : null });
  }
  return out;
}

/** The first edited document whose version differs from now (`versionOf` gives the open
 * document's version, undefined when it is not open), or undefined when every version matches. */
export function staleEdit(
  action: unknown,
  versionOf: (uri: string) => number | undefined,
): { uri: string; expected: number; now: number | undefined } | undefined {
  for (const { uri, version } of editVersions(action)) {
    if (version === null) continue;
    const now = versionOf(uri);
    if (now !== version) return { uri, expected: version, now };
  }
  return undefined;
}

export const STALE_MESSAGE = "moe-lsp: the document changed while the model wrote this edit; ask again.";

/** The one line shown when resolving fails: the server's message (already a sentence), or a
 * fallback; multi-line text is cut to its first line. */
export function refusalMessage(title: string, err: unknown): string {
  const raw = (err as { message?: unknown } | null)?.message;
  const text = typeof raw === "string" ? raw : typeof err === "string" ? err : "";
  const first = text.split(/\r?\n/).find((l) => l.trim() !== "")?.trim() ?? "";
  const name = title.startsWith(ACTION_PREFIX) ? title.slice(ACTION_PREFIX.length) : title;
  return `moe-lsp: ${name}: ${first || "the server could not write this edit."}`;
}
