/**
 * The indexer's configuration: defaults, then a YAML file, then environment variables, then
 * command-line flags, validated once at start (zod). A bad value is refused with its path and the
 * reason, before anything connects anywhere.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getAddress } from "viem";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { type MarketAddresses, deploymentFile, loadMarketAddresses } from "../../protocol/index.js";
import { IndexerError } from "./errors.js";

/** The repository root (deployment files are looked up under it). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export class ConfigError extends IndexerError {}

const address = z.string().refine((value) => /^0x[0-9a-fA-F]{40}$/.test(value), "not an address");
const url = (protocols: readonly string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    `not a URL with ${protocols.join(" or ")}`,
  );
const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().min(0);

const weightsSchema = z
  .object({
    throughput: z.number().min(0).default(0.15),
    latency: z.number().min(0).default(0.1),
    consistency: z.number().min(0).default(0.05),
    success: z.number().min(0).default(0.15),
    volume: z.number().min(0).default(0.05),
    duration: z.number().min(0).default(0.05),
    consumers: z.number().min(0).default(0.1),
    stake: z.number().min(0).default(0.05),
    price: z.number().min(0).default(0.2),
    availability: z.number().min(0).default(0.1),
  })
  .strict()
  .refine((weights) => Object.values(weights).some((weight) => weight > 0), "at least one weight must be positive");

export const configSchema = z
  .object({
    chain: z
      .object({
        /** HTTP JSON-RPC endpoints, in order of preference (the next is used when one fails). */
        rpcUrls: z.array(url(["http:", "https:"])).min(1, "at least one RPC URL is needed"),
        /** A websocket endpoint for new-head notifications; without one the indexer polls. */
        wsUrl: url(["ws:", "wss:"]).optional(),
        /** When set, the RPC must serve this chain. */
        chainId: positiveInt.optional(),
        /** Blocks below head - finalityDepth are final: a reorg deeper than this stops the indexer. */
        finalityDepth: nonNegativeInt.default(64),
        /** Blocks to stay behind the head. */
        confirmations: nonNegativeInt.default(0),
        pollIntervalMs: z.number().int().min(20).default(1_000),
      })
      .strict(),
    contracts: z
      .object({
        /** An Ignition `deployed_addresses.json`; default: ignition/deployments/chain-<id>/ of this repository. */
        deploymentFile: z.string().optional(),
        /** Explicit addresses (instead of a deployment file). */
        addresses: z
          .object({
            token: address,
            staking: address,
            providerRegistry: address,
            modelRegistry: address,
            marketplace: address,
            sessionRouter: address,
            escrow: address,
          })
          .strict()
          .optional(),
        /** First block to index; default: the first block with market contract code (binary search). */
        startBlock: nonNegativeInt.optional(),
      })
      .strict()
      .prefault({}),
    database: z
      .object({
        /** PostgreSQL URL; when unset, PGlite on disk in `dataDir`. */
        url: z.string().optional(),
        schema: z
          .string()
          .regex(/^[a-z_][a-z0-9_]{0,62}$/, "lowercase letters, digits and _")
          .default("public"),
        dataDir: z.string().default(".indexer-data"),
        poolSize: positiveInt.default(10),
      })
      .strict()
      .prefault({}),
    sync: z
      .object({
        /** eth_getLogs requests in flight during backfill. */
        concurrency: positiveInt.default(4),
        initialChunkBlocks: positiveInt.default(100),
        maxChunkBlocks: positiveInt.default(10_000),
        /** Logs per eth_getLogs the chunk size aims at. */
        targetLogsPerRequest: positiveInt.default(2_500),
        /** Events gathered per backfill commit (fewer only at the end of the range). */
        maxCommitEvents: positiveInt.default(20_000),
        /** Headers per step when following the head. */
        realtimeBatchBlocks: positiveInt.default(100),
        rpcTimeoutMs: positiveInt.default(30_000),
        rpcRetries: nonNegativeInt.default(5),
        /** What to do when the chain behind the RPC is not the one the rows came from. */
        onChainReplaced: z.enum(["reindex", "refuse"]).default("reindex"),
      })
      .strict()
      .prefault({}),
    api: z
      .object({
        host: z.string().default("127.0.0.1"),
        port: z.number().int().min(0).max(65_535).default(42_069),
        /** GraphiQL, unmasked errors. */
        dev: z.boolean().default(false),
        maxFirst: positiveInt.default(1_000),
        maxDepth: positiveInt.default(10),
        maxAliases: positiveInt.default(30),
        maxTokens: positiveInt.default(3_000),
        /** graphql-armor's cost estimate (it counts list sizes): a backstop behind maxNodes. */
        maxCost: positiveInt.default(1_000_000),
        /** Most list items a query may ask for, multiplying nested `first`s. */
        maxNodes: positiveInt.default(50_000),
        /** /ready answers 200 when the indexer is within this many blocks of the head. */
        readyLagBlocks: nonNegativeInt.default(2),
      })
      .strict()
      .prefault({}),
    ranking: z
      .object({
        windowSeconds: positiveInt.default(30 * 86_400),
        /** Independent payers a provider needs for its own numbers to count as much as the model's mean. */
        priorStrength: z.number().positive().default(2),
        /** Input tokens per output token in the reference workload that prices bids. */
        inputTokensPerOutputToken: z.number().min(0).default(1),
        /** Tokens per second assumed for time-priced bids when a model has no measurement yet. */
        defaultTps: z.number().positive().default(20),
        weights: weightsSchema.prefault({}),
      })
      .strict()
      .prefault({}),
    probes: z
      .object({
        enabled: z.boolean().default(true),
        intervalMs: positiveInt.default(60_000),
        timeoutMs: positiveInt.default(3_000),
        concurrency: positiveInt.default(8),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(["debug", "info", "warn", "error"]).default("info"),
        format: z.enum(["json", "pretty"]).optional(),
        /** A progress bar on a terminal (structured log lines otherwise). */
        progress: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type IndexerConfig = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type RankingConfig = IndexerConfig["ranking"];
export type RankingWeights = RankingConfig["weights"];

/** Command-line flags the CLI accepts, already typed. */
export interface ConfigFlags {
  config?: string;
  rpc?: string[];
  ws?: string;
  databaseUrl?: string;
  databaseSchema?: string;
  dataDir?: string;
  host?: string;
  port?: string;
  dev?: boolean;
  startBlock?: string;
  finalityDepth?: string;
  deploymentFile?: string;
}

type Tree = Record<string, unknown>;

function setPath(tree: Tree, path: readonly string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    node = (typeof next === "object" && next !== null ? next : (node[key] = {})) as Tree;
  }
  node[path.at(-1)!] = value;
}

const asNumber = (value: string) => (value.trim() === "" ? Number.NaN : Number(value));
const asBoolean = (value: string) => ["1", "true", "yes", "on"].includes(value.toLowerCase());
const asList = (value: string) =>
  value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");

/** Environment variables and their place in the config. */
const ENVIRONMENT: readonly [string, readonly string[], (value: string) => unknown][] = [
  ["INDEXER_RPC_URLS", ["chain", "rpcUrls"], asList],
  ["INDEXER_WS_URL", ["chain", "wsUrl"], (value) => value],
  ["INDEXER_CHAIN_ID", ["chain", "chainId"], asNumber],
  ["INDEXER_FINALITY_DEPTH", ["chain", "finalityDepth"], asNumber],
  ["INDEXER_START_BLOCK", ["contracts", "startBlock"], asNumber],
  ["INDEXER_DEPLOYMENT_FILE", ["contracts", "deploymentFile"], (value) => value],
  ["DATABASE_URL", ["database", "url"], (value) => value],
  ["INDEXER_DATABASE_SCHEMA", ["database", "schema"], (value) => value],
  ["INDEXER_DATA_DIR", ["database", "dataDir"], (value) => value],
  ["INDEXER_HOST", ["api", "host"], (value) => value],
  ["INDEXER_PORT", ["api", "port"], asNumber],
  ["INDEXER_DEV", ["api", "dev"], asBoolean],
  ["INDEXER_LOG_LEVEL", ["log", "level"], (value) => value],
];

function readConfigFile(path: string): Tree {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`, { path });
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(error as Error).message}`, { path });
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a mapping at the top level`, { path });
  }
  return parsed as Tree;
}

/** Validates a config object; the error lists every problem with its path. */
export function parseConfig(input: unknown, source = "config"): IndexerConfig {
  const result = configSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join(".") || "(top level)"}: ${issue.message}`);
  throw new ConfigError(`invalid ${source}:\n  ${problems.join("\n  ")}`, { problems });
}

