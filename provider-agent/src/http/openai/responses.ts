/**
 * OpenAI's response objects, exactly as its API sends them: `chat.completion` and
 * `chat.completion.chunk`, `text_completion` (whole and streamed), the usage object, and the SSE
 * framing (`data: <json>\n\n`, ending with `data: [DONE]`).
 */
import { randomBytes } from "node:crypto";
import type { SessionUsageExtension } from "../../../../protocol/index.js";
import type { FinishReason } from "../../inference/backend.js";

export type Endpoint = "chat" | "text";
export type OpenAiFinishReason = "stop" | "length";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usageOf(inputTokens: number, outputTokens: number): Usage {
  return { prompt_tokens: inputTokens, completion_tokens: outputTokens, total_tokens: inputTokens + outputTokens };
}

/** The backend's reason as OpenAI's: an abort (credit ran out mid-stream) ends like a length limit. */
export function finishReasonOf(reason: FinishReason): OpenAiFinishReason {
  return reason === "stop" ? "stop" : "length";
}

/** One response's id, creation time and model, shared by all its chunks. */
export class ResponseFrame {
  readonly id: string;
  readonly created = Math.floor(Date.now() / 1000);

  constructor(
    readonly endpoint: Endpoint,
    readonly model: string,
  ) {
    this.id = `${endpoint === "chat" ? "chatcmpl" : "cmpl"}-${randomBytes(12).toString("hex")}`;
  }

  /** The whole (non-streamed) response. */
  complete(text: string, finishReason: OpenAiFinishReason, usage: Usage, extension: SessionUsageExtension) {
    const head = { id: this.id, created: this.created, model: this.model };
    if (this.endpoint === "chat") {
      return {
        ...head,
        object: "chat.completion" as const,
        choices: [
          {
            index: 0,
            message: { role: "assistant" as const, content: text, refusal: null },
            logprobs: null,
            finish_reason: finishReason,
          },
        ],
        usage,
        system_fingerprint: null,
        ...extension,
      };
    }
    return {
      ...head,
      object: "text_completion" as const,
      choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }],
      usage,
      system_fingerprint: null,
      ...extension,
    };
  }

  /**
   * A streamed chunk with one choice. For chat, `first` carries the assistant role; `finishReason`
   * marks the last content chunk. `withUsageField`: `usage: null` on every chunk (include_usage).
   */
  chunk(
    text: string,
    options: { first?: boolean; finishReason?: OpenAiFinishReason; withUsageField: boolean },
  ): Record<string, unknown> {
    const head = { id: this.id, created: this.created, model: this.model, system_fingerprint: null };
    const finish = options.finishReason ?? null;
    const usageField = options.withUsageField ? { usage: null } : {};
    if (this.endpoint === "chat") {
      const delta = options.finishReason
        ? {}
        : options.first
          ? { role: "assistant", content: text }
          : { content: text };
      return {
        ...head,
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        ...usageField,
      };
    }
    return {
      ...head,
      object: "text_completion",
      choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
      ...usageField,
    };
  }

  /** The last chunk with `stream_options.include_usage`: no choices, the request's usage. */
  usageChunk(usage: Usage, extension: SessionUsageExtension): Record<string, unknown> {
    return {
      id: this.id,
      object: this.endpoint === "chat" ? "chat.completion.chunk" : "text_completion",
      created: this.created,
      model: this.model,
      system_fingerprint: null,
      choices: [],
      usage,
      ...extension,
    };
  }
}

export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

export const SSE_DONE = "data: [DONE]\n\n";
