/**
 * Admission for a fixed set of slots (a model's parallel sequences, or an upstream's concurrency cap):
 * a request takes a free slot at once, or waits in a fair queue across session keys, or is refused with
 * `QueueFullError` when the queue is at its cap.
 */
import { QueueFullError } from "../errors.js";
import { FairQueue } from "./fair-queue.js";

export interface Slot {
  /** Free slots are handed out lowest index first (see the embedded engine's batching). */
  readonly index: number;
}

export interface SlotSchedulerOptions {
  /** Named in `QueueFullError`. */
  model: string;
  /** Requests that may wait for a slot; one more is refused. */
  maxQueued: number;
}

interface Waiter<S> {
  key: string;
  grant: (slot: S | null) => void;
}

/** Until a slot has been held a few times, assume requests take this long (for `retryAfterSeconds`). */
const INITIAL_SERVICE_MS = 2_000;
const MAX_RETRY_AFTER_SECONDS = 300;

export class SlotScheduler<S extends Slot> {
  private readonly free: S[];
  private readonly waiting = new FairQueue<Waiter<S>>();
  private readonly heldSince = new Map<S, number>();
  private averageServiceMs = INITIAL_SERVICE_MS;

  constructor(
    private readonly slots: readonly S[],
    private readonly options: SlotSchedulerOptions,
  ) {
    if (slots.length === 0) throw new RangeError(`model ${options.model} needs at least one slot`);
    this.free = [...slots].sort((a, b) => a.index - b.index);
  }

  get capacity(): number {
    return this.slots.length;
  }

  get active(): number {
    return this.slots.length - this.free.length;
  }

  get queued(): number {
    return this.waiting.size;
  }

  /**
   * Admits a request synchronously: throws `QueueFullError` (nothing changed), or returns a promise of
   * its slot, which resolves to null if `signal` aborts before a slot is free. Release the slot after.
   */
  admit(key: string, signal: AbortSignal): Promise<S | null> {
    if (signal.aborted) return Promise.resolve(null);
    if (this.waiting.size === 0 && this.free.length > 0) return Promise.resolve(this.take(this.free.shift()!));
    if (this.waiting.size >= this.options.maxQueued) {
      throw new QueueFullError(this.options.model, this.retryAfterSeconds());
    }
    return new Promise<S | null>((resolve) => {
      const onAbort = (): void => {
        if (this.waiting.remove(key, waiter)) resolve(null);
      };
      const waiter: Waiter<S> = {
        key,
        grant: (slot) => {
          signal.removeEventListener("abort", onAbort);
          resolve(slot);
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(key, waiter);
    });
  }

  /** Gives the slot to the next waiter in fair order, or back to the free list. */
  release(slot: S): void {
    const since = this.heldSince.get(slot);
    if (since === undefined) throw new Error(`slot ${slot.index} of model ${this.options.model} is not held`);
    this.heldSince.delete(slot);
    // An exponentially weighted mean of how long a request holds a slot.
    this.averageServiceMs = 0.8 * this.averageServiceMs + 0.2 * (performance.now() - since);
    const next = this.waiting.shift();
    if (next) {
      next.grant(this.take(slot));
      return;
    }
    const at = this.free.findIndex((free) => free.index > slot.index);
    this.free.splice(at < 0 ? this.free.length : at, 0, slot);
  }

  /** Seconds until a request refused now could expect a slot: the queue ahead of it served `capacity` at a time. */
  retryAfterSeconds(): number {
    const rounds = Math.ceil((this.waiting.size + 1) / this.slots.length);
    const seconds = Math.ceil((rounds * this.averageServiceMs) / 1000);
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, seconds));
  }

  private take(slot: S): S {
    this.heldSince.set(slot, performance.now());
    return slot;
  }
}
