/**
 * An indexer for a test: in this process, on a test database, pointed at a local market, its API
 * on a free port, probes off unless asked for.
 */
import { type ConfigInput, type IndexerConfig, parseConfig } from "../../src/config.js";
import { type RunningIndexer, startIndexer } from "../../src/indexer.js";
import { type LogRecord, type Logger, createLogger } from "../../src/log.js";
import type { MarketDriver } from "./market.js";
import { type BackendName, type TestDatabase, createTestDatabase } from "./databases.js";
import { waitFor } from "./wait.js";

export interface TestIndexer extends RunningIndexer {
  database: RunningIndexer["database"];
  testDatabase: TestDatabase;
  logs: LogRecord[];
  /** Waits until the indexer has applied `block` (default: the chain's current head). */
  caughtUp(block?: number): Promise<void>;
  /** Stops the indexer and drops its database. */
  dispose(): Promise<void>;
}

type Overrides = { [K in keyof ConfigInput]?: Partial<ConfigInput[K]> };

export function testConfig(market: MarketDriver, database: TestDatabase, overrides: Overrides = {}): IndexerConfig {
  const { token, staking, providerRegistry, modelRegistry, marketplace, sessionRouter, escrow } = market.addresses;
  return parseConfig({
    chain: { rpcUrls: [market.chain.rpcUrl], finalityDepth: 10, pollIntervalMs: 50, ...overrides.chain },
    contracts: {
      addresses: { token, staking, providerRegistry, modelRegistry, marketplace, sessionRouter, escrow },
      startBlock: Number(market.chain.deploymentBlock),
      ...overrides.contracts,
    },
    database: { ...database.config, ...overrides.database },
    sync: { rpcRetries: 2, ...overrides.sync },
    api: { port: 0, dev: true, ...overrides.api },
    probes: { enabled: false, ...overrides.probes },
    ranking: overrides.ranking,
    log: { level: "warn", progress: false, ...overrides.log },
  });
}

/** Collects log records (warnings and errors are printed too, to help read a failing test). */
export function collectingLogger(records: LogRecord[]): Logger {
  const print = createLogger({ level: "warn", format: "pretty" });
  const log =
    (level: LogRecord["level"]) =>
    (msg: string, fields: Record<string, unknown> = {}) => {
      records.push({ level, msg, ...fields });
      if (level === "error" && process.env.INDEXER_TEST_LOGS) print.error(msg, fields);
    };
  return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

export async function startTestIndexer(
  market: MarketDriver,
  backend: BackendName,
  overrides: Overrides = {},
  database?: TestDatabase,
): Promise<TestIndexer> {
  const testDatabase = database ?? (await createTestDatabase(backend));
  const logs: LogRecord[] = [];
  const running = await startIndexer(testConfig(market, testDatabase, overrides), {
    logger: collectingLogger(logs),
    tty: false,
  });
  return {
    ...running,
    testDatabase,
    logs,
    async caughtUp(block?: number) {
      const target = block ?? (await market.blockNumber());
      await waitFor(`the indexer to reach block ${target}`, async () => {
        if (running.engine.status.phase === "failed") throw new Error(`sync failed: ${running.engine.status.error}`);
        if (!running.engine.caughtUp) return false;
        const state = await running.database.db.selectFrom("chain_state").select("indexed_number").executeTakeFirst();
        return state !== undefined && state.indexed_number >= target;
      });
    },
    async dispose() {
      await running.stop();
      await testDatabase.drop();
    },
  };
}