/** Defaults < YAML file (`flags.config`) < environment < flags. */
export function loadConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): IndexerConfig {
  const tree: Tree = flags.config === undefined ? {} : readConfigFile(flags.config);
  for (const [name, path, convert] of ENVIRONMENT) {
    const value = env[name];
    if (value !== undefined && value !== "") setPath(tree, path, convert(value));
  }
  const fromFlags: [unknown, readonly string[]][] = [
    [flags.rpc, ["chain", "rpcUrls"]],
    [flags.ws, ["chain", "wsUrl"]],
    [flags.finalityDepth === undefined ? undefined : asNumber(flags.finalityDepth), ["chain", "finalityDepth"]],
    [flags.startBlock === undefined ? undefined : asNumber(flags.startBlock), ["contracts", "startBlock"]],
    [flags.deploymentFile, ["contracts", "deploymentFile"]],
    [flags.databaseUrl, ["database", "url"]],
    [flags.databaseSchema, ["database", "schema"]],
    [flags.dataDir, ["database", "dataDir"]],
    [flags.host, ["api", "host"]],
    [flags.port === undefined ? undefined : asNumber(flags.port), ["api", "port"]],
    [flags.dev, ["api", "dev"]],
  ];
  for (const [value, path] of fromFlags) if (value !== undefined) setPath(tree, path, value);
  const chain = tree.chain as Tree | undefined;
  if (chain?.rpcUrls === undefined) setPath(tree, ["chain", "rpcUrls"], ["http://127.0.0.1:8545"]);
  return parseConfig(tree, flags.config === undefined ? "configuration" : `configuration (${flags.config})`);
}

/** The market's addresses: explicit, from the named deployment file, or from Ignition's file for the chain. */
export function resolveAddresses(config: IndexerConfig, chainId: number): MarketAddresses {
  const explicit = config.contracts.addresses;
  if (explicit !== undefined) {
    return Object.fromEntries(
      Object.entries(explicit).map(([name, value]) => [name, getAddress(value)]),
    ) as unknown as MarketAddresses;
  }
  const path = config.contracts.deploymentFile ?? deploymentFile(PROJECT_ROOT, chainId);
  if (config.contracts.deploymentFile === undefined && !existsSync(path)) {
    throw new ConfigError(
      `no deployment for chain ${chainId} at ${path}: set contracts.deploymentFile or contracts.addresses`,
      { chainId, path },
    );
  }
  try {
    return loadMarketAddresses(path);
  } catch (error) {
    throw new ConfigError((error as Error).message, { path }, { cause: error });
  }
}

/** Where a PGlite data dir lives for a config (relative paths are from the working directory). */
export const dataDirOf = (config: IndexerConfig) => resolve(config.database.dataDir);
