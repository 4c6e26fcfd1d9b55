/**
 * The storage layer on each backend, without a chain: the migrated schema matches the table
 * descriptions the write path uses, and the reorg journal undoes inserts, updates and deletes
 * made across several blocks exactly.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import { ChangeSet } from "../src/store/changeSet.js";
import type { Columns } from "../src/store/columns.js";
import { type OpenDatabase, openDatabase } from "../src/store/database.js";
import { appendFeed, readFeedAfter, retractFeedAbove } from "../src/store/feed.js";
import { rollbackEntities } from "../src/store/journal.js";
import { migrateToLatest } from "../src/store/migrations.js";
import { type BidRow, entityTables } from "../src/store/tables.js";
import { backends, createTestDatabase, type TestDatabase } from "./helpers/databases.js";

const bid = (id: string, price: string, block: number): BidRow => ({
  id,
  provider: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  model_id: `0x${"ab".repeat(32)}`,
  price_per_second: price,
  price_per_input_token: "1",
  price_per_output_token: "2",
  active: true,
  fees_paid: "1000000000000000000",
  posted_block: block,
  updated_block: block,
});

const pgType: Record<string, string> = {
  text: "text",
  numeric: "numeric",
  int8: "bigint",
  int4: "integer",
  bool: "boolean",
  float8: "double precision",
  jsonb: "jsonb",
};

for (const backend of backends) {
  void describe(`store on ${backend}`, () => {
    let testDatabase: TestDatabase;
    let database: OpenDatabase;

    before(async () => {
      testDatabase = await createTestDatabase(backend);
      const { url, schema, dataDir } = testDatabase.config;
      database = await openDatabase(
        url === undefined ? { kind: "pglite", dataDir } : { kind: "postgres", url, schema },
      );
      await migrateToLatest(database.db, database.schema);
    });

    after(async () => {
      await database.close();
      await testDatabase.drop();
    });

    void test("the migrated tables have exactly the columns the write path describes", async () => {
      for (const spec of Object.values(entityTables)) {
        const columns = await sql<{ column_name: string; data_type: string; is_nullable: string }>`
          SELECT column_name, data_type, is_nullable FROM information_schema.columns
          WHERE table_schema = ${database.schema} AND table_name = ${spec.name}
        `.execute(database.db);
        const actual = Object.fromEntries(
          columns.rows.map((row) => [row.column_name, `${row.data_type}${row.is_nullable === "YES" ? " null" : ""}`]),
        );
        const expected = Object.fromEntries(
          Object.entries(spec.columns as Columns).map(([name, column]) => [
            name,
            `${pgType[column.pg]}${column.nullable ? " null" : ""}`,
          ]),
        );
        assert.deepEqual(actual, expected, spec.name);
      }
    });

    void test("a second writer is refused", async () => {
      await database.lockWriter();
      const { url, schema, dataDir } = testDatabase.config;
      await assert.rejects(
        (async () => {
          const second = await openDatabase(
            url === undefined ? { kind: "pglite", dataDir } : { kind: "postgres", url, schema },
          );
          try {
            await second.lockWriter();
          } finally {
            await second.close();
          }
        })(),
        /in use by process|another indexer is writing to schema/,
      );
    });

    void test("migrating again changes nothing", async () => {
      await migrateToLatest(database.db, database.schema);
    });

    void test("a rollback undoes inserts, updates and deletes of several blocks, keeping earlier blocks", async () => {
      const write = (block: number, change: (rows: ChangeSet) => Promise<void>) =>
        database.db.transaction().execute(async (tx) => {
          const rows = new ChangeSet(tx, { journal: true });
          rows.atBlock(block);
          await change(rows);
          await rows.flush();
        });
      const a = `0x${"01".repeat(32)}`;
      const b = `0x${"02".repeat(32)}`;
      const c = `0x${"03".repeat(32)}`;
      // Block 10: a and b exist. (Kept.)
      await write(10, async (rows) => {
        await rows.get("bids", [a]);
        await rows.get("bids", [b]);
        rows.put("bids", bid(a, "100", 10));
        rows.put("bids", bid(b, "200", 10));
      });
      const before = await database.db.selectFrom("bids").selectAll().orderBy("id").execute();
      // Block 11: a updated twice, b deleted, c created. Block 12: c updated, a deleted.
      await write(11, async (rows) => {
        const current = (await rows.get("bids", [a]))!;
        rows.put("bids", { ...current, price_per_second: "101", updated_block: 11 });
        rows.put("bids", { ...current, price_per_second: "102", updated_block: 11 });
        await rows.get("bids", [b]);
        rows.remove("bids", [b]);
        await rows.get("bids", [c]);
        rows.put("bids", bid(c, "300", 11));
      });
      await write(12, async (rows) => {
        const current = (await rows.get("bids", [c]))!;
        rows.put("bids", { ...current, price_per_second: "301", updated_block: 12 });
        await rows.get("bids", [a]);
        rows.remove("bids", [a]);
      });
      assert.deepEqual(
        (await database.db.selectFrom("bids").select(["id", "price_per_second"]).orderBy("id").execute()).map(
          (row) => `${row.id.slice(0, 4)}=${row.price_per_second}`,
        ),
        ["0x03=301"],
      );

      const result = await database.db.transaction().execute((tx) => rollbackEntities(tx, 10));
      assert.deepEqual(result, { restored: 2, deleted: 1 });
      assert.deepEqual(await database.db.selectFrom("bids").selectAll().orderBy("id").execute(), before);
      const journal = await database.db.selectFrom("journal").selectAll().where("block_number", ">", 10).execute();
      assert.equal(journal.length, 0);
    });

    void test("a row written before it was read is refused: the journal would not know what was there", () => {
      const rows = new ChangeSet(database.db, { journal: true });
      assert.throws(() => rows.put("bids", bid(`0x${"09".repeat(32)}`, "1", 1)), /written before it was read/);
    });

    void test("uint256 amounts survive the round trip exactly", async () => {
      const huge = (2n ** 256n - 1n).toString();
      const id = `0x${"0a".repeat(32)}`;
      await database.db.transaction().execute(async (tx) => {
        const rows = new ChangeSet(tx, { journal: false });
        await rows.get("bids", [id]);
        rows.put("bids", bid(id, huge, 1));
        await rows.flush();
      });
      const row = await database.db
        .selectFrom("bids")
        .select("price_per_second")
        .where("id", "=", id)
        .executeTakeFirstOrThrow();
      assert.equal(row.price_per_second, huge);
    });

    void test("a reorg appends one retraction per live event it undoes, once", async () => {
      const entry = (block: number, kind: "sessionOpened" | "bidChanged") => ({
        blockNumber: block,
        blockHash: `0x${block.toString(16).padStart(64, "0")}`,
        kind,
        payload: { block },
      });
      await appendFeed(database.db, [entry(20, "bidChanged"), entry(21, "sessionOpened"), entry(22, "bidChanged")]);
      assert.equal(await database.db.transaction().execute((tx) => retractFeedAbove(tx, 20)), 2);
      assert.equal(await database.db.transaction().execute((tx) => retractFeedAbove(tx, 20)), 0);
      const feed = await readFeedAfter(database.db, 0);
      assert.deepEqual(
        feed.map((row) => `${row.block_number}:${row.kind}:${row.removed ? "removed" : "added"}`),
        [
          "20:bidChanged:added",
          "21:sessionOpened:added",
          "22:bidChanged:added",
          "22:bidChanged:removed",
          "21:sessionOpened:removed",
        ],
      );
    });
  });
}
