/**
 * Config files for the services of a local market, written into its run directory: a provider
 * agent's agent.yaml (provider-agent/agent.example.yaml documents every field) and the indexer's
 * indexer.yaml (docs/indexer.md). Both services then run as child processes through their own
 * CLIs, exactly as an operator would run them.
 */
import { writeFileSync } from "node:fs";
import { stringify } from "yaml";
import type { ConfigInput as AgentConfigInput } from "../../provider-agent/src/config/schema";

export interface BidPrices {
  perSecond: bigint;
  perInputToken: bigint;
  perOutputToken: bigint;
}

export interface ServedModel {
  /** A label for logs and /v1/models. */
  name: string;
  /** The GGUF file. */
  file: string;
  /**
   * Register the model as the provider's own (its id is then keccak256(provider, sha256)), with this
   * royalty; or serve a model already registered (by anyone) under `id`.
   */
  ownership: { register: { royaltyBps: number; tags: string[] } } | { id: `0x${string}` };
  contextSize: number;
  /** Parallel sequences (continuous batching). */
  parallel: number;
  /** CPU threads (default: the machine's cores). */
  threads?: number;
  gpu: "auto" | "on" | "off";
  maxTokens: number;
}

export interface AgentSetup {
  rpcUrl: string;
  /** The node's websocket: new blocks are heard at once. */
  wsUrl?: string;
  deploymentFile: string;
  /** Where the provider's sessions start (the market's deployment block). */
  fromBlock: bigint;
  host: string;
  port: number;
  /** The endpoint registered on chain (default: http://host:port). */
  publicEndpoint?: string;
  dataDir: string;
  model: ServedModel;
  prices: BidPrices;
  /** 0: claim only on demand (`provider-agent claim`). */
  claimIntervalSeconds: number;
}

/** The agent's config as agent.yaml holds it (amounts as decimal strings, as the YAML wants them). */
export function agentConfig(setup: AgentSetup): AgentConfigInput {
  const { model } = setup;
  const decimal = (value: bigint) => value.toString();
  return {
    chain: {
      rpcUrls: [setup.rpcUrl, ...(setup.wsUrl ? [setup.wsUrl] : [])],
      confirmations: 0,
      pollIntervalMs: 500,
      fromBlock: Number(setup.fromBlock),
      logChunkBlocks: 10_000,
    },
    deployment: { addressesFile: setup.deploymentFile },
    server: {
      host: setup.host,
      port: setup.port,
      publicEndpoint: setup.publicEndpoint ?? `http://${setup.host}:${setup.port}`,
      shutdownGraceSeconds: 5,
      docs: true,
    },
    // Stakes the market's minimum from the provider key when short: a fresh chain has no stake yet.
    provider: { metadataURI: "", topUpStake: true, manageOnChain: true },
    models: [
      {
        name: model.name,
        file: model.file,
        ...("id" in model.ownership
          ? { id: model.ownership.id }
          : {
              register: {
                name: model.name,
                tags: model.ownership.register.tags,
                royaltyBps: model.ownership.register.royaltyBps,
              },
            }),
        bid: {
          pricePerSecond: decimal(setup.prices.perSecond),
          pricePerInputToken: decimal(setup.prices.perInputToken),
          pricePerOutputToken: decimal(setup.prices.perOutputToken),
        },
        contextSize: model.contextSize,
        parallel: model.parallel,
        ...(model.threads === undefined ? {} : { threads: model.threads }),
        gpu: model.gpu,
        maxTokens: model.maxTokens,
      },
    ],
    settlement: { checkIntervalSeconds: 2, claimIntervalSeconds: setup.claimIntervalSeconds },
    dataDir: setup.dataDir,
    log: { level: "info" },
  };
}

export interface IndexerSetup {
  rpcUrl: string;
  wsUrl?: string;
  deploymentFile: string;
  startBlock: bigint;
  host: string;
  port: number;
  /** PGlite's data directory. */
  dataDir: string;
  /** How often the providers' endpoints are probed for availability. */
  probeIntervalMs?: number;
}

/** The indexer's config as indexer.yaml holds it (PGlite, GraphiQL on). */
export function indexerConfig(setup: IndexerSetup): Record<string, unknown> {
  return {
    chain: {
      rpcUrls: [setup.rpcUrl],
      ...(setup.wsUrl ? { wsUrl: setup.wsUrl } : {}),
      // Hardhat mines a block per transaction and never reorganises: a shallow depth is enough.
      finalityDepth: 2,
      pollIntervalMs: 250,
    },
    contracts: { deploymentFile: setup.deploymentFile, startBlock: Number(setup.startBlock) },
    database: { dataDir: setup.dataDir },
    api: { host: setup.host, port: setup.port, dev: true },
    probes: { intervalMs: setup.probeIntervalMs ?? 30_000 },
    log: { level: "info", format: "json", progress: false },
  };
}

/** Writes `config` as YAML, under a comment saying what wrote it. */
export function writeYamlConfig(path: string, config: object, header: string): void {
  const comment = header
    .split("\n")
    .map((line) => `# ${line}`.trimEnd())
    .join("\n");
  writeFileSync(path, `${comment}\n${stringify(config)}`);
}
