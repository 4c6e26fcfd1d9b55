/**
 * `npm run bench:indexer`: how fast the indexer fills its database, against the limit the RPC sets.
 *
 * 1. A local `hardhat node` with the market and a generated history of ≥ 100k market events
 *    (1,000 providers with bids and settled sessions, then bid price updates).
 * 2. The limit: raw `eth_getLogs` + decoding of the whole range, with the indexer's chunking and
 *    requests in flight, nothing stored.
 * 3. The indexer's cold backfill rate on PGlite, and on PostgreSQL when DATABASE_URL (or
 *    TEST_DATABASE_URL) names a server — from an empty, migrated database to caught up.
 * 4. `providerRankings` latency over HTTP at 1,000 providers: p50 and p99.
 *
 * Printed numbers, not a test. The last line is one JSON object.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { type Abi, type RpcLog, decodeEventLog } from "viem";
import { MarketLogDecoder, marketAbis } from "../../indexer/src/events/decode.js";
import { type IndexerConfig, parseConfig } from "../../indexer/src/config.js";
import { type RunningIndexer, startIndexer } from "../../indexer/src/indexer.js";
import { silentLogger } from "../../indexer/src/log.js";
import { openDatabase } from "../../indexer/src/store/database.js";
import { migrateToLatest } from "../../indexer/src/store/migrations.js";
import { ChunkSizer, fetchLogs } from "../../indexer/src/sync/logChunks.js";
import { RpcClient } from "../../indexer/src/sync/rpc.js";
import { type LocalMarket, startLocalMarket } from "../../scripts/local-chain.js";
import { type History, generateHistory } from "./history.js";

const PROVIDERS = Number(process.env.BENCH_PROVIDERS ?? 1_000);
const TARGET_EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const RANKING_QUERIES = 300;

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const seconds = (start: number) => (performance.now() - start) / 1000;
/** CPU time of this process, in ms (user + system): what our side costs, whatever else runs. */
const cpuMs = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};
const round = (value: number) => Math.round(value);

function configFor(market: LocalMarket, database: IndexerConfig["database"] | Record<string, unknown>): IndexerConfig {
  return parseConfig({
    chain: { rpcUrls: [market.rpcUrl], pollIntervalMs: 50 },
    contracts: { addresses: market.addresses, startBlock: Number(market.deploymentBlock) },
    database,
    api: { port: 0 },
    probes: { enabled: false },
    log: { level: "warn", progress: false },
  });
}

type Decode = (logs: RpcLog[]) => number;

/** The indexer's own decoder (compiled from the ABIs). */
function indexerDecoding(market: LocalMarket): Decode {
  const decoder = new MarketLogDecoder(market.addresses);
  return (logs) => logs.map((entry) => decoder.decode(entry)).length;
}

/** viem's decodeEventLog over every market event, what a plain viem client does. */
function viemDecoding(): Decode {
  const abi = Object.values(marketAbis).flat() as Abi;
  return (logs) => logs.map((entry) => decodeEventLog({ abi, data: entry.data, topics: entry.topics })).length;
}

/** The limit: every log of the range fetched (the indexer's chunking, 4 in flight) and decoded, nothing stored. */
async function rawRate(
  market: LocalMarket,
  history: History,
  decode: Decode,
): Promise<{ events: number; perSecond: number }> {
  const rpc = new RpcClient([market.rpcUrl], {
    timeoutMs: 60_000,
    retries: 2,
    retryDelayMs: 100,
    cooldownMs: 1_000,
    logger: silentLogger,
  });
  const addresses = new MarketLogDecoder(market.addresses).addresses;
  const sizer = new ChunkSizer({ initialBlocks: 100, maxBlocks: 10_000, targetLogs: 2_500 });
  const from = Number(market.deploymentBlock);
  const started = performance.now();
  const cpuStarted = cpuMs();
  let events = 0;
  let cursor = from;
  const inFlight: Promise<number>[] = [];
  const next = () => {
    const end = Math.min(history.toBlock, cursor + sizer.span - 1);
    const start = cursor;
    cursor = end + 1;
    return fetchLogs(rpc, addresses, start, end, sizer).then(decode);
  };
  while (cursor <= history.toBlock || inFlight.length > 0) {
    while (cursor <= history.toBlock && inFlight.length < 4) inFlight.push(next());
    events += await inFlight.shift()!;
  }
  log(`  our CPU: ${((1000 * (cpuMs() - cpuStarted)) / events).toFixed(1)} µs per event`);
  return { events, perSecond: events / seconds(started) };
}

