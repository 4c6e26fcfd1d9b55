/**
 * Per-request batching of to-one relations: every `session.provider` of a page resolves through
 * one `WHERE address IN (…)` query instead of one query per session.
 */
import type { Db } from "../store/database.js";
import type { BidRow, ModelRow, ProbesTable, ProviderRow, StakeRow } from "../store/tables.js";

export class BatchLoader<V> {
  readonly #fetch: (keys: string[]) => Promise<Map<string, V>>;
  readonly #cache = new Map<string, Promise<V | undefined>>();
  #batch: { keys: Set<string>; result: Promise<Map<string, V>> } | undefined;

  constructor(fetch: (keys: string[]) => Promise<Map<string, V>>) {
    this.#fetch = fetch;
  }

  load(key: string): Promise<V | undefined> {
    let value = this.#cache.get(key);
    if (value === undefined) {
      const batch = this.#currentBatch();
      batch.keys.add(key);
      value = batch.result.then((found) => found.get(key));
      this.#cache.set(key, value);
    }
    return value;
  }

  #currentBatch() {
    if (this.#batch === undefined) {
      const keys = new Set<string>();
      const result = new Promise<Map<string, V>>((resolve, reject) => {
        // Collect every key asked for in this tick, then fetch them together.
        setImmediate(() => {
          this.#batch = undefined;
          this.#fetch([...keys]).then(resolve, reject);
        });
      });
      this.#batch = { keys, result };
    }
    return this.#batch;
  }
}

const byKey = <V>(rows: V[], key: (row: V) => string) => new Map(rows.map((row) => [key(row), row]));

export function createLoaders(db: Db) {
  return {
    provider: new BatchLoader<ProviderRow>(async (keys) =>
      byKey(await db.selectFrom("providers").selectAll().where("address", "in", keys).execute(), (row) => row.address),
    ),
    model: new BatchLoader<ModelRow>(async (keys) =>
      byKey(await db.selectFrom("models").selectAll().where("id", "in", keys).execute(), (row) => row.id),
    ),
    bid: new BatchLoader<BidRow>(async (keys) =>
      byKey(await db.selectFrom("bids").selectAll().where("id", "in", keys).execute(), (row) => row.id),
    ),
    stake: new BatchLoader<StakeRow>(async (keys) =>
      byKey(await db.selectFrom("stakes").selectAll().where("account", "in", keys).execute(), (row) => row.account),
    ),
    /** The latest probe of each provider. */
    health: new BatchLoader<ProbesTable>(async (keys) =>
      byKey(
        await db
          .selectFrom("probes")
          .selectAll()
          .distinctOn("provider")
          .where("provider", "in", keys)
          .orderBy("provider")
          .orderBy("day", "desc")
          .execute(),
        (row) => row.provider,
      ),
    ),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
