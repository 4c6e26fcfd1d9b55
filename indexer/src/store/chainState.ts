/**
 * The checkpoint: which chain and deployment the rows belong to and the last block they include.
 * It is written in the same transaction as the rows of that block, so after a crash the tables
 * and the checkpoint always agree.
 */
import { sql } from "kysely";
import type { Queryable } from "./rows.js";
import type { BlocksTable, ChainStateTable } from "./tables.js";
import { entityTables } from "./tables.js";

export type ChainState = ChainStateTable;

export interface BlockRef {
  number: number;
  hash: string;
  timestamp: number;
}

export async function readChainState(db: Queryable): Promise<ChainState | undefined> {
  return db.selectFrom("chain_state").selectAll().where("id", "=", 1).executeTakeFirst();
}

/** Starts a chain's data from scratch: every table emptied, the checkpoint just before the deployment. */
export async function resetChainState(
  db: Queryable,
  identity: {
    chainId: number;
    deploymentAddress: string;
    deploymentBlock: BlockRef;
    parentOfDeployment: BlockRef & { parentHash: string };
  },
): Promise<ChainState> {
  const tables = [
    ...Object.keys(entityTables),
    "blocks",
    "journal",
    "feed",
    "probes",
    "ranking_models",
    "rankings",
    "chain_state",
  ];
  await sql`TRUNCATE ${sql.join(tables.map((name) => sql.table(name)))}`.execute(db);
  const state: ChainState = {
    id: 1,
    chain_id: identity.chainId,
    deployment_address: identity.deploymentAddress,
    deployment_block: identity.deploymentBlock.number,
    deployment_block_hash: identity.deploymentBlock.hash,
    indexed_number: identity.parentOfDeployment.number,
    indexed_hash: identity.parentOfDeployment.hash,
    indexed_timestamp: identity.parentOfDeployment.timestamp,
    finalized_number: identity.parentOfDeployment.number,
    head_number: identity.parentOfDeployment.number,
    realtime: false,
    updated_at: Date.now(),
  };
  await db.insertInto("chain_state").values(state).execute();
  // The anchor a first reorg check compares against.
  const anchor = identity.parentOfDeployment;
  await insertBlocks(db, [
    { number: anchor.number, hash: anchor.hash, parent_hash: anchor.parentHash, timestamp: anchor.timestamp },
  ]);
  return state;
}

export async function saveCheckpoint(
  db: Queryable,
  checkpoint: { indexed: BlockRef; finalized: number; head: number; realtime: boolean },
): Promise<void> {
  await db
    .updateTable("chain_state")
    .set({
      indexed_number: checkpoint.indexed.number,
      indexed_hash: checkpoint.indexed.hash,
      indexed_timestamp: checkpoint.indexed.timestamp,
      finalized_number: checkpoint.finalized,
      head_number: checkpoint.head,
      realtime: checkpoint.realtime,
      updated_at: Date.now(),
    })
    .where("id", "=", 1)
    .execute();
}

/** Records the chain head the writer saw, for API-only replicas' `_meta.lag`. */
export async function saveHead(db: Queryable, head: number): Promise<void> {
  await db.updateTable("chain_state").set({ head_number: head, updated_at: Date.now() }).where("id", "=", 1).execute();
}

export async function insertBlocks(db: Queryable, blocks: readonly BlocksTable[]): Promise<void> {
  if (blocks.length === 0) return;
  await sql`
    INSERT INTO blocks (number, hash, parent_hash, timestamp)
    SELECT * FROM unnest(
      ${blocks.map((block) => block.number)}::int8[],
      ${blocks.map((block) => block.hash)}::text[],
      ${blocks.map((block) => block.parent_hash)}::text[],
      ${blocks.map((block) => block.timestamp)}::int8[]
    )
    ON CONFLICT (number) DO UPDATE SET hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash, timestamp = EXCLUDED.timestamp
  `.execute(db);
}

/** Unfinalized blocks the indexer applied, newest first. */
export async function readBlocks(db: Queryable): Promise<BlocksTable[]> {
  return db.selectFrom("blocks").selectAll().orderBy("number", "desc").execute();
}
