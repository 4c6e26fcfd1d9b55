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

/** Runs a chain read for a request: a failure to reach the chain becomes `chain_unavailable`. */
export async function readingChain<T>(what: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof Refusal) throw error;
    const detail = error instanceof Error ? (error.message.split("\n")[0] ?? error.name) : String(error);
    throw new Refusal("chain_unavailable", `cannot reach the chain to ${what}: ${detail}`, { retryAfterSeconds: 5 });
  }
}
