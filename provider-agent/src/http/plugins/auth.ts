/**
 * Auth of inference requests: the bearer token is a `SessionAuth` signed by the session's key; the
 * session must be open on chain, this provider's, unexpired (credit and deposit are checked at
 * admission). The per-session rate limit applies once the session is known, and a receipt riding
 * in the receipt header is checked and journaled before the request is served.
 */
import type { FastifyRequest } from "fastify";
import { AgentWireFormatError, RECEIPT_HEADER, parseReceiptHeader } from "../../../../protocol/index.js";
import type { AgentMetrics } from "../../metrics/agent-metrics.js";
import { Refusal } from "../../refusal.js";
import type { Serving } from "../../runtime.js";
import type { SessionAccount } from "../../sessions/session-account.js";
import type { SessionRateLimiter } from "./rate-limit.js";

export type SessionAuthenticator = (request: FastifyRequest, serving: Serving) => Promise<SessionAccount>;

export function sessionAuthenticator(limitSession: SessionRateLimiter, metrics: AgentMetrics): SessionAuthenticator {
  return async (request, serving) => {
    const account = await serving.sessions.authenticate(request.headers.authorization);
    await limitSession(request, account.id);
    const header = request.headers[RECEIPT_HEADER];
    if (header !== undefined) {
      const value = Array.isArray(header) ? header.at(-1)! : header;
      let signed;
      try {
        signed = parseReceiptHeader(value);
      } catch (error) {
        if (error instanceof AgentWireFormatError) {
          throw new Refusal("invalid_receipt", error.message, { param: RECEIPT_HEADER });
        }
        throw error;
      }
      if (signed.receipt.sessionId.toLowerCase() !== account.id.toLowerCase()) {
        throw new Refusal("invalid_receipt", `the receipt header is for session ${signed.receipt.sessionId}`, {
          param: RECEIPT_HEADER,
        });
      }
      // A receipt the agent already holds (a client resending its latest) is not an error.
      const best = account.local.last;
      if (
        !best ||
        best.receipt.seq !== signed.receipt.seq ||
        best.signature.toLowerCase() !== signed.signature.toLowerCase()
      ) {
        await serving.sessions.submitReceipt(account.id, signed, RECEIPT_HEADER);
        metrics.receipts.inc();
      }
    }
    return account;
  };
}
