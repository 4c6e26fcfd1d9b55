/**
 * The RPC side, against a real node behind a proxy that behaves like public endpoints do: ranges
 * refused with and without a stated limit, endpoints that are down. Then the whole indexer through
 * such endpoints, and following heads over a websocket.
 */
import assert from "node:assert/strict";
import { type Server, createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { silentLogger } from "../src/log.js";
import { ChunkSizer, fetchLogs, suggestedSpan } from "../src/sync/logChunks.js";
import { RpcClient, RpcUnavailableError } from "../src/sync/rpc.js";
import { MarketLogDecoder } from "../src/events/decode.js";
import { backends } from "./helpers/databases.js";
import { startTestIndexer } from "./helpers/indexer.js";
import { MarketDriver } from "./helpers/market.js";
import { rpcProxy } from "./helpers/rpc-proxy.js";
import { waitFor } from "./helpers/wait.js";

/** A URL where nothing listens. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${address.port}`;
}

let market: MarketDriver;
const servers: Server[] = [];

before(async () => {
  market = await MarketDriver.start();
  const [, provider, , owner] = market.accounts;
  await market.registerProvider(provider!);
  const modelId = await market.registerModel(owner!);
  const bidId = await market.postBid(provider!, modelId, { perSecond: 1n, perInputToken: 1n, perOutputToken: 1n });
  for (let i = 0; i < 12; i++) {
    await market.send(
      provider!,
      market.addresses.marketplace,
      (await import("../../protocol/index.js")).marketplaceAbi,
      "updateBid",
      [bidId, { perSecond: BigInt(i + 2), perInputToken: 1n, perOutputToken: 1n }],
    );
  }
});

after(async () => {
  await market.stop();
  for (const server of servers) server.close();
});

const client = (urls: string[]) =>
  new RpcClient(urls, { timeoutMs: 5_000, retries: 2, retryDelayMs: 10, cooldownMs: 60_000, logger: silentLogger });

void describe("eth_getLogs adapts to what the node accepts", () => {
  void test("a stated limit is taken at its word; later ranges stay under it", async () => {
    const proxy = await rpcProxy(market.chain.rpcUrl, {
      maxBlocks: 5,
      refusal: (limit) => `query exceeds max block range ${limit}`,
    });
    servers.push(proxy.server);
    const decoder = new MarketLogDecoder(market.addresses);
    const head = await market.blockNumber();
    const direct = await client([market.chain.rpcUrl]).getLogs({
      address: decoder.addresses,
      fromBlock: 0,
      toBlock: head,
    });
    const sizer = new ChunkSizer({ initialBlocks: 1_000, maxBlocks: 10_000, targetLogs: 10_000 });
    const logs = await fetchLogs(client([proxy.url]), decoder.addresses, 0, head, sizer);
    assert.deepEqual(logs, direct, "every log, in order, once");
    assert.ok(sizer.ceiling <= 5 && sizer.span <= 5, `span ${sizer.span} under the node's limit`);
    assert.ok(proxy.stats.refused >= 1);
  });

  void test("a refusal without a number halves the range until it passes", async () => {
    const proxy = await rpcProxy(market.chain.rpcUrl, {
      maxBlocks: 3,
      refusal: () => "query returned more than 10000 results",
    });
    servers.push(proxy.server);
    const decoder = new MarketLogDecoder(market.addresses);
    const head = await market.blockNumber();
    const sizer = new ChunkSizer({ initialBlocks: 64, maxBlocks: 10_000, targetLogs: 10_000 });
    const logs = await fetchLogs(client([proxy.url]), decoder.addresses, 0, head, sizer);
    const direct = await client([market.chain.rpcUrl]).getLogs({
      address: decoder.addresses,
      fromBlock: 0,
      toBlock: head,
    });
    assert.equal(logs.length, direct.length);
    assert.ok(sizer.ceiling <= 3);
  });

  void test("the limits nodes state in their errors are read", () => {
    assert.equal(
      suggestedSpan(new Error("Log response size exceeded. this block range should work: [0x10, 0x1f]")),
      16,
    );
    assert.equal(suggestedSpan(new Error("query exceeds max block range 2,000")), 2_000);
    assert.equal(suggestedSpan(new Error("eth_getLogs is limited to a 10,000 block range")), 10_000);
    assert.equal(suggestedSpan(new Error("please limit the query to at most 500 blocks")), 500);
    assert.equal(suggestedSpan(new Error("query returned more than 10000 results")), undefined);
  });
});

void describe("failover", () => {
  void test("a dead first endpoint: requests go to the next, and stay there", async () => {
    const rpc = client([await deadUrl(), market.chain.rpcUrl]);
    assert.equal(await rpc.chainId(), 31337);
    assert.equal(rpc.currentUrl, market.chain.rpcUrl);
    assert.equal(await rpc.blockNumber(), await market.blockNumber());
  });

  void test("every endpoint down: a clear error after the retries", async () => {
    const rpc = client([await deadUrl(), await deadUrl()]);
    await assert.rejects(rpc.chainId(), (error: unknown) => {
      assert.ok(error instanceof RpcUnavailableError);
      assert.match(error.message, /eth_chainId failed on every RPC endpoint after 3 attempts/);
      return true;
    });
  });
});

for (const backend of backends) {
  void describe(`the indexer through unreliable endpoints (${backend})`, () => {
    void test("a dead endpoint and a range-limited one: everything indexed", async () => {
      const proxy = await rpcProxy(market.chain.rpcUrl, {
        maxBlocks: 4,
        refusal: (limit) => `query exceeds max block range ${limit}`,
      });
      servers.push(proxy.server);
      const indexer = await startTestIndexer(market, backend, {
        chain: { rpcUrls: [await deadUrl(), proxy.url], finalityDepth: 3 },
        sync: { initialChunkBlocks: 50 },
      });
      const reference = await startTestIndexer(market, backend);
      try {
        await indexer.caughtUp();
        await reference.caughtUp();
        const bids = await indexer.database.db.selectFrom("bids").selectAll().execute();
        assert.deepEqual(bids, await reference.database.db.selectFrom("bids").selectAll().execute());
        assert.ok(proxy.stats.refused >= 1, "the proxy refused, the indexer split");
      } finally {
        await indexer.dispose();
        await reference.dispose();
      }
    });

    void test("with a websocket, a new block is indexed without waiting for the poll", async () => {
      const indexer = await startTestIndexer(market, backend, {
        chain: { wsUrl: market.chain.wsUrl, pollIntervalMs: 60_000 },
      });
      try {
        await indexer.caughtUp();
        // The first block may come before the subscription is up (then its start wakes the
        // indexer); the second comes after it, so only the announcement can bring it in time.
        for (let block = 0; block < 2; block++) {
          await market.mine(1);
          const head = await market.blockNumber();
          await waitFor(
            "the new block, announced over the websocket",
            () => indexer.engine.status.indexed >= head,
            10_000,
          );
        }
      } finally {
        await indexer.dispose();
      }
    });
  });
}
