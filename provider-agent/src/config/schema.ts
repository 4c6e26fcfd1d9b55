/**
 * The agent's configuration (agent.yaml), as a zod schema: every field, its default and what it
 * means. `loadConfig` (load.ts) parses the YAML with it and names each mistake by its path.
 * Keys never live here: see keys/ (env or an encrypted keystore).
 */
import { z } from "zod";

/** A token amount in base units: a decimal string or an integer. */
export const amount = z
  .union([
    z.bigint().nonnegative("expected a non-negative amount"),
    z.string().regex(/^(0|[1-9][0-9]*)$/, 'expected an amount in base units: digits only, e.g. "1000000000"'),
    z
      .number()
      .int("expected a whole number of base units")
      .nonnegative("expected a non-negative amount")
      .refine(Number.isSafeInteger, "amounts above 2^53 lose precision as JSON numbers: write them as strings"),
  ])
  .transform((value) => BigInt(value));

const bytes32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, "expected 32 bytes as 0x and 64 hex digits")
  .transform((value) => value.toLowerCase() as `0x${string}`);

const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, "expected an address: 0x and 40 hex digits")
  .transform((value) => value as `0x${string}`);

const httpUrl = z
  .url("expected a URL")
  .refine((value) => /^https?:\/\//.test(value), "expected an http:// or https:// URL");

const rpcUrl = z
  .url("expected a URL")
  .refine((value) => /^(https?|wss?):\/\//.test(value), "expected an http(s):// or ws(s):// URL");

const seconds = z.number().int("expected whole seconds").nonnegative();
const positiveInt = z.number().int("expected a whole number").positive();

/** The three prices of a bid, base units of the market token. */
const bidSchema = z.strictObject({
  pricePerSecond: amount.default(0n),
  pricePerInputToken: amount.default(0n),
  pricePerOutputToken: amount.default(0n),
});

/** Registration of a model the provider owns (its id is then keccak256(provider, sha256 of the file)). */
const registrationSchema = z.strictObject({
  /** Human name on chain (1 to 128 bytes). Default: the model's `name`. */
  name: z.string().min(1).max(128).optional(),
  /** Where others can fetch the file. Default: the model's `uri`, else "". */
  uri: z.string().max(2048).optional(),
  tags: z.array(z.string().max(64)).max(16).default([]),
  royaltyBps: z.number().int().min(0).max(10_000).default(0),
});

const gpuMode = z.union([z.literal("auto"), z.literal("on"), z.literal("off"), z.boolean()]).transform((value) => {
  if (value === true) return "on" as const;
  if (value === false) return "off" as const;
  return value;
});

/** Where a model's weights come from: exactly one of `file`, `uri`, `upstream`. */
const sourceFields = {
  /** A local GGUF file (relative to the config file's folder). */
  file: z.string().min(1).optional(),
  /** An http(s) URI to download the GGUF from (kept in `dataDir/models`). */
  uri: httpUrl.optional(),
  /** The sha256 of the file, 0x-hex: required for `upstream` models the agent registers. */
  sha256: bytes32.optional(),
};

const adapterSchema = z.strictObject({
  /** A label for logs and /v1/models. */
  name: z.string().min(1),
  /** The on-chain model id of the adapter; omit it for an adapter the provider registers (`register`). */
  id: bytes32.optional(),
  ...sourceFields,
  /** How strongly the adapter applies; 1 is as trained. */
  scale: z.number().positive().default(1),
  register: registrationSchema.optional(),
  bid: bidSchema.optional(),
});

const modelSchema = z.strictObject({
  /** A label for logs. */
  name: z.string().min(1),
  /** The on-chain model id; omit it for a model the provider registers itself (`register`). */
  id: bytes32.optional(),
  ...sourceFields,
  /** An OpenAI-compatible server that serves this model (llama-server, vLLM…): `http://host:port/v1`. */
  upstream: httpUrl.optional(),
  /** The model name the upstream server knows it by (default: the on-chain model id). */
  upstreamModel: z.string().optional(),
  register: registrationSchema.optional(),
  /** The bid to post (or keep) for this model; omit to serve without bidding. */
  bid: bidSchema.optional(),
  /** Tokens per sequence (prompt and output together). */
  contextSize: positiveInt.default(4096),
  /** Parallel sequences (continuous batching). */
  parallel: positiveInt.default(4),
  /** Requests that may wait for a sequence (default parallel × 8). */
  maxQueued: z.number().int().nonnegative().optional(),
  /** CPU threads (default: the machine's cores). */
  threads: positiveInt.optional(),
  gpu: gpuMode.default("auto"),
  /** Most tokens one request may ask for (`max_tokens`); above it a request is refused. */
  maxTokens: positiveInt.default(2048),
  adapters: z.array(adapterSchema).default([]),
});

const keystoreSchema = z.strictObject({
  /** An encrypted JSON keystore (Web3 secret storage v3), relative to the config file. */
  path: z.string().min(1),
  /** The environment variable that holds its password. */
  passwordEnv: z.string().min(1),
});

export const configSchema = z.strictObject({
  chain: z.strictObject({
    /** JSON-RPC endpoints, tried in order (http(s) or ws(s); a websocket one is used for new blocks). */
    rpcUrls: z.array(rpcUrl).min(1, "give at least one RPC URL"),
    /** Refuse to start on another chain. */
    chainId: positiveInt.optional(),
    /** Blocks an event waits before the agent acts on it (0: at once). */
    confirmations: z.number().int().min(0).max(1000).default(1),
    /** How often to poll for blocks when no websocket is offered. */
    pollIntervalMs: positiveInt.default(2000),
    /** The first block to look for the provider's sessions in (the deployment block is a good choice). */
    fromBlock: z.number().int().nonnegative().default(0),
    /** The largest block range asked of `eth_getLogs` at once (halved when the RPC refuses). */
    logChunkBlocks: positiveInt.default(10_000),
  }),
  /** Where the market is: Ignition's deployed_addresses.json (default: ignition/deployments/chain-<chainId>/), or the addresses. */
  deployment: z
    .strictObject({
      addressesFile: z.string().min(1).optional(),
      sessionRouter: address.optional(),
      staking: address.optional(),
      providerRegistry: address.optional(),
      modelRegistry: address.optional(),
      marketplace: address.optional(),
      escrow: address.optional(),
      token: address.optional(),
    })
    .default({}),
  server: z
    .strictObject({
      host: z.string().min(1).default("127.0.0.1"),
      port: z.number().int().min(0).max(65_535).default(8080),
      /** The agent's public base URL, registered on chain for consumers (default: http://host:port). */
      publicEndpoint: httpUrl.optional(),
      /** Largest request body accepted. */
      bodyLimitBytes: positiveInt.default(1_048_576),
      /** Requests per minute from one IP address (0: no limit). */
      rateLimitPerIp: z.number().int().nonnegative().default(600),
      /** Inference requests per minute for one session (0: no limit). */
      rateLimitPerSession: z.number().int().nonnegative().default(120),
      /** Seconds in-flight streams may take to finish on SIGTERM. */
      shutdownGraceSeconds: seconds.default(30),
      /** Serve the OpenAPI document and its UI at /docs. */
      docs: z.boolean().default(true),
    })
    .default({
      host: "127.0.0.1",
      port: 8080,
      bodyLimitBytes: 1_048_576,
      rateLimitPerIp: 600,
      rateLimitPerSession: 120,
      shutdownGraceSeconds: 30,
      docs: true,
    }),
  provider: z
    .strictObject({
      /** Free-form metadata URI registered with the provider. */
      metadataURI: z.string().max(2048).default(""),
      /** Stake up to the market's minimum from the provider key when below it (else start-up fails). */
      topUpStake: z.boolean().default(false),
      /** Register/update the provider, its models and bids (needs the provider key; else verify only). */
      manageOnChain: z.boolean().default(true),
    })
    .default({ metadataURI: "", topUpStake: false, manageOnChain: true }),
  keys: z
    .strictObject({
      /** Environment variable holding the provider's private key (0x-hex). */
      providerKeyEnv: z.string().min(1).default("PROVIDER_PRIVATE_KEY"),
      /** Environment variable holding the operator's private key (0x-hex). */
      operatorKeyEnv: z.string().min(1).default("OPERATOR_PRIVATE_KEY"),
      providerKeystore: keystoreSchema.optional(),
      operatorKeystore: keystoreSchema.optional(),
      /** The provider's address, for operator-only mode (no provider key). */
      providerAddress: address.optional(),
    })
    .default({ providerKeyEnv: "PROVIDER_PRIVATE_KEY", operatorKeyEnv: "OPERATOR_PRIVATE_KEY" }),
  models: z.array(modelSchema).min(1, "configure at least one model"),
  sessions: z
    .strictObject({
      /** Worth of tokens (base units) served past the best receipt held before a receipt is required. */
      creditLimit: amount.default(10n ** 16n),
      /** The largest deposit one session may lock (the approval's `maxDeposit`). */
      maxDeposit: amount.default(10n ** 21n),
      /** The longest session approved, seconds (never above the market's). */
      maxDuration: positiveInt.default(86_400),
      /** Sessions open plus approvals outstanding at once. */
      maxOpenSessions: positiveInt.default(256),
      /** Seconds an approval stays valid for `openSession`. */
      approvalTtlSeconds: positiveInt.default(600),
      /** How far ahead a bearer token's `expiresAt` may lie. */
      maxAuthLifetimeSeconds: positiveInt.default(86_400),
      /** The highest model royalty an approval accepts (default: the model's current one). */
      maxRoyaltyBps: z.number().int().min(0).max(10_000).optional(),
      /** The highest protocol fee an approval accepts (default: the router's current one). */
      maxFeeBps: z.number().int().min(0).max(10_000).optional(),
    })
    .default({
      creditLimit: 10n ** 16n,
      maxDeposit: 10n ** 21n,
      maxDuration: 86_400,
      maxOpenSessions: 256,
      approvalTtlSeconds: 600,
      maxAuthLifetimeSeconds: 86_400,
    }),
  settlement: z
    .strictObject({
      /** Close expired sessions with the best receipt held. */
      closeExpired: z.boolean().default(true),
      /** Challenge a user's close whose receipt charges less than the best held. */
      challenge: z.boolean().default(true),
      /** Finalize closes after their challenge window (pays the provider). */
      finalize: z.boolean().default(true),
      /** Seconds between checks of expired and closing sessions. */
      checkIntervalSeconds: positiveInt.default(15),
      /** Seconds between claims of the provider's escrow balance (0: only `provider-agent claim`). */
      claimIntervalSeconds: seconds.default(3600),
      /** Claim only when the balance is at least this. */
      minClaim: amount.default(1n),
    })
    .default({
      closeExpired: true,
      challenge: true,
      finalize: true,
      checkIntervalSeconds: 15,
      claimIntervalSeconds: 3600,
      minClaim: 1n,
    }),
  /** Journal, downloaded models and state (relative to the config file). */
  dataDir: z.string().min(1).default("./agent-data"),
  log: z
    .strictObject({
      level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
    })
    .default({ level: "info" }),
});

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type ModelConfig = ParsedConfig["models"][number];
export type AdapterConfig = ModelConfig["adapters"][number];
export type BidConfig = z.output<typeof bidSchema>;
export type RegistrationConfig = z.output<typeof registrationSchema>;
export type KeystoreConfig = z.output<typeof keystoreSchema>;
