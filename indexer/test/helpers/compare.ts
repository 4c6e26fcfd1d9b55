/** Row-by-row comparison of what two indexers built (entity tables and stored rankings). */
import assert from "node:assert/strict";
import { sql } from "kysely";
import type { Db } from "../../src/store/database.js";
import { entityTables } from "../../src/store/tables.js";

/** Every entity row and stored ranking, keyed by table, in primary-key order. */
export async function snapshotRows(db: Db): Promise<Record<string, unknown[]>> {
  const tables: Record<string, unknown[]> = {};
  for (const spec of Object.values(entityTables)) {
    const order = sql.join(spec.key.map((column) => sql.ref(column)));
    tables[spec.name] = (await sql`SELECT * FROM ${sql.table(spec.name)} ORDER BY ${order}`.execute(db)).rows;
  }
  tables.rankings = (
    await sql`SELECT model_id, rank, provider, bid_id, score, parts, metrics FROM rankings ORDER BY model_id, rank`.execute(
      db,
    )
  ).rows;
  return tables;
}

export async function assertSameRows(actual: Db, expected: Db): Promise<void> {
  const [left, right] = await Promise.all([snapshotRows(actual), snapshotRows(expected)]);
  for (const table of Object.keys(right)) assert.deepEqual(left[table], right[table], `table ${table}`);
}
