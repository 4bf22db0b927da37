/**
 * Engine settings → `moe-lsp connect` command-line flags. Pure.
 *
 * A shared server (the one `connect` reaches or starts) takes its engine settings from its
 * command line only; it ignores `initializationOptions.engine`. So with `connect` the
 * `moeLsp.engine.*` settings travel as flags, checked here: a value of the wrong type or out of
 * range is dropped with a message rather than passed on for the server to refuse at start.
 */

/** The `moeLsp.engine.*` settings (the shape of package.json's configuration). */
export interface EngineSettings {
  model?: unknown;
  kvCacheGib?: unknown;
  maxModelLen?: unknown;
  /** Other engine keys, camelCase (`moeLsp.engine.extra`). */
  extra?: unknown;
}

export interface EngineFlags {
  /** Flags to append to `moe-lsp connect`, in a fixed order. */
  args: string[];
  /** One sentence per setting that was dropped (shown to the user once per start). */
  problems: string[];
}

type Kind = "string" | "url" | "number" | "integer" | "boolean" | "switch" | "json" | "choice";

interface FlagSpec {
  flag: string;
  kind: Kind;
  /** Least value for numbers (inclusive unless `above`). */
  min?: number;
  /** The number must be above `min`, not equal to it. */
  above?: boolean;
  /** Most value for numbers (inclusive). */
  max?: number;
  /** The integer must be a multiple of this. */
  multipleOf?: number;
  /** The values a "choice" may take. */
  choices?: readonly string[];
  /** What a valid value looks like, for messages. */
  hint?: string;
}

export const DTYPES = ["auto", "bfloat16", "float16", "float32"];

/**
 * Every engine setting `moe-lsp connect` has a flag for (`moe-lsp connect --help`), by its
 * camelCase name (the server's `engine.*` keys). Ranges are the server's own checks.
 */
export const ENGINE_FLAGS: Readonly<Record<string, FlagSpec>> = {
  model: { flag: "--model", kind: "string" },
  dtype: { flag: "--dtype", kind: "choice", choices: DTYPES },
  maxModelLen: { flag: "--max-model-len", kind: "integer", min: 256, hint: "a whole number of tokens, at least 256" },
  maxNumSeqs: { flag: "--max-num-seqs", kind: "integer", min: 1, hint: "a whole number, at least 1" },
  // true: --enforce-eager, false: --no-enforce-eager (the server's default depends on the device).
  enforceEager: { flag: "--enforce-eager", kind: "switch" },
  // An object (sent as JSON) or a string holding a JSON object.
  speculativeConfig: { flag: "--speculative-config", kind: "json" },
  kvCacheGib: { flag: "--kv-cache-gib", kind: "number", min: 0, above: true, hint: "a number of GiB above 0" },
  blockSize: { flag: "--block-size", kind: "integer", min: 16, multipleOf: 16, hint: "a positive multiple of 16" },
  tensorParallelSize: { flag: "--tensor-parallel-size", kind: "integer", min: 1, hint: "a whole number, at least 1" },
  pipelineParallelSize: { flag: "--pipeline-parallel-size", kind: "integer", min: 1, hint: "a whole number, at least 1" },
  dataParallelSize: { flag: "--data-parallel-size", kind: "integer", min: 1, hint: "a whole number, at least 1" },
  enableExpertParallel: { flag: "--enable-expert-parallel", kind: "boolean" },
  distributedExecutorBackend: { flag: "--distributed-executor-backend", kind: "choice", choices: ["mp", "ray", "uni"] },
  gpuMemoryUtilization: {
    flag: "--gpu-memory-utilization",
    kind: "number",
    min: 0,
    above: true,
    max: 1,
    hint: "a number above 0 and at most 1",
  },
  trustRemoteCode: { flag: "--trust-remote-code", kind: "boolean" },
  url: { flag: "--engine-url", kind: "url" },
  tokenizer: { flag: "--engine-tokenizer", kind: "string" },
  apiKeyFile: { flag: "--engine-api-key-file", kind: "string" },
};

const BOOLEAN_WORDS = ["true", "false", "yes", "no", "on", "off", "1", "0"];

/** Keys that are not flags but say nothing a flag does not: accepted without a message. */
function impliedByFlags(key: string, value: unknown, engine: Record<string, unknown>): boolean {
  // backend "openai" is what --engine-url selects; "vllm" is the default.
  if (key !== "backend") return false;
  return value === "vllm" || (value === "openai" && typeof engine.url === "string");
}

function plainObject(v: unknown): Record<string, unknown> {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function isUnset(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === "string" && v.trim() === "");
}

function shown(v: unknown): string {
  return typeof v === "string" ? `the string '${v}'` : JSON.stringify(v) ?? String(v);
}

