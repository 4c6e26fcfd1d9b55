/**
 * An `InferenceBackend` over an OpenAI-compatible server the provider already runs (llama.cpp's
 * llama-server, vLLM, Ollama): requests are forwarded as streaming completions, behind this agent's own
 * concurrency cap and fair queue per model.
 *
 * Token counts. The market bills exact counts, so they come from the upstream itself: the `usage` it
 * sends (asked for with `stream_options.include_usage`), or the running counts vLLM
 * (`continuous_usage_stats`) and llama-server (`timings_per_token`) add to every chunk. A stream that
 * ends without any count is a backend failure: the result rejects rather than bill a guess. When the
 * client aborts, the last running count is used; an upstream that sends none (Ollama) then bills the
 * text chunks received as output tokens (these servers stream one token per chunk) and no prompt
 * tokens, so an abort never overcharges. `countPromptTokens` has no tokenizer to ask: it returns an
 * upper bound (see `promptTokensUpperBound`), safe for credit checks and never used for billing.
 */
import type {
  BackendStatus,
  FinishReason,
  Generation,
  GenerationRequest,
  InferenceBackend,
  Prompt,
  ServedModel,
} from "../backend.js";
import { BackendUnavailableError, InferenceError, InvalidRequestError, UnknownModelError } from "../errors.js";
import { GenerationStream } from "../generation-stream.js";
import { type Slot, SlotScheduler } from "../scheduling/slot-scheduler.js";
import {
  type WireChunk,
  type WireUsage,
  chunkFinishReason,
  chunkText,
  chunkTimingsUsage,
  errorText,
  requestBody,
  requestPath,
} from "./openai-wire.js";
import { serverSentEventData } from "./server-sent-events.js";
import { InFlightGenerations } from "../in-flight.js";

export interface UpstreamModelConfig {
  /** The id requests name (the on-chain model id). */
  id: string;
  /** The name the upstream serves it under; default `id`. */
  upstreamModel?: string;
  /** The upstream's context per request, as configured there (it cannot be asked portably). */
  contextSize: number;
  /** Default `contextSize - 1`. */
  maxPromptTokens?: number;
  /** Requests forwarded at once; match the upstream's parallel slots (llama-server `--parallel`). */
  parallel: number;
  /** Requests that may wait here; default `parallel * 8`. */
  maxQueued?: number;
  /** For a LoRA adapter served by the upstream under its own name. */
  baseModelId?: string;
}

export interface UpstreamBackendOptions {
  /** E.g. `http://127.0.0.1:8080` (a trailing `/v1` is accepted). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …` when the upstream wants one. */
  apiKey?: string;
  models: UpstreamModelConfig[];
  /** Longest wait for the upstream's response headers (it may be processing a long prompt). Default 120 s. */
  responseTimeoutMs?: number;
  /** Longest silence between two chunks of a stream. Default 60 s. */
  idleTimeoutMs?: number;
}

interface UpstreamSlot extends Slot {
  readonly index: number;
}

interface ServedUpstream {
  served: ServedModel;
  upstreamModel: string;
  scheduler: SlotScheduler<UpstreamSlot>;
}

/** Per message, room for the chat template's role markers and separators (ChatML uses ~5, Llama 3 ~6). */
const TEMPLATE_TOKENS_PER_MESSAGE = 8;
const TEMPLATE_TOKENS_PER_PROMPT = 8;

/**
 * At least as many tokens as `prompt` takes once templated, for any byte-level tokenizer (BPE with byte
 * fallback, SentencePiece with byte fallback): a token covers at least one byte of text, and the template
 * adds a bounded number of special tokens per message. Real counts are typically 3–4× smaller for English.
 */
export function promptTokensUpperBound(prompt: Prompt): number {
  if (prompt.kind === "text") return Buffer.byteLength(prompt.text) + TEMPLATE_TOKENS_PER_PROMPT;
  return prompt.messages.reduce(
    (sum, message) =>
      sum + Buffer.byteLength(message.role) + Buffer.byteLength(message.content) + TEMPLATE_TOKENS_PER_MESSAGE,
    TEMPLATE_TOKENS_PER_PROMPT,
  );
}

type BackendState = "serving" | "draining" | "closed";

export class UpstreamBackend implements InferenceBackend {
  private state: BackendState = "serving";
  private readonly byId = new Map<string, ServedUpstream>();
  private readonly inFlight = new InFlightGenerations();
  private readonly closing = new AbortController();
  private readonly baseUrl: string;
  private readonly responseTimeoutMs: number;
  private readonly idleTimeoutMs: number;

