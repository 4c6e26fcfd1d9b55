/**
 * Test models, built once per test process into a temp dir from fixed seeds (so their bytes, and
 * sha256, never change), and helpers to run the embedded engine on them.
 */
import { rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { type Llama, LlamaLogLevel, getLlama } from "node-llama-cpp";

import type {
  ChatMessage,
  Generation,
  GenerationChunk,
  GenerationRequest,
  GenerationResult,
  Prompt,
} from "../../src/inference/backend.js";
import { EmbeddedEngine } from "../../src/inference/embedded/embedded-engine.js";
import type { EmbeddedModelConfig } from "../../src/inference/embedded/engine-config.js";
import { TINY_SHAPE, writeLlamaTestModel, writeLoraTestAdapter } from "../../src/models/gguf/test-llama.js";
import type { WrittenFile } from "../../src/models/gguf/writer.js";

export interface TestModels {
  directory: string;
  model: WrittenFile;
  adapter: WrittenFile;
}

export const MODEL_ID = "0x01";
export const ADAPTER_ID = "0x02";

let built: Promise<TestModels> | undefined;

/** The tiny model (seed 1) and its LoRA adapter (seed 2), written once per process. */
export function testModels(): Promise<TestModels> {
  built ??= (async () => {
    const directory = await mkdtemp(join(tmpdir(), "agent-models-"));
    process.once("exit", () => rmSync(directory, { recursive: true, force: true }));
    return {
      directory,
      model: await writeLlamaTestModel(join(directory, "tiny.gguf"), { shape: TINY_SHAPE, seed: 1 }),
      adapter: await writeLoraTestAdapter(join(directory, "tiny-lora.gguf"), { shape: TINY_SHAPE, seed: 2 }),
    };
  })();
  return built;
}

let llama: Promise<Llama> | undefined;

/**
 * One node-llama-cpp instance per test process (each getLlama tests its binary in a child process, ~2 s).
 * llama.cpp's own error logs are silenced: the tests assert the errors the engine turns them into.
 */
export function sharedLlama(): Promise<Llama> {
  llama ??= getLlama({
    build: "never",
    gpu: false,
    maxThreads: 1,
    logLevel: LlamaLogLevel.error,
    logger: () => undefined,
  });
  return llama;
}

/** The embedded engine on the tiny model (and its adapter): one thread, no GPU, a 512-token context. */
export async function startTinyEngine(overrides: Partial<EmbeddedModelConfig> = {}): Promise<EmbeddedEngine> {
  const models = await testModels();
  return EmbeddedEngine.start({
    models: [
      {
        id: MODEL_ID,
        path: models.model.path,
        contextSize: 512,
        parallel: 2,
        threads: 1,
        gpu: "off",
        adapters: [{ id: ADAPTER_ID, path: models.adapter.path }],
        ...overrides,
      },
    ],
    maxThreads: 1,
    llama: await sharedLlama(),
  });
}

export function chat(content: string, system?: string): Prompt {
  const messages: ChatMessage[] = system === undefined ? [] : [{ role: "system", content: system }];
  messages.push({ role: "user", content });
  return { kind: "chat", messages };
}

export function request(
  prompt: Prompt,
  sampling: Partial<GenerationRequest["sampling"]> = {},
  extra: Partial<Omit<GenerationRequest, "prompt" | "sampling">> = {},
): GenerationRequest {
  return {
    model: MODEL_ID,
    prompt,
    sampling: { maxTokens: 16, temperature: 0, ...sampling },
    queueKey: "session-a",
    signal: new AbortController().signal,
    ...extra,
  };
}

export interface Collected {
  text: string;
  chunks: GenerationChunk[];
  result: GenerationResult;
}

export async function collect(generation: Generation): Promise<Collected> {
  const chunks: GenerationChunk[] = [];
  for await (const chunk of generation) chunks.push(chunk);
  return { text: chunks.map((chunk) => chunk.text).join(""), chunks, result: await generation.result };
}
