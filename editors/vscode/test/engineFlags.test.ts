import { test } from "node:test";
import * as assert from "node:assert/strict";
import { ENGINE_FLAGS, engineFlags, EngineSettings } from "../src/logic/engineFlags";

test("defaults give no flags, so the server's defaults apply", () => {
  assert.deepEqual(engineFlags({}), { args: [], problems: [] });
  assert.deepEqual(engineFlags({ model: "", kvCacheGib: null, maxModelLen: null, extra: {} }), { args: [], problems: [] });
  assert.deepEqual(engineFlags({ model: "   ", extra: { dtype: null, url: "" } }), { args: [], problems: [] });
});

// One row per setting: settings → the flags `moe-lsp connect` gets.
const VALID: Array<[string, EngineSettings, string[]]> = [
  ["model, trimmed", { model: " Qwen/Qwen2.5-Coder-1.5B " }, ["--model=Qwen/Qwen2.5-Coder-1.5B"]],
  ["model folder with spaces is one argument", { model: "/home/u/my models/m" }, ["--model=/home/u/my models/m"]],
  ["model starting with '-' cannot become a flag", { model: "-x" }, ["--model=-x"]],
  ["kvCacheGib", { kvCacheGib: 2 }, ["--kv-cache-gib=2"]],
  ["kvCacheGib fraction", { kvCacheGib: 0.5 }, ["--kv-cache-gib=0.5"]],
  ["maxModelLen", { maxModelLen: 8192 }, ["--max-model-len=8192"]],
  ["maxModelLen at the server's least", { maxModelLen: 256 }, ["--max-model-len=256"]],
  ["dtype", { extra: { dtype: "float16" } }, ["--dtype=float16"]],
  ["blockSize", { extra: { blockSize: 32 } }, ["--block-size=32"]],
  ["tensorParallelSize", { extra: { tensorParallelSize: 2 } }, ["--tensor-parallel-size=2"]],
  ["pipelineParallelSize", { extra: { pipelineParallelSize: 2 } }, ["--pipeline-parallel-size=2"]],
  ["dataParallelSize", { extra: { dataParallelSize: 4 } }, ["--data-parallel-size=4"]],
  ["enableExpertParallel true is a bare flag", { extra: { enableExpertParallel: true } }, ["--enable-expert-parallel"]],
  ["enableExpertParallel false is no flag", { extra: { enableExpertParallel: false } }, []],
  ["distributedExecutorBackend", { extra: { distributedExecutorBackend: "ray" } }, ["--distributed-executor-backend=ray"]],
  ["distributedExecutorBackend uni", { extra: { distributedExecutorBackend: "uni" } }, ["--distributed-executor-backend=uni"]],
  ["maxNumSeqs", { extra: { maxNumSeqs: 8 } }, ["--max-num-seqs=8"]],
  ["enforceEager true", { extra: { enforceEager: true } }, ["--enforce-eager"]],
  ["enforceEager false is --no-enforce-eager", { extra: { enforceEager: false } }, ["--no-enforce-eager"]],
  ["speculativeConfig object as JSON", { extra: { speculativeConfig: { method: "ngram", num_speculative_tokens: 4 } } }, ['--speculative-config={"method":"ngram","num_speculative_tokens":4}']],
  ["speculativeConfig JSON string", { extra: { speculativeConfig: ' {"method": "ngram"} ' } }, ['--speculative-config={"method":"ngram"}']],
  ["gpuMemoryUtilization", { extra: { gpuMemoryUtilization: 0.9 } }, ["--gpu-memory-utilization=0.9"]],
  ["gpuMemoryUtilization 1", { extra: { gpuMemoryUtilization: 1 } }, ["--gpu-memory-utilization=1"]],
  ["trustRemoteCode true is a bare flag", { extra: { trustRemoteCode: true } }, ["--trust-remote-code"]],
  ["url", { extra: { url: "http://gpu-box:8000/v1" } }, ["--engine-url=http://gpu-box:8000/v1"]],
  ["url with backend openai", { extra: { backend: "openai", url: "https://h" } }, ["--engine-url=https://h"]],
  ["backend vllm is the default", { extra: { backend: "vllm" } }, []],
  ["tokenizer", { extra: { tokenizer: "/models/tok" } }, ["--engine-tokenizer=/models/tok"]],
  ["apiKeyFile", { extra: { apiKeyFile: "~/.config/key" } }, ["--engine-api-key-file=~/.config/key"]],
];