/** Why `value` cannot be the flag's value (undefined when it can); `value` is set. */
function jsonObject(value: unknown): Record<string, unknown> | undefined {
  let v = value;
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      return undefined;
    }
  }
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function problemWith(spec: FlagSpec, value: unknown): string | undefined {
  switch (spec.kind) {
    case "json":
      return jsonObject(value) ? undefined : `must be an object (or a string holding a JSON object), not ${shown(value)}`;
    case "boolean":
    case "switch":
      if (typeof value === "boolean") return undefined;
      if (typeof value === "string" && BOOLEAN_WORDS.includes(value.trim().toLowerCase())) {
        return `must be true or false (a JSON boolean), not ${shown(value)}`;
      }
      return `must be true or false, not ${shown(value)}`;
    case "number":
    case "integer": {
      const what = spec.hint ?? (spec.kind === "integer" ? "a whole number" : "a number");
      if (typeof value !== "number") return `must be ${what}, not ${shown(value)}`;
      if (!Number.isFinite(value)) return `must be ${what}, not ${value}`;
      if (spec.kind === "integer" && !Number.isInteger(value)) return `must be ${what}, not ${value}`;
      if (spec.min !== undefined && (spec.above ? value <= spec.min : value < spec.min)) {
        return `must be ${what}, not ${value}`;
      }
      if (spec.max !== undefined && value > spec.max) return `must be ${what}, not ${value}`;
      if (spec.multipleOf !== undefined && value % spec.multipleOf !== 0) return `must be ${what}, not ${value}`;
      return undefined;
    }
    case "choice": {
      const choices = spec.choices ?? [];
      if (typeof value === "string" && choices.includes(value.trim())) return undefined;
      return `must be one of ${choices.join(", ")}, not ${shown(value)}`;
    }
    case "url":
      if (typeof value !== "string") return `must be a string, not ${shown(value)}`;
      if (!/^https?:\/\/[^/\s]+/i.test(value.trim()) || /\s/.test(value.trim())) {
        return `must be an http:// or https:// URL with a host, not '${value}'`;
      }
      return undefined;
    case "string":
      if (typeof value !== "string") return `must be a string, not ${shown(value)}`;
      if (value.includes("\0") || /[\r\n]/.test(value)) return "must be one line of text";
      return undefined;
  }
}

/** The flag(s) for a valid value. Values go in `--flag=value` form, so that one starting with
 * `-` is never read as a flag of its own. */
function render(spec: FlagSpec, value: unknown): string[] {
  if (spec.kind === "boolean") return value === true ? [spec.flag] : [];
  if (spec.kind === "switch") return [value === true ? spec.flag : `--no-${spec.flag.slice(2)}`];
  if (spec.kind === "json") return [`${spec.flag}=${JSON.stringify(jsonObject(value))}`];
  const text = typeof value === "string" ? value.trim() : String(value);
  return [`${spec.flag}=${text}`];
}

/**
 * `moe-lsp connect` flags for the engine settings. The named settings (`model`, `kvCacheGib`,
 * `maxModelLen`) win over the same key in `extra`. Unset values (undefined, null, blank) give
 * nothing, so the server's defaults apply. A value of the wrong type or out of range, and a key
 * `connect` has no flag for, is dropped with one sentence in `problems`.
 */
export function engineFlags(s: EngineSettings): EngineFlags {
  const problems: string[] = [];
  const engine: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  if (s.extra !== undefined && s.extra !== null && (typeof s.extra !== "object" || Array.isArray(s.extra))) {
    problems.push("moeLsp.engine.extra must be an object; ignored.");
  }
  for (const [key, value] of Object.entries(plainObject(s.extra))) {
    engine[key] = value;
    sources[key] = `moeLsp.engine.extra.${key}`;
  }
  for (const key of ["model", "kvCacheGib", "maxModelLen"] as const) {
    if (!isUnset(s[key])) {
      engine[key] = s[key];
      sources[key] = `moeLsp.engine.${key}`;
    }
  }
  const args: string[] = [];
  const unknown: string[] = [];
  // A fixed order (the table's), whatever order the user wrote the keys in.
  for (const [key, spec] of Object.entries(ENGINE_FLAGS)) {
    if (!(key in engine)) continue;
    const value = engine[key];
    if (isUnset(value)) continue;
    const problem = problemWith(spec, value);
    if (problem) {
      problems.push(`${sources[key]} ${problem}; ignored.`);
      continue;
    }
    args.push(...render(spec, value));
  }
  for (const key of Object.keys(engine)) {
    if (key in ENGINE_FLAGS || isUnset(engine[key]) || impliedByFlags(key, engine[key], engine)) continue;
    unknown.push(key);
  }
  if (unknown.length > 0) {
    problems.push(
      `${unknown.map((k) => sources[k]).join(", ")}: \`moe-lsp connect\` has no flag for ` +
        `${unknown.length === 1 ? "this setting" : "these settings"}; ignored. ` +
        'Set moeLsp.server.args to ["serve"] to pass it in initializationOptions.',
    );
  }
  return { args, problems };
}
