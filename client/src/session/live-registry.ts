/** The sessions this process has in use, one `LiveSession` each (shared by chat, receipts and close). */
import type { Hex } from "viem";
import { requireStore } from "../actions/openSession.js";
import type { MarketContext } from "../context.js";
import { SessionNotFoundError, SessionStateError } from "../errors.js";
import type { SessionRecord } from "../store/session-record.js";
import { LiveSession } from "./live-session.js";
import { type SessionRef, sessionIdOfRef } from "./market-session.js";

const live = new WeakMap<MarketContext, Map<string, Promise<LiveSession>>>();

/** The store's record of a session (by id, or a unique prefix of one). */
export async function findSessionRecord(ctx: MarketContext, ref: SessionRef): Promise<SessionRecord> {
  const store = requireStore(ctx);
  const id = sessionIdOfRef(ref);
  const record = await store.findBySessionId(id);
  if (!record || record.chainId !== ctx.chainId || record.sessionRouter !== ctx.addresses.sessionRouter) {
    throw new SessionNotFoundError(id, `in the store ${store.root} for this market`);
  }
  return record;
}

/** The live session of an open session (loaded and its key unsealed on first use). */
export function liveSession(ctx: MarketContext, ref: SessionRef): Promise<LiveSession> {
  let sessions = live.get(ctx);
  if (!sessions) {
    sessions = new Map();
    live.set(ctx, sessions);
  }
  const key = sessionIdOfRef(ref).toLowerCase();
  let session = sessions.get(key);
  if (!session) {
    session = (async () => {
      const record = await findSessionRecord(ctx, ref);
      if (record.phase !== "open") {
        throw new SessionStateError(`session ${record.sessionId ?? key} is ${record.phase}`, {
          hint: "open a new session (`market chat` opens one when needed)",
        });
      }
      return LiveSession.load(ctx, requireStore(ctx), record);
    })();
    const map = sessions;
    session.catch(() => map.delete(key));
    sessions.set(key, session);
  }
  return session;
}

/** Forgets a live session (closed, or to reload it from the store). */
export function dropLiveSession(ctx: MarketContext, sessionId: Hex): void {
  live.get(ctx)?.delete(sessionId.toLowerCase());
}
