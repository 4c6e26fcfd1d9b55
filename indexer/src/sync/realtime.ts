/**
 * Following the head: new blocks are fetched in header batches that must link to the checkpoint
 * and to each other (parent hashes); logs must come from exactly those blocks. When a new block
 * does not link, or the checkpoint block is no longer on the chain, the chain reorganised: walk
 * back over the unfinalized blocks we applied to the newest one still on the chain, undo
 * everything above it (rows from the journal, feed retractions) and carry on from there.
 */
import { IndexerError } from "../errors.js";
import type { RankingConfig } from "../config.js";
import type { Logger } from "../log.js";
import { refreshRankings } from "../ranking/materialized.js";
import { type ChainState, readBlocks, readChainState, saveCheckpoint } from "../store/chainState.js";
import type { Db } from "../store/database.js";
import { retractFeedAbove } from "../store/feed.js";
import { rollbackEntities } from "../store/journal.js";
import type { FetchedBatch } from "./commitBatch.js";
import { type BatchSource, InconsistentChainError, fetchLiveBatch } from "./fetchBatch.js";
import type { BlockHeader } from "./rpc.js";

export class DeepReorgError extends IndexerError {}

export interface ReorgInfo {
  ancestor: number;
  /** Blocks undone. */
  depth: number;
  retracted: number;
}

export interface RealtimeOptions {
  source: BatchSource;
  db: Db;
  finalityDepth: number;
  confirmations: number;
  /** Headers fetched per step. */
  batchBlocks: number;
  logger: Logger;
  ranking: RankingConfig;
  /** Commits a live batch (rows, journal, feed, checkpoint) in one transaction. */
  commit(batch: FetchedBatch, options: { finalized: number; head: number }): Promise<void>;
  /** Throws ChainReplacedError when the chain is not the one the rows came from. */
  assertSameChain(): Promise<void>;
  onReorg(reorg: ReorgInfo): void;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

function linked(previousHash: string, headers: readonly BlockHeader[]): boolean {
  let expected = previousHash;
  for (const header of headers) {
    if (header.parentHash !== expected) return false;
    expected = header.hash;
  }
  return true;
}

/** Brings the checkpoint to `head - confirmations`, undoing reorganised blocks on the way. */
export async function followToHead(options: RealtimeOptions, head: number): Promise<void> {
  const { source, db, batchBlocks } = options;
  const target = head - options.confirmations;
  for (;;) {
    const state = (await readChainState(db))!;
    if (state.indexed_number >= target) {
      const tip = await source.rpc.header(state.indexed_number);
      if (tip?.hash === state.indexed_hash) return;
      await reconcile(options, state, head);
      continue;
    }
    const from = state.indexed_number + 1;
    const fetched = await source.rpc.headers(range(from, Math.min(target, from + batchBlocks - 1)));
    const missing = fetched.indexOf(null);
    const available = (missing === -1 ? fetched : fetched.slice(0, missing)) as BlockHeader[];
    if (available.length === 0) return; // the node reported a head it cannot serve yet: next tick
    if (available[0]!.parentHash !== state.indexed_hash) {
      await reconcile(options, state, head);
      continue;
    }
    if (!linked(state.indexed_hash, available)) continue; // a reorg between two reads: read again
    let batch: FetchedBatch;
    try {
      batch = await fetchLiveBatch(source, available);
    } catch (error) {
      if (error instanceof InconsistentChainError) continue;
      throw error;
    }
    const finalized = Math.max(state.finalized_number, head - options.finalityDepth);
    await options.commit(batch, { finalized, head });
  }
}

/** Undoes blocks when the checkpoint block is no longer on the chain (a reorg while we were away or idle). */
export async function reconcileIfTipMoved(options: RealtimeOptions, head: number): Promise<void> {
  const state = (await readChainState(options.db))!;
  if (state.indexed_number < 0) return;
  const tip = await options.source.rpc.header(state.indexed_number);
  if (tip?.hash !== state.indexed_hash) await reconcile(options, state, head);
}

/** Finds the newest applied block still on the chain and undoes everything above it. */
async function reconcile(options: RealtimeOptions, state: ChainState, head: number): Promise<void> {
  const { db, source, logger } = options;
  const applied = await readBlocks(db);
  const canonical = await source.rpc.headers(applied.map((block) => block.number));
  const index = applied.findIndex((block, i) => canonical[i]?.hash === block.hash);
  if (index === -1) {
    // Nothing we applied is on the chain any more: either a new chain or a reorg past finality.
    await options.assertSameChain();
    const oldest = applied.at(-1);
    throw new DeepReorgError(
      `reorg deeper than the finality depth (${options.finalityDepth} blocks): block ${oldest?.number ?? state.finalized_number} ` +
        `(final to us) is no longer on the chain; stopping. Re-index from scratch, or raise finalityDepth if this chain reorganises that deep`,
      { finalityDepth: options.finalityDepth, finalized: state.finalized_number, indexed: state.indexed_number },
    );
  }
  const ancestor = applied[index]!;
  const depth = state.indexed_number - ancestor.number;
  const retracted = await db.transaction().execute(async (tx) => {
    await rollbackEntities(tx, ancestor.number);
    const count = await retractFeedAbove(tx, ancestor.number);
    await refreshRankings(tx, "all", { config: options.ranking, chainNow: ancestor.timestamp, block: ancestor.number });
    await saveCheckpoint(tx, {
      indexed: { number: ancestor.number, hash: ancestor.hash, timestamp: ancestor.timestamp },
      finalized: Math.min(state.finalized_number, ancestor.number),
      head,
      realtime: true,
    });
    return count;
  });
  logger.warn("chain reorganisation: undid blocks", {
    ancestor: ancestor.number,
    depth,
    retractedEvents: retracted,
  });
  options.onReorg({ ancestor: ancestor.number, depth, retracted });
}
