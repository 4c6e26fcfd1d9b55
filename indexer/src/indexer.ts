/**
 * The two ways to run the indexer, as functions (the CLI and tests call these):
 *
 * - `startIndexer`: the writer. Ties the database to the chain, serves the API, syncs, probes.
 * - `serveApi`: an API-only replica on a PostgreSQL database some writer keeps up to date.
 */
import type { FastifyInstance } from "fastify";
import { buildApp } from "./api/app.js";
import type { SyncView } from "./api/resolvers.js";
import { FeedHub } from "./api/subscriptions.js";
import { ConfigError, type IndexerConfig, dataDirOf, resolveAddresses } from "./config.js";
import { MarketLogDecoder } from "./events/decode.js";
import { type Logger, createLogger } from "./log.js";
import { type Metrics, createMetrics } from "./metrics.js";
import { HealthProber } from "./ranking/prober.js";
import { readChainState } from "./store/chainState.js";
import { type DatabaseTarget, type OpenDatabase, openDatabase } from "./store/database.js";
import { FeedSignal, feedChannel } from "./store/feed.js";
import { assertMigrated, migrateToLatest } from "./store/migrations.js";
import { SyncEngine } from "./sync/engine.js";
import { RpcClient } from "./sync/rpc.js";

export interface RunOptions {
  logger?: Logger;
  /** Draw a progress bar (default: stderr is a terminal and `log.progress` is on). */
  tty?: boolean;
  /** Listen for HTTP (default true); tests may only want `app.inject()`. */
  listen?: boolean;
}

export interface RunningIndexer {
  config: IndexerConfig;
  app: FastifyInstance;
  /** http://host:port once listening. */
  url: string;
  database: OpenDatabase;
  engine: SyncEngine;
  metrics: Metrics;
  /** Settles when sync stops: resolves after `stop()`, rejects when sync cannot go on. */
  done: Promise<void>;
  stop(): Promise<void>;
}

export function databaseTarget(config: IndexerConfig): DatabaseTarget {
  return config.database.url === undefined
    ? { kind: "pglite", dataDir: dataDirOf(config) }
    : {
        kind: "postgres",
        url: config.database.url,
        schema: config.database.schema,
        poolSize: config.database.poolSize,
      };
}

function loggerFor(config: IndexerConfig, options: RunOptions): Logger {
  return options.logger ?? createLogger({ level: config.log.level, format: config.log.format });
}

async function listen(app: FastifyInstance, config: IndexerConfig, options: RunOptions): Promise<string> {
  if (options.listen === false) {
    await app.ready();
    return "";
  }
  const address = await app.listen({ host: config.api.host, port: config.api.port });
  return address;
}

