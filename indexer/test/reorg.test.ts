/**
 * Reorganisations on a real `hardhat node`: `evm_snapshot`, a branch of blocks with market events,
 * `evm_revert`, a different branch. The indexer must end with exactly what a fresh index of the
 * new chain holds, and its subscribers must have been told, event by event, what was retracted.
 * A reorg deeper than the finality depth stops the indexer with a clear error.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Hex } from "viem";
import { marketplaceAbi } from "../../protocol/index.js";
import { DeepReorgError } from "../src/sync/realtime.js";
import { assertSameRows } from "./helpers/compare.js";
import { backends } from "./helpers/databases.js";
import { subscribe } from "./helpers/graphql.js";
import { type TestIndexer, startTestIndexer } from "./helpers/indexer.js";
import { E18, MarketDriver, type Prices } from "./helpers/market.js";
import { waitFor } from "./helpers/wait.js";

const PRICES: Prices = { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 4n * 10n ** 9n };
const STATS = { inputTokens: 500n, outputTokens: 300n, ttftMsAvg: 90, tpsX1000Avg: 50_000 };

interface SessionEventJson {
  sessionOpened?: { removed: boolean; blockHash: string; session: { id: string } };
  sessionSettled?: { removed: boolean; blockHash: string; session: { id: string } };
}
interface BidEventJson {
  bidChanged: { removed: boolean; change: string; blockNumber: number; bid: { id: string; pricePerSecond: string } };
}

let market: MarketDriver;
let bidId: Hex;

before(async () => {
  market = await MarketDriver.start();
  const [, provider, operator, owner] = market.accounts;
  await market.registerProvider(provider!, { operator: operator!.address });
  const modelId = await market.registerModel(owner!);
  bidId = await market.postBid(provider!, modelId, PRICES);
});

after(async () => {
  await market.stop();
});

for (const backend of backends) {
  void describe(`reorgs on ${backend}`, () => {
    void test("a replaced branch is undone row by row, re-applied, and retracted to subscribers", async () => {
      const [, provider, operator, , user] = market.accounts;
      const indexer = await startTestIndexer(market, backend, { chain: { finalityDepth: 20 } });
      let fresh: TestIndexer | undefined;
      const sessions = subscribe<SessionEventJson>(
        indexer.url,
        "subscription { sessionOpened { removed blockHash session { id } } }",
      );
      const settlements = subscribe<SessionEventJson>(
        indexer.url,
        "subscription { sessionSettled { removed blockHash session { id } } }",
      );
      const bids = subscribe<BidEventJson>(
        indexer.url,
        "subscription { bidChanged { removed change blockNumber bid { id pricePerSecond } } }",
      );
      try {
        await indexer.caughtUp();
        await Promise.all([sessions.opened, settlements.opened, bids.opened]);
        const snapshot = await market.snapshot();

        // Branch A: a session opened and settled, a price change, a claim, and an empty block.
        const a = await market.openSession({ user: user!, bidId, signer: operator!, deposit: 5n * E18 });
        await market.increaseTime(30);
        await market.settleByProvider(a, operator!, STATS);
        await market.send(provider!, market.addresses.marketplace, marketplaceAbi, "updateBid", [
          bidId,
          { ...PRICES, perSecond: 7n * 10n ** 12n },
        ]);
        await market.claim(provider!);
        await market.mine(1);
        await indexer.caughtUp();
        await waitFor(
          "branch A's events",
          () => sessions.events.length === 1 && settlements.events.length === 1 && bids.events.length === 1,
        );

        // Branch B, longer: another session (opened, not settled) and another price.
        await market.revert(snapshot);
        await market.increaseTime(5);
        const b = await market.openSession({ user: user!, bidId, signer: provider!, deposit: 3n * E18 });
        await market.send(provider!, market.addresses.marketplace, marketplaceAbi, "updateBid", [
          bidId,
          { ...PRICES, perSecond: 9n * 10n ** 12n },
        ]);
        await market.mine(6);
        await indexer.caughtUp();

        // Subscribers: A's events, their retractions, then B's.
        await waitFor(
          "the retractions and branch B's events",
          () => sessions.events.length === 3 && bids.events.length === 3,
        );
        const opened = sessions.events.map((event) => event.sessionOpened!);
        assert.deepEqual(
          opened.map((event) => [event.session.id, event.removed]),
          [
            [a.sessionId, false],
            [a.sessionId, true],
            [b.sessionId, false],
          ],
        );
        assert.equal(opened[0]!.blockHash, opened[1]!.blockHash, "a retraction names the block it retracts");
        assert.deepEqual(
          settlements.events.map((event) => [event.sessionSettled!.session.id, event.sessionSettled!.removed]),
          [
            [a.sessionId, false],
            [a.sessionId, true],
          ],
        );
        assert.deepEqual(
          bids.events.map((event) => [event.bidChanged.bid.pricePerSecond, event.bidChanged.removed]),
          [
            [(7n * 10n ** 12n).toString(), false],
            [(7n * 10n ** 12n).toString(), true],
            [(9n * 10n ** 12n).toString(), false],
          ],
        );
        const reorgs = (await indexer.metrics.reorgsTotal.get()).values[0]?.value ?? 0;
        assert.ok(reorgs >= 1, "the reorg is counted in /metrics");

        // The tables equal a fresh index of the chain as it is now.
        fresh = await startTestIndexer(market, backend, { chain: { finalityDepth: 20 } });
        await fresh.caughtUp();
        await indexer.caughtUp();
        await assertSameRows(indexer.database.db, fresh.database.db);

        // A branch that ends lower than the indexed head: undone without any new block to trigger it.
        const again = await market.snapshot();
        await market.send(provider!, market.addresses.marketplace, marketplaceAbi, "updateBid", [
          bidId,
          { ...PRICES, perSecond: 11n * 10n ** 12n },
        ]);
        await market.mine(3);
        await indexer.caughtUp();
        await fresh.caughtUp();
        await market.revert(again);
        // Both indexers (the fresh one indexed the short branch too) must undo it, with no new block to wake them.
        const head = await market.public.getBlock();
        for (const each of [indexer, fresh]) {
          await waitFor("the shorter branch to be undone", async () => {
            const state = await each.database.db.selectFrom("chain_state").selectAll().executeTakeFirstOrThrow();
            return state.indexed_number === Number(head.number) && state.indexed_hash === head.hash;
          });
        }
        await assertSameRows(indexer.database.db, fresh.database.db);
      } finally {
        sessions.close();
        settlements.close();
        bids.close();
        await fresh?.dispose();
        await indexer.dispose();
      }
    });

    void test("a reorg deeper than the finality depth stops the indexer loudly", async () => {
      const [, provider] = market.accounts;
      const indexer = await startTestIndexer(market, backend, { chain: { finalityDepth: 2 } });
      try {
        await indexer.caughtUp();
        const snapshot = await market.snapshot();
        await market.send(provider!, market.addresses.marketplace, marketplaceAbi, "updateBid", [
          bidId,
          { ...PRICES, perSecond: 3n * 10n ** 12n },
        ]);
        await market.mine(5);
        await indexer.caughtUp();
        await market.revert(snapshot);
        await market.mine(8);
        await assert.rejects(indexer.done, (error: unknown) => {
          assert.ok(error instanceof DeepReorgError, String(error));
          assert.match(error.message, /reorg deeper than the finality depth \(2 blocks\)/);
          return true;
        });
        assert.equal(indexer.engine.status.phase, "failed");
        const ready = await fetch(`${indexer.url}/ready`);
        assert.equal(ready.status, 503);
      } finally {
        await indexer.dispose();
      }
    });
  });
}
