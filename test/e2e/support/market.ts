/**
 * A whole local market of real processes for the end-to-end test: a `hardhat node` with LocalMarket
 * deployed (scripts/local-chain.ts), the indexer and provider agents started through their own
 * CLIs with config files (scripts/market/service-configs.ts), as `npm start` runs them. Their output
 * is kept in memory, prefixed with each name, for the failure messages.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Address, type Hex, type PublicClient, createPublicClient, getAddress, http } from "viem";
import { bidIdOf } from "../../../protocol/index.js";
import { type LocalMarket, startLocalMarket } from "../../../scripts/local-chain.js";
import { PrefixedOutput } from "../../../scripts/market/prefixed-output.js";
import { type ManagedProcess, ProcessGroup, describeExit } from "../../../scripts/market/processes.js";
import {
  type BidPrices,
  type ServedModel,
  agentConfig,
  indexerConfig,
  writeYamlConfig,
} from "../../../scripts/market/service-configs.js";
import { httpStatus, waitUntil } from "../../../scripts/market/wait.js";

export const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
export const AGENT_BIN = join(ROOT, "provider-agent", "bin", "provider-agent.mjs");
const INDEXER_BIN = join(ROOT, "indexer", "bin", "indexer.mjs");
export const MARKET_CLI = join(ROOT, "client", "bin", "market.mjs");
const HOST = "127.0.0.1";

export interface AgentProcess {
  name: string;
  process: ManagedProcess;
  /** Where the agent listens. */
  url: string;
  /** The endpoint registered on chain (the agent's URL, or a link in front of it). */
  endpoint: string;
  configFile: string;
  /** Its keys, as its environment holds them (for `provider-agent claim`). */
  env: Record<string, string>;
  provider: Address;
  prices: BidPrices;
}

export interface AgentOptions {
  name: string;
  providerIndex: number;
  operatorIndex: number;
  prices: BidPrices;
  model: ServedModel;
  port: number;
  /** The endpoint to register (default: the agent's own URL). */
  publicEndpoint?: string;
}

export class E2eMarket {
  private readonly lines: string[] = [];
  readonly group: ProcessGroup;
  /** Processes that exited on their own, with how. */
  readonly exits: string[] = [];
  indexerUrl = "";
  readonly publicClient: PublicClient;

  private constructor(
    readonly chain: LocalMarket,
    readonly runDir: string,
  ) {
    this.publicClient = createPublicClient({ transport: http(chain.rpcUrl), pollingInterval: 100 });
    const output = new PrefixedOutput((text) => this.lines.push(text), { width: 8 });
    this.group = new ProcessGroup({
      output,
      stopGraceMs: 10_000,
      onUnexpectedExit: (managed, status) => this.exits.push(`${managed.name}: ${describeExit(status)}`),
    });
  }

  /** A fresh chain (challenge window of a minute) with the market deployed. */
  static async start(): Promise<E2eMarket> {
    const chain = await startLocalMarket({ parameters: { challengeWindow: 60 } });
    return new E2eMarket(chain, await mkdtemp(join(tmpdir(), "market-e2e-")));
  }

  get deploymentFile(): string {
    return resolve(this.chain.deploymentDir, "deployed_addresses.json");
  }

  get graphqlUrl(): string {
    return `${this.indexerUrl}/graphql`;
  }

  /** The last lines the processes wrote (for a failure's message). */
  logs(lines = 60): string {
    return this.lines.join("").split("\n").slice(-lines).join("\n");
  }

  devKey(index: number): Hex {
    const account = this.chain.accounts[index];
    if (!account) throw new Error(`no dev account ${index}`);
    return account.privateKey;
  }

  async startIndexer(port: number): Promise<ManagedProcess> {
    const configFile = join(this.runDir, "indexer.yaml");
    writeYamlConfig(
      configFile,
      indexerConfig({
        rpcUrl: this.chain.rpcUrl,
        wsUrl: this.chain.wsUrl,
        deploymentFile: this.deploymentFile,
        startBlock: this.chain.deploymentBlock,
        host: HOST,
        port,
        dataDir: join(this.runDir, "indexer-data"),
        // One probe of each endpoint at start: availability stays equal while agents are killed.
        probeIntervalMs: 3_600_000,
      }),
      "end-to-end test indexer",
    );
    const indexer = this.group.startNode("indexer", {
      args: [INDEXER_BIN, "start", "--config", configFile],
      cwd: ROOT,
    });
    this.indexerUrl = `http://${HOST}:${port}`;
    await this.waitForHttp(indexer, `${this.indexerUrl}/ready`, "the indexer to catch up");
    return indexer;
  }

  async startAgent(options: AgentOptions): Promise<AgentProcess> {
    const configFile = join(this.runDir, `${options.name}.yaml`);
    const url = `http://${HOST}:${options.port}`;
    writeYamlConfig(
      configFile,
      agentConfig({
        rpcUrl: this.chain.rpcUrl,
        wsUrl: this.chain.wsUrl,
        deploymentFile: this.deploymentFile,
        fromBlock: this.chain.deploymentBlock,
        host: HOST,
        port: options.port,
        ...(options.publicEndpoint ? { publicEndpoint: options.publicEndpoint } : {}),
        dataDir: join(this.runDir, `${options.name}-data`),
        model: options.model,
        prices: options.prices,
        claimIntervalSeconds: 0,
      }),
      `end-to-end test agent ${options.name}`,
    );
    const env = {
      PROVIDER_PRIVATE_KEY: this.devKey(options.providerIndex),
      OPERATOR_PRIVATE_KEY: this.devKey(options.operatorIndex),
    };
    const agent = this.group.startNode(options.name, {
      args: [AGENT_BIN, "start", "--config", configFile],
      cwd: ROOT,
      env,
    });
    await this.waitForHttp(agent, `${url}/health`, `agent ${options.name} to serve`);
    return {
      name: options.name,
      process: agent,
      url,
      endpoint: options.publicEndpoint ?? url,
      configFile,
      env,
      provider: getAddress(this.chain.accounts[options.providerIndex]!.address),
      prices: options.prices,
    };
  }

  bidIdOf(agent: AgentProcess, modelId: Hex): Hex {
    return bidIdOf(agent.provider, modelId);
  }

  private async waitForHttp(process: ManagedProcess, url: string, what: string): Promise<void> {
    let exited = false;
    void process.exited.then(() => (exited = true));
    try {
      await waitUntil(
        what,
        async () => {
          if (exited) throw new Error(`${process.name} exited`);
          return (await httpStatus(url)) === 200;
        },
        { timeoutMs: 120_000, intervalMs: 200 },
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${this.logs()}`, { cause: error });
    }
  }

  /** A GraphQL query to the indexer; throws on errors. */
  async graphql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const response = await fetch(this.graphqlUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
    if (body.errors?.length || body.data === undefined) {
      throw new Error(`GraphQL: ${body.errors?.map((error) => error.message).join("; ") ?? "no data"}`);
    }
    return body.data;
  }

  /** Waits until the indexer has applied the chain's current block. */
  async indexerCaughtUp(): Promise<void> {
    const head = Number(await this.publicClient.getBlockNumber());
    await waitUntil(
      `the indexer to reach block ${head}`,
      async () => {
        const data = await this.graphql<{ _meta: { block: { number: number } | null } }>(
          "{ _meta { block { number } } }",
        );
        return (data._meta.block?.number ?? -1) >= head;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
  }

  async stop(): Promise<void> {
    await this.group.stopAll();
    await this.chain.stop();
    await rm(this.runDir, { recursive: true, force: true });
  }
}
