/** `GET /metrics`: the agent's Prometheus metrics (text exposition format). */
import type { FastifyInstance } from "fastify";
import type { AgentMetrics } from "../../metrics/agent-metrics.js";

export function metricsRoutes(metrics: AgentMetrics) {
  return (app: FastifyInstance, _options: unknown, done: (error?: Error) => void) => {
    app.get(
      "/metrics",
      {
        schema: {
          tags: ["operations"],
          summary: "Prometheus metrics",
          response: { 200: { type: "string", description: "Prometheus text format" } },
        },
      },
      async (_request, reply) => {
        const text = await metrics.registry.metrics();
        return reply.type(metrics.registry.contentType).send(text);
      },
    );
    done();
  };
}
