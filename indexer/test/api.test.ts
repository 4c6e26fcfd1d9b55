/**
 * The API's protections and endpoints: abusive queries (a depth bomb, an alias flood, a huge
 * `first`, a million-item nested list, and the same through fragments and variables) are refused
 * with a clear error before they run; errors are masked outside dev; /health, /ready, /metrics.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/api/app.js";
import { FeedHub } from "../src/api/subscriptions.js";
import { parseConfig } from "../src/config.js";
import { silentLogger } from "../src/log.js";
import { createMetrics } from "../src/metrics.js";
import { type OpenDatabase, openDatabase } from "../src/store/database.js";
import { backends, createTestDatabase, type TestDatabase } from "./helpers/databases.js";
import { graphql } from "./helpers/graphql.js";
import { type TestIndexer, startTestIndexer } from "./helpers/indexer.js";
import { E18, MarketDriver } from "./helpers/market.js";

let market: MarketDriver;

before(async () => {
  market = await MarketDriver.start();
  const [, provider, operator, owner, user] = market.accounts;
  await market.registerProvider(provider!, { operator: operator!.address });
  const modelId = await market.registerModel(owner!);
  const bidId = await market.postBid(provider!, modelId, {
    perSecond: 10n ** 12n,
    perInputToken: 1n,
    perOutputToken: 1n,
  });
  await market.openSession({ user: user!, bidId, signer: operator!, deposit: E18 });
});

after(async () => {
  await market.stop();
});

const nested = (depth: number) =>
  `{ providers { items { ${"bids { items { provider { ".repeat(depth)} id ${"} } } ".repeat(depth)} } } }`;

for (const backend of backends) {
  void describe(`abuse is refused, clearly (${backend})`, () => {
    let indexer: TestIndexer;
    const refused = async (text: string, pattern: RegExp, variables: Record<string, unknown> = {}) => {
      const result = await graphql(indexer.url, text, variables);
      assert.equal(result.data, undefined, "nothing ran");
      assert.ok(result.errors?.length, "an error");
      assert.match(result.errors.map((error) => error.message).join("\n"), pattern);
    };

    before(async () => {
      indexer = await startTestIndexer(market, backend, { api: { dev: false } });
      await indexer.caughtUp();
    });

    after(async () => {
      await indexer.dispose();
    });

    void test("a depth bomb", async () => {
      await refused(nested(6), /Query depth limit of 10 exceeded/);
      const fine = await graphql(indexer.url, nested(1));
      assert.equal(fine.errors, undefined);
    });

    void test("an alias flood", async () => {
      const aliases = Array.from({ length: 40 }, (_, i) => `a${i}: _meta { lag }`).join(" ");
      await refused(`{ ${aliases} }`, /Aliases limit of 30 exceeded/);
    });

    void test("a huge first, as a literal or a variable", async () => {
      await refused(
        "{ providers(first: 100000) { items { id } } }",
        /first must be at most 1000 \(got 100000 at providers\)/,
      );
      await refused(
        "query ($n: Int) { sessions(first: $n) { items { id } } }",
        /first must be at most 1000 \(got 5000 at sessions\)/,
        { n: 5000 },
      );
    });

    void test("nested lists that could return a million items", async () => {
      await refused(
        "{ providers(first: 200) { items { sessions(first: 300) { items { id } } } } }",
        /could return 60200 list items, more than the limit of 50000/,
      );
    });

    void test("the same limits reached through fragments", async () => {
      const deep = `
        query { providers { items { ...A } } }
        fragment A on Provider { bids { items { provider { ...B } } } }
        fragment B on Provider { bids { items { provider { ...C } } } }
        fragment C on Provider { bids { items { provider { ...D } } } }
        fragment D on Provider { bids { items { provider { id } } } }`;
      await refused(deep, /Query depth limit of 10 exceeded/);
      const aliased = `query { ...F } fragment F on Query { ${Array.from({ length: 40 }, (_, i) => `m${i}: _meta { lag }`).join(" ")} }`;
      await refused(aliased, /Aliases limit of 30 exceeded/);
      const wide = `query ($n: Int) { ...P } fragment P on Query { providers(first: $n) { items { ...S } } } fragment S on Provider { sessions(first: 500) { items { id } } }`;
      await refused(wide, /could return 60120 list items/, { n: 120 });
      await refused(
        `query { ...Q } fragment Q on Query { bids(first: 2000) { items { id } } }`,
        /first must be at most 1000/,
      );
    });

    void test("a token flood", async () => {
      const addresses = Array.from({ length: 4_000 }, (_, i) => `"0x${i.toString(16).padStart(40, "0")}"`).join(", ");
      await refused(
        `{ providers(where: { address_in: [${addresses}] }) { items { id } } }`,
        /Token limit of 3000 exceeded/,
      );
    });

    void test("outside dev, no field suggestions and no GraphiQL", async () => {
      const result = await graphql(indexer.url, "{ provders { items { id } } }");
      assert.ok(result.errors?.[0]);
      assert.doesNotMatch(result.errors[0].message, /Did you mean/);
      const page = await fetch(`${indexer.url}/graphql`, { headers: { accept: "text/html" } });
      assert.doesNotMatch(await page.text(), /<html/i);
    });

    void test("/health, /ready and /metrics", async () => {
      assert.deepEqual(await (await fetch(`${indexer.url}/health`)).json(), { status: "ok" });
      const ready = await fetch(`${indexer.url}/ready`);
      assert.equal(ready.status, 200);
      const metrics = await (await fetch(`${indexer.url}/metrics`)).text();
      for (const name of [
        "indexer_lag_blocks",
        "indexer_indexed_block",
        "indexer_events_total",
        "indexer_events_per_second",
        "indexer_reorgs_total",
        "indexer_rpc_requests_total",
      ]) {
        assert.match(metrics, new RegExp(`^${name}`, "m"), name);
      }
      assert.match(metrics, /^indexer_lag_blocks 0$/m);
    });
  });
}

void describe("errors and readiness of an app on its own", () => {
  let testDatabase: TestDatabase;
  let database: OpenDatabase;
  let app: FastifyInstance;
  let devApp: FastifyInstance;

  before(async () => {
    testDatabase = await createTestDatabase("pglite");
    database = await openDatabase({ kind: "pglite", dataDir: testDatabase.config.dataDir });
    const make = (dev: boolean) =>
      buildApp({
        db: database.db,
        config: parseConfig({ chain: { rpcUrls: ["http://127.0.0.1:1"] }, api: { dev } }),
        feed: new FeedHub(database.db, silentLogger),
        // An unexpected failure inside a resolver, with internals in its message.
        sync: () => Promise.reject(new Error("connection to 10.0.0.7:5432 refused")),
        metrics: createMetrics(() => Promise.resolve(undefined)),
        logger: silentLogger,
        ready: () => Promise.resolve({ ready: false, detail: { phase: "backfill" } }),
      });
    app = make(false);
    devApp = make(true);
  });

  after(async () => {
    await app.close();
    await devApp.close();
    await database.close();
    await testDatabase.drop();
  });

  const ask = (target: FastifyInstance, text: string) =>
    target
      .inject({ method: "POST", url: "/graphql", payload: { query: text } })
      .then((response) => response.json<{ errors?: { message: string }[] }>());

  void test("an unexpected error is masked outside dev and shown in dev", async () => {
    const masked = await ask(app, "{ _meta { lag } }");
    assert.equal(masked.errors?.[0]?.message, "Unexpected error.");
    const shown = await ask(devApp, "{ _meta { lag } }");
    assert.match(shown.errors?.[0]?.message ?? "", /10\.0\.0\.7/);
  });

  void test("bad input is never masked: the client must know what to fix", async () => {
    const result = await ask(app, '{ provider(id: "nope") { id } }');
    assert.match(result.errors?.[0]?.message ?? "", /id is not an address: "nope"/);
  });

  void test("/ready answers 503 until the indexer has caught up", async () => {
    const response = await app.inject({ method: "GET", url: "/ready" });
    assert.equal(response.statusCode, 503);
    assert.deepEqual(response.json(), { ready: false, phase: "backfill" });
  });

  void test("GraphiQL in dev", async () => {
    const response = await devApp.inject({ method: "GET", url: "/graphql", headers: { accept: "text/html" } });
    assert.equal(response.statusCode, 200);
    assert.match(response.body, /graphiql/i);
  });
});
