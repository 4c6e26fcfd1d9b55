/**
 * The HTTP server, built without listening (tests call `inject()` or listen on port 0):
 * `/graphql` (graphql-yoga: queries, GraphiQL in dev, subscriptions over SSE), `/health`,
 * `/ready` (503 until the indexer has caught up) and `/metrics` (Prometheus).
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { createSchema, createYoga } from "graphql-yoga";
import type { Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import { armorPlugin, listSizePlugin } from "./limits.js";
import { createLoaders } from "./loaders.js";
import { type ApiContext, type ApiDeps, resolvers } from "./resolvers.js";
import { typeDefs } from "./schema.js";

export interface AppOptions extends ApiDeps {
  metrics: Metrics;
  logger: Logger;
  /** Whether the indexer is within `readyLagBlocks` of the head. */
  ready(): Promise<{ ready: boolean; detail: Record<string, unknown> }>;
}

interface ServerContext {
  req: FastifyRequest;
  reply: FastifyReply;
}

export function buildApp(options: AppOptions): FastifyInstance {
  const { config, metrics, logger } = options;
  const dev = config.api.dev;
  const app = Fastify({ logger: false, forceCloseConnections: true });

  const yoga = createYoga<ServerContext, ApiContext>({
    schema: createSchema<ServerContext & ApiContext>({ typeDefs, resolvers }),
    graphqlEndpoint: "/graphql",
    graphiql: dev ? { title: "Inference Market indexer" } : false,
    landingPage: false,
    // Outside dev, unexpected errors read "Unexpected error."; bad input (GraphQLError) always shows.
    maskedErrors: !dev,
    logging: {
      debug: (...args: unknown[]) => logger.debug("graphql", { detail: args.map(String).join(" ") }),
      info: (...args: unknown[]) => logger.info("graphql", { detail: args.map(String).join(" ") }),
      warn: (...args: unknown[]) => logger.warn("graphql", { detail: args.map(String).join(" ") }),
      error: (...args: unknown[]) => logger.error("graphql", { detail: args.map(String).join(" ") }),
    },
    batching: false,
    context: () => ({ deps: options, loaders: createLoaders(options.db) }),
    plugins: [armorPlugin(config.api, dev), listSizePlugin(config.api)],
  });

  app.route({
    url: yoga.graphqlEndpoint,
    method: ["GET", "POST", "OPTIONS"],
    handler: async (request, reply) => {
      const response = await yoga.handleNodeRequestAndResponse(request, reply, { req: request, reply });
      metrics.graphqlRequests.inc({ route: "/graphql", status: String(response.status) });
      // Fastify sends a fetch Response as is: status, headers and a streamed body (SSE included).
      return reply.send(response);
    },
  });

  app.get("/health", () => ({ status: "ok" }));

  app.get("/ready", async (_request, reply) => {
    const { ready, detail } = await options.ready();
    return reply.status(ready ? 200 : 503).send({ ready, ...detail });
  });

  app.get("/metrics", async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.header("content-type", metrics.registry.contentType).send(body);
  });

  return app;
}
