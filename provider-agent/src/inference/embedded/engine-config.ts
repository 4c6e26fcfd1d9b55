/**
 * What the embedded engine needs to know about each model it serves. The agent's config (YAML, zod)
 * maps onto these; every optional field has a default that works on a small CPU box.
 */
import { availableParallelism } from "node:os";

import type { Llama } from "node-llama-cpp";

export type GpuMode = "auto" | "on" | "off";

export interface LoraAdapterConfig {
  /** The id requests name (the adapter's on-chain model id). */
  id: string;
  /** A LoRA adapter GGUF made for the base model (`general.type = "adapter"`). */
  path: string;
  /** How strongly the adapter applies; 1 is as trained. */
  scale?: number;
  /** Parallel sequences of the adapter's own context; defaults to the base model's. */
  parallel?: number;
  /** Requests that may wait; defaults to the base model's. */
  maxQueued?: number;
}

export interface EmbeddedModelConfig {
  /** The id requests name (the on-chain model id). */
  id: string;
  path: string;
  /** Tokens each sequence holds (prompt and output together). Default 4096, at most what the model was trained on. */
  contextSize?: number;
  /** Parallel sequences, batched together (continuous batching). Default 4. */
  parallel?: number;
  /** CPU threads for this model's contexts. Default: the machine's cores. */
  threads?: number;
  /** "on" offloads every layer, "off" none, "auto" what fits. Default "auto". */
  gpu?: GpuMode;
  /** Longest prompt accepted. Default and ceiling: `contextSize - 1`. */
  maxPromptTokens?: number;
  /** Requests that may wait for a sequence; one more gets `QueueFullError`. Default `parallel * 8`. */
  maxQueued?: number;
  /** Tokens evaluated per batch. Default node-llama-cpp's (512, or less for a small context). */
  batchSize?: number;
  adapters?: LoraAdapterConfig[];
}

/** Where loading is, for a progress bar or log lines. */
export interface LoadProgress {
  /** The served id: the model's, or an adapter's while its context is created. */
  id: string;
  path: string;
  phase: "model" | "adapter";
  /** 0 to 1. */
  fraction: number;
}

export type EngineLogLevel = "debug" | "info" | "warn" | "error";

export interface EmbeddedEngineOptions {
  models: EmbeddedModelConfig[];
  /** Threads node-llama-cpp may use in all. Default: the machine's cores (never more: spinning threads stall). */
  maxThreads?: number;
  onProgress?: (progress: LoadProgress) => void;
  /**
   * A node-llama-cpp instance to load into instead of a new one (getLlama tests its binary in a child
   * process, ~2 s). The engine then leaves it open on close. Tests and the benchmark share one.
   */
  llama?: Llama;
  /** llama.cpp's warnings and errors, and the engine's own notes. */
  log?: (level: EngineLogLevel, message: string) => void;
}

export const DEFAULT_CONTEXT_SIZE = 4096;
export const DEFAULT_PARALLEL = 4;
export const QUEUE_PER_SEQUENCE = 8;

export function machineCores(): number {
  return availableParallelism();
}
