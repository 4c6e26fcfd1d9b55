/**
 * A request the agent refuses, with the code, HTTP status and field the client needs to act. Thrown
 * anywhere below the HTTP layer (sessions, approvals, receipts, credit); the HTTP layer turns it into
 * OpenAI's error body. The codes and statuses are the protocol's (`protocol/agent-api.ts`).
 */
import { AGENT_ERROR_STATUS, type AgentErrorCode } from "../../protocol/index.js";

export class Refusal extends Error {
  readonly status: number;

  constructor(
    readonly code: AgentErrorCode,
    message: string,
    readonly options: { param?: string; retryAfterSeconds?: number } = {},
  ) {
    super(message);
    this.name = "Refusal";
    this.status = AGENT_ERROR_STATUS[code];
  }

  get param(): string | null {
    return this.options.param ?? null;
  }

  get retryAfterSeconds(): number | undefined {
    return this.options.retryAfterSeconds;
  }
}
