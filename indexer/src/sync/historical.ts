/**
 * Backfill: final blocks, from the checkpoint to a target, in adaptive chunks with several
 * requests in flight. Batches are fetched ahead (up to `concurrency`) and committed strictly in
 * order, each commit with its checkpoint, so a crash resumes at the last committed batch.
 *
 * Fetched batches are committed together, up to `maxCommitEvents` (or whatever is left at the
 * end): a row touched by many events is then written once per commit, not once per request, and
 * the fixed cost of a transaction is paid a few times per hundred thousand events. The fetches go
 * on while events accumulate and while a commit runs.
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
  /** Events gathered per commit (fewer only at the end of the range). */
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
    let group: FetchedBatch[] = [];
    let events = 0;
    while (inFlight.length > 0) {
      signal.throwIfAborted();
      const next = await inFlight.shift()!.batch;
      group.push(next);
      events += next.events.length;
      // Keep the node busy: the next fetches start before anything is written.
      fill();
      const following = inFlight[0]?.ready?.events.length;
      const full = events >= maxCommitEvents || (following !== undefined && events + following > maxCommitEvents);
      if (full || inFlight.length === 0) {
        await commit(mergeBatches(group));
        group = [];
        events = 0;
      }
    }
  } finally {
    // Batches fetched ahead of a failure are dropped; the next run fetches them again.
    inFlight.length = 0;
  }
}
