/**
 * Commits one fetched batch of blocks: the handlers' row changes, the reorg journal (unfinalized
 * blocks), the subscription feed (live blocks) and the checkpoint, all in one transaction. A crash
 * at any moment leaves either all of a batch or none of it.
 */
import { sql } from "kysely";
import { type HandlerContext, handlerOf } from "../events/handlers.js";
import type { MarketEvent } from "../events/decode.js";
import type { RankingConfig } from "../config.js";
import type { Logger } from "../log.js";
import { markRankingsStale, modelsChangedBy, refreshRankings } from "../ranking/materialized.js";
import { ChangeSet } from "../store/changeSet.js";
import { type BlockRef, insertBlocks, saveCheckpoint } from "../store/chainState.js";
import type { Db } from "../store/database.js";
import { type FeedEntry, type FeedKind, appendFeed, pruneFeed } from "../store/feed.js";
import { pruneFinalized } from "../store/journal.js";
import type { BlocksTable } from "../store/tables.js";

export interface FetchedBatch {
  fromBlock: number;
  toBlock: number;
  /** Decoded events in chain order. */
  events: MarketEvent[];
  /** Timestamps of the blocks whose events need one (and of `end`). */
  timestamps: ReadonlyMap<number, number>;
  /** The batch's last block: the checkpoint after this batch. */
  end: BlockRef;
  /** Headers to keep for reorg detection: every block of a live batch, the last block of a final one. */
  headers: readonly BlocksTable[];
}

export interface CommitOptions {
  /** Journal before-images of each block above this number (a reorg may undo them). */
  finalized: number;
  head: number;
  /**
   * - `backfill`: final blocks in bulk;
   * - `catchUp`: unfinalized blocks before the indexer first reached the head (after a start);
   * - `live`: at the head. Only live batches publish to subscribers and recompute the stored
   *   rankings they affect; the others mark stored rankings stale (recomputed once caught up).
   */
  mode: "backfill" | "catchUp" | "live";
  /** PostgreSQL channel to NOTIFY when feed entries were written (null on PGlite). */
  notifyChannel: string | null;
  /** Live batches recompute the stored rankings they affect; backfill batches mark them stale. */
  ranking: RankingConfig;
  logger: Logger;
}

export interface CommitResult {
  events: number;
  feedEntries: number;
}

export async function commitBatch(db: Db, batch: FetchedBatch, options: CommitOptions): Promise<CommitResult> {
  const live = options.mode === "live";
  return db.transaction().execute(async (tx) => {
    const journal = batch.toBlock > options.finalized;
    const rows = new ChangeSet(tx, { journal });
    const feed: FeedEntry[] = [];

    const timestampOf = (event: MarketEvent) => batch.timestamps.get(event.blockNumber) ?? 0;
    const eventHandlers = batch.events.map(handlerOf);

    // Every row the batch will read, loaded set-wise before the handlers run one by one.
    const prefetches: Promise<unknown>[] = [];
    batch.events.forEach((event, index) => {
      const prefetch = eventHandlers[index]?.prefetch?.(event, rows, timestampOf(event));
      if (prefetch instanceof Promise) prefetches.push(prefetch);
    });
    await Promise.all(prefetches);
    await rows.settled();

    let current = batch.events[0]!;
    const context = {
      rows,
      blockTimestamp: 0,
      publish(kind: FeedKind, payload: Record<string, unknown>) {
        if (live) feed.push({ blockNumber: current.blockNumber, blockHash: current.blockHash, kind, payload });
      },
      warn(message: string, fields: Record<string, unknown>) {
        options.logger.warn(message, { ...fields, block: current.blockNumber, logIndex: current.logIndex });
      },
    } satisfies HandlerContext;
    for (const [index, event] of batch.events.entries()) {
      const handler = eventHandlers[index];
      if (handler === undefined) continue;
      current = event;
      context.blockTimestamp = timestampOf(event);
      // Only blocks above the finalized one are journaled: older blocks cannot be reorganised.
      rows.atBlock(event.blockNumber > options.finalized ? event.blockNumber : 0);
      await handler.apply(event, context);
    }
    await rows.flush();
    if (live) {
      const models = await modelsChangedBy(tx, rows);
      await refreshRankings(tx, models, {
        config: options.ranking,
        chainNow: batch.end.timestamp,
        block: batch.end.number,
      });
    } else {
      await markRankingsStale(tx);
    }
    await appendFeed(tx, feed);
    // The batch's blocks (or, backfilling, its last block): what a later reorg check compares.
    await insertBlocks(tx, batch.headers);
    await pruneFinalized(tx, Math.min(options.finalized, batch.end.number));
    if (live) await pruneFeed(tx, options.finalized);
    await saveCheckpoint(tx, {
      indexed: batch.end,
      finalized: Math.min(options.finalized, batch.end.number),
      head: options.head,
      realtime: options.mode !== "backfill",
    });
    if (feed.length > 0 && options.notifyChannel !== null) {
      // Delivered by PostgreSQL at commit, to every API process listening.
      await sql`SELECT pg_notify(${options.notifyChannel}, '')`.execute(tx);
    }
    return { events: batch.events.length, feedEntries: feed.length };
  });
}
