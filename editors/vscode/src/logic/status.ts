/** Status-bar text and the stats report. Pure. */

export type EngineState = "starting" | "loading" | "ready" | "failed" | "stopped";

export interface StatusInput {
  state: EngineState;
  /** Message of the last `moe/status` notification or work-done progress report. */
  message?: string;
  /** `last.totalMs` of the latest `moe/stats`. */
  lastTotalMs?: number | null;
  /** Completions on for the current editor (global switch and language rules). */
  enabled: boolean;
  languageId?: string;
}

export interface StatusText {
  text: string;
  tooltip: string;
  /** Status-bar colouring: error for failed, warning for disabled. */
  severity: "normal" | "warning" | "error";
}

const MAX_MESSAGE = 48;

function shorten(s: string, n = MAX_MESSAGE): string {
  const one = s.replace(/\s+/g, " ").trim();
  return one.length > n ? one.slice(0, n - 1) + "…" : one;
}

export function formatLatency(ms: number | null | undefined): string | undefined {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return undefined;
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function formatStatus(s: StatusInput): StatusText {
  const msg = s.message ? shorten(s.message) : "";
  let text: string;
  let severity: StatusText["severity"] = "normal";
  switch (s.state) {
    case "starting":
      text = "$(loading~spin) moe: starting";
      break;
    case "loading":
      text = `$(loading~spin) moe: ${msg || "loading"}`;
      break;
    case "ready": {
      const lat = formatLatency(s.lastTotalMs);
      text = lat ? `$(sparkle) moe ${lat}` : "$(sparkle) moe";
      break;
    }
    case "failed":
      text = "$(error) moe: failed";
      severity = "error";
      break;
    case "stopped":
      text = "$(debug-stop) moe: stopped";
      severity = "error";
      break;
  }
  if (!s.enabled && s.state !== "failed" && s.state !== "stopped") {
    text = "$(circle-slash) moe: off";
    severity = "warning";
  }
  const lines = [`moe-lsp: ${s.state}${s.message ? ` — ${s.message}` : ""}`];
  if (s.state === "ready") {
    const lat = formatLatency(s.lastTotalMs);
    if (lat) lines.push(`Last completion: ${lat}`);
  }
  if (!s.enabled) lines.push(`Completions off${s.languageId ? ` for ${s.languageId}` : ""}.`);
  lines.push("Click for stats.");
  return { text, tooltip: lines.join("\n"), severity };
}

/** `last.totalMs` from a `moe/stats` body, or undefined. */
export function lastTotalMs(stats: unknown): number | undefined {
  const last = (stats as { last?: { totalMs?: unknown } } | null)?.last;
  const v = last?.totalMs;
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** Normalise a `moe/status` state string. */
export function parseState(state: unknown): EngineState {
  return state === "loading" || state === "ready" || state === "failed" ? state : "loading";
}

/** JSON.stringify replacer: non-integer numbers to one decimal. */
function roundFloats(_key: string, v: unknown): unknown {
  return typeof v === "number" && !Number.isInteger(v) ? Math.round(v * 10) / 10 : v;
}

/** A readable, multi-line report of a `moe/stats` body for the output channel. */
export function formatStats(stats: unknown): string {
  if (!stats || typeof stats !== "object") return "moe/stats: no answer";
  const s = stats as Record<string, unknown>;
  const out: string[] = [];
  out.push(`state: ${s.state ?? "?"}${s.message ? ` (${s.message})` : ""}`);
  if (typeof s.loadSeconds === "number") out.push(`model load: ${s.loadSeconds.toFixed(1)} s`);
  if (typeof s.restarts === "number") out.push(`engine restarts: ${s.restarts}`);
  const section = (title: string, obj: unknown) => {
    if (!obj || typeof obj !== "object") return;
    const entries = Object.entries(obj as Record<string, unknown>);
    if (entries.length === 0) return;
    out.push(`${title}:`);
    for (const [k, v] of entries) {
      out.push(`  ${k}: ${typeof v === "object" && v !== null ? JSON.stringify(v, roundFloats) : String(roundFloats("", v))}`);
    }
  };
  section("counts", s.counts);
  section("latency (ms)", s.latencyMs);
  section("engine", s.engine);
  section("last completion", s.last);
  return out.join("\n");
}
