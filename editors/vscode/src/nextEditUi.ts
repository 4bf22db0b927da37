/** VS Code glue for next-edit suggestions: asks `moe/nextEdit` after a pause in typing, draws
 * the answer as a decoration, and binds Tab (jump, then apply) and Escape (dismiss) through the
 * `moeLsp.nextEditVisible` context key. The decisions are `logic/nextEdit.ts`'s. */
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";
import {
  current,
  decoration,
  DEBOUNCE_MS,
  DocumentNow,
  Effect,
  NextEditEvent,
  NextEditState,
  NONE,
  Pos,
  Range,
  shouldAsk,
  step,
} from "./logic/nextEdit";

export const CONTEXT_KEY = "moeLsp.nextEditVisible";
const REQUEST = "moe/nextEdit";

export interface NextEditHost {
  client(): LanguageClient | undefined;
  /** The engine reported ready (`moe/status`). */
  ready(): boolean;
  /** The document is synced to the server and its language is enabled. */
  handles(document: vscode.TextDocument): boolean;
  enabled(): boolean;
  log: vscode.LogOutputChannel;
}

function docNow(d: vscode.TextDocument): DocumentNow {
  return {
    uri: d.uri.toString(),
    version: d.version,
    lineCount: d.lineCount,
    lineLength: (i) => d.lineAt(i).text.length,
  };
}

const toPos = (p: Pos) => new vscode.Position(p.line, p.character);
const toRange = (r: Range) => new vscode.Range(toPos(r.start), toPos(r.end));

export class NextEditController implements vscode.Disposable {
  private state: NextEditState = NONE;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: vscode.CancellationTokenSource | undefined;
  private readonly removeType = vscode.window.createTextEditorDecorationType({
    backgroundColor: new vscode.ThemeColor("diffEditor.removedTextBackground"),
    border: "1px dashed",
    borderColor: new vscode.ThemeColor("editorInfo.foreground"),
  });
  private readonly textType = vscode.window.createTextEditorDecorationType({
    after: {
      color: new vscode.ThemeColor("editorGhostText.foreground"),
      backgroundColor: new vscode.ThemeColor("diffEditor.insertedTextBackground"),
      margin: "0 0 0 0.5em",
    },
  });
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(private readonly host: NextEditHost) {
    this.subscriptions.push(
      this.removeType,
      this.textType,
      vscode.workspace.onDidChangeTextDocument((e) => this.onChange(e)),
      vscode.workspace.onDidCloseTextDocument((d) => this.dispatch({ kind: "close", uri: d.uri.toString() })),
      vscode.window.onDidChangeVisibleTextEditors(() => this.render()),
      vscode.window.onDidChangeActiveTextEditor(() => this.updateContext()),
      vscode.commands.registerCommand("moeLsp.nextEdit.tab", () => this.tab()),
      vscode.commands.registerCommand("moeLsp.nextEdit.dismiss", () => this.dispatch({ kind: "escape" })),
      vscode.commands.registerCommand("moeLsp.nextEdit.request", () => this.askNow(true)),
    );
    void this.updateContext();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.inFlight?.cancel();
    this.state = NONE;
    void vscode.commands.executeCommand("setContext", CONTEXT_KEY, false);
    for (const s of this.subscriptions) s.dispose();
  }

  /** Forget everything (the client stopped or restarted). */
  reset(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight?.cancel();
    this.inFlight = undefined;
    this.dispatch({ kind: "escape" });
  }

