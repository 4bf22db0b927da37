/** Next-edit suggestions (`moe/nextEdit`): the state machine, version checks and range
 * mapping. Pure; `extension.ts` draws the decoration, binds the keys and applies the edit.
 *
 * none ──answer for the current version──> shown ──Tab, cursor elsewhere──> jumped
 * shown/jumped ──Tab at the suggestion──> applied;  ──Escape──> dismissed;
 * shown/jumped ──any document change, or a stale version at Tab──> dismissed.
 * applied and dismissed hold no suggestion: the next answer can be shown again. */

export interface Pos {
  line: number;
  character: number;
}

export interface Range {
  start: Pos;
  end: Pos;
}

/** The body of a `moe/nextEdit` answer (the server's JSON, checked by `parseAnswer`). */
export interface NextEditAnswer {
  textDocument: { uri: string; version: number };
  range: Range;
  newText: string;
}

export interface Suggestion {
  uri: string;
  version: number;
  range: Range;
  newText: string;
}

export type NextEditState =
  | { phase: "none" }
  | { phase: "shown"; suggestion: Suggestion }
  | { phase: "jumped"; suggestion: Suggestion }
  | { phase: "applied"; suggestion: Suggestion }
  | { phase: "dismissed"; reason: DismissReason };

export type DismissReason = "escape" | "change" | "stale" | "closed";

/** Where the editor stands when an event happens. */
export interface DocumentNow {
  uri: string;
  version: number;
  /** Number of lines, and each line's length, for range checks (`lineLength(i)`). */
  lineCount: number;
  lineLength: (line: number) => number;
}

export type NextEditEvent =
  /** A `moe/nextEdit` answer (raw JSON) arrived, the document being `doc` now. */
  | { kind: "answer"; answer: unknown; doc: DocumentNow }
  /** Tab with the cursor at `cursor` in `doc`. */
  | { kind: "tab"; cursor: Pos; doc: DocumentNow }
  | { kind: "escape" }
  /** The document `uri` changed (typing anywhere in it, an undo, another extension's edit). */
  | { kind: "change"; uri: string }
  | { kind: "close"; uri: string };

/** What the editor must do after a step. */
export type Effect =
  | { kind: "none" }
  | { kind: "show"; suggestion: Suggestion }
  | { kind: "clear" }
  /** Move the cursor to `to` and reveal it. */
  | { kind: "jump"; to: Pos }
  /** Replace `range` of `uri` at `version` with `newText`, then put the cursor at `cursorAfter`. */
  | { kind: "apply"; uri: string; version: number; range: Range; newText: string; cursorAfter: Pos };

export interface Step {
  state: NextEditState;
  effect: Effect;
}

export const NONE: NextEditState = { phase: "none" };

/** The suggestion shown now, if any (phases shown and jumped). */
export function current(state: NextEditState): Suggestion | undefined {
  return state.phase === "shown" || state.phase === "jumped" ? state.suggestion : undefined;
}

function isPos(v: unknown): v is Pos {
  const p = v as Pos | null;
  return (
    !!p &&
    typeof p === "object" &&
    Number.isInteger(p.line) &&
    Number.isInteger(p.character) &&
    p.line >= 0 &&
    p.character >= 0
  );
}

/** A `moe/nextEdit` answer, or undefined for null and anything malformed. */
export function parseAnswer(v: unknown): NextEditAnswer | undefined {
  const a = v as Partial<NextEditAnswer> | null;
  if (!a || typeof a !== "object") return undefined;
  const doc = a.textDocument;
  if (!doc || typeof doc.uri !== "string" || !Number.isInteger(doc.version)) return undefined;
  if (!a.range || !isPos(a.range.start) || !isPos(a.range.end)) return undefined;
  if (typeof a.newText !== "string") return undefined;
  if (compare(a.range.start, a.range.end) > 0) return undefined;
  return { textDocument: { uri: doc.uri, version: doc.version }, range: a.range, newText: a.newText };
}

export function compare(a: Pos, b: Pos): number {
  return a.line !== b.line ? a.line - b.line : a.character - b.character;
}

/** Whether `range` lies inside the document (lines exist, characters within each line). */
export function rangeFits(range: Range, doc: DocumentNow): boolean {
  for (const p of [range.start, range.end]) {
    if (p.line >= doc.lineCount || p.character > doc.lineLength(p.line)) return false;
  }
  return true;
}

/** Whether the cursor is at the suggestion: inside its range (ends included). */
export function atSuggestion(cursor: Pos, range: Range): boolean {
  return compare(cursor, range.start) >= 0 && compare(cursor, range.end) <= 0;
}

