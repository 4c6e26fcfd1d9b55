/**
 * Inference throughput of the provider agent against node-llama-cpp used directly and llama.cpp's own
 * server, on the same generated models, prompt and threads. Prints numbers; asserts nothing.
 *
 *   npm run bench:agent [-- --threads 2 --tokens 64 --repeats 3 --models tiny,compute --streams 1,2,4,8]
 *   LLAMA_SERVER=/path/to/llama-server npm run bench:agent     (adds llama-server side by side)
 *
 * For each model: tokens/s and time to first token of one stream, then total tokens/s with 1, 2, 4 and
 * 8 concurrent streams, for each target. The last line is one JSON object for the compute-bound model:
 * {"agentVsDirect": agent tok/s ÷ direct tok/s at 1 stream, "addedTtftMs": …, "totalTokensPerSecond": {…}},
 * where "agent" is the agent's HTTP API (agent-http.ts).
 *
 * Other engineers' jobs share this machine's cores: figures drift between runs. Compare targets
 * within one run (they are measured interleaved, median of `--repeats`), not across runs.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { type Llama, LlamaLogLevel, getLlama } from "node-llama-cpp";

import {
  COMPUTE_SHAPE,
  type LlamaShape,
  TINY_SHAPE,
  writeLlamaTestModel,
} from "../../provider-agent/src/models/gguf/test-llama.js";
import { agentHttpTarget } from "./agent-http.js";
import { type BenchTarget, type Measurement, measure } from "./measure.js";
import { type TargetOptions, directTarget, engineTarget, llamaServerTarget } from "./targets.js";

interface BenchModel {
  name: "tiny" | "compute";
  shape: LlamaShape;
  tensorType: "f32" | "f16";
  /** Tokens per stream: enough for a few seconds per run. */
  tokensScale: number;
}

const MODELS: readonly BenchModel[] = [
  { name: "tiny", shape: TINY_SHAPE, tensorType: "f32", tokensScale: 4 },
  { name: "compute", shape: COMPUTE_SHAPE, tensorType: "f16", tokensScale: 1 },
];

/** About 40 tokens in the byte-level vocabulary. */
const PROMPT = "The market matches GPU owners with people who need inference.";

interface ModelReport {
  model: BenchModel["name"];
  byTarget: Map<string, Measurement[]>;
  agentTarget: string;
  directTarget: string;
}

