/**
 * Starts the inference backends the catalog needs: the embedded engine (node-llama-cpp) for every
 * local GGUF with its adapters, an upstream backend per OpenAI-compatible server, behind one
 * `RoutingBackend` when there are several. Model loading shows a progress bar on a terminal and
 * structured log lines otherwise.
 */
import type { Llama } from "node-llama-cpp";
import type { InferenceBackend } from "../inference/backend.js";
import { EmbeddedEngine } from "../inference/embedded/embedded-engine.js";
import type { EmbeddedModelConfig } from "../inference/embedded/engine-config.js";
import { UpstreamBackend, type UpstreamModelConfig } from "../inference/upstream/upstream-backend.js";
import type { Logger } from "../log/logger.js";
import { type ProgressReporter, createProgressReporter } from "../models/progress-reporter.js";
import type { CatalogEntry } from "./model-catalog.js";
import { RoutingBackend } from "./routing-backend.js";

export interface StartBackendOptions {
  catalog: readonly CatalogEntry[];
  logger: Logger;
  /** Threads node-llama-cpp may use in all (default: the machine's cores). */
  maxThreads?: number;
  /** A node-llama-cpp instance to share (tests, the benchmark). */
  llama?: Llama;
  progressStream?: NodeJS.WriteStream;
}

function embeddedModels(catalog: readonly CatalogEntry[]): EmbeddedModelConfig[] {
  const models: EmbeddedModelConfig[] = [];
  for (const entry of catalog) {
    if (entry.adapter || entry.model.upstream || !entry.path) continue;
    const model = entry.model;
    const adapters = catalog.filter((item) => item.adapter && item.baseModelId === entry.id && item.path);
    models.push({
      id: entry.id,
      path: entry.path,
      contextSize: model.contextSize,
      parallel: model.parallel,
      gpu: model.gpu,
      ...(model.threads === undefined ? {} : { threads: model.threads }),
      ...(model.maxQueued === undefined ? {} : { maxQueued: model.maxQueued }),
      adapters: adapters.map((adapter) => ({ id: adapter.id, path: adapter.path!, scale: adapter.adapter!.scale })),
    });
  }
  return models;
}

function upstreamBackends(catalog: readonly CatalogEntry[]): UpstreamBackend[] {
  const byUrl = new Map<string, UpstreamModelConfig[]>();
  for (const entry of catalog) {
    const url = entry.model.upstream;
    if (!url || entry.adapter) continue;
    const models = byUrl.get(url) ?? [];
    models.push({
      id: entry.id,
      ...(entry.model.upstreamModel ? { upstreamModel: entry.model.upstreamModel } : {}),
      contextSize: entry.model.contextSize,
      parallel: entry.model.parallel,
      ...(entry.model.maxQueued === undefined ? {} : { maxQueued: entry.model.maxQueued }),
    });
    byUrl.set(url, models);
  }
  return [...byUrl.entries()].map(([baseUrl, models]) => new UpstreamBackend({ baseUrl, models }));
}

export async function startBackend(options: StartBackendOptions): Promise<InferenceBackend> {
  const { catalog, logger } = options;
  const backends: InferenceBackend[] = [];
  const models = embeddedModels(catalog);
  if (models.length > 0) {
    const names = new Map(catalog.map((entry) => [entry.id, entry.name]));
    const bars = new Map<string, ProgressReporter>();
    const engineLog = logger.child({ component: "engine" });
    const engine = await EmbeddedEngine.start({
      models,
      ...(options.maxThreads === undefined ? {} : { maxThreads: options.maxThreads }),
      ...(options.llama ? { llama: options.llama } : {}),
      onProgress: (progress) => {
        const key = `${progress.phase}:${progress.id}`;
        let bar = bars.get(key);
        if (!bar) {
          bar = createProgressReporter({
            label: `load ${names.get(progress.id as `0x${string}`) ?? progress.id}`,
            unit: "fraction",
            ...(options.progressStream ? { stream: options.progressStream } : {}),
            log: (fields, message) => engineLog.info({ ...fields, model: progress.id }, `model load ${message}`),
          });
          bars.set(key, bar);
        }
        bar.update({ done: progress.fraction, total: 1 });
        if (progress.fraction >= 1) {
          bar.done();
          bars.delete(key);
        }
      },
      log: (level, message) => engineLog[level]({ source: "llama.cpp" }, message),
    });
    backends.push(engine);
  }
  backends.push(...upstreamBackends(catalog));
  if (backends.length === 1) return backends[0]!;
  return new RoutingBackend(backends);
}
