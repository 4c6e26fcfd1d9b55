/**
 * The embedded engine: node-llama-cpp in this process. Per configured model its N parallel sequences
 * (continuous batching) in one context, or on the CPU spread over one single-threaded context per
 * thread (see `EmbeddedModelConfig.contexts`); the same again for each LoRA adapter, on the same loaded
 * weights; a fair queue in front of each served id's sequences.
 */
import {
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  LlamaLogLevel,
  type LlamaModel,
  getLlama,
} from "node-llama-cpp";

import type {
  BackendStatus,
  Generation,
  GenerationRequest,
  InferenceBackend,
  Prompt,
  ServedModel,
} from "../backend.js";
import { BackendUnavailableError, InvalidRequestError, PromptTooLongError, UnknownModelError } from "../errors.js";
import { GenerationStream } from "../generation-stream.js";
import { type Slot, SlotScheduler } from "../scheduling/slot-scheduler.js";
import { SequenceOrderedBatching } from "./batching.js";
import {
  DEFAULT_CONTEXT_SIZE,
  DEFAULT_PARALLEL,
  type EmbeddedEngineOptions,
  type EmbeddedModelConfig,
  type EngineLogLevel,
  type GpuMode,
  QUEUE_PER_SEQUENCE,
  machineCores,
} from "./engine-config.js";
import { JsonSchemaGrammars } from "./json-schema-grammars.js";
import { ModelLoadError, checkGgufFile, errorMessage } from "./model-file-check.js";
import { PromptTemplater, type TemplatedPrompt } from "./prompt-templater.js";
import { resolveSampling } from "./sampling.js";
import { generateOnSequence } from "./sequence-generation.js";
import { InFlightGenerations } from "../in-flight.js";

interface SequenceSlot extends Slot {
  sequence: LlamaContextSequence;
}

/** One served id: a model's own contexts, or an adapter's contexts on its base model. */
interface ServedContext {
  served: ServedModel;
  model: LlamaModel;
  contexts: LlamaContext[];
  templater: PromptTemplater;
  scheduler: SlotScheduler<SequenceSlot>;
}

type EngineState = "serving" | "draining" | "closed";

export class EmbeddedEngine implements InferenceBackend {
  private state: EngineState = "serving";
  private readonly inFlight = new InFlightGenerations();
  /** Aborts every generation when the engine closes. */
  private readonly closing = new AbortController();
  private readonly grammars: JsonSchemaGrammars;

  private constructor(
    private readonly llama: Llama,
    private readonly ownsLlama: boolean,
    private readonly modelsLoaded: readonly LlamaModel[],
    private readonly byId: ReadonlyMap<string, ServedContext>,
    private readonly log: (level: EngineLogLevel, message: string) => void,
  ) {
    this.grammars = new JsonSchemaGrammars(llama);
  }