async function benchModel(
  llama: Llama,
  model: BenchModel,
  directory: string,
  settings: Settings,
): Promise<ModelReport> {
  const path = join(directory, `${model.name}.gguf`);
  const written = await writeLlamaTestModel(path, { shape: model.shape, tensorType: model.tensorType, seed: 1 });
  const tokens = settings.tokens * model.tokensScale;
  const options: TargetOptions = {
    modelPath: written.path,
    prompt: PROMPT,
    threads: settings.threads,
    contextSize: 512,
    maxStreams: Math.max(...settings.streams),
  };
  console.log(
    `\n== ${model.name} model (${model.shape.embeddingLength}-dim, ${model.shape.blockCount} layers, ${model.tensorType}), ${settings.threads} thread(s), ${tokens} tokens per stream ==`,
  );
  const targets: BenchTarget[] = [await directTarget(llama, options), await engineTarget(llama, options)];
  // The agent's HTTP API (agent-http.ts): a whole agent in process, a real session on a local chain.
  const http = await agentHttpTarget(llama, options);
  targets.push(http);
  if (settings.llamaServer) targets.push(await llamaServerTarget(settings.llamaServer, options));

  const byTarget = new Map<string, Measurement[]>(targets.map((target) => [target.name, []]));
  try {
    for (const streams of settings.streams) {
      // A short warm-up first, so that no first-call cost lands in the figures.
      for (const target of targets) await target.run(streams, 4);
      // Interleaved so that the targets see the same background load.
      for (const target of targets)
        byTarget.get(target.name)!.push(await measure(target, streams, tokens, settings.repeats));
    }
  } finally {
    for (const target of targets) await target.close();
  }

  const pad = Math.max(...targets.map((target) => target.name.length));
  console.log(
    `${"".padEnd(pad)}  ${settings.streams.map((streams) => `${streams} stream(s)`.padStart(14)).join("")}   TTFT at 1 stream`,
  );
  for (const [name, measurements] of byTarget) {
    const rates = measurements.map((m) => `${m.tokensPerSecond.toFixed(1)} tok/s`.padStart(14)).join("");
    console.log(`${name.padEnd(pad)}  ${rates}   ${measurements[0]!.ttftMs.toFixed(1)} ms`);
  }
  console.log("per second of this process's CPU time (steadier than wall clock on a shared machine):");
  for (const [name, measurements] of byTarget) {
    if (measurements[0]?.tokensPerCpuSecond === undefined) continue;
    const rates = measurements.map((m) => `${(m.tokensPerCpuSecond ?? 0).toFixed(1)} tok/s`.padStart(14)).join("");
    console.log(`${name.padEnd(pad)}  ${rates}`);
  }
  const agentTarget = http.name;
  const direct = byTarget.get("node-llama-cpp direct")![0]!;
  const agent = byTarget.get(agentTarget)![0]!;
  console.log(
    `${agentTarget} vs direct at 1 stream: ${((agent.tokensPerSecond / direct.tokensPerSecond) * 100).toFixed(1)}% of the throughput, ` +
      `${(agent.ttftMs - direct.ttftMs).toFixed(2)} ms added to the first token`,
  );
  return { model: model.name, byTarget, agentTarget, directTarget: "node-llama-cpp direct" };
}

interface Settings {
  threads: number;
  tokens: number;
  repeats: number;
  streams: number[];
  models: BenchModel[];
  llamaServer: string | undefined;
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      threads: { type: "string", default: "2" },
      tokens: { type: "string", default: "64" },
      repeats: { type: "string", default: "3" },
      streams: { type: "string", default: "1,2,4,8" },
      models: { type: "string", default: "tiny,compute" },
    },
  });
  const whole = (name: string, text: string): number => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 1)
      throw new RangeError(`--${name} must be a whole number ≥ 1, not ${text}`);
    return value;
  };
  const names = values.models.split(",");
  return {
    threads: whole("threads", values.threads),
    tokens: whole("tokens", values.tokens),
    repeats: whole("repeats", values.repeats),
    streams: values.streams.split(",").map((streams) => whole("streams", streams)),
    models: MODELS.filter((model) => names.includes(model.name)),
    llamaServer: process.env.LLAMA_SERVER,
  };
}

const settings = readSettings();
const directory = await mkdtemp(join(tmpdir(), "bench-agent-"));
const llama = await getLlama({
  build: "never",
  gpu: false,
  maxThreads: settings.threads,
  logLevel: LlamaLogLevel.error,
});
try {
  const reports: ModelReport[] = [];
  for (const model of settings.models) reports.push(await benchModel(llama, model, directory, settings));
  const compute = reports.find((report) => report.model === "compute");
  if (compute) {
    const agent = compute.byTarget.get(compute.agentTarget)!;
    const direct = compute.byTarget.get(compute.directTarget)!;
    console.log(
      JSON.stringify({
        agentVsDirect: Number((agent[0]!.tokensPerSecond / direct[0]!.tokensPerSecond).toFixed(3)),
        addedTtftMs: Number((agent[0]!.ttftMs - direct[0]!.ttftMs).toFixed(2)),
        totalTokensPerSecond: Object.fromEntries(
          agent.map((m) => [String(m.streams), Number(m.tokensPerSecond.toFixed(1))]),
        ),
      }),
    );
  }
} finally {
  await llama.dispose();
  await rm(directory, { recursive: true, force: true });
}
