/**
 * The unit of work of one batch of blocks: entity rows are read into memory (loads asked for in
 * the same tick go to the database as one query per table), changed there by the event handlers,
 * and written back set-wise by `flush`, inside the caller's transaction.
 *
 * Counters and sums (balances, ranking aggregates) change by `increment`: the deltas are kept
 * aside and applied when the row is next read or at `flush`, so a batch loads every such row in
 * one query however many events touch it — even rows whose key is only known from a row the same
 * batch created.
 *
 * With journaling on (unfinalized blocks), the first change of a row in each block records the
 * row's previous image, so a reorg can put back exactly what those blocks changed.
 */
import { sql } from "kysely";
import { IndexerError } from "../errors.js";
import { type AnyRow, type Key, type Queryable, deleteRows, keyId, keyOf, loadRows, upsertRows } from "./rows.js";
import { type EntityName, type EntityRow, entityTables } from "./tables.js";

interface Entry {
  key: Key;
  /** Null: the row does not exist (never did, or was removed in this batch). */
  row: AnyRow | null;
  dirty: boolean;
}

interface PendingLoad {
  key: Key;
  waiters: { resolve: () => void; reject: (error: unknown) => void }[];
}

interface PendingIncrements {
  key: Key;
  /** The row to start from when it does not exist yet. */
  initial: AnyRow;
  deltas: { block: number; values: Record<string, number | bigint> }[];
}

export interface JournalEntry {
  block: number;
  table: EntityName;
  key: string;
  before: AnyRow | null;
}

export class ChangeSetError extends IndexerError {}

/** A key as a cache key: the value itself for one-column keys (most of them), JSON otherwise. */
const cacheId = (key: Key): string => (key.length === 1 ? String(key[0]) : keyId(key));

/** Adds a delta to a value: NUMERIC columns are decimal strings (exact, as bigint), others numbers. */
function addTo(value: unknown, delta: number | bigint): unknown {
  if (typeof value === "string") return (BigInt(value) + BigInt(delta)).toString();
  return (value as number) + Number(delta);
}

export class ChangeSet {
  readonly #db: Queryable;
  readonly #journaling: boolean;
  readonly #cache = new Map<EntityName, Map<string, Entry>>();
  readonly #pending = new Map<EntityName, Map<string, PendingLoad>>();
  readonly #increments = new Map<EntityName, Map<string, PendingIncrements>>();
  #loadScheduled = false;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #journal: JournalEntry[] = [];
  readonly #journaled = new Set<string>();
  #block = 0;

  constructor(db: Queryable, options: { journal: boolean }) {
    this.#db = db;
    this.#journaling = options.journal;
  }

  /** The block whose events are being applied: journal entries are filed under it. */
  atBlock(block: number): void {
    this.#block = block;
  }

  /** The row, or undefined when it does not exist. Never mutate it: `put` a new object. */
  async get<N extends EntityName>(table: N, key: Key): Promise<Readonly<EntityRow<N>> | undefined> {
    const id = cacheId(key);
    let entry = this.#tableCache(table).get(id);
    if (entry === undefined) {
      await this.#load(table, key, id);
      entry = this.#tableCache(table).get(id)!;
    }
    const increments = this.#increments.get(table)?.get(id);
    if (increments !== undefined) this.#applyIncrements(table, id, increments);
    return (entry.row ?? undefined) as EntityRow<N> | undefined;
  }

