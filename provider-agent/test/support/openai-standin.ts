/**
 * A small OpenAI-compatible server over any `InferenceBackend`, standing in for llama-server in the
 * upstream backend's tests: streaming `/v1/chat/completions` and `/v1/completions` with llama-server's
 * and vLLM's usage options. It is not the agent's HTTP layer (no sessions, no auth); it only speaks the
 * wire format an upstream speaks.
 */
import type { AddressInfo } from "node:net";

import Fastify, { type FastifyReply } from "fastify";

import type { ChatMessage, GenerationRequest, InferenceBackend, JsonSchema } from "../../src/inference/backend.js";
import { InferenceError } from "../../src/inference/errors.js";

export interface StandInOptions {
  /** Behave like an upstream that never reports usage. */
  omitUsage?: boolean;
}

export interface StandIn {
  url: string;
  /** Requests received per path. */
  received: string[];
  close(): Promise<void>;
}

interface CompletionBody {
  model: string;
  messages?: ChatMessage[];
  prompt?: string;
  stream?: boolean;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string | string[];
  stream_options?: { include_usage?: boolean; continuous_usage_stats?: boolean };
  response_format?: { type: string; json_schema?: { schema?: JsonSchema } };
}

export async function startOpenAiStandIn(backend: InferenceBackend, options: StandInOptions = {}): Promise<StandIn> {
  const app = Fastify();
  const received: string[] = [];
  app.get("/v1/models", () => ({
    object: "list",
    data: backend.models().map((model) => ({ id: model.id, object: "model" })),
  }));
  for (const path of ["/v1/chat/completions", "/v1/completions"] as const) {
    app.post<{ Body: CompletionBody }>(path, async (httpRequest, reply) => {
      received.push(path);
      const body = httpRequest.body;
      const chat = path === "/v1/chat/completions";
      if (body.stream !== true) return reply.code(400).send({ error: { message: "this stand-in only streams" } });
      const abort = new AbortController();
      const request: GenerationRequest = {
        model: body.model,
        prompt: chat ? { kind: "chat", messages: body.messages ?? [] } : { kind: "text", text: body.prompt ?? "" },
        sampling: {
          maxTokens: body.max_tokens ?? 16,
          ...(body.temperature === undefined ? {} : { temperature: body.temperature }),
          ...(body.top_p === undefined ? {} : { topP: body.top_p }),
          ...(body.seed === undefined ? {} : { seed: body.seed }),
          ...(body.stop === undefined ? {} : { stop: typeof body.stop === "string" ? [body.stop] : body.stop }),
          ...(body.response_format?.json_schema?.schema ? { jsonSchema: body.response_format.json_schema.schema } : {}),
        },
        queueKey: "stand-in",
        signal: abort.signal,
      };
      let generation;
      try {
        generation = await backend.generate(request);
      } catch (error) {
        return sendError(reply, error);
      }
      reply.hijack();
      const raw = reply.raw;
      raw.on("close", () => abort.abort());
      raw.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const send = (data: unknown): boolean => raw.write(`data: ${JSON.stringify(data)}\n\n`);
      const usage = (outputTokens: number): object => ({
        prompt_tokens: generation.inputTokens,
        completion_tokens: outputTokens,
        total_tokens: generation.inputTokens + outputTokens,
      });
      const running = !options.omitUsage && body.stream_options?.continuous_usage_stats === true;
      const choice = (text: string, finishReason: string | null): object =>
        chat
          ? { index: 0, delta: { content: text }, finish_reason: finishReason }
          : { index: 0, text, finish_reason: finishReason };
      try {
        for await (const chunk of generation) {
          send({
            object: "chunk",
            choices: [choice(chunk.text, null)],
            ...(running ? { usage: usage(chunk.outputTokens) } : {}),
          });
        }
        const result = await generation.result;
        send({ object: "chunk", choices: [choice("", result.finishReason === "length" ? "length" : "stop")] });
        if (!options.omitUsage && body.stream_options?.include_usage === true) {
          send({
            object: "chunk",
            choices: [],
            usage: {
              prompt_tokens: result.inputTokens,
              completion_tokens: result.outputTokens,
              total_tokens: result.inputTokens + result.outputTokens,
            },
          });
        }
        raw.end("data: [DONE]\n\n");
      } catch (error) {
        send({ error: { message: error instanceof Error ? error.message : String(error) } });
        raw.end();
      }
      return reply;
    });
  }
  await app.listen({ host: "127.0.0.1", port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received, close: () => app.close() };
}

function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof InferenceError)
    return reply.code(error.status).send({ error: { message: error.message, code: error.code } });
  return reply.code(500).send({ error: { message: error instanceof Error ? error.message : String(error) } });
}
