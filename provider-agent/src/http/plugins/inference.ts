/**
 * The OpenAI-compatible routes: `POST /v1/chat/completions`, `POST /v1/completions` (whole or SSE
 * streamed) and `GET /v1/models`. Every inference request is authenticated by its session (auth.ts),
 * admitted under the credit rule with `max_tokens` capped by what the session can pay, queued fairly
 * by session, stopped when the client goes away or the deposit would be passed, and its usage
 * journaled before the response's last bytes.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { SessionUsageExtension } from "../../../../protocol/index.js";
import type { CatalogEntry } from "../../catalog/model-catalog.js";
import type { Generation, GenerationResult, ServedModel } from "../../inference/backend.js";
import type { Logger } from "../../log/logger.js";
import type { AgentMetrics } from "../../metrics/agent-metrics.js";
import { Refusal } from "../../refusal.js";
import type { AgentRuntime, Serving } from "../../runtime.js";
import type { RequestMeter } from "../../sessions/request-meter.js";
import type { SessionAccount } from "../../sessions/session-account.js";
import { errorBody, toRefusal, withErrors } from "../errors.js";
import {
  type ChatRequestBody,
  type CompletionRequestBody,
  type ParsedRequest,
  chatRequestSchema,
  completionRequestSchema,
  parseChatRequest,
  parseCompletionRequest,
} from "../openai/requests.js";
import { type Endpoint, ResponseFrame, SSE_DONE, finishReasonOf, sseData, usageOf } from "../openai/responses.js";
import type { SessionAuthenticator } from "./auth.js";

export interface InferenceRouteOptions {
  runtime: AgentRuntime;
  metrics: AgentMetrics;
  authenticate: SessionAuthenticator;
  logger: Logger;
}

const CLIENT_GONE = "client disconnected";
const DEPOSIT_EXHAUSTED = "the session's deposit is exhausted";

function servedModel(serving: Serving, model: string): { served: ServedModel; entry: CatalogEntry } {
  const id = model.toLowerCase();
  const served = serving.backend.models().find((item) => item.id.toLowerCase() === id);
  const entry = serving.catalog.find((item) => item.id.toLowerCase() === id);
  if (!served || !entry) {
    throw new Refusal("model_not_found", `model ${model} is not served here (GET /v1/models lists them)`, {
      param: "model",
    });
  }
  return { served, entry };
}

function sessionUsage(account: SessionAccount): SessionUsageExtension {
  const served = account.servedNow();
  return {
    session_usage: {
      session_id: account.id,
      input_tokens: served.inputTokens.toString(),
      output_tokens: served.outputTokens.toString(),
      requests: served.requests,
    },
  };
}

/** One admitted request: its meter, its abort controller and how it ended. */
class Exchange {
  readonly controller = new AbortController();
  private journaled = false;
  private readonly detach: () => void;

  constructor(
    private readonly options: InferenceRouteOptions,
    private readonly serving: Serving,
    readonly meter: RequestMeter,
    readonly entry: CatalogEntry,
    reply: FastifyReply,
  ) {
    const { runtime } = options;
    const onShutdown = () => this.controller.abort("the agent is shutting down");
    const onClose = () => {
      if (!reply.raw.writableFinished) this.controller.abort(CLIENT_GONE);
    };
    runtime.shutdown.signal.addEventListener("abort", onShutdown);
    reply.raw.on("close", onClose);
    const untrack = serving.sessions.track(meter.account, this.controller);
    this.detach = () => {
      untrack();
      reply.raw.off("close", onClose);
      runtime.shutdown.signal.removeEventListener("abort", onShutdown);
    };
  }

  get clientGone(): boolean {
    return this.controller.signal.aborted && this.controller.signal.reason === CLIENT_GONE;
  }

  /** Counts tokens so far; false (and the generation is stopped) when the deposit would be passed. */
  progress(outputTokens: number): boolean {
    if (this.meter.progress(outputTokens, this.options.runtime.now())) return true;
    this.controller.abort(DEPOSIT_EXHAUSTED);
    return false;
  }

  /** Moves the tokens into the session's served usage and journals it (once). */
  async journal(): Promise<void> {
    if (this.journaled) return;
    this.journaled = true;
    try {
      await this.serving.sessions.finish(this.meter);
    } catch (error) {
      this.options.logger.error({ err: error, sessionId: this.meter.account.id }, "cannot journal served usage");
      throw error;
    }
  }

