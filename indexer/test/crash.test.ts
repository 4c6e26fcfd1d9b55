/**
 * Crash safety and chain identity, with the `indexer` command as a child process:
 *
 * - SIGKILL in the middle of a backfill (twice), restart: the tables equal, row by row, a clean
 *   index of the same chain — nothing lost, nothing counted twice.
 * - A restarted `hardhat node` (a new chain, same chain id, same contract addresses) under a kept
 *   data dir: not one row of the old chain is ever served; with `onChainReplaced: refuse` the
 *   indexer will not start at all.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { generateHistory } from "../../bench/indexer/history.js";
import { type OpenDatabase, openDatabase } from "../src/store/database.js";
import { killAll, spawnIndexer } from "./helpers/cli.js";
import { assertSameRows } from "./helpers/compare.js";
import { type TestDatabase, backends, createTestDatabase } from "./helpers/databases.js";
import { graphql, query } from "./helpers/graphql.js";
import { startTestIndexer } from "./helpers/indexer.js";
import { rpcProxy } from "./helpers/rpc-proxy.js";
import { E18, MarketDriver } from "./helpers/market.js";
import { waitFor } from "./helpers/wait.js";

after(killAll);

interface Meta {
  _meta: { block: { number: number; hash: string }; syncing: boolean };
}

function writeConfig(
  market: MarketDriver,
  database: TestDatabase,
  extra: Record<string, unknown> = {},
  rpcUrl = market.chain.rpcUrl,
): string {
  const dir = mkdtempSync(join(tmpdir(), "indexer-config-"));
  const path = join(dir, "indexer.yaml");
  writeFileSync(
    path,
    stringify({
      chain: { rpcUrls: [rpcUrl], finalityDepth: 5, pollIntervalMs: 50 },
      contracts: {
        deploymentFile: join(market.chain.deploymentDir, "deployed_addresses.json"),
        startBlock: Number(market.chain.deploymentBlock),
      },
      database: database.config,
      // Small requests and commits: many checkpoints for the kill to fall between (or inside).
      // The chunk size is capped too: the history's blocks are uneven, and an adaptive size grown on
      // sparse blocks would otherwise fetch the dense ones in one request and commit them at once.
      sync: { concurrency: 2, targetLogsPerRequest: 50, initialChunkBlocks: 1, maxChunkBlocks: 2, maxCommitEvents: 50 },
      api: { port: 0 },
      probes: { enabled: false },
      log: { format: "json", progress: false },
      ...extra,
    }),
  );
  return path;
}

async function openTestDatabase(database: TestDatabase): Promise<OpenDatabase> {
  const { url, schema, dataDir } = database.config;
  return openDatabase(url === undefined ? { kind: "pglite", dataDir } : { kind: "postgres", url, schema });
}

async function metaOf(url: string): Promise<Meta["_meta"] | undefined> {
  const result = await graphql<Meta>(url, "{ _meta { block { number hash } syncing } }").catch(() => undefined);
  return result?.data?._meta;
}

void describe("crash safety", () => {
  let market: MarketDriver;
  let head: number;

  before(async () => {
    market = await MarketDriver.start();
    await generateHistory(market.chain, {
      providers: 60,
      sessionsPerProvider: 1,
      targetEvents: 12_000,
      txsPerBlock: 100,
      log: () => undefined,
    });
    head = await market.blockNumber();
  });

  after(async () => {
    await market.stop();
  });

  for (const backend of backends) {
    void test(`SIGKILL mid-backfill and restart: the same rows as a clean index (${backend})`, async () => {
      const database = await createTestDatabase(backend);
      // Each eth_getLogs answered late: the backfill takes seconds however fast the database is,
      // so the kill lands inside it.
      const slowNode = await rpcProxy(market.chain.rpcUrl, { getLogsDelayMs: 100 });
      const config = writeConfig(market, database, {}, slowNode.url);
      const start = Number(market.chain.deploymentBlock);
      try {
        let checkpoint = start - 1;
        for (const killAt of [0, 0.5]) {
          const indexer = spawnIndexer(["start", "--config", config]);
          const url = await indexer.url;
          // Killed as soon as the checkpoint moves past the point, wherever the indexer is then.
          const target = Math.max(checkpoint + 1, start + Math.floor((head - start) * killAt));
          await waitFor(
            `the checkpoint to pass block ${target}`,
            async () => ((await metaOf(url))?.block.number ?? 0) >= target,
            60_000,
          );
          await indexer.kill("SIGKILL");
          const killed = await openTestDatabase(database);
          const state = await killed.db.selectFrom("chain_state").selectAll().executeTakeFirstOrThrow();
          await killed.close();
          assert.ok(
            state.indexed_number > checkpoint && state.indexed_number < head,
            `killed mid-backfill, at block ${state.indexed_number} of ${head}`,
          );
          checkpoint = state.indexed_number;
        }
        const last = spawnIndexer(["start", "--config", config]);
        const url = await last.url;
        await waitFor(
          "the restarted indexer to catch up",
          async () => {
            const meta = await metaOf(url);
            return meta !== undefined && meta.block.number === head && !meta.syncing;
          },
          60_000,
        );
        assert.equal(await last.kill("SIGTERM"), 0, "a SIGTERM stops cleanly");

        const clean = await startTestIndexer(market, backend, { chain: { finalityDepth: 5 } });
        const crashed = await openTestDatabase(database);
        try {
          await clean.caughtUp();
          await assertSameRows(crashed.db, clean.database.db);
        } finally {
          await crashed.close();
          await clean.dispose();
        }
      } finally {
        slowNode.server.close();
        await database.drop();
        rmSync(config, { force: true });
      }
    });
  }
});

void describe("a chain replaced under the same chain id", () => {
  for (const backend of backends) {
    void test(`a restarted hardhat node with the data kept: no old row is ever served (${backend})`, async () => {
      const database = await createTestDatabase(backend);
      const configs: string[] = [];
      try {
        // Chain A: a provider, a model, a bid and a settled session; indexed, then the node stops.
        const chainA = await MarketDriver.start();
        let oldSession: string;
        let oldProvider: string;
        try {
          const [, provider, operator, owner, user] = chainA.accounts;
          await chainA.registerProvider(provider!, {
            operator: operator!.address,
            endpoint: "http://chain-a.invalid/",
          });
          const modelId = await chainA.registerModel(owner!);
          const bidId = await chainA.postBid(provider!, modelId, {
            perSecond: 10n ** 12n,
            perInputToken: 1n,
            perOutputToken: 1n,
          });
          const session = await chainA.openSession({ user: user!, bidId, signer: operator!, deposit: E18 });
          await chainA.settleByProvider(session, operator!, null);
          oldSession = session.sessionId;
          oldProvider = provider!.address;
          configs.push(writeConfig(chainA, database));
          const indexer = spawnIndexer(["start", "--config", configs[0]!]);
          const url = await indexer.url;
          const headA = await chainA.blockNumber();
          await waitFor("chain A indexed", async () => (await metaOf(url))?.block.number === headA, 60_000);
          assert.equal(await indexer.kill("SIGTERM"), 0);
        } finally {
          await chainA.stop();
        }

        // Chain B: a new node, the market deployed again at the same addresses, another history.
        const chainB = await MarketDriver.start();
        try {
          const [, , , owner, , , , , newcomer] = chainB.accounts;
          await chainB.registerProvider(newcomer!, { endpoint: "http://chain-b.invalid/" });
          await chainB.registerModel(owner!, { name: "b" });

          // Refusing: the indexer stops before serving anything.
          const refuse = writeConfig(chainB, database, { sync: { onChainReplaced: "refuse" } });
          configs.push(refuse);
          const refused = spawnIndexer(["start", "--config", refuse]);
          assert.equal(await refused.exited, 1);
          assert.match(refused.output.join("\n"), /the chain was replaced|it is a new chain/);
          await assert.rejects(refused.url);

          // Re-indexing: from the first answer on, only chain B's rows.
          configs.push(writeConfig(chainB, database));
          const indexer = spawnIndexer(["start", "--config", configs.at(-1)!]);
          const url = await indexer.url;
          const headB = await chainB.blockNumber();
          const hashB = (await chainB.public.getBlock({ blockNumber: BigInt(headB) })).hash;
          await waitFor(
            "chain B indexed, every answer on the way free of chain A",
            async () => {
              const data = await query<
                { session: unknown; providers: { items: { id: string; endpoint: string }[] } } & Meta
              >(
                url,
                `query ($session: String!) { session(id: $session) { id } providers { items { id endpoint } } _meta { block { number hash } syncing } }`,
                { session: oldSession },
              );
              assert.equal(data.session, null, "chain A's session is never served");
              for (const provider of data.providers.items) {
                assert.notEqual(provider.id, oldProvider, "chain A's provider is never served");
                assert.equal(provider.endpoint, "http://chain-b.invalid/");
              }
              return data._meta.block.number === headB && data._meta.block.hash === hashB;
            },
            60_000,
          );
          assert.equal(await indexer.kill("SIGTERM"), 0);
          assert.match(indexer.output.join("\n"), /re-indexing/);
        } finally {
          await chainB.stop();
        }
      } finally {
        await database.drop();
        for (const config of configs) rmSync(config, { force: true });
      }
    });
  }
});
