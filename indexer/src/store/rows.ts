/**
 * Set-based reads and writes of entity rows, generic over a table's description: one statement per
 * few thousand rows, each column sent as one array and expanded with `unnest` (the fastest way to
 * write many rows that both PGlite and PostgreSQL offer through a plain query).
 */
import { type Kysely, type RawBuilder, sql } from "kysely";
import type { AnyTableSpec, Column } from "./columns.js";
import type { Database } from "./tables.js";

/** A Kysely instance or a transaction: everything here runs inside the caller's transaction. */
export type Queryable = Kysely<Database>;

export type KeyValue = string | number;
export type Key = readonly KeyValue[];
export type AnyRow = Record<string, unknown>;

const STATEMENT_ROWS = 5_000;

/** A key as one string: the map key of caches and the `key` column of the journal. */
export const keyId = (key: Key): string => JSON.stringify(key);
export const parseKeyId = (id: string): Key => JSON.parse(id) as Key;

export const keyOf = (spec: AnyTableSpec, row: AnyRow): Key => spec.key.map((column) => row[column] as KeyValue);

/** A value as it goes into a PostgreSQL array literal (pg serialises the array itself). */
function toArrayElement(value: unknown, column: Column): unknown {
  if (value === null || value === undefined) {
    if (!column.nullable) throw new TypeError(`a non-null column got ${String(value)}`);
    return null;
  }
  // jsonb goes as JSON text; an array value would otherwise become a nested PostgreSQL array.
  if (column.pg === "jsonb") return JSON.stringify(value);
  return value;
}

function unnestArrays(spec: AnyTableSpec, columns: readonly string[], rows: readonly AnyRow[]): RawBuilder<unknown> {
  return sql.join(
    columns.map((name) => {
      const column = spec.columns[name]!;
      const values = rows.map((row) => toArrayElement(row[name], column));
      return sql`${values}::${sql.raw(column.pg)}[]`;
    }),
  );
}

function* batches<T>(items: readonly T[]): Generator<readonly T[]> {
  for (let start = 0; start < items.length; start += STATEMENT_ROWS) yield items.slice(start, start + STATEMENT_ROWS);
}

/** INSERT … ON CONFLICT DO UPDATE of whole rows. */
export async function upsertRows(db: Queryable, spec: AnyTableSpec, rows: readonly AnyRow[]): Promise<void> {
  const columns = Object.keys(spec.columns);
  const updated = columns.filter((name) => !spec.key.includes(name));
  const conflictAction =
    updated.length === 0
      ? sql`DO NOTHING`
      : sql`DO UPDATE SET ${sql.join(updated.map((name) => sql`${sql.ref(name)} = EXCLUDED.${sql.ref(name)}`))}`;
  for (const batch of batches(rows)) {
    await sql`
      INSERT INTO ${sql.table(spec.name)} (${sql.join(columns.map((name) => sql.ref(name)))})
      SELECT * FROM unnest(${unnestArrays(spec, columns, batch)})
      ON CONFLICT (${sql.join(spec.key.map((name) => sql.ref(name)))}) ${conflictAction}
    `.execute(db);
  }
}

function keyRows(spec: AnyTableSpec, keys: readonly Key[]): AnyRow[] {
  return keys.map((key) => Object.fromEntries(spec.key.map((name, index) => [name, key[index]])));
}

function keyJoin(spec: AnyTableSpec, keys: readonly Key[]) {
  const keyColumns = spec.key.map((name) => sql.ref(`k.${name}`));
  const unnest = sql`unnest(${unnestArrays(spec, spec.key, keyRows(spec, keys))}) AS k(${sql.join(
    spec.key.map((name) => sql.ref(name)),
  )})`;
  const matches = sql.join(
    spec.key.map((name, index) => sql`${sql.ref(`t.${name}`)} = ${keyColumns[index]}`),
    sql` AND `,
  );
  return { unnest, matches };
}

export async function deleteRows(db: Queryable, spec: AnyTableSpec, keys: readonly Key[]): Promise<void> {
  for (const batch of batches(keys)) {
    const { unnest, matches } = keyJoin(spec, batch);
    await sql`DELETE FROM ${sql.table(spec.name)} AS t USING ${unnest} WHERE ${matches}`.execute(db);
  }
}

/** The rows that exist among `keys`, in no particular order. */
export async function loadRows(db: Queryable, spec: AnyTableSpec, keys: readonly Key[]): Promise<AnyRow[]> {
  const found: AnyRow[] = [];
  for (const batch of batches(keys)) {
    const { unnest, matches } = keyJoin(spec, batch);
    const result = await sql<AnyRow>`SELECT t.* FROM ${sql.table(spec.name)} AS t JOIN ${unnest} ON ${matches}`.execute(
      db,
    );
    found.push(...result.rows);
  }
  return found;
}