  /**
   * Loads every configured model and adapter and creates their contexts. Throws `ModelLoadError` for a
   * file that cannot be served (after releasing whatever was loaded), `RangeError` for a bad config.
   */
  static async start(options: EmbeddedEngineOptions): Promise<EmbeddedEngine> {
    const log = options.log ?? (() => undefined);
    checkConfig(options.models);
    const ownsLlama = options.llama === undefined;
    const llama =
      options.llama ??
      (await getLlama({
        // Never compile: a missing prebuilt binary would otherwise start a build of several minutes.
        build: "never",
        gpu: options.models.every((model) => model.gpu === "off") ? false : "auto",
        // More threads than cores spin against each other (TOOLCHAIN.md: 1.1 tok/s with 4 threads on 2 cores).
        maxThreads: options.maxThreads ?? machineCores(),
        logLevel: LlamaLogLevel.warn,
        logger: (level, message) => log(toEngineLevel(level), message.trimEnd()),
        progressLogs: false,
      }));
    const loaded: LlamaModel[] = [];
    const byId = new Map<string, ServedContext>();
    try {
      for (const config of options.models) {
        await checkGgufFile(config.id, config.path, "model");
        if (config.gpu === "on" && llama.gpu === false) {
          throw new ModelLoadError(
            config.id,
            config.path,
            'gpu is "on" but node-llama-cpp found no usable GPU backend',
          );
        }
        for (const adapter of config.adapters ?? []) await checkGgufFile(adapter.id, adapter.path, "adapter");
        const model = await llama
          .loadModel({
            modelPath: config.path,
            gpuLayers: gpuLayersFor(config.gpu ?? "auto"),
            onLoadProgress: (fraction) =>
              options.onProgress?.({ id: config.id, path: config.path, phase: "model", fraction }),
          })
          .catch((error: unknown) => {
            throw new ModelLoadError(config.id, config.path, `llama.cpp refused it (${errorMessage(error)})`, {
              cause: error,
            });
          });
        loaded.push(model);
        const templater = new PromptTemplater(model);
        const contextSize = Math.min(config.contextSize ?? DEFAULT_CONTEXT_SIZE, model.trainContextSize);
        const parallel = config.parallel ?? DEFAULT_PARALLEL;
        const threads = config.threads ?? llama.maxThreads;
        const onCpu = llama.gpu === false || model.gpuLayers === 0;
        const contexts =
          config.contexts === undefined || config.contexts === "auto" ? (onCpu ? threads : 1) : config.contexts;
        const base = await createServedContext(model, templater, log, {
          id: config.id,
          path: config.path,
          contextSize,
          parallel,
          threads,
          contexts,
          batchSize: config.batchSize,
          maxPromptTokens: config.maxPromptTokens,
          maxQueued: config.maxQueued ?? parallel * QUEUE_PER_SEQUENCE,
        });
        byId.set(config.id, base);
        for (const adapter of config.adapters ?? []) {
          const adapterParallel = adapter.parallel ?? parallel;
          const served = await createServedContext(model, templater, log, {
            id: adapter.id,
            path: adapter.path,
            baseModelId: config.id,
            contextSize,
            parallel: adapterParallel,
            threads,
            contexts,
            batchSize: config.batchSize,
            maxPromptTokens: config.maxPromptTokens,
            maxQueued: adapter.maxQueued ?? config.maxQueued ?? adapterParallel * QUEUE_PER_SEQUENCE,
            lora: {
              adapters: [{ filePath: adapter.path, scale: adapter.scale ?? 1 }],
              onLoadProgress: (fraction) =>
                options.onProgress?.({ id: adapter.id, path: adapter.path, phase: "adapter", fraction }),
            },
          });
          byId.set(adapter.id, served);
        }
      }
    } catch (error) {
      // Disposing a model disposes its contexts; disposing our own Llama instance, everything.
      for (const model of loaded) await model.dispose();
      if (ownsLlama) await llama.dispose();
      throw error;
    }
    return new EmbeddedEngine(llama, ownsLlama, loaded, byId, log);
  }

  models(): ServedModel[] {
    return [...this.byId.values()].map(({ served }) => ({ ...served }));
  }

  status(): BackendStatus {
    const gpu = this.llama.gpu;
    return {
      ready: this.state === "serving",
      gpu,
      models: [...this.byId.values()].map(({ served, model, contexts, scheduler }) => ({
        id: served.id,
        loaded: this.state !== "closed",
        activeSequences: scheduler.active,
        queued: scheduler.queued,
        // node-llama-cpp reports VRAM only when a GPU backend is in use; an adapter's context shares its base's weights.
        vramBytes:
          gpu === false || this.state === "closed"
            ? undefined
            : contexts.reduce((sum, context) => sum + context.memoryUsage.vram, 0) +
              (served.baseModelId === undefined ? model.memoryUsage.vram : 0),
      })),
    };
  }

