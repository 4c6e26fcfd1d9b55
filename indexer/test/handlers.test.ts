/**
 * Events the local token cannot produce (RefundCredited needs a token that refuses transfers), fed
 * to the handlers as a decoded batch: the refund is claimable, a claim empties every role, and a
 * claim that disagrees with the indexed balance is reported.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Hex } from "viem";
import type { MarketEvent } from "../src/events/decode.js";
import type { LogRecord } from "../src/log.js";
import { parseConfig } from "../src/config.js";
import { resetChainState } from "../src/store/chainState.js";
import { type OpenDatabase, openDatabase } from "../src/store/database.js";
import { migrateToLatest } from "../src/store/migrations.js";
import { commitBatch } from "../src/sync/commitBatch.js";
import { backends, createTestDatabase, type TestDatabase } from "./helpers/databases.js";
import { collectingLogger } from "./helpers/indexer.js";

const USER = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65";
const hash = (n: number): Hex => `0x${n.toString(16).padStart(64, "0")}`;

function escrowEvent(name: "RefundCredited" | "Claimed", args: Record<string, unknown>, block: number): MarketEvent {
  return {
    contract: "escrow",
    name,
    args,
    blockNumber: block,
    blockHash: hash(block),
    transactionHash: hash(1000 + block),
    logIndex: 0,
  } as unknown as MarketEvent;
}

for (const backend of backends) {
  void describe(`escrow events without a chain (${backend})`, () => {
    let testDatabase: TestDatabase;
    let database: OpenDatabase;
    const logs: LogRecord[] = [];
    const commit = (events: MarketEvent[], block: number) =>
      commitBatch(
        database.db,
        {
          fromBlock: block,
          toBlock: block,
          events,
          timestamps: new Map([[block, 1_700_000_000 + block]]),
          end: { number: block, hash: hash(block), timestamp: 1_700_000_000 + block },
          headers: [
            { number: block, hash: hash(block), parent_hash: hash(block - 1), timestamp: 1_700_000_000 + block },
          ],
        },
        {
          finalized: block,
          head: block,
          mode: "backfill",
          notifyChannel: null,
          logger: collectingLogger(logs),
          ranking: parseConfig({ chain: { rpcUrls: ["http://x"] } }).ranking,
        },
      );
    const balances = () =>
      database.db
        .selectFrom("balances")
        .select(["role", "earned", "claimed"])
        .where("account", "=", USER)
        .orderBy("role")
        .execute();

    before(async () => {
      testDatabase = await createTestDatabase(backend);
      const { url, schema, dataDir } = testDatabase.config;
      database = await openDatabase(
        url === undefined ? { kind: "pglite", dataDir } : { kind: "postgres", url, schema },
      );
      await migrateToLatest(database.db, database.schema);
      await database.db.transaction().execute((tx) =>
        resetChainState(tx, {
          chainId: 31337,
          deploymentAddress: USER,
          deploymentBlock: { number: 1, hash: hash(1), timestamp: 1 },
          parentOfDeployment: { number: 0, hash: hash(0), parentHash: hash(0), timestamp: 0 },
        }),
      );
    });

    after(async () => {
      await database.close();
      await testDatabase.drop();
    });

    void test("a refund the token refused becomes the user's claimable balance", async () => {
      await commit([escrowEvent("RefundCredited", { user: USER, amount: 7n * 10n ** 18n }, 2)], 2);
      assert.deepEqual(await balances(), [{ role: "refund", earned: (7n * 10n ** 18n).toString(), claimed: "0" }]);
    });

    void test("a claim takes it; a claim that disagrees with the books is reported, and still empties them", async () => {
      await commit([escrowEvent("Claimed", { account: USER, to: USER, amount: 7n * 10n ** 18n }, 3)], 3);
      assert.deepEqual(await balances(), [
        { role: "refund", earned: (7n * 10n ** 18n).toString(), claimed: (7n * 10n ** 18n).toString() },
      ]);
      assert.equal(logs.filter((log) => log.level === "warn").length, 0);
      await commit(
        [
          escrowEvent("RefundCredited", { user: USER, amount: 1n }, 4),
          escrowEvent("Claimed", { account: USER, to: USER, amount: 5n }, 4),
        ],
        4,
      );
      const warning = logs.find((log) => log.msg === "a claim differs from the indexed balance");
      assert.deepEqual([warning?.claimed, warning?.indexed, warning?.block], ["5", "1", 4]);
      const [refund] = await balances();
      assert.equal(refund!.earned, refund!.claimed);
    });
  });
}
