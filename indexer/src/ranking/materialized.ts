/**
 * Rankings kept ready: for the configured window and weights, the writer recomputes a model's
 * ranking in the same transaction as any live batch that changed its inputs (bids, providers,
 * stakes, settled sessions), after a reorg, after probes, and when the window slides to a new
 * day. `providerRankings` then reads `first` rows. Other windows or settings, and models whose
 * rows went stale during a backfill, are computed on the spot (same formula, same result).
 */
import { createHash } from "node:crypto";
import { sql } from "kysely";
import type { RankingConfig } from "../config.js";
import type { ChangeSet } from "../store/changeSet.js";
import type { Queryable } from "../store/rows.js";
import { firstDayOf, loadCandidates } from "./rankings.js";
import { type RankedProvider, type RankingMetrics, rankCandidates } from "./score.js";

/** A fingerprint of the settings a ranking depends on: rows computed with others are not served. */
export function rankingSettings(config: RankingConfig): string {
  const stable = JSON.stringify(config, Object.keys(config).concat(Object.keys(config.weights)).sort());
  return createHash("sha256").update(stable).digest("hex").slice(0, 16);
}

/** Models whose ranking inputs this batch changed. */
export async function modelsChangedBy(db: Queryable, rows: ChangeSet): Promise<Set<string>> {
  const models = new Set<string>();
  for (const { row } of rows.changed("bids")) if (row) models.add(row.model_id);
  for (const { row } of rows.changed("provider_days")) if (row) models.add(row.model_id);
  for (const { key } of rows.changed("models")) models.add(String(key[0]));
  const providers = [
    ...rows.changed("providers").map(({ key }) => String(key[0])),
    ...rows.changed("stakes").map(({ key }) => String(key[0])),
  ];
  if (providers.length > 0) {
    const bids = await db.selectFrom("bids").select("model_id").distinct().where("provider", "in", providers).execute();
    for (const bid of bids) models.add(bid.model_id);
  }
  return models;
}

/** Every model that has or had a ranking. */
async function allModels(db: Queryable): Promise<string[]> {
  const rows = await sql<{ model_id: string }>`
    SELECT DISTINCT model_id FROM bids WHERE active UNION SELECT model_id FROM ranking_models
  `.execute(db);
  return rows.rows.map((row) => row.model_id);
}

/** Models whose stored ranking is stale, of other settings, or of a window that has since slid. */
async function outdatedModels(db: Queryable, config: RankingConfig, chainNow: number): Promise<string[]> {
  const rows = await db.selectFrom("ranking_models").select(["model_id", "settings", "window_end", "stale"]).execute();
  const settings = rankingSettings(config);
  const firstDay = firstDayOf(chainNow, config.windowSeconds);
  return rows
    .filter(
      (row) => row.stale || row.settings !== settings || firstDayOf(row.window_end, config.windowSeconds) !== firstDay,
    )
    .map((row) => row.model_id);
}

export interface RefreshOptions {
  config: RankingConfig;
  chainNow: number;
  block: number;
}

/** Recomputes the rankings of `models` ("all": every model with bids or a ranking), in the caller's transaction. */
export async function refreshRankings(
  db: Queryable,
  models: Iterable<string> | "all",
  options: RefreshOptions,
): Promise<void> {
  const targets = new Set(models === "all" ? await allModels(db) : models);
  for (const model of await outdatedModels(db, options.config, options.chainNow)) targets.add(model);
  const settings = rankingSettings(options.config);
  const wallNow = Math.floor(Date.now() / 1000);
  for (const modelId of targets) {
    const candidates = await loadCandidates(db, {
      modelId,
      windowSeconds: options.config.windowSeconds,
      chainNow: options.chainNow,
      wallNow,
    });
    const ranked = rankCandidates(candidates, options.config);
    await sql`DELETE FROM rankings WHERE model_id = ${modelId}`.execute(db);
    if (ranked.length > 0) {
      await sql`
        INSERT INTO rankings (model_id, rank, provider, bid_id, score, parts, metrics)
        SELECT ${modelId}, * FROM unnest(
          ${ranked.map((entry) => entry.rank)}::int4[],
          ${ranked.map((entry) => entry.provider)}::text[],
          ${ranked.map((entry) => entry.bidId)}::text[],
          ${ranked.map((entry) => entry.score)}::float8[],
          ${ranked.map((entry) => JSON.stringify(entry.parts))}::jsonb[],
          ${ranked.map((entry) => JSON.stringify(entry.metrics))}::jsonb[]
        )
      `.execute(db);
    }
    await sql`
      INSERT INTO ranking_models (model_id, settings, window_end, computed_block, stale)
      VALUES (${modelId}, ${settings}, ${options.chainNow}, ${options.block}, false)
      ON CONFLICT (model_id) DO UPDATE SET settings = EXCLUDED.settings, window_end = EXCLUDED.window_end,
        computed_block = EXCLUDED.computed_block, stale = false
    `.execute(db);
  }
}

/** During a backfill: stored rankings no longer match the data; the API computes until the next refresh. */
export async function markRankingsStale(db: Queryable): Promise<void> {
  await sql`UPDATE ranking_models SET stale = true WHERE NOT stale`.execute(db);
}

/** The stored ranking of a model, when it is current and of these settings; undefined otherwise. */
export async function storedRankings(
  db: Queryable,
  modelId: string,
  first: number,
  config: RankingConfig,
): Promise<RankedProvider[] | undefined> {
  const model = await db
    .selectFrom("ranking_models")
    .select(["settings", "stale"])
    .where("model_id", "=", modelId)
    .executeTakeFirst();
  if (model === undefined || model.stale || model.settings !== rankingSettings(config)) return undefined;
  const rows = await db
    .selectFrom("rankings")
    .selectAll()
    .where("model_id", "=", modelId)
    .orderBy("rank")
    .limit(first)
    .execute();
  return rows.map((row) => ({
    rank: row.rank,
    provider: row.provider,
    bidId: row.bid_id,
    score: row.score,
    parts: row.parts,
    metrics: row.metrics as unknown as RankingMetrics,
  }));
}
