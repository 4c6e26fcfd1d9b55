/**
 * Subscriptions: one reader per API process follows the feed table (woken by the writer in this
 * process, or by PostgreSQL NOTIFY in a replica, and by a slow poll in case a wake-up is lost) and
 * hands each new row to the subscribers whose filter it matches.
 */
import { Repeater } from "graphql-yoga";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import type { Db } from "../store/database.js";
import { type FeedKind, type FeedRow, type FeedSignal, latestFeedSeq, readFeedAfter } from "../store/feed.js";

/** How often the reader looks at the feed without a wake-up. */
const POLL_MS = 2_000;

interface Subscriber {
  kind: FeedKind;
  matches(row: FeedRow): boolean;
  push(row: FeedRow): void;
}

export class FeedHub {
  readonly #db: Db;
  readonly #logger: Logger;
  readonly #subscribers = new Set<Subscriber>();
  #cursor = 0;
  #reading: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribeSignal: (() => void) | undefined;

  constructor(db: Db, logger: Logger) {
    this.#db = db;
    this.#logger = logger;
  }

  /** Starts after the feed's current end: subscribers see what happens from now on. */
  async start(signal: FeedSignal): Promise<void> {
    this.#cursor = await latestFeedSeq(this.#db);
    this.#unsubscribeSignal = signal.subscribe(() => this.#read());
    this.#timer = setInterval(() => this.#read(), POLL_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#unsubscribeSignal?.();
    await this.#reading;
  }

  /** The rows of `kind` that match, from now on, until the client goes away. */
  subscribe(kind: FeedKind, matches: (row: FeedRow) => boolean): AsyncIterableIterator<FeedRow> {
    return new Repeater<FeedRow>(async (push, stop) => {
      const subscriber: Subscriber = { kind, matches, push: (row) => void push(row) };
      this.#subscribers.add(subscriber);
      await stop;
      this.#subscribers.delete(subscriber);
    });
  }

  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  #read(): void {
    if (this.#reading !== undefined) {
      this.#again = true;
      return;
    }
    this.#reading = this.#drain()
      .catch((error: unknown) =>
        this.#logger.warn("reading the subscription feed failed", { error: errorMessage(error) }),
      )
      .finally(() => {
        this.#reading = undefined;
        if (this.#again) {
          this.#again = false;
          this.#read();
        }
      });
  }

  async #drain(): Promise<void> {
    for (;;) {
      const rows = await readFeedAfter(this.#db, this.#cursor);
      for (const row of rows) {
        this.#cursor = row.seq;
        for (const subscriber of this.#subscribers) {
          if (subscriber.kind === row.kind && subscriber.matches(row)) subscriber.push(row);
        }
      }
      if (rows.length === 0) return;
    }
  }
}