  /** Asks for a row to be loaded with the others asked for in this tick; `settled()` waits for them. */
  want(table: EntityName, key: Key): void {
    const id = cacheId(key);
    if (this.#tableCache(table).has(id) || this.#pending.get(table)?.has(id)) return;
    this.#load(table, key, id).catch(() => undefined); // the error reaches whoever awaits `settled()` or `get`
  }

  /** Like `want`, for prefetches that need the row to find what else to load. */
  async prefetch(table: EntityName, key: Key): Promise<void> {
    await this.get(table, key);
  }

  /** Resolves once every load asked for so far is done; rejects if one failed. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0 || this.#inFlight.size > 0) {
      await Promise.all([...this.#inFlight]);
      if (this.#pending.size > 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Inserts or replaces a row. Its key must have been read first (`get`), so the journal knows what was there. */
  put<N extends EntityName>(table: N, row: EntityRow<N>): void {
    const key = keyOf(entityTables[table], row);
    if (this.#increments.get(table)?.has(cacheId(key))) {
      throw new ChangeSetError(`${table} ${keyId(key)} was put with increments pending: read it first`, { table });
    }
    this.#write(table, key, row);
  }

  /** Removes a row (read first, like `put`). */
  remove(table: EntityName, key: Key): void {
    this.#write(table, key, null);
  }

  /**
   * Adds `delta` to columns of a row (created from `initial` when missing), without reading it
   * now. Deltas of one batch commute, so they are applied together, in block order, when the row
   * is read or flushed.
   */
  increment<N extends EntityName>(
    table: N,
    initial: EntityRow<N>,
    delta: Partial<Record<keyof EntityRow<N> & string, number | bigint>>,
  ): void {
    const key = keyOf(entityTables[table], initial);
    const id = cacheId(key);
    let byKey = this.#increments.get(table);
    if (byKey === undefined) this.#increments.set(table, (byKey = new Map<string, PendingIncrements>()));
    let pending = byKey.get(id);
    if (pending === undefined) byKey.set(id, (pending = { key, initial: initial, deltas: [] }));
    pending.deltas.push({ block: this.#block, values: delta as Record<string, number | bigint> });
    this.want(table, key);
  }

  /** The rows of `table` changed so far: the new row, or null where it was removed. */
  changed<N extends EntityName>(table: N): { key: Key; row: Readonly<EntityRow<N>> | null }[] {
    const entries = this.#cache.get(table);
    const changed = entries === undefined ? [] : [...entries.values()].filter((entry) => entry.dirty);
    const incremented = [...(this.#increments.get(table)?.values() ?? [])].map((pending) => ({
      key: pending.key,
      row: pending.initial,
    }));
    return [...changed, ...incremented].map(({ key, row }) => ({ key, row: row as EntityRow<N> | null }));
  }

  get journalEntries(): readonly JournalEntry[] {
    return this.#journal;
  }

  /** Applies pending increments, then writes every changed row and the journal; returns how many rows were written. */
  async flush(): Promise<number> {
    await this.settled();
    for (const [table, byKey] of this.#increments) {
      for (const [id, pending] of byKey) {
        if (!this.#tableCache(table).has(id)) await this.#load(table, pending.key, id);
        this.#applyIncrements(table, id, pending);
      }
    }
    let written = 0;
    for (const [table, entries] of this.#cache) {
      const upserts: AnyRow[] = [];
      const removals: Key[] = [];
      for (const entry of entries.values()) {
        if (!entry.dirty) continue;
        if (entry.row === null) removals.push(entry.key);
        else upserts.push(entry.row);
      }
      const spec = entityTables[table];
      if (removals.length > 0) await deleteRows(this.#db, spec, removals);
      if (upserts.length > 0) await upsertRows(this.#db, spec, upserts);
      written += upserts.length + removals.length;
    }
    if (this.#journal.length > 0) await writeJournal(this.#db, this.#journal);
    return written;
  }

  #tableCache(table: EntityName): Map<string, Entry> {
    let entries = this.#cache.get(table);
    if (entries === undefined) this.#cache.set(table, (entries = new Map<string, Entry>()));
    return entries;
  }

  /** Applies a row's pending deltas in the order they came, journaling per block like `put`. */
  #applyIncrements(table: EntityName, id: string, pending: PendingIncrements): void {
    this.#increments.get(table)!.delete(id);
    const block = this.#block;
    for (const delta of pending.deltas) {
      const current = this.#tableCache(table).get(id)!.row ?? pending.initial;
      const next: AnyRow = { ...current };
      for (const [column, value] of Object.entries(delta.values)) next[column] = addTo(current[column], value);
      this.#block = delta.block;
      this.#write(table, pending.key, next);
    }
    this.#block = block;
  }

  #write(table: EntityName, key: Key, row: AnyRow | null): void {
    const id = cacheId(key);
    const entry = this.#tableCache(table).get(id);
    if (entry === undefined) {
      throw new ChangeSetError(`${table} ${keyId(key)} was written before it was read`, { table, key: keyId(key) });
    }
    if (this.#journaling) {
      const journalId = `${this.#block}|${table}|${id}`;
      if (!this.#journaled.has(journalId)) {
        this.#journaled.add(journalId);
        this.#journal.push({ block: this.#block, table, key: keyId(key), before: entry.row });
      }
    }
    entry.row = row;
    entry.dirty = true;
  }

  #load(table: EntityName, key: Key, id: string): Promise<void> {
    let pendingForTable = this.#pending.get(table);
    if (pendingForTable === undefined) this.#pending.set(table, (pendingForTable = new Map<string, PendingLoad>()));
    let pending = pendingForTable.get(id);
    if (pending === undefined) pendingForTable.set(id, (pending = { key, waiters: [] }));
    const waiters = pending.waiters;
    const loaded = new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }));
    if (!this.#loadScheduled) {
      this.#loadScheduled = true;
      // After every microtask of this tick: the prefetch of a whole batch becomes one query per table.
      setImmediate(() => {
        const dispatch = this.#dispatchLoads();
        this.#inFlight.add(dispatch);
        void dispatch.finally(() => this.#inFlight.delete(dispatch));
      });
    }
    return loaded;
  }

  async #dispatchLoads(): Promise<void> {
    this.#loadScheduled = false;
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [table, loads] of pending) {
      const spec = entityTables[table];
      const waiters = [...loads.values()].flatMap((load) => load.waiters);
      try {
        const rows = await loadRows(
          this.#db,
          spec,
          [...loads.values()].map((load) => load.key),
        );
        const cache = this.#tableCache(table);
        for (const row of rows) {
          const key = keyOf(spec, row);
          const id = cacheId(key);
          if (!cache.has(id)) cache.set(id, { key, row, dirty: false });
        }
        for (const [id, load] of loads) if (!cache.has(id)) cache.set(id, { key: load.key, row: null, dirty: false });
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        for (const waiter of waiters) waiter.reject(error);
      }
    }
  }
}

/** Before-images go in as JSON text: nothing reads them but a rollback, which parses them in JS. */
async function writeJournal(db: Queryable, entries: readonly JournalEntry[]): Promise<void> {
  await sql`
    INSERT INTO journal (block_number, table_name, key, before)
    SELECT * FROM unnest(
      ${entries.map((entry) => entry.block)}::int8[],
      ${entries.map((entry) => entry.table)}::text[],
      ${entries.map((entry) => entry.key)}::text[],
      ${entries.map((entry) => (entry.before === null ? null : JSON.stringify(entry.before)))}::text[]
    )
  `.execute(db);
}
