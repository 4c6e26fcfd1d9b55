/**
 * Builds the agent's HTTP server without listening (tests call `inject()` or listen on port 0):
 * error handling and rate limits first, the OpenAPI document, then one plugin per concern.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "../log/logger.js";
import type { AgentMetrics } from "../metrics/agent-metrics.js";
import type { AgentRuntime } from "../runtime.js";
import { installErrorHandling } from "./errors.js";
import { approvalRoutes } from "./plugins/approvals.js";
import { sessionAuthenticator } from "./plugins/auth.js";
import { registerDocs } from "./plugins/docs.js";
import { healthRoutes } from "./plugins/health.js";
import { inferenceRoutes } from "./plugins/inference.js";
import { metricsRoutes } from "./plugins/metrics.js";
import { registerRateLimits } from "./plugins/rate-limit.js";
import { sessionRoutes } from "./plugins/sessions.js";

export interface AppOptions {
  runtime: AgentRuntime;
  logger: Logger;
  metrics: AgentMetrics;
  bodyLimitBytes: number;
  rateLimitPerIp: number;
  rateLimitPerSession: number;
  docs: boolean;
  version: string;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // The agent's Logger implements the part of pino that fastify calls (levels, child, serializers).
    loggerInstance: options.logger.child({ component: "http" }) as unknown as FastifyBaseLogger,
    disableRequestLogging: true,
    bodyLimit: options.bodyLimitBytes,
    // Streams may run long; the agent's own shutdown ends them within its grace period.
    requestTimeout: 0,
    return503OnClosing: true,
    forceCloseConnections: "idle",
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });
  installErrorHandling(app, options.metrics);
  app.addHook("onResponse", async (request, reply) => {
    request.log.debug(
      {
        method: request.method,
        url: request.url.split("?")[0],
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      "request",
    );
  });
  const limitSession = await registerRateLimits(app, {
    perIp: options.rateLimitPerIp,
    perSession: options.rateLimitPerSession,
  });
  if (options.docs) await registerDocs(app, options.version);

  const { runtime, metrics } = options;
  await app.register(healthRoutes(runtime));
  await app.register(metricsRoutes(metrics));
  await app.register(approvalRoutes(runtime));
  await app.register(sessionRoutes(runtime, metrics));
  await app.register(
    inferenceRoutes({
      runtime,
      metrics,
      authenticate: sessionAuthenticator(limitSession, metrics),
      logger: options.logger.child({ component: "inference" }),
    }),
  );
  return app;
}
