/**
 * Every error leaves the agent as OpenAI's error body `{ error: { message, type, code, param } }`
 * with the status of its code (protocol/agent-api.ts), so the `openai` SDK raises it with its code.
 * Fastify's own failures (bad JSON, oversize body, schema validation, unknown route) are mapped to
 * the same shape; nothing answers with an empty body or hangs.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  AGENT_ERROR_STATUS,
  type AgentErrorBody,
  type AgentErrorCode,
  agentErrorType,
} from "../../../protocol/index.js";
import { InferenceError } from "../inference/errors.js";
import type { AgentMetrics } from "../metrics/agent-metrics.js";
import { Refusal } from "../refusal.js";

export function errorBody(code: AgentErrorCode, message: string, param: string | null = null): AgentErrorBody {
  return { error: { message, type: agentErrorType(AGENT_ERROR_STATUS[code]), code, param } };
}

/** A refusal (or an inference error, or anything else) as the error to send. */
export function toRefusal(error: unknown): Refusal {
  if (error instanceof Refusal) return error;
  if (error instanceof InferenceError) {
    const code = Object.hasOwn(AGENT_ERROR_STATUS, error.code) ? (error.code as AgentErrorCode) : "backend_unavailable";
    const retryAfterSeconds = (error as { retryAfterSeconds?: unknown }).retryAfterSeconds;
    return new Refusal(code, error.message, {
      ...(typeof retryAfterSeconds === "number"
        ? { retryAfterSeconds: Math.max(1, Math.ceil(retryAfterSeconds)) }
        : {}),
    });
  }
  const fastifyError = error as Partial<FastifyError>;
  switch (fastifyError.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new Refusal("body_too_large", "the request body is larger than this agent accepts");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new Refusal("invalid_request", `the body is not valid JSON: ${fastifyError.message ?? ""}`.trim());
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new Refusal("invalid_request", "send the body as application/json");
    default:
      break;
  }
  if (fastifyError.validation) {
    const first = fastifyError.validation[0];
    const path = first?.instancePath ? first.instancePath.slice(1).replace(/\//g, ".") : "";
    const missing = (first?.params as { missingProperty?: string } | undefined)?.missingProperty;
    const param = [path, missing].filter(Boolean).join(".") || null;
    return new Refusal("invalid_request", `${param ?? "body"} ${first?.message ?? "is invalid"}`, {
      ...(param ? { param } : {}),
    });
  }
  if (typeof fastifyError.statusCode === "number" && fastifyError.statusCode < 500) {
    return new Refusal("invalid_request", fastifyError.message ?? "bad request");
  }
  return new Refusal("internal_error", error instanceof Error ? error.message : String(error));
}

export function sendRefusal(reply: FastifyReply, refusal: Refusal): FastifyReply {
  if (refusal.retryAfterSeconds !== undefined) reply.header("retry-after", String(refusal.retryAfterSeconds));
  return reply.code(refusal.status).send(errorBody(refusal.code, refusal.message, refusal.param));
}

/** Installs the error and not-found handlers on the root instance (children inherit them). */
export function installErrorHandling(app: FastifyInstance, metrics: AgentMetrics): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const refusal = toRefusal(error);
    metrics.reject(refusal.code);
    if (refusal.status >= 500) request.log.error({ err: error }, "request failed");
    else request.log.debug({ code: refusal.code, msg: refusal.message }, "request refused");
    return sendRefusal(reply, refusal);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    sendRefusal(reply, new Refusal("route_not_found", `no route ${request.method} ${request.url.split("?")[0] ?? ""}`)),
  );
}

/** The OpenAPI schema of the error body, for every route's 4xx/5xx responses. */
export const errorResponseSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["message", "type", "code", "param"],
      properties: {
        message: { type: "string" },
        type: { type: "string" },
        code: { type: "string", enum: Object.keys(AGENT_ERROR_STATUS) },
        param: { type: ["string", "null"] },
      },
    },
  },
} as const;

/** `response` entries for a route: its success schema plus the error body for every error status. */
export function withErrors<T extends Record<number, unknown>>(success: T) {
  return { ...success, "4xx": errorResponseSchema, "5xx": errorResponseSchema };
}
