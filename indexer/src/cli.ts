/**
 * `indexer start` (sync + API) and `indexer serve` (API-only replica). Reads the config, runs,
 * and stops cleanly on SIGINT/SIGTERM; a fatal sync error exits non-zero with its message.
 */
import { parseArgs } from "node:util";
import { type ConfigFlags, loadConfig } from "./config.js";
import { IndexerError, errorMessage } from "./errors.js";
import { serveApi, startIndexer } from "./indexer.js";
import { createLogger } from "./log.js";

const USAGE = `Usage: indexer <start|serve> [options]

  start   follow the chain, index the market's events and serve the GraphQL API
  serve   serve the GraphQL API only, read-only, from PostgreSQL (DATABASE_URL)

Options (each also settable in the YAML file or the environment; see docs/indexer.md):
  --config <file>          YAML config file
  --rpc <url>              HTTP JSON-RPC endpoint (repeat for failover)    INDEXER_RPC_URLS
  --ws <url>               websocket endpoint for new heads                  INDEXER_WS_URL
  --database-url <url>     PostgreSQL (default: PGlite in --data-dir)        DATABASE_URL
  --database-schema <name> PostgreSQL schema (default public)                INDEXER_DATABASE_SCHEMA
  --data-dir <dir>         PGlite data directory (default .indexer-data)     INDEXER_DATA_DIR
  --host <host>            API host (default 127.0.0.1)                      INDEXER_HOST
  --port <port>            API port (default 42069; 0 picks one)             INDEXER_PORT
  --dev                    GraphiQL and unmasked errors                      INDEXER_DEV
  --start-block <n>        first block (default: found from contract code)   INDEXER_START_BLOCK
  --finality-depth <n>     deepest reorg handled (default 64)                INDEXER_FINALITY_DEPTH
  --deployment-file <file> Ignition deployed_addresses.json                  INDEXER_DEPLOYMENT_FILE
  -h, --help               this text
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string" },
      rpc: { type: "string", multiple: true },
      ws: { type: "string" },
      "database-url": { type: "string" },
      "database-schema": { type: "string" },
      "data-dir": { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      dev: { type: "boolean" },
      "start-block": { type: "string" },
      "finality-depth": { type: "string" },
      "deployment-file": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const command = positionals[0];
  if (values.help || (command !== "start" && command !== "serve")) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  const flags: ConfigFlags = {
    config: values.config,
    rpc: values.rpc,
    ws: values.ws,
    databaseUrl: values["database-url"],
    databaseSchema: values["database-schema"],
    dataDir: values["data-dir"],
    host: values.host,
    port: values.port,
    dev: values.dev,
    startBlock: values["start-block"],
    finalityDepth: values["finality-depth"],
    deploymentFile: values["deployment-file"],
  };
  const config = loadConfig(flags);
  const logger = createLogger({ level: config.log.level, format: config.log.format });
  const running = command === "start" ? await startIndexer(config, { logger }) : await serveApi(config, { logger });
  logger.info(`GraphQL API on ${running.url}/graphql`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("stopping", { signal });
    void running.stop().then(() => process.exit(0));
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  if (!("done" in running)) return new Promise(() => undefined); // serve runs until a signal
  try {
    await running.done;
    return 0;
  } catch (error) {
    logger.error("indexer stopped", { error: errorMessage(error) });
    await running.stop();
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const prefix = error instanceof IndexerError ? "" : "unexpected error: ";
    process.stderr.write(`indexer: ${prefix}${errorMessage(error)}\n`);
    process.exit(1);
  },
);
