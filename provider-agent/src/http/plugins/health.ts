/**
 * `GET /health`: 200 once the agent serves, 503 while it starts (with the step it is at), drains or
 * failed. Reports the models (loaded, sequences busy, queue, VRAM), the chain follower and sessions.
 */
import type { FastifyInstance } from "fastify";
import type { AgentRuntime } from "../../runtime.js";

const healthSchema = {
  type: "object",
  required: ["status", "step", "models", "queue"],
  properties: {
    status: { type: "string", enum: ["starting", "ready", "draining", "stopped", "failed"] },
    step: { type: "string" },
    gpu: { type: ["string", "boolean"] },
    vramBytes: { type: "number" },
    models: {
      type: "array",
      items: {
        type: "object",
        properties: {
          id: { type: "string" },
          name: { type: "string" },
          baseModelId: { type: "string" },
          loaded: { type: "boolean" },
          activeSequences: { type: "integer" },
          queued: { type: "integer" },
          vramBytes: { type: "number" },
        },
      },
    },
    queue: {
      type: "object",
      properties: { queued: { type: "integer" }, active: { type: "integer" } },
    },
    sessions: { type: "object", properties: { unsettled: { type: "integer" } } },
    chain: {
      type: "object",
      properties: {
        connected: { type: "boolean" },
        headBlock: { type: ["string", "null"] },
        processedBlock: { type: ["string", "null"] },
        lastError: { type: ["string", "null"] },
      },
    },
  },
} as const;

export function healthRoutes(runtime: AgentRuntime) {
  return (app: FastifyInstance, _options: unknown, done: (error?: Error) => void) => {
    app.get(
      "/health",
      {
        schema: {
          tags: ["operations"],
          summary: "Readiness, models, VRAM and queue",
          response: { 200: healthSchema, 503: healthSchema },
        },
      },
      (_request, reply) => {
        const serving = runtime.serving;
        const status = serving?.backend.status();
        const names = new Map(serving?.catalog.map((entry) => [entry.id.toLowerCase(), entry]) ?? []);
        const models =
          status?.models.map((model) => {
            const entry = names.get(model.id.toLowerCase());
            return {
              ...model,
              ...(entry ? { name: entry.name } : {}),
              ...(entry?.baseModelId ? { baseModelId: entry.baseModelId } : {}),
            };
          }) ?? [];
        const ready = runtime.phase === "ready" && (status?.ready ?? false);
        const vram = models.reduce((sum, model) => sum + (model.vramBytes ?? 0), 0);
        return reply.code(ready ? 200 : 503).send({
          status: runtime.phase,
          step: runtime.step,
          gpu: status?.gpu ?? false,
          vramBytes: vram,
          models,
          queue: {
            queued: models.reduce((sum, model) => sum + model.queued, 0),
            active: models.reduce((sum, model) => sum + model.activeSequences, 0),
          },
          sessions: { unsettled: serving?.sessions.book.unsettled().length ?? 0 },
          ...(serving ? { chain: serving.chainStatus() } : {}),
        });
      },
    );
    done();
  };
}
