/** `POST /v1/sessions/approvals`: a signed `SessionApproval` for one user on one of this provider's bids. */
import type { FastifyInstance } from "fastify";
import type { ApprovalRequestBody } from "../../../../protocol/index.js";
import type { AgentRuntime } from "../../runtime.js";
import { withErrors } from "../errors.js";
import { address, bytes32, pricesSchema, signature, uintString } from "../schemas.js";

const approvalSchema = {
  type: "object",
  properties: {
    bidId: bytes32,
    user: address,
    maxDeposit: uintString,
    maxDuration: uintString,
    deadline: uintString,
    nonce: uintString,
    maxRoyaltyBps: { type: "integer" },
    maxFeeBps: { type: "integer" },
  },
} as const;

export function approvalRoutes(runtime: AgentRuntime) {
  return (app: FastifyInstance, _options: unknown, done: (error?: Error) => void) => {
    app.post<{ Body: ApprovalRequestBody }>(
      "/v1/sessions/approvals",
      {
        schema: {
          tags: ["sessions"],
          summary: "Approve a session: the signed SessionApproval to pass to openSession",
          body: {
            type: "object",
            required: ["bidId", "user", "deposit", "maxDuration"],
            additionalProperties: false,
            properties: {
              bidId: bytes32,
              user: address,
              deposit: uintString,
              maxDuration: { type: "integer", minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
            },
          },
          response: withErrors({
            200: {
              type: "object",
              properties: {
                approval: approvalSchema,
                signature,
                signer: address,
                provider: address,
                modelId: bytes32,
                prices: pricesSchema,
                chainId: { type: "integer" },
                sessionRouter: address,
              },
            },
          }),
        },
      },
      async (request) => {
        const serving = runtime.requireServing();
        return serving.approvals.approve({
          bidId: request.body.bidId,
          user: request.body.user,
          deposit: BigInt(request.body.deposit),
          maxDuration: request.body.maxDuration,
        });
      },
    );
    done();
  };
}