  private onChange(e: vscode.TextDocumentChangeEvent): void {
    if (e.contentChanges.length === 0 || !this.host.handles(e.document)) return;
    this.dispatch({ kind: "change", uri: e.document.uri.toString() });
    // An answer for the version before this change could only be dropped: stop it now.
    this.inFlight?.cancel();
    if (this.timer) clearTimeout(this.timer);
    if (!this.host.enabled()) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.askNow(false);
    }, DEBOUNCE_MS);
  }

  /** Ask for the active editor's document (the command asks even while a request runs). */
  private async askNow(command: boolean): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const client = this.host.client();
    if (!editor || !client || !client.isRunning()) return;
    const document = editor.document;
    const go = shouldAsk({
      enabled: command || this.host.enabled(),
      handled: this.host.handles(document),
      inFlight: !command && this.inFlight !== undefined,
      ready: this.host.ready(),
      active: true,
    });
    if (!go) return;
    this.inFlight?.cancel();
    const source = new vscode.CancellationTokenSource();
    this.inFlight = source;
    const uri = client.code2ProtocolConverter.asUri(document.uri);
    try {
      const answer = await client.sendRequest(REQUEST, { textDocument: { uri } }, source.token);
      if (source.token.isCancellationRequested) return;
      const before = this.state;
      this.dispatch({ kind: "answer", answer, doc: { ...docNow(document), uri } });
      if (command && this.state === before) {
        vscode.window.setStatusBarMessage("moe-lsp: no next edit to suggest", 3000);
      }
    } catch (err) {
      if (!source.token.isCancellationRequested) this.host.log.debug(`${REQUEST} failed: ${err}`);
    } finally {
      if (this.inFlight === source) this.inFlight = undefined;
      source.dispose();
    }
  }

  private tab(): void {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return;
    const cursor = editor.selection.active;
    this.dispatch({
      kind: "tab",
      cursor: { line: cursor.line, character: cursor.character },
      doc: docNow(editor.document),
    });
  }

  private dispatch(event: NextEditEvent): void {
    const out = step(this.state, event);
    this.state = out.state;
    void this.run(out.effect);
  }

  private async run(effect: Effect): Promise<void> {
    switch (effect.kind) {
      case "none":
        return;
      case "show":
      case "clear":
        this.render();
        return;
      case "jump": {
        const editor = vscode.window.activeTextEditor;
        if (!editor) return;
        const to = toPos(effect.to);
        editor.selection = new vscode.Selection(to, to);
        editor.revealRange(new vscode.Range(to, to), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
        this.render();
        return;
      }
      case "apply": {
        this.render();
        const editor = vscode.window.activeTextEditor;
        const document = editor?.document;
        // The version check: the edit is for exactly the text it was made from.
        if (!editor || !document || document.uri.toString() !== effect.uri || document.version !== effect.version) {
          vscode.window.setStatusBarMessage("moe-lsp: the document changed; next edit dropped", 3000);
          return;
        }
        const edit = new vscode.WorkspaceEdit();
        edit.replace(document.uri, toRange(effect.range), effect.newText);
        const ok = await vscode.workspace.applyEdit(edit);
        if (ok && vscode.window.activeTextEditor === editor) {
          const to = toPos(effect.cursorAfter);
          editor.selection = new vscode.Selection(to, to);
        }
        if (!ok) this.host.log.warn("next edit: VS Code refused the edit");
        return;
      }
    }
  }

  private render(): void {
    const s = current(this.state);
    for (const editor of vscode.window.visibleTextEditors) {
      if (!s || editor.document.uri.toString() !== s.uri) {
        editor.setDecorations(this.removeType, []);
        editor.setDecorations(this.textType, []);
        continue;
      }
      const d = decoration(s);
      const hover = new vscode.MarkdownString(d.hover);
      editor.setDecorations(this.removeType, d.remove ? [{ range: toRange(d.remove), hoverMessage: hover }] : []);
      const at = toPos(d.anchor);
      editor.setDecorations(this.textType, [
        {
          range: new vscode.Range(at, at),
          hoverMessage: hover,
          renderOptions: { after: { contentText: d.text || "⌫" } },
        },
      ]);
    }
    void this.updateContext();
  }

  private async updateContext(): Promise<void> {
    const s = current(this.state);
    const active = vscode.window.activeTextEditor?.document.uri.toString();
    await vscode.commands.executeCommand("setContext", CONTEXT_KEY, !!s && s.uri === active);
  }
}
