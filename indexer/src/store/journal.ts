/**
 * The reorg journal: undoing blocks, and forgetting them once they are final.
 *
 * Each journal row is the image of an entity row before a given block first changed it. To undo
 * every block above an ancestor, each touched row gets the image recorded by the *earliest* undone
 * block that touched it — the row as it stood at the ancestor — or is deleted when that image is
 * null (the row did not exist yet).
 */
import { sql } from "kysely";
import type { Queryable } from "./rows.js";
import { type AnyRow, deleteRows, parseKeyId, upsertRows } from "./rows.js";
import { type EntityName, entityTables } from "./tables.js";

export interface RollbackResult {
  restored: number;
  deleted: number;
}

export async function rollbackEntities(db: Queryable, ancestor: number): Promise<RollbackResult> {
  const journal = await sql<{ table_name: string; key: string; before: string | null }>`
    SELECT table_name, key, before FROM journal WHERE block_number > ${ancestor} ORDER BY block_number, id
  `.execute(db);

  const oldest = new Map<EntityName, Map<string, AnyRow | null>>();
  for (const entry of journal.rows) {
    const table = entry.table_name as EntityName;
    let images = oldest.get(table);
    if (images === undefined) oldest.set(table, (images = new Map<string, AnyRow | null>()));
    if (!images.has(entry.key))
      images.set(entry.key, entry.before === null ? null : (JSON.parse(entry.before) as AnyRow));
  }

  let restored = 0;
  let deleted = 0;
  for (const [table, images] of oldest) {
    const spec = entityTables[table];
    const rows: AnyRow[] = [];
    const removals = [];
    for (const [key, before] of images) {
      if (before === null) removals.push(parseKeyId(key));
      else rows.push(before);
    }
    // Delete first: a restored row never collides with a row the undone blocks created.
    if (removals.length > 0) await deleteRows(db, spec, removals);
    if (rows.length > 0) await upsertRows(db, spec, rows);
    restored += rows.length;
    deleted += removals.length;
  }
  await sql`DELETE FROM journal WHERE block_number > ${ancestor}`.execute(db);
  await sql`DELETE FROM blocks WHERE number > ${ancestor}`.execute(db);
  return { restored, deleted };
}

/** Drops what only a reorg could need below `finalized` (keeping that block itself, the chain's anchor). */
export async function pruneFinalized(db: Queryable, finalized: number): Promise<void> {
  await sql`DELETE FROM journal WHERE block_number <= ${finalized}`.execute(db);
  await sql`DELETE FROM blocks WHERE number < ${finalized}`.execute(db);
}