/** Cold backfill: an empty migrated database, then the time until the indexer reaches the head. */
async function backfillRate(
  market: LocalMarket,
  history: History,
  database: Record<string, unknown>,
): Promise<{ perSecond: number; indexer: RunningIndexer }> {
  const config = configFor(market, database);
  // Creating the database (PGlite's initdb takes seconds) is setup, not indexing.
  const setup = await openDatabase(
    config.database.url === undefined
      ? { kind: "pglite", dataDir: config.database.dataDir }
      : { kind: "postgres", url: config.database.url, schema: config.database.schema },
  );
  await migrateToLatest(setup.db, setup.schema);
  await setup.close();

  // Timed from the moment the indexer starts syncing: opening the database (loading PGlite's
  // WebAssembly) is start-up, reported on its own.
  const opening = performance.now();
  const indexer = await startIndexer(config, { logger: silentLogger, tty: false });
  const started = performance.now();
  const cpuStarted = cpuMs();
  log(`  start-up (open database, check chain) ${seconds(opening).toFixed(2)} s`);
  for (;;) {
    if (indexer.engine.status.phase === "failed") throw new Error(`sync failed: ${indexer.engine.status.error}`);
    if (indexer.engine.status.indexed >= history.toBlock) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const elapsed = seconds(started);
  const events = (await indexer.metrics.eventsTotal.get()).values[0]?.value ?? 0;
  log(
    `  ${events} events in ${elapsed.toFixed(2)} s; our CPU: ${((1000 * (cpuMs() - cpuStarted)) / events).toFixed(1)} µs per event`,
  );
  return { perSecond: events / elapsed, indexer };
}

async function rankingLatency(indexer: RunningIndexer, modelId: string): Promise<{ p50: number; p99: number }> {
  const body = JSON.stringify({
    query: `query ($modelId: String!) { providerRankings(modelId: $modelId, first: 10) { rank score providerAddress bidId parts { throughput latency price } } }`,
    variables: { modelId },
  });
  const ask = async () => {
    const response = await fetch(`${indexer.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    const result = (await response.json()) as { data?: { providerRankings: unknown[] }; errors?: unknown };
    if (result.errors !== undefined || result.data?.providerRankings.length !== 10) {
      throw new Error(`rankings failed: ${JSON.stringify(result.errors)}`);
    }
  };
  for (let i = 0; i < 20; i++) await ask(); // warm up
  const samples: number[] = [];
  for (let i = 0; i < RANKING_QUERIES; i++) {
    const started = performance.now();
    await ask();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  const at = (quantile: number) => samples[Math.min(samples.length - 1, Math.floor(quantile * samples.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

async function main() {
  log("starting a local market");
  const market = await startLocalMarket();
  const dataDirs: string[] = [];
  try {
    const generationStarted = performance.now();
    const history = await generateHistory(market, {
      providers: PROVIDERS,
      sessionsPerProvider: 2,
      targetEvents: TARGET_EVENTS,
      txsPerBlock: 200,
      log,
    });
    log(
      `history: ${history.events} market events in ${history.blocks} blocks, generated in ${seconds(generationStarted).toFixed(1)} s`,
    );

    log("raw eth_getLogs + viem's decodeEventLog");
    const rawViem = await rawRate(market, history, viemDecoding());
    log(`  ${rawViem.events} events at ${round(rawViem.perSecond)} events/s`);
    log("raw eth_getLogs + the indexer's decoder (the limit)");
    const raw = await rawRate(market, history, indexerDecoding(market));
    log(`  ${raw.events} events at ${round(raw.perSecond)} events/s`);

    log("cold backfill on PGlite");
    const dataDir = mkdtempSync(join(tmpdir(), "indexer-bench-"));
    dataDirs.push(dataDir);
    const pglite = await backfillRate(market, history, { dataDir });
    log(`  ${round(pglite.perSecond)} events/s (${((100 * pglite.perSecond) / raw.perSecond).toFixed(0)}% of raw)`);

    log("providerRankings at 1,000 providers (PGlite, over HTTP)");
    const rankings = await rankingLatency(pglite.indexer, history.modelId);
    log(`  p50 ${rankings.p50.toFixed(2)} ms, p99 ${rankings.p99.toFixed(2)} ms`);
    await pglite.indexer.stop();

    let postgresPerSecond: number | null = null;
    const postgresUrl = process.env.DATABASE_URL ?? process.env.TEST_DATABASE_URL;
    if (postgresUrl === undefined) {
      log("PostgreSQL: skipped (set DATABASE_URL or TEST_DATABASE_URL; scripts/postgres-test-server.sh starts one)");
    } else {
      log("cold backfill on PostgreSQL");
      const schema = `bench_${process.pid}`;
      const postgres = await backfillRate(market, history, { url: postgresUrl, schema, dataDir });
      postgresPerSecond = postgres.perSecond;
      log(
        `  ${round(postgres.perSecond)} events/s (${((100 * postgres.perSecond) / raw.perSecond).toFixed(0)}% of raw)`,
      );
      await postgres.indexer.stop();
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }

    console.log(
      JSON.stringify({
        events: raw.events,
        rawEventsPerSecond: round(raw.perSecond),
        pgliteEventsPerSecond: round(pglite.perSecond),
        postgresEventsPerSecond: postgresPerSecond === null ? null : round(postgresPerSecond),
        rankingsP50Ms: Number(rankings.p50.toFixed(2)),
        rankingsP99Ms: Number(rankings.p99.toFixed(2)),
      }),
    );
  } finally {
    await market.stop();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
