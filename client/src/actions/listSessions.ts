/** The wallet's sessions on this market, from the local store (after settling interrupted opens). */
import type { MarketContext } from "../context.js";
import type { SessionRecord } from "../store/session-record.js";
import { requireStore } from "./openSession.js";
import { resumeOpens, syncSessions } from "./recoverSessions.js";

export async function listSessions(ctx: MarketContext, options: { sync?: boolean } = {}): Promise<SessionRecord[]> {
  if (options.sync !== false) {
    await resumeOpens(ctx);
    await syncSessions(ctx);
  }
  const records = await requireStore(ctx).list();
  return records.filter(
    (record) => record.chainId === ctx.chainId && record.sessionRouter === ctx.addresses.sessionRouter,
  );
}
