/**
 * The write side of ranking: each settled session adds to its provider's daily aggregates for the
 * model, so a ranking sums a few rows per provider instead of reading every session. The rules for
 * which sessions count are in docs/ranking.md ("Which sessions count").
 */
import type { ChangeSet } from "../store/changeSet.js";
import type { SessionRow } from "../store/tables.js";

export const SECONDS_PER_DAY = 86_400;

export const dayOf = (timestamp: number) => Math.floor(timestamp / SECONDS_PER_DAY);

/** The session's weight: what it paid, in token base units (as a float: only ratios matter). */
export const weightOf = (session: Pick<SessionRow, "cost">) => Number(session.cost ?? "0");

/**
 * A session counts when it paid something and the consumer is not the provider itself (nor its
 * operator key): self-dealing is excluded outright, other wash trading costs fee and royalty.
 */
export function countsForRanking(session: SessionRow, operator: string | null): boolean {
  if (session.status !== "settled" || weightOf(session) <= 0) return false;
  return session.user_address !== session.provider && session.user_address !== operator;
}

/** Adds a settled session to the aggregates (a no-op for sessions that do not count). */
export async function recordSettlement(rows: ChangeSet, session: SessionRow): Promise<void> {
  const provider = await rows.get("providers", [session.provider]);
  if (!countsForRanking(session, provider?.operator ?? null) || session.settled_at === null) return;
  const day = dayOf(session.settled_at);
  const paid = weightOf(session);
  const rated = session.outcome !== "unrated";
  const successful = session.outcome === "success";
  const tps = (session.tps_x1000_avg ?? 0) / 1000;
  const ttft = session.ttft_ms_avg ?? 0;
  const successWeight = successful ? paid : 0;
  const { model_id, provider: address, user_address } = session;
  // Increments, not read-modify-write: a batch loads every aggregate row it touches in one query.
  rows.increment(
    "provider_days",
    {
      model_id,
      provider: address,
      day,
      sessions: 0,
      rated_sessions: 0,
      successful_sessions: 0,
      paid: 0,
      rated_paid: 0,
      successful_paid: 0,
      tps_sum: 0,
      tps_square_sum: 0,
      ttft_sum: 0,
      ttft_square_sum: 0,
      served_seconds: 0,
    },
    {
      sessions: 1,
      rated_sessions: rated ? 1 : 0,
      successful_sessions: successful ? 1 : 0,
      paid,
      rated_paid: rated ? paid : 0,
      successful_paid: successWeight,
      tps_sum: successWeight * tps,
      tps_square_sum: successWeight * tps * tps,
      ttft_sum: successWeight * ttft,
      ttft_square_sum: successWeight * ttft * ttft,
      served_seconds: session.elapsed_seconds ?? 0,
    },
  );
  rows.increment(
    "consumer_days",
    { model_id, provider: address, consumer: user_address, day, sessions: 0, paid: 0 },
    { sessions: 1, paid },
  );
}