for (const [name, settings, args] of VALID) {
  test(`valid: ${name}`, () => {
    assert.deepEqual(engineFlags(settings), { args, problems: [] });
  });
}

// Wrong types, out-of-range values, strings that look like booleans or numbers: dropped, with
// a message naming the setting.
const INVALID: Array<[string, EngineSettings, RegExp]> = [
  ["kvCacheGib 0", { kvCacheGib: 0 }, /^moeLsp\.engine\.kvCacheGib must be a number of GiB above 0, not 0; ignored\.$/],
  ["kvCacheGib negative", { kvCacheGib: -1 }, /kvCacheGib must be a number of GiB above 0, not -1/],
  ["kvCacheGib NaN", { kvCacheGib: Number.NaN }, /kvCacheGib must be .* not NaN/],
  ["kvCacheGib Infinity", { kvCacheGib: Number.POSITIVE_INFINITY }, /kvCacheGib must be .* not Infinity/],
  ["kvCacheGib as a string", { kvCacheGib: "2" }, /kvCacheGib must be a number of GiB above 0, not the string '2'/],
  ["maxModelLen fraction", { maxModelLen: 1024.5 }, /maxModelLen must be a whole number of tokens, at least 256, not 1024\.5/],
  ["maxModelLen too small", { maxModelLen: 100 }, /maxModelLen must be .* at least 256, not 100/],
  ["maxModelLen boolean", { maxModelLen: true }, /maxModelLen must be .* not true/],
  ["model not a string", { model: 42 }, /^moeLsp\.engine\.model must be a string, not 42; ignored\.$/],
  ["model with a newline", { model: "a\nb" }, /model must be one line of text/],
  ["dtype unknown", { extra: { dtype: "int4" } }, /moeLsp\.engine\.extra\.dtype must be one of auto, bfloat16, float16, float32, not the string 'int4'/],
  ["blockSize not a multiple of 16", { extra: { blockSize: 24 } }, /extra\.blockSize must be a positive multiple of 16, not 24/],
  ["blockSize 0", { extra: { blockSize: 0 } }, /blockSize must be a positive multiple of 16, not 0/],
  ["tensorParallelSize 0", { extra: { tensorParallelSize: 0 } }, /tensorParallelSize must be a whole number, at least 1, not 0/],
  ["dataParallelSize as a string", { extra: { dataParallelSize: "2" } }, /dataParallelSize must be .* not the string '2'/],
  [
    "enableExpertParallel 'true'",
    { extra: { enableExpertParallel: "true" } },
    /extra\.enableExpertParallel must be true or false \(a JSON boolean\), not the string 'true'/,
  ],
  ["enableExpertParallel 'off'", { extra: { enableExpertParallel: "off" } }, /a JSON boolean\), not the string 'off'/],
  ["enableExpertParallel 1", { extra: { enableExpertParallel: 1 } }, /enableExpertParallel must be true or false, not 1/],
  ["distributedExecutorBackend unknown", { extra: { distributedExecutorBackend: "mpi" } }, /distributedExecutorBackend must be one of mp, ray, uni, not the string 'mpi'/],
  ["maxNumSeqs 0", { extra: { maxNumSeqs: 0 } }, /maxNumSeqs must be a whole number, at least 1, not 0/],
  ["enforceEager as a string", { extra: { enforceEager: "true" } }, /enforceEager must be true or false \(a JSON boolean\), not the string 'true'/],
  ["speculativeConfig a list", { extra: { speculativeConfig: ["ngram"] } }, /speculativeConfig must be an object \(or a string holding a JSON object\), not \["ngram"\]/],
  ["speculativeConfig bad JSON", { extra: { speculativeConfig: "{method" } }, /speculativeConfig must be an object .* not the string '\{method'/],
  ["gpuMemoryUtilization above 1", { extra: { gpuMemoryUtilization: 90 } }, /gpuMemoryUtilization must be a number above 0 and at most 1, not 90/],
  ["gpuMemoryUtilization 0", { extra: { gpuMemoryUtilization: 0 } }, /gpuMemoryUtilization must be a number above 0 and at most 1, not 0/],
  ["trustRemoteCode 'yes'", { extra: { trustRemoteCode: "yes" } }, /trustRemoteCode must be true or false \(a JSON boolean\), not the string 'yes'/],
  ["url without scheme", { extra: { url: "gpu-box:8000" } }, /extra\.url must be an http:\/\/ or https:\/\/ URL with a host, not 'gpu-box:8000'/],
  ["url file scheme", { extra: { url: "file:///etc/passwd" } }, /url must be an http:\/\/ or https:\/\/ URL/],
  ["tokenizer not a string", { extra: { tokenizer: ["/a"] } }, /extra\.tokenizer must be a string, not \["\/a"\]/],
  [
    "a key connect has no flag for",
    { extra: { extraEngineArgs: { seed: 1 } } },
    /^moeLsp\.engine\.extra\.extraEngineArgs: `moe-lsp connect` has no flag for this setting; ignored\. Set moeLsp\.server\.args to \["serve"\]/,
  ],
  ["backend openai without url", { extra: { backend: "openai" } }, /extra\.backend: `moe-lsp connect` has no flag/],
  ["extra not an object", { extra: "dtype=float16" }, /^moeLsp\.engine\.extra must be an object; ignored\.$/],
  ["extra an array", { extra: ["--dtype", "float16"] }, /^moeLsp\.engine\.extra must be an object; ignored\.$/],
];

