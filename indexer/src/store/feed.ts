/**
 * The feed behind GraphQL subscriptions: live events written in the same transaction as the rows
 * they produced, read back in `seq` order by every API process. A reorg appends a retraction
 * (`removed = true`, same payload) for each event of the undone blocks, so subscribers learn of it.
 */
import { sql } from "kysely";
import type { Queryable } from "./rows.js";
import type { FeedTable } from "./tables.js";

export type FeedKind = "sessionOpened" | "sessionSettled" | "bidChanged";

export interface FeedEntry {
  blockNumber: number;
  blockHash: string;
  kind: FeedKind;
  payload: Record<string, unknown>;
}

export interface FeedRow {
  seq: number;
  block_number: number;
  block_hash: string;
  kind: FeedKind;
  removed: boolean;
  retracted: boolean;
  payload: Record<string, unknown>;
}

/** How long live events stay readable once final: far longer than any subscriber lags. */
const FEED_RETENTION_MS = 10 * 60_000;

export async function appendFeed(db: Queryable, entries: readonly FeedEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const now = Date.now();
  await sql`
    INSERT INTO feed (block_number, block_hash, kind, removed, payload, created_at)
    SELECT b, h, k, false, p, ${now}::int8 FROM unnest(
      ${entries.map((entry) => entry.blockNumber)}::int8[],
      ${entries.map((entry) => entry.blockHash)}::text[],
      ${entries.map((entry) => entry.kind)}::text[],
      ${entries.map((entry) => JSON.stringify(entry.payload))}::jsonb[]
    ) AS e(b, h, k, p)
  `.execute(db);
}

/** Appends a retraction of every live event above `ancestor` not retracted yet; returns how many. */
export async function retractFeedAbove(db: Queryable, ancestor: number): Promise<number> {
  const now = Date.now();
  const result = await sql`
    INSERT INTO feed (block_number, block_hash, kind, removed, payload, created_at)
    SELECT block_number, block_hash, kind, true, payload, ${now}::int8 FROM feed
    WHERE block_number > ${ancestor} AND NOT removed AND NOT retracted
    ORDER BY seq DESC
  `.execute(db);
  await sql`UPDATE feed SET retracted = true WHERE block_number > ${ancestor} AND NOT removed`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

export async function readFeedAfter(db: Queryable, seq: number, limit = 1_000): Promise<FeedRow[]> {
  const rows = await db.selectFrom("feed").selectAll().where("seq", ">", seq).orderBy("seq").limit(limit).execute();
  return rows as unknown as FeedRow[];
}

export async function latestFeedSeq(db: Queryable): Promise<number> {
  const row = await db
    .selectFrom("feed")
    .select((eb) => eb.fn.max<number | null>("seq").as("seq"))
    .executeTakeFirst();
  return row?.seq ?? 0;
}

/** Drops feed rows of final blocks once nobody can still be reading them. */
export async function pruneFeed(db: Queryable, finalized: number): Promise<void> {
  const cutoff = Date.now() - FEED_RETENTION_MS;
  await sql`DELETE FROM feed WHERE block_number <= ${finalized} AND created_at < ${cutoff}`.execute(db);
}

export type { FeedTable };

/**
 * "The feed has new rows": raised by the writer after each commit in this process, and by a
 * PostgreSQL LISTEN in API-only replicas. Readers then query the feed after their last `seq`.
 */
export class FeedSignal {
  readonly #listeners = new Set<() => void>();

  notify(): void {
    for (const listener of this.#listeners) listener();
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** The NOTIFY channel of a schema's feed (one database may hold several indexers' schemas). */
export const feedChannel = (schema: string) => `indexer_feed_${schema}`;
