/**
 * Backfill: final blocks, from the checkpoint to a target, in adaptive chunks with several
 * requests in flight. Batches are fetched ahead (up to `concurrency`) and committed strictly in
 * order, each with its checkpoint, so a crash resumes at the last committed batch.
 */
import type { FetchedBatch } from "./commitBatch.js";
import { type BatchSource, fetchFinalBatch } from "./fetchBatch.js";

export interface BackfillOptions {
  source: BatchSource;
  /** First block to fetch. */
  from: number;
  /** Last block to fetch (inclusive). */
  to: number;
  /** Requests in flight. */
  concurrency: number;
  /** Commits a batch; the next batch is committed only after this resolves. */
  commit: (batch: FetchedBatch) => Promise<void>;
  signal: AbortSignal;
}

export async function backfill(options: BackfillOptions): Promise<void> {
  const { source, to, concurrency, commit, signal } = options;
  let cursor = options.from;
  const inFlight: Promise<FetchedBatch>[] = [];
  const fill = () => {
    while (cursor <= to && inFlight.length < concurrency) {
      const end = Math.min(to, cursor + source.sizer.span - 1);
      const batch = fetchFinalBatch(source, cursor, end);
      // A rejection is handled when the batch's turn comes; until then it must not count as unhandled.
      batch.catch(() => undefined);
      inFlight.push(batch);
      cursor = end + 1;
    }
  };
  try {
    fill();
    while (inFlight.length > 0) {
      signal.throwIfAborted();
      const batch = await inFlight.shift()!;
      // Start the next fetches before writing: the node works while the database does.
      fill();
      await commit(batch);
    }
  } finally {
    // Batches fetched ahead of a failure are dropped; the next run fetches them again.
    inFlight.length = 0;
  }
}