  record(result: GenerationResult | undefined, endpoint: Endpoint): void {
    const { metrics } = this.options;
    const model = this.entry.name;
    const reason = !result ? "error" : this.clientGone ? "client_disconnected" : finishReasonOf(result.finishReason);
    metrics.requests.inc({ model, endpoint, finish_reason: reason });
    if (!result) return;
    metrics.tokens.inc({ model, kind: "input" }, result.inputTokens);
    metrics.tokens.inc({ model, kind: "output" }, result.outputTokens);
    if (result.outputTokens > 0) {
      metrics.ttft.observe({ model }, result.ttftMs / 1000);
      const generating = (result.durationMs - result.ttftMs) / 1000;
      if (generating > 0 && result.outputTokens > 1) {
        metrics.tokensPerSecond.observe({ model }, (result.outputTokens - 1) / generating);
      }
    }
  }

  async close(): Promise<void> {
    this.detach();
    await this.journal().catch(() => undefined);
  }
}

class InferenceRoute {
  constructor(
    private readonly options: InferenceRouteOptions,
    private readonly endpoint: Endpoint,
  ) {}

  async handle(request: FastifyRequest, reply: FastifyReply, parsed: ParsedRequest): Promise<unknown> {
    const serving = this.options.runtime.requireServing();
    const account = await this.options.authenticate(request, serving);
    const { served, entry } = servedModel(serving, parsed.model);
    if (entry.id.toLowerCase() !== account.terms.modelId.toLowerCase()) {
      throw new Refusal(
        "model_not_in_session",
        `session ${account.id} is for model ${account.terms.modelId}, not ${parsed.model}`,
        { param: "model" },
      );
    }
    if (parsed.maxTokens !== undefined && parsed.maxTokens > entry.maxTokens) {
      throw new Refusal("max_tokens_too_large", `max_tokens is at most ${entry.maxTokens} for this model`, {
        param: "max_tokens",
      });
    }
    const promptTokens = await serving.backend.countPromptTokens(served.id, parsed.prompt);
    if (promptTokens > served.maxPromptTokens) {
      throw new Refusal(
        "prompt_too_long",
        `the prompt takes ${promptTokens} tokens; this model accepts at most ${served.maxPromptTokens}`,
        { param: this.endpoint === "chat" ? "messages" : "prompt" },
      );
    }
    const room = Math.max(1, served.contextSize - promptTokens);
    const meter = serving.sessions.admit(account, promptTokens, Math.min(parsed.maxTokens ?? entry.maxTokens, room));
    const exchange = new Exchange(this.options, serving, meter, entry, reply);
    let result: GenerationResult | undefined;
    try {
      let generation: Generation;
      try {
        generation = await serving.backend.generate({
          model: served.id,
          prompt: parsed.prompt,
          sampling: { ...parsed.sampling, maxTokens: meter.maxTokens },
          queueKey: account.id,
          signal: exchange.controller.signal,
        });
      } catch (error) {
        meter.finish();
        throw error;
      }
      meter.admit(generation.inputTokens);
      const frame = new ResponseFrame(this.endpoint, parsed.model);
      if (parsed.stream) {
        // The reply is hijacked (written as a stream): fastify ignores what the handler returns.
        result = await this.stream(reply, exchange, generation, frame, parsed.includeUsage);
        return undefined;
      }
      const whole = await this.whole(exchange, generation, frame);
      result = whole.result;
      return whole.body;
    } finally {
      await exchange.close();
      exchange.record(result, this.endpoint);
    }
  }

  private async whole(exchange: Exchange, generation: Generation, frame: ResponseFrame) {
    let text = "";
    for await (const chunk of generation) {
      text += chunk.text;
      exchange.progress(chunk.outputTokens);
    }
    const result = await generation.result;
    exchange.meter.progress(result.outputTokens, this.options.runtime.now());
    await exchange.journal();
    const body = frame.complete(
      text,
      finishReasonOf(result.finishReason),
      usageOf(generation.inputTokens, result.outputTokens),
      sessionUsage(exchange.meter.account),
    );
    return { result, body };
  }

