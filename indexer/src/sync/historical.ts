/**
 * Backfill: final blocks, from the checkpoint to a target, in adaptive chunks with several
 * requests in flight. Batches are fetched ahead (up to `concurrency`) and committed strictly in
 * order, each commit with its checkpoint, so a crash resumes at the last committed batch.
 *
 * Fetched batches that are already waiting when the database becomes free are committed together
 * (up to `maxCommitEvents`): a row touched by many events is then written once, not once per request.
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
  /** Most events committed in one transaction when several fetched batches are waiting. */
  maxCommitEvents: number;
  /** Commits a batch; the next batch is committed only after this resolves. */
  commit: (batch: FetchedBatch) => Promise<void>;
  signal: AbortSignal;
}

interface InFlight {
  batch: Promise<FetchedBatch>;
  /** Set once the fetch resolved: such batches can join the commit of the one before them. */
  ready?: FetchedBatch;
}

/** Consecutive batches as one: their events in order, the last one's end and headers. */
export function mergeBatches(batches: readonly FetchedBatch[]): FetchedBatch {
  if (batches.length === 1) return batches[0]!;
  const last = batches.at(-1)!;
  return {
    fromBlock: batches[0]!.fromBlock,
    toBlock: last.toBlock,
    events: batches.flatMap((batch) => batch.events),
    timestamps: new Map(batches.flatMap((batch) => [...batch.timestamps])),
    end: last.end,
    headers: last.headers,
  };
}

export async function backfill(options: BackfillOptions): Promise<void> {
  const { source, to, concurrency, commit, signal, maxCommitEvents } = options;
  let cursor = options.from;
  const inFlight: InFlight[] = [];
  const fill = () => {
    while (cursor <= to && inFlight.length < concurrency) {
      const end = Math.min(to, cursor + source.sizer.span - 1);
      const entry: InFlight = { batch: fetchFinalBatch(source, cursor, end) };
      entry.batch.then(
        (batch) => (entry.ready = batch),
        // A rejection is handled when the batch's turn comes; until then it must not count as unhandled.
        () => undefined,
      );
      inFlight.push(entry);
      cursor = end + 1;
    }
  };
  try {
    fill();
    while (inFlight.length > 0) {
      signal.throwIfAborted();
      const group = [await inFlight.shift()!.batch];
      let events = group[0]!.events.length;
      while (inFlight[0]?.ready !== undefined && events + inFlight[0].ready.events.length <= maxCommitEvents) {
        const next = inFlight.shift()!.ready!;
        group.push(next);
        events += next.events.length;
      }
      // Start the next fetches before writing: the node works while the database does.
      fill();
      await commit(mergeBatches(group));
    }
  } finally {
    // Batches fetched ahead of a failure are dropped; the next run fetches them again.
    inFlight.length = 0;
  }
}
