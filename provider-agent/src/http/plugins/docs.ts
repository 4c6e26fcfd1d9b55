/**
 * The OpenAPI document (built by @fastify/swagger from every route's JSON schema) at
 * `/docs/json`, and its UI at `/docs`. Registered before the routes so it sees them all.
 */
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { RECEIPT_HEADER } from "../../../../protocol/index.js";

export async function registerDocs(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Inference Market provider agent",
        version,
        description:
          "OpenAI-compatible inference for the sessions of this provider, plus the session routes " +
          "(approvals, receipts, close). Authenticate inference with `Authorization: Bearer " +
          "<sessionId>.<expiresAt>.<signature>`, a SessionAuth signed by the session key; a signed " +
          `receipt may ride on any inference request in the \`${RECEIPT_HEADER}\` header. Errors are ` +
          "OpenAI's `{ error: { message, type, code, param } }`.",
      },
      components: {
        securitySchemes: {
          sessionAuth: {
            type: "http",
            scheme: "bearer",
            description: "<sessionId>.<expiresAt>.<EIP-712 SessionAuth signature by the session key>",
          },
        },
      },
      tags: [
        { name: "inference", description: "OpenAI-compatible routes" },
        { name: "sessions", description: "Approvals, receipts, close, status" },
        { name: "operations", description: "Health and metrics" },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
}
