/** initializationOptions for `moe-lsp serve`, built from a plain settings object. */

/** The `moeLsp.*` settings that reach the server (the shape of package.json's configuration). */
export interface MoeSettings {
  engine?: {
    model?: string | null;
    kvCacheGib?: number | null;
    maxModelLen?: number | null;
    /** Other engine keys, camelCase, passed as they are. */
    extra?: Record<string, unknown> | null;
  };
  completion?: {
    debounceCeilingMs?: number | null;
    /** Other completion keys, camelCase, passed as they are. */
    extra?: Record<string, unknown> | null;
  };
  logPrompts?: boolean | null;
}

export interface InitializationOptions {
  engine?: Record<string, unknown>;
  completion?: Record<string, unknown>;
  logPrompts?: boolean;
}

function isSet(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === "string") return v.trim() !== "";
  if (typeof v === "number") return Number.isFinite(v);
  return true;
}

function plainObject(v: unknown): Record<string, unknown> {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/**
 * Only keys the user set are sent, so the server's own defaults apply to the rest (the server
 * rejects unknown keys, so nothing client-only such as language rules goes here). Named
 * settings win over the same key in `extra`.
 */
export function buildInitializationOptions(s: MoeSettings): InitializationOptions {
  const out: InitializationOptions = {};
  const engine: Record<string, unknown> = { ...plainObject(s.engine?.extra) };
  if (isSet(s.engine?.model)) engine.model = String(s.engine!.model).trim();
  if (isSet(s.engine?.kvCacheGib)) engine.kvCacheGib = s.engine!.kvCacheGib;
  if (isSet(s.engine?.maxModelLen)) engine.maxModelLen = s.engine!.maxModelLen;
  if (Object.keys(engine).length > 0) out.engine = engine;

  const completion: Record<string, unknown> = { ...plainObject(s.completion?.extra) };
  if (isSet(s.completion?.debounceCeilingMs)) {
    completion.debounceCeilingMs = s.completion!.debounceCeilingMs;
  }
  if (Object.keys(completion).length > 0) out.completion = completion;

  if (s.logPrompts === true) out.logPrompts = true;
  return out;
}
