/**
 * Providers for the client's tests: real provider agents (`startAgent` on the project's tiny
 * generated GGUF model, embedded node-llama-cpp on one CPU thread), and stand-in providers
 * registered on chain whose "agent" hands out deliberately bad approvals or is not there at all.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Llama, LlamaLogLevel, getLlama } from "node-llama-cpp";
import { type Address, type Hex, createWalletClient, http, publicActions } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { type ApprovalResponseBody, approvalToJson, pricesToJson } from "../../../protocol/agent-api.js";
import {
  type Prices,
  bidIdOf,
  marketDomain,
  marketTokenAbi,
  marketplaceAbi,
  providerRegistryAbi,
  signSessionApproval,
  stakingAbi,
} from "../../../protocol/index.js";
import { type RunningAgent, startAgent } from "../../../provider-agent/src/agent.js";
import { parseConfig } from "../../../provider-agent/src/config/load.js";
import { keysFromAccounts } from "../../../provider-agent/src/keys/load.js";
import { Logger } from "../../../provider-agent/src/log/logger.js";
import { TINY_SHAPE, writeLlamaTestModel } from "../../../provider-agent/src/models/gguf/test-llama.js";
import { freePort } from "../../../scripts/local-chain.js";
import { type LocalMarket, devKey } from "./local-market.js";

let llama: Promise<Llama> | undefined;
function sharedLlama(): Promise<Llama> {
  llama ??= getLlama({
    build: "never",
    gpu: false,
    maxThreads: 1,
    logLevel: LlamaLogLevel.error,
    logger: () => undefined,
  });
  return llama;
}

let modelFile: Promise<{ path: string; sha256: Hex; directory: string }> | undefined;
/** The tiny test model, written once per test process. */
export function tinyModel() {
  modelFile ??= (async () => {
    const directory = await mkdtemp(join(tmpdir(), "client-models-"));
    const written = await writeLlamaTestModel(join(directory, "tiny.gguf"), { shape: TINY_SHAPE, seed: 1 });
    return { path: written.path, sha256: `0x${written.sha256}` satisfies Hex, directory };
  })();
  return modelFile;
}

export interface TestAgent {
  agent: RunningAgent;
  url: string;
  provider: Address;
  operator: Address;
  modelId: Hex;
  bidId: Hex;
  dataDir: string;
  stop(): Promise<void>;
}

export interface TestAgentOptions {
  providerIndex: number;
  operatorIndex: number;
  prices: Prices;
  /** Serve (and bid on) this model id instead of registering the file as the provider's own. */
  modelId?: Hex;
  creditLimit?: bigint;
}

