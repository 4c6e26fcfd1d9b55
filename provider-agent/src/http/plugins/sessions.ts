/**
 * The session routes: `GET /v1/sessions/:id` (usage, cost so far, credit left, best receipt),
 * `POST /v1/sessions/:id/receipts` (a signed receipt, journaled before the 200) and
 * `POST /v1/sessions/:id/close` (the agent's countersignature of the user's final receipt).
 * A receipt authenticates itself (signed by the session key); status needs the bearer token.
 */
import type { FastifyInstance } from "fastify";
import type { Hex } from "viem";
import {
  AgentWireFormatError,
  type CloseResponseBody,
  type ReceiptRequestBody,
  type ReceiptResponseBody,
  type SessionStatusBody,
  receiptToJson,
  signedReceiptFromJson,
  signedReceiptToJson,
} from "../../../../protocol/index.js";
import { Refusal } from "../../refusal.js";
import type { AgentRuntime } from "../../runtime.js";
import type { AgentMetrics } from "../../metrics/agent-metrics.js";
import { withErrors } from "../errors.js";
import {
  address,
  bytes32,
  pricesSchema,
  receiptSchema,
  sessionIdParams,
  sessionUsageSchema,
  signature,
  signedReceiptSchema,
  uintString,
} from "../schemas.js";

function parseSigned(body: ReceiptRequestBody) {
  try {
    return signedReceiptFromJson(body);
  } catch (error) {
    if (error instanceof AgentWireFormatError)
      throw new Refusal("invalid_receipt", error.message, { param: error.field });
    throw error;
  }
}

export function sessionRoutes(runtime: AgentRuntime, metrics: AgentMetrics) {
  return (app: FastifyInstance, _options: unknown, done: (error?: Error) => void) => {
    app.get<{ Params: { id: Hex } }>(
      "/v1/sessions/:id",
      {
        schema: {
          tags: ["sessions"],
          summary: "A session's usage, cost so far, credit left and best receipt",
          security: [{ sessionAuth: [] }],
          params: sessionIdParams,
          response: withErrors({
            200: {
              type: "object",
              properties: {
                sessionId: bytes32,
                status: { type: "string", enum: ["open", "closing", "settled", "countersigned"] },
                user: address,
                sessionKey: address,
                provider: address,
                modelId: bytes32,
                prices: pricesSchema,
                deposit: uintString,
                openedAt: { type: "integer" },
                endsAt: { type: "integer" },
                usage: sessionUsageSchema,
                bestReceipt: { anyOf: [signedReceiptSchema, { type: "null" }] },
              },
            },
          }),
        },
      },
      async (request): Promise<SessionStatusBody> => {
        const { sessions } = runtime.requireServing();
        const account = await sessions.authenticate(request.headers.authorization, false);
        if (account.id.toLowerCase() !== request.params.id.toLowerCase()) {
          throw new Refusal("invalid_request", "the token is for another session than the path", { param: "id" });
        }
        return sessions.status(account);
      },
    );

    app.post<{ Params: { id: Hex }; Body: ReceiptRequestBody }>(
      "/v1/sessions/:id/receipts",
      {
        schema: {
          tags: ["sessions"],
          summary: "Hand over a signed UsageReceipt (journaled and fsync'd before the 200)",
          params: sessionIdParams,
          body: signedReceiptSchema,
          response: withErrors({
            200: {
              type: "object",
              properties: { sessionId: bytes32, bestReceipt: signedReceiptSchema, usage: sessionUsageSchema },
            },
          }),
        },
      },
      async (request): Promise<ReceiptResponseBody> => {
        const { sessions } = runtime.requireServing();
        const signed = parseSigned(request.body);
        const account = await sessions.submitReceipt(request.params.id, signed);
        metrics.receipts.inc();
        return {
          sessionId: account.id,
          bestReceipt: signedReceiptToJson(account.local.best ?? signed),
          usage: sessions.usage(account),
        };
      },
    );

    app.post<{ Params: { id: Hex }; Body: ReceiptRequestBody }>(
      "/v1/sessions/:id/close",
      {
        schema: {
          tags: ["sessions"],
          summary:
            "The agent's countersignature of the user's final receipt, so closeSession settles at once; " +
            "the session is served no more",
          params: sessionIdParams,
          body: signedReceiptSchema,
          response: withErrors({
            200: {
              type: "object",
              properties: {
                sessionId: bytes32,
                receipt: receiptSchema,
                userSignature: signature,
                providerSignature: signature,
                signer: address,
              },
            },
          }),
        },
      },
      async (request): Promise<CloseResponseBody> => {
        const serving = runtime.requireServing();
        const signed = parseSigned(request.body);
        const { account, providerSignature } = await serving.sessions.countersign(request.params.id, signed);
        return {
          sessionId: account.id,
          receipt: receiptToJson(signed.receipt),
          userSignature: signed.signature,
          providerSignature,
          signer: serving.sessions.signerAddress,
        };
      },
    );
    done();
  };
}