  countPromptTokens(model: string, prompt: Prompt): Promise<number> {
    // Templating is synchronous; the executor turns its errors (UnknownModelError) into a rejection.
    return new Promise((resolve) => resolve(this.render(model, this.servedContext(model), prompt).tokens.length));
  }

  async generate(request: GenerationRequest): Promise<Generation> {
    this.assertServing(request.model);
    const served = this.servedContext(request.model);
    const sampling = resolveSampling(request.model, request.sampling);
    const prompt = this.render(request.model, served, request.prompt);
    if (prompt.tokens.length === 0) throw new InvalidRequestError(request.model, "the prompt is empty");
    if (prompt.tokens.length > served.served.maxPromptTokens) {
      throw new PromptTooLongError(request.model, prompt.tokens.length, served.served.maxPromptTokens);
    }
    const schema = request.sampling.jsonSchema;
    const grammar = schema
      ? await this.grammars.get(schema).catch((error: unknown) => {
          throw new InvalidRequestError(request.model, `the JSON schema cannot be used: ${errorMessage(error)}`);
        })
      : undefined;
    // The engine may have started draining while the grammar compiled.
    this.assertServing(request.model);

    const admittedAt = performance.now();
    const signal = AbortSignal.any([request.signal, this.closing.signal]);
    const slot = served.scheduler.admit(request.queueKey, signal);
    const stream = new GenerationStream(prompt.tokens.length);
    const run = (async () => {
      const granted = await slot;
      if (!granted) {
        const waited = performance.now() - admittedAt;
        stream.finish({ inputTokens: 0, outputTokens: 0, finishReason: "abort", ttftMs: waited, durationMs: waited });
        return;
      }
      try {
        await generateOnSequence({ sequence: granted.sequence, prompt, sampling, grammar, stream, signal, admittedAt });
      } catch (error) {
        this.log("error", `generation on model ${request.model} failed: ${errorMessage(error)}`);
        stream.fail(new BackendUnavailableError(request.model, `inference failed (${errorMessage(error)})`));
      } finally {
        served.scheduler.release(granted);
      }
    })();
    this.inFlight.add(run);
    return stream;
  }

  async drain(graceMs: number): Promise<void> {
    if (this.state === "serving") this.state = "draining";
    await this.inFlight.drain(graceMs);
  }

  /** Aborts what still runs (it finishes with "abort"), then releases every context, model and the Llama instance. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    this.closing.abort();
    await this.inFlight.settled();
    for (const { contexts } of this.byId.values()) for (const context of contexts) await context.dispose();
    for (const model of this.modelsLoaded) await model.dispose();
    if (this.ownsLlama) await this.llama.dispose();
  }

  /** The prompt's tokens; a chat the model's template refuses (some refuse roles out of turn) is the client's error. */
  private render(model: string, served: ServedContext, prompt: Prompt): TemplatedPrompt {
    try {
      return served.templater.render(prompt);
    } catch (error) {
      throw new InvalidRequestError(model, `the prompt cannot be templated: ${errorMessage(error)}`);
    }
  }

  private servedContext(model: string): ServedContext {
    const served = this.byId.get(model);
    if (!served) throw new UnknownModelError(model);
    return served;
  }

  private assertServing(model: string): void {
    if (this.state !== "serving") {
      throw new BackendUnavailableError(
        model,
        this.state === "draining" ? "the agent is shutting down" : "the engine is closed",
      );
    }
  }
}

interface ServedContextOptions {
  id: string;
  path: string;
  baseModelId?: string;
  contextSize: number;
  parallel: number;
  threads: number;
  contexts: number;
  batchSize: number | undefined;
  maxPromptTokens: number | undefined;
  maxQueued: number;
  lora?: {
    adapters: { filePath: string; scale: number }[];
    onLoadProgress: (fraction: number) => void;
  };
}