export async function startIndexer(config: IndexerConfig, options: RunOptions = {}): Promise<RunningIndexer> {
  const logger = loggerFor(config, options);
  let engine: SyncEngine | undefined;
  const metrics = createMetrics(() =>
    Promise.resolve(
      engine === undefined
        ? undefined
        : { indexed: engine.status.indexed, head: engine.status.head, finalized: engine.status.finalized },
    ),
  );
  const rpc = new RpcClient(config.chain.rpcUrls, {
    timeoutMs: config.sync.rpcTimeoutMs,
    retries: config.sync.rpcRetries,
    retryDelayMs: 250,
    cooldownMs: 30_000,
    logger,
    onRequest: ({ url, method, ok, seconds }) => {
      metrics.rpcRequests.inc({ method, endpoint: url, outcome: ok ? "ok" : "error" });
      metrics.rpcSeconds.observe({ method }, seconds);
    },
  });
  const chainId = await rpc.chainId();
  if (config.chain.chainId !== undefined && config.chain.chainId !== chainId) {
    throw new ConfigError(`the RPC serves chain ${chainId}, the config expects chain ${config.chain.chainId}`, {
      chainId,
    });
  }
  const addresses = resolveAddresses(config, chainId);
  const database = await openDatabase(databaseTarget(config));
  try {
    await database.lockWriter();
    await migrateToLatest(database.db, database.schema);
    const feedSignal = new FeedSignal();
    const notifyChannel = database.target.kind === "postgres" ? feedChannel(database.schema) : null;
    engine = new SyncEngine({
      config,
      rpc,
      db: database.db,
      decoder: new MarketLogDecoder(addresses),
      expected: { chainId, deploymentAddress: addresses.sessionRouter },
      logger,
      metrics,
      feedSignal,
      notifyChannel,
      tty: options.tty ?? (config.log.progress && process.stderr.isTTY),
    });
    // The rows must belong to this chain before anything is served.
    await engine.prepare();
    logger.info("indexer starting", { chainId, database: database.description, rpc: config.chain.rpcUrls });

    const feed = new FeedHub(database.db, logger);
    await feed.start(feedSignal);
    const running = engine;
    const db = database.db;
    const sync = async (): Promise<SyncView | undefined> => {
      const state = await readChainState(db);
      return state && { state, head: Math.max(running.status.head, state.indexed_number), syncing: !running.caughtUp };
    };
    const app = buildApp({
      db,
      config,
      feed,
      sync,
      metrics,
      logger,
      ready: () =>
        Promise.resolve({
          ready: running.caughtUp,
          detail: { phase: running.status.phase, indexed: running.status.indexed, head: running.status.head },
        }),
    });
    const url = await listen(app, config, options);
    const prober = config.probes.enabled
      ? new HealthProber({ db, ...config.probes, logger, metrics, onRound: () => running.rankingsChanged() })
      : undefined;
    prober?.start();
    const done = engine.run();
    done.catch(() => undefined); // observed by whoever awaits `done`; never an unhandled rejection
    let stopped: Promise<void> | undefined;
    const openDatabaseHandle = database;
    return {
      config,
      app,
      url,
      database,
      engine,
      metrics,
      done,
      stop() {
        stopped ??= (async () => {
          running.stop();
          await done.catch(() => undefined);
          await prober?.stop();
          await feed.stop();
          await app.close();
          await openDatabaseHandle.close();
        })();
        return stopped;
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}

export interface RunningApi {
  app: FastifyInstance;
  url: string;
  stop(): Promise<void>;
}

/** An API-only replica: read-only PostgreSQL, subscriptions through LISTEN/NOTIFY. */
export async function serveApi(config: IndexerConfig, options: RunOptions = {}): Promise<RunningApi> {
  const logger = loggerFor(config, options);
  if (config.database.url === undefined) {
    throw new ConfigError(
      "`indexer serve` needs PostgreSQL (DATABASE_URL): PGlite lives inside one process, and `indexer start` already serves its API",
      {},
    );
  }
  const database = await openDatabase(databaseTarget(config), { readOnly: true });
  try {
    await assertMigrated(database.db, database.schema);
    const db = database.db;
    const readyLag = config.api.readyLagBlocks;
    const sync = async (): Promise<SyncView | undefined> => {
      const state = await readChainState(db);
      return state && { state, head: state.head_number, syncing: state.head_number - state.indexed_number > readyLag };
    };
    const metrics = createMetrics(async () => {
      const state = await readChainState(db);
      return state && { indexed: state.indexed_number, head: state.head_number, finalized: state.finalized_number };
    });
    const feedSignal = new FeedSignal();
    const listener = await database.listenClient();
    if (listener !== null) {
      listener.on("notification", () => feedSignal.notify());
      await listener.query(`LISTEN ${feedChannel(database.schema)}`);
    }
    const feed = new FeedHub(db, logger);
    await feed.start(feedSignal);
    const app = buildApp({
      db,
      config,
      feed,
      sync,
      metrics,
      logger,
      async ready() {
        const view = await sync();
        return {
          ready: view !== undefined && view.state.realtime && !view.syncing,
          detail: { indexed: view?.state.indexed_number ?? null, head: view?.head ?? null },
        };
      },
    });
    const url = await listen(app, config, options);
    logger.info("API replica serving", { url, database: database.description });
    return {
      app,
      url,
      async stop() {
        await feed.stop();
        await app.close();
        await listener?.end();
        await database.close();
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}
