/**
 * What the benchmark compares, each a `BenchTarget` on the same model file, prompt and threads:
 * node-llama-cpp used directly out of the box, the embedded engine, and llama.cpp's own server.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";

import type { Llama, LlamaContext, LlamaContextSequence } from "node-llama-cpp";

import { EmbeddedEngine } from "../../provider-agent/src/inference/embedded/embedded-engine.js";
import { serverSentEventData } from "../../provider-agent/src/inference/upstream/server-sent-events.js";
import type { BenchTarget, StreamRun } from "./measure.js";

export interface TargetOptions {
  modelPath: string;
  prompt: string;
  threads: number;
  contextSize: number;
  /** Most streams any run asks for (the engine's and the server's parallel slots). */
  maxStreams: number;
}

/**
 * The out-of-the-box baseline: one context with a sequence per stream and node-llama-cpp's default
 * batching, each stream a plain greedy `sequence.evaluate` loop on the prompt's tokens (BOS first, as
 * the engine tokenizes a text prompt). Nothing the engine adds: no templating, queue or text decoding.
 */
export async function directTarget(llama: Llama, options: TargetOptions): Promise<BenchTarget> {
  const model = await llama.loadModel({ modelPath: options.modelPath, gpuLayers: 0 });
  const prompt = model.tokenize(options.prompt);
  if (model.tokens.bos !== null) prompt.unshift(model.tokens.bos);
  // A context per stream count, kept across runs like the engine's, so no run pays for creating one.
  const contexts = new Map<number, { context: LlamaContext; sequences: LlamaContextSequence[] }>();
  return {
    name: "node-llama-cpp direct",
    inProcess: true,
    async run(streams, tokens) {
      let entry = contexts.get(streams);
      if (!entry) {
        const context = await model.createContext({
          contextSize: options.contextSize,
          sequences: streams,
          threads: options.threads,
        });
        entry = { context, sequences: Array.from({ length: streams }, () => context.getSequence()) };
        contexts.set(streams, entry);
      }
      await Promise.all(entry.sequences.map((sequence) => sequence.clearHistory()));
      const started = performance.now();
      return Promise.all(
        entry.sequences.map(async (sequence): Promise<StreamRun> => {
          let count = 0;
          let ttftMs = 0;
          for await (const _token of sequence.evaluate(prompt, { temperature: 0 })) {
            if (count === 0) ttftMs = performance.now() - started;
            if (++count === tokens) break;
          }
          return { tokens: count, ttftMs };
        }),
      );
    },
    close: async () => {
      for (const { context } of contexts.values()) await context.dispose();
      await model.dispose();
    },
  };
}

/** The embedded engine, configured as the agent runs it (one context, `maxStreams` sequences). */
export async function engineTarget(llama: Llama, options: TargetOptions): Promise<BenchTarget> {
  const engine = await EmbeddedEngine.start({
    models: [
      {
        id: "bench",
        path: options.modelPath,
        contextSize: options.contextSize,
        parallel: options.maxStreams,
        threads: options.threads,
        gpu: "off",
      },
    ],
    llama,
  });
  return {
    name: "embedded engine",
    inProcess: true,
    async run(streams, tokens) {
      const started = performance.now();
      return Promise.all(
        Array.from({ length: streams }, async (_, index): Promise<StreamRun> => {
          const generation = await engine.generate({
            model: "bench",
            prompt: { kind: "text", text: options.prompt },
            sampling: { maxTokens: tokens, temperature: 0 },
            queueKey: `stream-${index}`,
            signal: new AbortController().signal,
          });
          let ttftMs = 0;
          for await (const chunk of generation) if (chunk.outputTokens === 1) ttftMs = performance.now() - started;
          return { tokens: (await generation.result).outputTokens, ttftMs };
        }),
      );
    },
    close: () => engine.close(),
  };
}

/**
 * llama.cpp's own server (`LLAMA_SERVER=/path/to/llama-server`), with as many slots as streams and
 * the same threads, driven through its streaming /v1/completions.
 */
export async function llamaServerTarget(binary: string, options: TargetOptions): Promise<BenchTarget> {
  const port = await freePort();
  const server = spawn(
    binary,
    [
      ...["-m", options.modelPath, "--host", "127.0.0.1", "--port", String(port)],
      ...["-t", String(options.threads), "-tb", String(options.threads), "-ngl", "0"],
      ...["-c", String(options.contextSize * options.maxStreams), "--parallel", String(options.maxStreams)],
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitUntilHealthy(server, baseUrl);
  return {
    name: "llama-server",
    inProcess: false,
    async run(streams, tokens) {
      const started = performance.now();
      return Promise.all(
        Array.from({ length: streams }, async (): Promise<StreamRun> => {
          const response = await fetch(`${baseUrl}/v1/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              prompt: options.prompt,
              max_tokens: tokens,
              temperature: 0,
              stream: true,
              ignore_eos: true,
              cache_prompt: false,
              stream_options: { include_usage: true },
            }),
          });
          if (!response.ok || !response.body) throw new Error(`llama-server answered HTTP ${response.status}`);
          let ttftMs = 0;
          let generated = 0;
          for await (const data of serverSentEventData(response.body as AsyncIterable<Uint8Array>)) {
            if (data.trim() === "[DONE]") break;
            const chunk = JSON.parse(data) as { choices?: { text?: string }[]; usage?: { completion_tokens?: number } };
            if (ttftMs === 0 && chunk.choices?.[0]?.text !== undefined) ttftMs = performance.now() - started;
            if (chunk.usage?.completion_tokens !== undefined) generated = chunk.usage.completion_tokens;
          }
          return { tokens: generated, ttftMs };
        }),
      );
    },
    close: async () => {
      server.kill("SIGTERM");
      await new Promise((resolve) => server.once("exit", resolve));
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => {
        if (typeof address === "object" && address) resolve(address.port);
        else reject(new Error("no port"));
      });
    });
  });
}

async function waitUntilHealthy(server: ChildProcess, baseUrl: string): Promise<void> {
  let log = "";
  server.stderr?.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  const exited = new Promise<never>((_, reject) =>
    server.once("exit", (code) => reject(new Error(`llama-server exited with ${code}:\n${log}`))),
  );
  exited.catch(() => undefined);
  for (let attempt = 0; attempt < 600; attempt++) {
    const healthy = await fetch(`${baseUrl}/health`)
      .then((response) => response.ok)
      .catch(() => false);
    if (healthy) return;
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 100)), exited]);
  }
  server.kill("SIGKILL");
  throw new Error(`llama-server did not become healthy in 60 s:\n${log}`);
}
