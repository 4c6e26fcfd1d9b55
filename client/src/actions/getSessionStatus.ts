/**
 * Where a session stands: the store's record, the chain's state slot and, while it is open, the
 * agent's account of usage and credit (best effort: an agent that is down leaves `agent` undefined).
 */
import type { Hex } from "viem";
import type { SessionStatusBody } from "../../../protocol/agent-api.js";
import { getAgentSessionStatus } from "../agent/agent-client.js";
import type { MarketContext } from "../context.js";
import { findSessionRecord, liveSession } from "../session/live-registry.js";
import type { SessionRef } from "../session/market-session.js";
import { SESSION_STATUS, readSessionState } from "../session/session-events.js";
import type { SessionRecord } from "../store/session-record.js";

export interface SessionStatus {
  sessionId: Hex | undefined;
  record: SessionRecord;
  chain: { status: "none" | "open" | "closing"; deposit: bigint; endsAt: number; closedAt: number } | undefined;
  agent: SessionStatusBody | undefined;
  /** Why the agent's view is missing, when it is. */
  agentError: string | undefined;
}

export async function getSessionStatus(ctx: MarketContext, ref: SessionRef): Promise<SessionStatus> {
  const record = await findSessionRecord(ctx, ref);
  if (!record.sessionId)
    return { sessionId: undefined, record, chain: undefined, agent: undefined, agentError: undefined };
  const state = await readSessionState(ctx, record.sessionId);
  const status =
    state.status === SESSION_STATUS.open ? "open" : state.status === SESSION_STATUS.closing ? "closing" : "none";
  let agent: SessionStatusBody | undefined;
  let agentError: string | undefined;
  if (status === "open" && record.phase === "open" && record.sessionKey.sealed !== undefined) {
    try {
      const live = await liveSession(ctx, record.sessionId);
      agent = await getAgentSessionStatus(live.agent, await live.authToken(), record.sessionId);
    } catch (error) {
      agentError = (error as Error).message;
    }
  }
  return {
    sessionId: record.sessionId,
    record,
    chain: { status, deposit: state.deposit, endsAt: state.endsAt, closedAt: state.closedAt },
    agent,
    agentError,
  };
}
