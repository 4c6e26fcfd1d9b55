/**
 * The read side of ranking: one query gathers every candidate of a model with its window's
 * aggregates (a few rows per provider from the daily tables), then `rankCandidates` scores them.
 */
import { sql } from "kysely";
import type { RankingConfig } from "../config.js";
import type { Db } from "../store/database.js";
import { dayOf } from "./aggregates.js";
import { type CandidateData, type RankedProvider, rankCandidates } from "./score.js";

export interface RankingRequest {
  modelId: string;
  windowSeconds: number;
  /** The window ends here: the indexed head block's timestamp (chain time, so results are reproducible). */
  chainNow: number;
  /** Wall-clock now, in seconds, for the availability probes' window. */
  wallNow: number;
}

interface CandidateRow {
  provider: string;
  bid_id: string;
  price_per_second: string;
  price_per_input_token: string;
  price_per_output_token: string;
  stake: string;
  sessions: number | null;
  rated_sessions: number | null;
  successful_sessions: number | null;
  paid: number | null;
  rated_paid: number | null;
  successful_paid: number | null;
  tps_sum: number | null;
  tps_square_sum: number | null;
  ttft_sum: number | null;
  ttft_square_sum: number | null;
  served_seconds: number | null;
  consumers: number | null;
  consumer_paid_square_sum: number | null;
  probes_ok: number | null;
  probes_total: number | null;
}

/**
 * The first UTC day of a window ending at `now`: aggregates are daily, so a window covers the days
 * from the one holding `now - windowSeconds` to the one holding `now`, both included.
 */
export const firstDayOf = (now: number, windowSeconds: number) => dayOf(now - windowSeconds);

export async function loadCandidates(db: Db, request: RankingRequest): Promise<CandidateData[]> {
  const firstDay = firstDayOf(request.chainNow, request.windowSeconds);
  const firstProbeDay = firstDayOf(request.wallNow, request.windowSeconds);
  const result = await sql<CandidateRow>`
    WITH candidates AS (
      SELECT b.provider, b.id AS bid_id, b.price_per_second, b.price_per_input_token, b.price_per_output_token,
             coalesce(s.staked, 0)::text AS stake
      FROM bids b
      JOIN providers p ON p.address = b.provider AND p.active
      JOIN models m ON m.id = b.model_id AND m.active
      LEFT JOIN stakes s ON s.account = b.provider
      WHERE b.model_id = ${request.modelId} AND b.active
    ),
    days AS (
      SELECT provider, sum(sessions) AS sessions, sum(rated_sessions) AS rated_sessions,
             sum(successful_sessions) AS successful_sessions, sum(paid) AS paid, sum(rated_paid) AS rated_paid,
             sum(successful_paid) AS successful_paid, sum(tps_sum) AS tps_sum, sum(tps_square_sum) AS tps_square_sum,
             sum(ttft_sum) AS ttft_sum, sum(ttft_square_sum) AS ttft_square_sum, sum(served_seconds) AS served_seconds
      FROM provider_days WHERE model_id = ${request.modelId} AND day >= ${firstDay}
      GROUP BY provider
    ),
    payers AS (
      SELECT provider, count(*) AS consumers, sum(paid * paid) AS consumer_paid_square_sum
      FROM (
        SELECT provider, consumer, sum(paid) AS paid FROM consumer_days
        WHERE model_id = ${request.modelId} AND day >= ${firstDay}
        GROUP BY provider, consumer
      ) per_consumer
      GROUP BY provider
    ),
    uptime AS (
      SELECT provider, sum(ok) AS probes_ok, sum(total) AS probes_total
      FROM probes WHERE day >= ${firstProbeDay} AND provider IN (SELECT provider FROM candidates)
      GROUP BY provider
    )
    SELECT c.*, d.sessions::int8, d.rated_sessions::int8, d.successful_sessions::int8, d.paid, d.rated_paid,
           d.successful_paid, d.tps_sum, d.tps_square_sum, d.ttft_sum, d.ttft_square_sum, d.served_seconds::int8,
           y.consumers, y.consumer_paid_square_sum, u.probes_ok::int8, u.probes_total::int8
    FROM candidates c
    LEFT JOIN days d USING (provider)
    LEFT JOIN payers y USING (provider)
    LEFT JOIN uptime u USING (provider)
  `.execute(db);
  return result.rows.map((row) => ({
    provider: row.provider,
    bidId: row.bid_id,
    pricePerSecond: row.price_per_second,
    pricePerInputToken: row.price_per_input_token,
    pricePerOutputToken: row.price_per_output_token,
    stake: row.stake,
    sessions: row.sessions ?? 0,
    ratedSessions: row.rated_sessions ?? 0,
    successfulSessions: row.successful_sessions ?? 0,
    paid: row.paid ?? 0,
    ratedPaid: row.rated_paid ?? 0,
    successfulPaid: row.successful_paid ?? 0,
    tpsSum: row.tps_sum ?? 0,
    tpsSquareSum: row.tps_square_sum ?? 0,
    ttftSum: row.ttft_sum ?? 0,
    ttftSquareSum: row.ttft_square_sum ?? 0,
    servedSeconds: row.served_seconds ?? 0,
    consumers: row.consumers ?? 0,
    consumerPaidSquareSum: row.consumer_paid_square_sum ?? 0,
    probesOk: row.probes_ok ?? 0,
    probesTotal: row.probes_total ?? 0,
  }));
}

export async function providerRankings(
  db: Db,
  request: RankingRequest,
  config: RankingConfig,
): Promise<RankedProvider[]> {
  return rankCandidates(await loadCandidates(db, request), config);
}
