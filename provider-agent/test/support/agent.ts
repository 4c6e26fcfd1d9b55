/**
 * Agents for the tests: a config on a test market and the tiny models (one thread, no GPU, port 0),
 * started in this process with `startAgent` (sharing the test process's node-llama-cpp), and the log
 * lines it wrote, for the checks that no key ever reaches a log.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { bidIdOf, modelIdOf } from "../../../protocol/index.js";
import { type AgentParts, type RunningAgent, startAgent } from "../../src/agent.js";
import { type AgentConfig, parseConfig } from "../../src/config/load.js";
import { type AgentKeys, keysFromAccounts } from "../../src/keys/load.js";
import { Logger, memoryDestination } from "../../src/log/logger.js";
import { sharedLlama, testModels } from "./models.js";
import type { TestMarket } from "./market.js";

export const PRICES = {
  pricePerSecond: 1_000_000_000_000n,
  pricePerInputToken: 1_000_000_000n,
  pricePerOutputToken: 4_000_000_000n,
};
export const ADAPTER_PRICES = {
  pricePerSecond: 0n,
  pricePerInputToken: 2_000_000_000n,
  pricePerOutputToken: 8_000_000_000n,
};

/** Ids the provider's registration of the tiny model and its adapter gets. */
export async function tinyIds(market: TestMarket) {
  const models = await testModels();
  const provider = market.accounts.provider.address;
  const modelId = modelIdOf(provider, `0x${models.model.sha256}`);
  const adapterId = modelIdOf(provider, `0x${models.adapter.sha256}`);
  return {
    modelId,
    adapterId,
    bidId: bidIdOf(provider, modelId),
    adapterBidId: bidIdOf(provider, adapterId),
  };
}

/** A raw config (as YAML would give it) for the tiny model and its adapter on `market`. */
export async function rawTestConfig(
  market: TestMarket,
  overrides: { dataDir?: string; rpcUrl?: string; model?: Record<string, unknown>; [section: string]: unknown } = {},
): Promise<Record<string, unknown>> {
  const models = await testModels();
  const { dataDir, rpcUrl, model, ...sections } = overrides;
  const string = (prices: Record<string, bigint>) =>
    Object.fromEntries(Object.entries(prices).map(([key, value]) => [key, value.toString()]));
  return {
    chain: { rpcUrls: [rpcUrl ?? market.chain.rpcUrl], confirmations: 0, pollIntervalMs: 100, logChunkBlocks: 1_000 },
    // resolve(): under tsx, local-chain.ts may name the folder relative to the working directory.
    deployment: { addressesFile: resolve(market.chain.deploymentDir, "deployed_addresses.json") },
    server: { host: "127.0.0.1", port: 0, shutdownGraceSeconds: 5 },
    provider: { metadataURI: "ipfs://test-provider", topUpStake: true },
    dataDir: dataDir ?? (await mkdtemp(join(tmpdir(), "agent-data-"))),
    log: { level: "info" },
    models: [
      {
        name: "tiny",
        file: models.model.path,
        register: { name: "tiny", tags: ["test"], royaltyBps: 100 },
        bid: string(PRICES),
        contextSize: 1024,
        parallel: 2,
        threads: 1,
        gpu: "off",
        maxTokens: 256,
        adapters: [
          {
            name: "tiny-lora",
            file: models.adapter.path,
            register: { name: "tiny-lora", royaltyBps: 0 },
            bid: string(ADAPTER_PRICES),
          },
        ],
        ...model,
      },
    ],
    settlement: { checkIntervalSeconds: 1, claimIntervalSeconds: 0 },
    ...sections,
  };
}

export async function testConfig(market: TestMarket, overrides: Parameters<typeof rawTestConfig>[1] = {}) {
  return parseConfig(await rawTestConfig(market, overrides), tmpdir());
}

export interface TestAgent extends RunningAgent {
  parts: AgentParts;
  config: AgentConfig;
  logs: () => string;
}

/** Starts an agent in this process and waits until it serves. */
export async function startTestAgent(
  market: TestMarket,
  options: { config?: AgentConfig; keys?: AgentKeys } = {},
): Promise<TestAgent> {
  const config = options.config ?? (await testConfig(market));
  const keys =
    options.keys ?? keysFromAccounts({ provider: market.accounts.provider, operator: market.accounts.operator });
  const output = memoryDestination();
  const logger = Logger.create({ level: config.log.level, destination: output.write });
  const agent = await startAgent({ config, keys, logger, llama: await sharedLlama(), maxThreads: 1 });
  try {
    return { ...agent, parts: await agent.ready, config, logs: output.text };
  } catch (error) {
    await agent.stop({ graceMs: 0 });
    throw new Error(`the agent did not start; its log:\n${output.text()}`, { cause: error });
  }
}