/** Where the text ends once `newText` is written at `start` (the cursor after applying). */
export function endOfInsert(start: Pos, newText: string): Pos {
  const lines = newText.split("\n");
  if (lines.length === 1) return { line: start.line, character: start.character + newText.length };
  return { line: start.line + lines.length - 1, character: lines[lines.length - 1].length };
}

/** Whether a suggestion changes the text at all (an empty range with empty text does not). */
export function isNoop(range: Range, newText: string): boolean {
  return newText === "" && compare(range.start, range.end) === 0;
}

const MAX_PREVIEW = 80;

/** One line of text for the after-text decoration: line breaks as "⏎", shortened. */
export function preview(newText: string, max = MAX_PREVIEW): string {
  const one = newText.replace(/\r?\n/g, " ⏎ ").replace(/\t/g, "  ");
  return one.length > max ? one.slice(0, max - 1) + "…" : one;
}

/** How a suggestion is drawn: `remove` (the range it replaces, empty for an insertion) is
 * highlighted, and `text` is shown after `anchor` (the range's end). */
export interface Decoration {
  remove: Range | undefined;
  anchor: Pos;
  text: string;
  hover: string;
}

export function decoration(s: Suggestion): Decoration {
  const empty = compare(s.range.start, s.range.end) === 0;
  const what = s.newText === "" ? "delete the highlighted text" : empty ? "insert" : "replace the highlighted text with";
  const arrow = s.newText === "" ? "" : `→ ${preview(s.newText)}`;
  const fence = "```";
  const hover =
    `**moe-lsp next edit**: ${what}` +
    (s.newText === "" ? "" : `\n\n${fence}\n${s.newText}\n${fence}`) +
    "\n\nTab: go there, then Tab again to apply. Escape: dismiss.";
  return { remove: empty ? undefined : s.range, anchor: s.range.end, text: arrow, hover };
}

function dismiss(reason: DismissReason): Step {
  return { state: { phase: "dismissed", reason }, effect: { kind: "clear" } };
}

/** One transition of the state machine. */
export function step(state: NextEditState, event: NextEditEvent): Step {
  const s = current(state);
  switch (event.kind) {
    case "answer": {
      const a = parseAnswer(event.answer);
      // null, malformed, another document, a version the document has left, or out of range:
      // nothing new is shown (a suggestion already shown stays as it is).
      if (
        !a ||
        a.textDocument.uri !== event.doc.uri ||
        a.textDocument.version !== event.doc.version ||
        !rangeFits(a.range, event.doc) ||
        isNoop(a.range, a.newText)
      ) {
        return { state, effect: { kind: "none" } };
      }
      const suggestion: Suggestion = {
        uri: a.textDocument.uri,
        version: a.textDocument.version,
        range: a.range,
        newText: a.newText,
      };
      return { state: { phase: "shown", suggestion }, effect: { kind: "show", suggestion } };
    }
    case "tab": {
      if (!s || event.doc.uri !== s.uri) return { state, effect: { kind: "none" } };
      if (event.doc.version !== s.version || !rangeFits(s.range, event.doc)) return dismiss("stale");
      if (!atSuggestion(event.cursor, s.range)) {
        return { state: { phase: "jumped", suggestion: s }, effect: { kind: "jump", to: s.range.start } };
      }
      return {
        state: { phase: "applied", suggestion: s },
        effect: {
          kind: "apply",
          uri: s.uri,
          version: s.version,
          range: s.range,
          newText: s.newText,
          cursorAfter: endOfInsert(s.range.start, s.newText),
        },
      };
    }
    case "escape":
      return s ? dismiss("escape") : { state, effect: { kind: "none" } };
    case "change":
      return s ? dismiss("change") : { state, effect: { kind: "none" } };
    case "close":
      return s && s.uri === event.uri ? dismiss("closed") : { state, effect: { kind: "none" } };
  }
}

/** Whether to send `moe/nextEdit` when the pause after a change is over. */
export interface AskInput {
  enabled: boolean;
  /** The document is one the client syncs and its language is enabled. */
  handled: boolean;
  /** A `moe/nextEdit` request is still running. */
  inFlight: boolean;
  /** The client runs and the engine is ready. */
  ready: boolean;
  /** The document is the one in the active editor. */
  active: boolean;
}

export function shouldAsk(i: AskInput): boolean {
  return i.enabled && i.handled && !i.inFlight && i.ready && i.active;
}

/** The pause after a change before asking (ms). */
export const DEBOUNCE_MS = 700;
