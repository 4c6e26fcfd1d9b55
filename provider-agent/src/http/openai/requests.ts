/**
 * OpenAI's request bodies (`/v1/chat/completions`, `/v1/completions`): their JSON schemas, and their
 * translation into the backend's prompt and sampling options. Fields the agent does not implement
 * (n > 1, tools, logprobs, echo…) are refused by name rather than ignored.
 */
import type { ChatMessage, JsonSchema, Prompt, SamplingOptions } from "../../inference/backend.js";
import { Refusal } from "../../refusal.js";

const samplingProperties = {
  model: { type: "string", minLength: 1 },
  max_tokens: { type: ["integer", "null"], minimum: 1 },
  max_completion_tokens: { type: ["integer", "null"], minimum: 1 },
  temperature: { type: ["number", "null"], minimum: 0, maximum: 2 },
  top_p: { type: ["number", "null"], minimum: 0, maximum: 1 },
  seed: { type: ["integer", "null"] },
  stop: {
    anyOf: [{ type: "string" }, { type: "array", items: { type: "string" }, maxItems: 4 }, { type: "null" }],
  },
  stream: { type: ["boolean", "null"] },
  stream_options: {
    anyOf: [{ type: "object", properties: { include_usage: { type: "boolean" } } }, { type: "null" }],
  },
  n: { type: ["integer", "null"], minimum: 1 },
  user: { type: "string" },
} as const;

const messageContent = {
  anyOf: [
    { type: "string" },
    {
      type: "array",
      items: {
        type: "object",
        required: ["type"],
        properties: { type: { type: "string" }, text: { type: "string" } },
      },
    },
    { type: "null" },
  ],
} as const;

export const chatRequestSchema = {
  type: "object",
  required: ["model", "messages"],
  properties: {
    ...samplingProperties,
    messages: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        required: ["role"],
        properties: { role: { type: "string" }, content: messageContent, name: { type: "string" } },
      },
    },
    response_format: {
      type: "object",
      required: ["type"],
      properties: {
        type: { type: "string", enum: ["text", "json_object", "json_schema"] },
        json_schema: {
          type: "object",
          properties: {
            name: { type: "string" },
            schema: { type: "object" },
            strict: { type: ["boolean", "null"] },
          },
        },
      },
    },
  },
} as const;

export const completionRequestSchema = {
  type: "object",
  required: ["model", "prompt"],
  properties: {
    ...samplingProperties,
    prompt: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" }, minItems: 1, maxItems: 1 }] },
    echo: { type: ["boolean", "null"] },
    logprobs: { type: ["integer", "null"] },
    best_of: { type: ["integer", "null"] },
    suffix: { type: ["string", "null"] },
  },
} as const;

type ContentPart = { type: string; text?: string };

interface CommonBody {
  model: string;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  n?: number | null;
  tools?: unknown;
  tool_choice?: unknown;
  logprobs?: unknown;
  top_logprobs?: unknown;
}

export interface ChatRequestBody extends CommonBody {
  messages: { role: string; content?: string | ContentPart[] | null; name?: string }[];
  response_format?: { type: "text" | "json_object" | "json_schema"; json_schema?: { schema?: JsonSchema } };
}

export interface CompletionRequestBody extends CommonBody {
  prompt: string | string[];
  echo?: boolean | null;
  best_of?: number | null;
  suffix?: string | null;
}

/** What a request asks for, in the backend's terms (the output cap is decided later, by credit). */
export interface ParsedRequest {
  model: string;
  prompt: Prompt;
  sampling: Omit<SamplingOptions, "maxTokens">;
  /** `max_completion_tokens`, else `max_tokens`; undefined for the model's default. */
  maxTokens: number | undefined;
  stream: boolean;
  includeUsage: boolean;
}

function refuseUnsupported(body: CommonBody): void {
  if ((body.n ?? 1) !== 1) throw new Refusal("invalid_request", "only n = 1 is supported", { param: "n" });
  if (body.tools !== undefined && body.tools !== null) {
    throw new Refusal("invalid_request", "tools are not supported", { param: "tools" });
  }
  if (body.logprobs !== undefined && body.logprobs !== null && body.logprobs !== false) {
    throw new Refusal("invalid_request", "logprobs are not supported", { param: "logprobs" });
  }
}

function commonSampling(body: CommonBody): ParsedRequest["sampling"] {
  const sampling: ParsedRequest["sampling"] = {};
  if (typeof body.temperature === "number") sampling.temperature = body.temperature;
  if (typeof body.top_p === "number") sampling.topP = body.top_p;
  if (typeof body.seed === "number") sampling.seed = body.seed;
  if (typeof body.stop === "string") sampling.stop = [body.stop];
  else if (Array.isArray(body.stop)) sampling.stop = body.stop.filter((stop) => stop.length > 0);
  return sampling;
}

function common(body: CommonBody) {
  return {
    model: body.model,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
  };
}

function textOf(content: string | ContentPart[] | null | undefined, index: number): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  return content
    .map((part, partIndex) => {
      if (part.type !== "text" || typeof part.text !== "string") {
        throw new Refusal("invalid_request", `content parts of type ${part.type} are not supported (text only)`, {
          param: `messages[${index}].content[${partIndex}]`,
        });
      }
      return part.text;
    })
    .join("");
}

export function parseChatRequest(body: ChatRequestBody): ParsedRequest {
  refuseUnsupported(body);
  const messages: ChatMessage[] = body.messages.map((message, index) => {
    const role = message.role === "developer" ? "system" : message.role;
    if (role !== "system" && role !== "user" && role !== "assistant") {
      throw new Refusal(
        "invalid_request",
        `role ${message.role} is not supported (system, developer, user, assistant)`,
        {
          param: `messages[${index}].role`,
        },
      );
    }
    return { role, content: textOf(message.content, index) };
  });
  const sampling = commonSampling(body);
  const format = body.response_format;
  if (format?.type === "json_schema") {
    const schema = format.json_schema?.schema;
    if (!schema) {
      throw new Refusal("invalid_request", "response_format json_schema needs json_schema.schema", {
        param: "response_format.json_schema.schema",
      });
    }
    sampling.jsonSchema = schema;
  } else if (format?.type === "json_object") {
    sampling.jsonSchema = { type: "object" };
  }
  return { ...common(body), prompt: { kind: "chat", messages }, sampling };
}

export function parseCompletionRequest(body: CompletionRequestBody): ParsedRequest {
  refuseUnsupported(body);
  if (body.echo === true) throw new Refusal("invalid_request", "echo is not supported", { param: "echo" });
  if ((body.best_of ?? 1) !== 1) throw new Refusal("invalid_request", "best_of is not supported", { param: "best_of" });
  if (body.suffix) throw new Refusal("invalid_request", "suffix is not supported", { param: "suffix" });
  const text = Array.isArray(body.prompt) ? (body.prompt[0] ?? "") : body.prompt;
  return { ...common(body), prompt: { kind: "text", text }, sampling: commonSampling(body) };
}