  private async stream(
    reply: FastifyReply,
    exchange: Exchange,
    generation: Generation,
    frame: ResponseFrame,
    includeUsage: boolean,
  ): Promise<GenerationResult | undefined> {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    const write = (text: string) => {
      if (!raw.destroyed && !raw.writableEnded) raw.write(text);
    };
    const withUsageField = includeUsage;
    if (this.endpoint === "chat") write(sseData(frame.chunk("", { first: true, withUsageField })));
    try {
      for await (const chunk of generation) {
        const keepGoing = exchange.progress(chunk.outputTokens);
        if (chunk.text !== "") write(sseData(frame.chunk(chunk.text, { withUsageField })));
        if (!keepGoing) break;
      }
      const result = await generation.result;
      exchange.meter.progress(result.outputTokens, this.options.runtime.now());
      await exchange.journal();
      write(sseData(frame.chunk("", { finishReason: finishReasonOf(result.finishReason), withUsageField })));
      if (includeUsage) {
        const usage = usageOf(generation.inputTokens, result.outputTokens);
        write(sseData(frame.usageChunk(usage, sessionUsage(exchange.meter.account))));
      }
      write(SSE_DONE);
      return result;
    } catch (error) {
      // Headers are sent: the error goes in the stream, where the openai SDK raises it.
      const refusal = toRefusal(error);
      this.options.logger.error({ err: error, sessionId: exchange.meter.account.id }, "stream failed");
      this.options.metrics.reject(refusal.code);
      write(sseData(errorBody(refusal.code, refusal.message, refusal.param)));
      write(SSE_DONE);
      return undefined;
    } finally {
      raw.end();
    }
  }
}

const inferenceResponse = withErrors({
  200: {
    description: "An OpenAI completion object, or (stream: true) an SSE stream of chunks ending in data: [DONE]",
    type: "object",
    additionalProperties: true,
  },
});

const modelsResponse = withErrors({
  200: {
    type: "object",
    properties: {
      object: { type: "string" },
      data: {
        type: "array",
        items: {
          type: "object",
          properties: {
            id: { type: "string" },
            object: { type: "string" },
            created: { type: "integer" },
            owned_by: { type: "string" },
            name: { type: "string" },
            base_model_id: { type: ["string", "null"] },
            context_length: { type: "integer" },
            max_tokens: { type: "integer" },
          },
        },
      },
    },
  },
});

export function inferenceRoutes(options: InferenceRouteOptions) {
  const chat = new InferenceRoute(options, "chat");
  const text = new InferenceRoute(options, "text");
  return (app: FastifyInstance, _options: unknown, done: (error?: Error) => void) => {
    app.post<{ Body: ChatRequestBody }>(
      "/v1/chat/completions",
      {
        schema: {
          tags: ["inference"],
          summary: "OpenAI chat completions (whole or streamed); response_format json_schema constrains the output",
          security: [{ sessionAuth: [] }],
          body: chatRequestSchema,
          response: inferenceResponse,
        },
      },
      async (request, reply) => chat.handle(request, reply, parseChatRequest(request.body)),
    );

    app.post<{ Body: CompletionRequestBody }>(
      "/v1/completions",
      {
        schema: {
          tags: ["inference"],
          summary: "OpenAI text completions (whole or streamed)",
          security: [{ sessionAuth: [] }],
          body: completionRequestSchema,
          response: inferenceResponse,
        },
      },
      async (request, reply) => text.handle(request, reply, parseCompletionRequest(request.body)),
    );

    app.get(
      "/v1/models",
      {
        schema: {
          tags: ["inference"],
          summary: "The models served here (ids are on-chain model ids)",
          response: modelsResponse,
        },
      },
      () => {
        const serving = options.runtime.requireServing();
        const served = new Map(serving.backend.models().map((model) => [model.id.toLowerCase(), model]));
        return {
          object: "list",
          data: serving.catalog
            .filter((entry) => served.has(entry.id.toLowerCase()))
            .map((entry) => ({
              id: entry.id,
              object: "model",
              created: 0,
              owned_by: options.runtime.provider,
              name: entry.name,
              base_model_id: entry.baseModelId ?? null,
              context_length: served.get(entry.id.toLowerCase())?.contextSize ?? 0,
              max_tokens: entry.maxTokens,
            })),
        };
      },
    );
    done();
  };
}