for (const [name, settings, message] of INVALID) {
  test(`dropped: ${name}`, () => {
    const r = engineFlags(settings);
    assert.deepEqual(r.args, [], `no flag for ${name}`);
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    assert.match(r.problems[0], message);
  });
}

test("a bad value drops only its own flag", () => {
  const r = engineFlags({ model: "m", kvCacheGib: "lots", extra: { dtype: "float16", blockSize: 7 } });
  assert.deepEqual(r.args, ["--model=m", "--dtype=float16"]);
  assert.equal(r.problems.length, 2);
});

test("named settings win over the same key in extra", () => {
  const r = engineFlags({ kvCacheGib: 4, maxModelLen: 2048, extra: { kvCacheGib: 1, maxModelLen: "x", model: "e" } });
  assert.deepEqual(r, { args: ["--model=e", "--max-model-len=2048", "--kv-cache-gib=4"], problems: [] });
});

test("flags come in a fixed order, whatever the order of the keys", () => {
  const a = engineFlags({ extra: { url: "http://h:1", dtype: "auto", enableExpertParallel: true }, model: "m" });
  const b = engineFlags({ model: "m", extra: { enableExpertParallel: true, dtype: "auto", url: "http://h:1" } });
  assert.deepEqual(a, b);
  assert.deepEqual(a.args, ["--model=m", "--dtype=auto", "--enable-expert-parallel", "--engine-url=http://h:1"]);
});

test("several unknown keys give one message naming them all", () => {
  const r = engineFlags({ extra: { swapSpace: 8, extraEngineArgs: { seed: 1 } } });
  assert.deepEqual(r.args, []);
  assert.equal(r.problems.length, 1);
  assert.match(r.problems[0], /extra\.swapSpace, moeLsp\.engine\.extra\.extraEngineArgs: .* these settings/);
});

test("every flag is one `moe-lsp connect --help` lists", () => {
  // The connect command's engine flags (lsp/cli.py `_engine_flags`), kept in step by hand.
  const connectHelp = [
    "--model", "--dtype", "--max-model-len", "--kv-cache-gib", "--block-size", "--tensor-parallel-size",
    "--pipeline-parallel-size", "--data-parallel-size", "--enable-expert-parallel", "--distributed-executor-backend",
    "--gpu-memory-utilization", "--trust-remote-code", "--engine-url",
    "--engine-tokenizer", "--engine-api-key-file", "--max-num-seqs", "--enforce-eager", "--speculative-config",
  ];
  assert.deepEqual(Object.values(ENGINE_FLAGS).map((s) => s.flag).sort(), [...connectHelp].sort());
});