  constructor(private readonly options: UpstreamBackendOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "");
    this.responseTimeoutMs = options.responseTimeoutMs ?? 120_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    for (const model of options.models) {
      if (this.byId.has(model.id)) throw new RangeError(`model id ${model.id} is configured twice`);
      if (!Number.isSafeInteger(model.parallel) || model.parallel < 1) {
        throw new RangeError(`model ${model.id}: parallel must be a whole number ≥ 1`);
      }
      const slots = Array.from({ length: model.parallel }, (_, index) => ({ index }));
      this.byId.set(model.id, {
        served: {
          id: model.id,
          ...(model.baseModelId === undefined ? {} : { baseModelId: model.baseModelId }),
          contextSize: model.contextSize,
          maxPromptTokens: Math.min(model.maxPromptTokens ?? model.contextSize - 1, model.contextSize - 1),
          parallel: model.parallel,
        },
        upstreamModel: model.upstreamModel ?? model.id,
        scheduler: new SlotScheduler(slots, { model: model.id, maxQueued: model.maxQueued ?? model.parallel * 8 }),
      });
    }
  }

  /** Checks that the upstream answers `GET /v1/models`; throws `BackendUnavailableError` if not. */
  async checkReachable(): Promise<void> {
    const first = this.options.models[0]?.id ?? "(none)";
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/v1/models`, {
        headers: this.headers(),
        signal: AbortSignal.timeout(this.responseTimeoutMs),
      });
    } catch (error) {
      throw new BackendUnavailableError(
        first,
        `the upstream at ${this.baseUrl} cannot be reached (${describe(error)})`,
      );
    }
    await response.body?.cancel();
    if (!response.ok) {
      throw new BackendUnavailableError(
        first,
        `the upstream at ${this.baseUrl} answered HTTP ${response.status} to /v1/models`,
      );
    }
  }

  models(): ServedModel[] {
    return [...this.byId.values()].map(({ served }) => ({ ...served }));
  }

  status(): BackendStatus {
    return {
      ready: this.state === "serving",
      // The upstream's GPU is not ours to see.
      gpu: false,
      models: [...this.byId.values()].map(({ served, scheduler }) => ({
        id: served.id,
        loaded: this.state !== "closed",
        activeSequences: scheduler.active,
        queued: scheduler.queued,
      })),
    };
  }

  countPromptTokens(model: string, prompt: Prompt): Promise<number> {
    return new Promise((resolve) => {
      this.servedUpstream(model);
      resolve(promptTokensUpperBound(prompt));
    });
  }

  generate(request: GenerationRequest): Promise<Generation> {
    return new Promise((resolve) => {
      this.assertServing(request.model);
      const upstream = this.servedUpstream(request.model);
      if (!Number.isSafeInteger(request.sampling.maxTokens) || request.sampling.maxTokens < 1) {
        throw new InvalidRequestError(request.model, "maxTokens must be a whole number ≥ 1");
      }
      const admittedAt = performance.now();
      const signal = AbortSignal.any([request.signal, this.closing.signal]);
      const slot = upstream.scheduler.admit(request.queueKey, signal);
      // The prompt's size is the upstream's to count; 0 until its usage says.
      const stream = new GenerationStream(0);
      const run = (async () => {
        const granted = await slot;
        if (!granted) {
          const waited = performance.now() - admittedAt;
          stream.finish({ inputTokens: 0, outputTokens: 0, finishReason: "abort", ttftMs: waited, durationMs: waited });
          return;
        }
        try {
          await this.forward(request, upstream, stream, signal, admittedAt);
        } catch (error) {
          stream.fail(
            error instanceof InferenceError ? error : new BackendUnavailableError(request.model, describe(error)),
          );
        } finally {
          upstream.scheduler.release(granted);
        }
      })();
      this.inFlight.add(run);
      resolve(stream);
    });
  }

  async drain(graceMs: number): Promise<void> {
    if (this.state === "serving") this.state = "draining";
    await this.inFlight.drain(graceMs);
  }

  async close(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    this.closing.abort();
    await this.inFlight.settled();
  }

  /** One request to the upstream, streamed into `stream`; throws an `InferenceError` on failure. */
  private async forward(
    request: GenerationRequest,
    upstream: ServedUpstream,
    stream: GenerationStream,
    signal: AbortSignal,
    admittedAt: number,
  ): Promise<void> {
    const model = request.model;
    const controller = new AbortController();
    const stopUpstream = (): void => controller.abort();
    signal.addEventListener("abort", stopUpstream, { once: true });
    let timedOut: string | undefined;
    let timer = setTimeout(() => {
      timedOut = `no response within ${this.responseTimeoutMs} ms`;
      controller.abort();
    }, this.responseTimeoutMs);
    const restartIdleTimer = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = `the stream was silent for ${this.idleTimeoutMs} ms`;
        controller.abort();
      }, this.idleTimeoutMs);
    };

    let usage: WireUsage | undefined;
    let textChunks = 0;
    let firstTokenAt: number | undefined;
    let lastTokenAt: number | undefined;
    let finishReason: FinishReason | undefined;
    const finish = (reason: FinishReason, counts: { inputTokens: number; outputTokens: number }): void => {
      const now = performance.now();
      stream.finish({
        ...counts,
        finishReason: reason,
        ttftMs: (firstTokenAt ?? now) - admittedAt,
        durationMs: (lastTokenAt ?? now) - admittedAt,
      });
    };
    const abortedCounts = (): { inputTokens: number; outputTokens: number } => ({
      inputTokens: usage?.prompt_tokens ?? 0,
      outputTokens: usage?.completion_tokens ?? textChunks,
    });

    try {
      let response: Response;
      try {
        response = await fetch(`${this.baseUrl}${requestPath(request)}`, {
          method: "POST",
          headers: { ...this.headers(), "content-type": "application/json", accept: "text/event-stream" },
          body: JSON.stringify(requestBody(request, upstream.upstreamModel)),
          signal: controller.signal,
        });
      } catch (error) {
        if (signal.aborted) {
          finish("abort", abortedCounts());
          return;
        }
        throw new BackendUnavailableError(model, `the upstream failed: ${timedOut ?? describe(error)}`);
      }
      if (!response.ok) {
        const raw = await response.text().catch(() => "");
        const detail = errorText(parseJson(raw) ?? (raw || response.statusText));
        // The client's mistake (a prompt too long for the upstream's context, a bad schema) stays a 4xx.
        if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
          throw new InvalidRequestError(model, `the upstream refused it (HTTP ${response.status}: ${detail})`);
        }
        throw new BackendUnavailableError(model, `the upstream answered HTTP ${response.status}: ${detail}`);
      }
      restartIdleTimer();
      try {
        for await (const data of serverSentEventData(response.body as AsyncIterable<Uint8Array>)) {
          restartIdleTimer();
          if (data.trim() === "[DONE]") break;
          let chunk: WireChunk;
          try {
            chunk = JSON.parse(data) as WireChunk;
          } catch {
            throw new BackendUnavailableError(
              model,
              `the upstream sent a chunk that is not JSON: ${data.slice(0, 200)}`,
            );
          }
          // llama-server reports a failure after the headers as an `error` event.
          if (chunk.error !== undefined)
            throw new BackendUnavailableError(model, `the upstream failed: ${errorText(chunk)}`);
          const countBefore = usage?.completion_tokens ?? textChunks;
          usage = latestUsage(usage, chunk.usage ?? chunkTimingsUsage(chunk));
          finishReason ??= chunkFinishReason(chunk);
          const text = chunkText(chunk);
          if (text !== "") textChunks++;
          const count = usage?.completion_tokens ?? textChunks;
          // A role-only opening chunk or a usage-only closing one adds neither text nor tokens.
          if (text === "" && count === countBefore) continue;
          lastTokenAt = performance.now();
          firstTokenAt ??= lastTokenAt;
          stream.push({ text, outputTokens: count });
        }
      } catch (error) {
        if (signal.aborted) {
          finish("abort", abortedCounts());
          return;
        }
        if (error instanceof InferenceError) throw error;
        throw new BackendUnavailableError(model, `the upstream stream broke: ${timedOut ?? describe(error)}`);
      }
      if (signal.aborted) {
        finish("abort", abortedCounts());
        return;
      }
      if (usage?.prompt_tokens === undefined || usage.completion_tokens === undefined) {
        throw new BackendUnavailableError(
          model,
          "the upstream reported no token usage; the market bills exact counts, so this backend refuses to guess " +
            "(use a server that honours stream_options.include_usage: llama-server, vLLM, Ollama ≥ 0.5)",
        );
      }
      finish(finishReason ?? "stop", { inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", stopUpstream);
      controller.abort();
    }
  }

  private headers(): Record<string, string> {
    return this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {};
  }

  private servedUpstream(model: string): ServedUpstream {
    const upstream = this.byId.get(model);
    if (!upstream) throw new UnknownModelError(model);
    return upstream;
  }

  private assertServing(model: string): void {
    if (this.state !== "serving") {
      throw new BackendUnavailableError(
        model,
        this.state === "draining" ? "the agent is shutting down" : "the backend is closed",
      );
    }
  }
}

/** The counts after `reported`: a count the chunk leaves out stays, and output never goes backwards. */
function latestUsage(current: WireUsage | undefined, reported: WireUsage | undefined): WireUsage | undefined {
  if (!reported) return current;
  const completion = reported.completion_tokens;
  return {
    prompt_tokens: reported.prompt_tokens ?? current?.prompt_tokens,
    completion_tokens:
      completion === undefined ? current?.completion_tokens : Math.max(completion, current?.completion_tokens ?? 0),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.message}${cause}`;
}
