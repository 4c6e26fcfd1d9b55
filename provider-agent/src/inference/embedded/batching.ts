/**
 * Continuous batching fixes for node-llama-cpp 3.21.1 (measured in TOOLCHAIN.md: 8 streams on one
 * thread went from 73 to 124 tok/s, on two threads from 99 to 185):
 *
 * 1. Order a batch's items by sequence id. With a per-sequence KV cache llama.cpp packs only
 *    consecutive, increasing sequence ids into one micro-batch; in arrival order a decode step made
 *    ~3.3 passes over the weights instead of 1. (The engine also hands out the lowest free sequence,
 *    so the busy ids stay contiguous.)
 * 2. Yield one macrotask after each batch. node-llama-cpp builds the next batch as soon as the last
 *    one is sampled, before the sequences' promise chains have queued their next tokens, so a step
 *    would run with only some of the sequences in it.
 *
 * Both need node-llama-cpp internals that its public types do not show (`LlamaContext._queuedDecodes`,
 * `LlamaContextSequence._takeIntervalCheckpointIfNeededAfterBatch`). Each is checked at run time: if
 * a later version changes them, batching falls back to node-llama-cpp's own behaviour (slower, still
 * correct) and says so once through `warn`.
 */
import type {
  BatchItem,
  BatchingOptions,
  CustomBatchingPrioritizationStrategy,
  LlamaContext,
  LlamaContextSequence,
  PrioritizedBatchItem,
} from "node-llama-cpp";

/** The shape of a queued decode inside LlamaContext (3.21.1); `tokens` is the same array a BatchItem holds. */
interface QueuedDecode {
  sequenceId: number;
  tokens: readonly number[];
}

type AfterBatchHook = (sequenceStateLength: number) => Promise<void> | undefined;

export class SequenceOrderedBatching {
  private context: LlamaContext | undefined;
  private yieldedThisBatch = false;
  private readonly warned = new Set<string>();

  constructor(private readonly warn: (message: string) => void) {}

  /** Pass to `model.createContext({ batching })`, then `attachContext` the result. */
  get options(): BatchingOptions {
    return { dispatchSchedule: "nextCycle", itemPrioritizationStrategy: this.prioritize };
  }

  attachContext(context: LlamaContext): void {
    this.context = context;
  }

  /** Makes the context's batch loop yield a macrotask after each batch this sequence is in. */
  attachSequence(sequence: LlamaContextSequence): void {
    // The hook is an own, bound property of each sequence, called after every batch it took part in.
    const internals = sequence as unknown as { _takeIntervalCheckpointIfNeededAfterBatch?: unknown };
    const original = internals._takeIntervalCheckpointIfNeededAfterBatch;
    if (typeof original !== "function") {
      this.warnOnce("hook", "node-llama-cpp has no after-batch hook: batches are built without yielding (slower)");
      return;
    }
    const originalHook = original as AfterBatchHook;
    const hook: AfterBatchHook = (sequenceStateLength) => {
      const checkpoint = originalHook(sequenceStateLength);
      const pause = this.pauseOncePerBatch();
      if (!pause) return checkpoint;
      return checkpoint ? Promise.all([checkpoint, pause]).then(() => undefined) : pause;
    };
    internals._takeIntervalCheckpointIfNeededAfterBatch = hook;
  }

  private pauseOncePerBatch(): Promise<void> | undefined {
    if (this.yieldedThisBatch) return undefined;
    this.yieldedThisBatch = true;
    return new Promise((resolve) => setImmediate(resolve));
  }

  private readonly prioritize: CustomBatchingPrioritizationStrategy = ({ items, size }) => {
    // Called as each batch is built: the next after-batch hook belongs to this batch.
    this.yieldedThisBatch = false;
    const sequenceIds = this.sequenceIdsOf(items);
    const ordered = sequenceIds ? [...items].sort((a, b) => sequenceIds.get(a)! - sequenceIds.get(b)!) : [...items];
    return shareBatch(ordered, size);
  };

  private sequenceIdsOf(items: readonly BatchItem[]): Map<BatchItem, number> | undefined {
    const queued = (this.context as unknown as { _queuedDecodes?: unknown } | undefined)?._queuedDecodes;
    if (!Array.isArray(queued)) {
      this.warnOnce("queue", "node-llama-cpp's queued decodes are not readable: batches keep arrival order (slower)");
      return undefined;
    }
    const idByTokens = new Map<unknown, number>();
    for (const decode of queued as Partial<QueuedDecode>[]) {
      if (typeof decode.sequenceId === "number") idByTokens.set(decode.tokens, decode.sequenceId);
    }
    const ids = new Map<BatchItem, number>();
    for (const item of items) {
      const id = idByTokens.get(item.tokens);
      if (id === undefined) {
        this.warnOnce("match", "a batch item matches no queued decode: batches keep arrival order (slower)");
        return undefined;
      }
      ids.set(item, id);
    }
    return ids;
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warn(message);
  }
}

/**
 * Splits `size` token slots over the items in order: an equal share each (at least one token), then
 * what is left to the items in order. A decode step (one token per sequence) always fits whole; long
 * prompts share the rest.
 */
export function shareBatch(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  const share = Math.max(1, Math.floor(size / Math.max(1, items.length)));
  let left = size;
  const result: PrioritizedBatchItem[] = [];
  for (const item of items) {
    if (left <= 0) break;
    const processAmount = Math.min(item.tokens.length, share, left);
    result.push({ item, processAmount });
    left -= processAmount;
  }
  for (const entry of result) {
    if (left <= 0) break;
    const extra = Math.min(entry.item.tokens.length - entry.processAmount, left);
    entry.processAmount += extra;
    left -= extra;
  }
  return result;
}