async function createServedContext(
  model: LlamaModel,
  templater: PromptTemplater,
  log: (level: EngineLogLevel, message: string) => void,
  options: ServedContextOptions,
): Promise<ServedContext> {
  const contextCount = Math.min(options.contexts, options.parallel);
  const threadsPerContext = Math.max(1, Math.floor(options.threads / contextCount));
  const contexts: LlamaContext[] = [];
  const sequencesOf: LlamaContextSequence[][] = [];
  try {
    for (let index = 0; index < contextCount; index++) {
      // Sequences split as evenly as possible: 8 over 3 contexts is 3, 3, 2.
      const sequences = Math.floor(options.parallel / contextCount) + (index < options.parallel % contextCount ? 1 : 0);
      const batching = new SequenceOrderedBatching((message) => log("warn", `${options.id}: ${message}`));
      const context = await model
        .createContext({
          contextSize: options.contextSize,
          sequences,
          threads: threadsPerContext,
          batchSize: options.batchSize,
          batching: batching.options,
          lora: options.lora,
          // A fixed context size either fits or fails; never silently shrink what the config asked for.
          failedCreationRemedy: false,
        })
        .catch((error: unknown) => {
          const what = options.lora ? "the adapter cannot be applied" : "its context cannot be created";
          throw new ModelLoadError(options.id, options.path, `${what} (${errorMessage(error)})`, { cause: error });
        });
      contexts.push(context);
      batching.attachContext(context);
      // Sequences are created once, in id order, and reused.
      const sequencesOfContext = Array.from({ length: sequences }, () => context.getSequence());
      for (const sequence of sequencesOfContext) batching.attachSequence(sequence);
      sequencesOf.push(sequencesOfContext);
    }
  } catch (error) {
    for (const context of contexts) await context.dispose();
    throw error;
  }
  // Slot order interleaves the contexts (A0 B0 A1 B1…): the scheduler hands out the lowest free slot, so
  // streams spread over the contexts (cores) and, within one, keep to the lowest sequence ids.
  const slots: SequenceSlot[] = [];
  for (let depth = 0; slots.length < options.parallel; depth++) {
    for (const sequences of sequencesOf) {
      const sequence = sequences[depth];
      if (sequence) slots.push({ index: slots.length, sequence });
    }
  }
  const contextSize = contexts[0]!.contextSize;
  const ceiling = contextSize - 1;
  return {
    served: {
      id: options.id,
      ...(options.baseModelId === undefined ? {} : { baseModelId: options.baseModelId }),
      contextSize,
      maxPromptTokens: Math.min(options.maxPromptTokens ?? ceiling, ceiling),
      parallel: options.parallel,
    },
    model,
    contexts,
    templater,
    scheduler: new SlotScheduler(slots, { model: options.id, maxQueued: options.maxQueued }),
  };
}

function checkConfig(models: readonly EmbeddedModelConfig[]): void {
  if (models.length === 0) throw new RangeError("the embedded engine needs at least one model");
  const ids = new Set<string>();
  for (const config of models) {
    for (const id of [config.id, ...(config.adapters ?? []).map((adapter) => adapter.id)]) {
      if (ids.has(id)) throw new RangeError(`model id ${id} is configured twice`);
      ids.add(id);
    }
    const positive = {
      contextSize: config.contextSize,
      parallel: config.parallel,
      threads: config.threads,
      contexts: config.contexts === "auto" ? undefined : config.contexts,
    };
    for (const [name, value] of Object.entries(positive)) {
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
        throw new RangeError(`model ${config.id}: ${name} must be a whole number ≥ 1, not ${value}`);
      }
    }
  }
}

function gpuLayersFor(mode: GpuMode): "auto" | "max" | number {
  if (mode === "off") return 0;
  return mode === "on" ? "max" : "auto";
}

function toEngineLevel(level: LlamaLogLevel): EngineLogLevel {
  if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) return "error";
  if (level === LlamaLogLevel.warn) return "warn";
  if (level === LlamaLogLevel.info) return "info";
  return "debug";
}
