/**
 * The parts of OpenAI's streaming wire format the upstream backend sends and reads (as served by
 * llama-server, vLLM and Ollama), and the request body it builds from a `GenerationRequest`.
 */
import type { FinishReason, GenerationRequest } from "../backend.js";

export interface WireUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

/** A `chat.completion.chunk` or a `text_completion` chunk. */
export interface WireChunk {
  choices?: { delta?: { content?: string | null }; text?: string; finish_reason?: string | null }[];
  usage?: WireUsage | null;
}

export interface WireError {
  error?: { message?: string } | string;
  message?: string;
}

export function requestPath(request: GenerationRequest): string {
  return request.prompt.kind === "chat" ? "/v1/chat/completions" : "/v1/completions";
}

export function requestBody(request: GenerationRequest, upstreamModel: string): Record<string, unknown> {
  const { sampling, prompt } = request;
  const body: Record<string, unknown> = {
    model: upstreamModel,
    stream: true,
    // include_usage: the last chunk carries the counts. continuous_usage_stats (vLLM) and
    // timings_per_token (llama-server) add running counts to every chunk, which an aborted stream needs.
    stream_options: { include_usage: true, continuous_usage_stats: true },
    timings_per_token: true,
    max_tokens: sampling.maxTokens,
  };
  if (prompt.kind === "chat") body.messages = prompt.messages;
  else body.prompt = prompt.text;
  if (sampling.temperature !== undefined) body.temperature = sampling.temperature;
  if (sampling.topP !== undefined) body.top_p = sampling.topP;
  if (sampling.seed !== undefined) body.seed = sampling.seed;
  if (sampling.stop && sampling.stop.length > 0) body.stop = sampling.stop;
  if (sampling.jsonSchema) {
    body.response_format = {
      type: "json_schema",
      json_schema: { name: "response", schema: sampling.jsonSchema, strict: true },
    };
  }
  return body;
}

/** The text a chunk adds, for either endpoint. */
export function chunkText(chunk: WireChunk): string {
  const choice = chunk.choices?.[0];
  return choice?.delta?.content ?? choice?.text ?? "";
}

export function chunkFinishReason(chunk: WireChunk): FinishReason | undefined {
  const reason = chunk.choices?.[0]?.finish_reason;
  if (reason === null || reason === undefined) return undefined;
  // "content_filter", "tool_calls" and the like all mean the model's answer ended.
  return reason === "length" ? "length" : "stop";
}

/** Running counts from llama-server's `timings` (with `timings_per_token`): prompt = evaluated + cached. */
export function chunkTimingsUsage(chunk: unknown): WireUsage | undefined {
  const timings = (chunk as { timings?: Record<string, unknown> } | null)?.timings;
  if (!timings || typeof timings.predicted_n !== "number" || typeof timings.prompt_n !== "number") return undefined;
  const cached = typeof timings.cache_n === "number" ? timings.cache_n : 0;
  return { prompt_tokens: timings.prompt_n + cached, completion_tokens: timings.predicted_n };
}

export function errorText(body: unknown): string {
  const wire = body as WireError | null;
  if (typeof wire?.error === "string") return wire.error;
  return wire?.error?.message ?? wire?.message ?? JSON.stringify(body);
}