/** A real provider agent: stakes, registers, registers the model (or uses `modelId`), bids, serves. */
export async function startTestAgent(market: LocalMarket, options: TestAgentOptions): Promise<TestAgent> {
  const model = await tinyModel();
  const dataDir = await mkdtemp(join(tmpdir(), "client-agent-"));
  const config = parseConfig(
    {
      chain: { rpcUrls: [market.rpcUrl], confirmations: 0, pollIntervalMs: 200 },
      server: { host: "127.0.0.1", port: 0, docs: false, rateLimitPerIp: 0, rateLimitPerSession: 0 },
      provider: { topUpStake: true },
      models: [
        {
          name: "tiny",
          file: model.path,
          ...(options.modelId
            ? { id: options.modelId }
            : { register: { name: "tiny", tags: ["test"], royaltyBps: 500 } }),
          bid: {
            pricePerSecond: options.prices.perSecond.toString(),
            pricePerInputToken: options.prices.perInputToken.toString(),
            pricePerOutputToken: options.prices.perOutputToken.toString(),
          },
          contextSize: 1024,
          parallel: 2,
          threads: 1,
          gpu: "off",
          maxTokens: 256,
        },
      ],
      sessions: {
        approvalTtlSeconds: 600,
        ...(options.creditLimit ? { creditLimit: options.creditLimit.toString() } : {}),
      },
      settlement: { checkIntervalSeconds: 1, claimIntervalSeconds: 0 },
      dataDir,
      log: { level: "silent" },
    },
    dataDir,
    "test agent",
  );
  const provider = privateKeyToAccount(devKey(market, options.providerIndex));
  const operator = privateKeyToAccount(devKey(market, options.operatorIndex));
  const agent = await startAgent({
    config,
    keys: keysFromAccounts({ provider, operator }),
    addresses: market.addresses,
    llama: await sharedLlama(),
    maxThreads: 1,
    logger: Logger.create({ level: "silent" }),
  });
  const parts = await agent.ready;
  const entry = parts.catalog[0]!;
  return {
    agent,
    url: agent.url,
    provider: provider.address,
    operator: operator.address,
    modelId: entry.id,
    bidId: bidIdOf(provider.address, entry.id),
    dataDir,
    stop: async () => {
      await agent.stop({ graceMs: 1_000 });
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export type StubBehaviour = "wrong-signer" | "wrong-user" | "raised-price" | "refuse";

export interface StubProvider {
  provider: Address;
  bidId: Hex;
  endpoint: string;
  approvalsServed: () => number;
  stop(): Promise<void>;
}

/**
 * A provider registered, staked and bidding on chain whose agent misbehaves on purpose (or, with
 * `down`, does not exist: its endpoint is a port nobody listens on).
 */
export async function startStubProvider(
  market: LocalMarket,
  options: { providerIndex: number; modelId: Hex; prices: Prices; behaviour: StubBehaviour | "down" },
): Promise<StubProvider> {
  const account = privateKeyToAccount(devKey(market, options.providerIndex));
  const wallet = createWalletClient({
    account,
    chain: { ...hardhat, id: market.chainId },
    transport: http(market.rpcUrl),
  }).extend(publicActions);
  const send = async (hash: Promise<Hex>) => wallet.waitForTransactionReceipt({ hash: await hash });
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const minStake = await wallet.readContract({
    address: market.addresses.providerRegistry,
    abi: providerRegistryAbi,
    functionName: "providerMinStake",
  });
  const bidFee = await wallet.readContract({
    address: market.addresses.marketplace,
    abi: marketplaceAbi,
    functionName: "bidFee",
  });
  await send(
    wallet.writeContract({
      address: market.addresses.token,
      abi: marketTokenAbi,
      functionName: "approve",
      args: [market.addresses.staking, minStake],
    }),
  );
  await send(
    wallet.writeContract({
      address: market.addresses.staking,
      abi: stakingAbi,
      functionName: "stake",
      args: [minStake],
    }),
  );
  await send(
    wallet.writeContract({
      address: market.addresses.providerRegistry,
      abi: providerRegistryAbi,
      functionName: "register",
      args: [endpoint, "", "0x0000000000000000000000000000000000000000"],
    }),
  );
  await send(
    wallet.writeContract({
      address: market.addresses.token,
      abi: marketTokenAbi,
      functionName: "approve",
      args: [market.addresses.marketplace, bidFee],
    }),
  );
  await send(
    wallet.writeContract({
      address: market.addresses.marketplace,
      abi: marketplaceAbi,
      functionName: "postBid",
      args: [options.modelId, options.prices],
    }),
  );
  const bidId = bidIdOf(account.address, options.modelId);

  let served = 0;
  let server: Server | undefined;
  if (options.behaviour !== "down") {
    const behaviour = options.behaviour;
    const domain = marketDomain(market.chainId, market.addresses.sessionRouter);
    server = createServer((request: IncomingMessage, response: ServerResponse) => {
      let text = "";
      request.on("data", (chunk: Buffer) => (text += chunk.toString()));
      request.on("end", () => {
        void (async () => {
          served += 1;
          const reply = (status: number, body: unknown) => {
            response.writeHead(status, { "content-type": "application/json" });
            response.end(JSON.stringify(body));
          };
          if (request.url !== "/v1/sessions/approvals" || behaviour === "refuse") {
            reply(503, {
              error: { message: "at capacity", type: "server_error", code: "capacity_exceeded", param: null },
            });
            return;
          }
          const body = JSON.parse(text) as { bidId: Hex; user: Address; deposit: string; maxDuration: number };
          const approval = {
            bidId: body.bidId,
            user: behaviour === "wrong-user" ? privateKeyToAccount(generatePrivateKey()).address : body.user,
            maxDeposit: BigInt(body.deposit),
            maxDuration: BigInt(body.maxDuration),
            deadline: BigInt(Math.floor(Date.now() / 1000) + 3600),
            nonce: BigInt(served),
            maxRoyaltyBps: 10_000,
            maxFeeBps: 10_000,
          };
          const signer = behaviour === "wrong-signer" ? privateKeyToAccount(generatePrivateKey()) : account;
          const prices =
            behaviour === "raised-price"
              ? { ...options.prices, perOutputToken: options.prices.perOutputToken * 2n }
              : options.prices;
          const answer: ApprovalResponseBody = {
            approval: approvalToJson(approval),
            signature: await signSessionApproval(signer, domain, approval),
            signer: signer.address,
            provider: account.address,
            modelId: options.modelId,
            prices: pricesToJson(prices),
            chainId: market.chainId,
            sessionRouter: market.addresses.sessionRouter,
          };
          reply(200, answer);
        })();
      });
    });
    await new Promise<void>((resolve) => server!.listen(port, "127.0.0.1", resolve));
  }
  return {
    provider: account.address,
    bidId,
    endpoint,
    approvalsServed: () => served,
    stop: async () => {
      const running = server;
      if (running) await new Promise<void>((resolve) => running.close(() => resolve()));
    },
  };
}
