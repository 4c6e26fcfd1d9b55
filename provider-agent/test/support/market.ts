/**
 * A local market for the agent's tests: `startLocalMarket()` (a real `hardhat node` with the market
 * deployed by Ignition), viem clients on it, the dev accounts in their roles, and chain helpers
 * (time travel, snapshots, reads the tests assert on).
 */
import {
  type Address,
  type Chain,
  type Hex,
  type LocalAccount,
  type PublicClient,
  type TestClient,
  type Transport,
  type WalletClient,
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  http,
  zeroAddress,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  type MarketAddresses,
  type MarketDomain,
  bidIdOf,
  escrowAbi,
  marketDomain,
  marketTokenAbi,
  marketplaceAbi,
  providerRegistryAbi,
  sessionRouterAbi,
  stakingAbi,
} from "../../../protocol/index.js";
import { type LocalMarket, startLocalMarket } from "../../../scripts/local-chain.js";

export interface TestMarket {
  chain: LocalMarket;
  addresses: MarketAddresses;
  domain: MarketDomain;
  viemChain: Chain;
  publicClient: PublicClient;
  testClient: TestClient;
  /** Dev accounts by role (each funded with tokens by LocalMarket). */
  accounts: {
    governance: LocalAccount;
    provider: LocalAccount;
    operator: LocalAccount;
    user: LocalAccount;
    user2: LocalAccount;
    stranger: LocalAccount;
    provider2: LocalAccount;
  };
  /** The private key of a role's account, for an agent that reads it from the environment. */
  privateKeyOf(account: LocalAccount): Hex;
  wallet(account: LocalAccount): WalletClient<Transport, Chain, LocalAccount>;
  stop(): Promise<void>;
}

export async function startTestMarket(parameters: Record<string, string | number | boolean> = {}): Promise<TestMarket> {
  const chain = await startLocalMarket({ parameters });
  const viemChain = defineChain({
    id: chain.chainId,
    name: "hardhat",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [chain.rpcUrl] } },
  });
  const transport = http(chain.rpcUrl, { retryCount: 0 });
  const keys = new Map<string, Hex>();
  const account = (index: number) => {
    const dev = chain.accounts[index]!;
    const local = privateKeyToAccount(dev.privateKey);
    keys.set(local.address, dev.privateKey);
    return local;
  };
  return {
    chain,
    addresses: chain.addresses,
    domain: marketDomain(chain.chainId, chain.addresses.sessionRouter),
    viemChain,
    publicClient: createPublicClient({ chain: viemChain, transport, pollingInterval: 100 }),
    testClient: createTestClient({ chain: viemChain, mode: "hardhat", transport }),
    accounts: {
      governance: account(0),
      provider: account(2),
      operator: account(3),
      user: account(5),
      user2: account(6),
      stranger: account(7),
      provider2: account(8),
    },
    privateKeyOf: (local) => {
      const key = keys.get(local.address);
      if (!key) throw new Error(`no dev key for ${local.address}`);
      return key;
    },
    wallet: (local) => createWalletClient({ account: local, chain: viemChain, transport }),
    stop: () => chain.stop(),
  };
}

/** Moves the chain's clock forward and mines a block (with a linked parent hash). */
export async function advanceTime(market: TestMarket, seconds: number): Promise<void> {
  await market.testClient.increaseTime({ seconds });
  await market.testClient.mine({ blocks: 1 });
}

export function tokenBalance(market: TestMarket, owner: Address): Promise<bigint> {
  return market.publicClient.readContract({
    address: market.addresses.token,
    abi: marketTokenAbi,
    functionName: "balanceOf",
    args: [owner],
  });
}

export function escrowBalance(market: TestMarket, owner: Address): Promise<bigint> {
  return market.publicClient.readContract({
    address: market.addresses.escrow,
    abi: escrowAbi,
    functionName: "balanceOf",
    args: [owner],
  });
}

/** Every `BidPosted` of the market (a second bid fee would show as a second event). */
export async function bidPostedEvents(market: TestMarket) {
  return market.publicClient.getContractEvents({
    address: market.addresses.marketplace,
    abi: marketplaceAbi,
    eventName: "BidPosted",
    fromBlock: 0n,
  });
}

/** The `SessionSettled` event of a session, once it settled. */
export async function settledEvent(market: TestMarket, sessionId: Hex) {
  const events = await market.publicClient.getContractEvents({
    address: market.addresses.sessionRouter,
    abi: sessionRouterAbi,
    eventName: "SessionSettled",
    args: { sessionId },
    fromBlock: 0n,
  });
  return events[0];
}

/** Waits until `check` returns a value other than undefined/false (polling; no fixed sleeps). */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Another provider with a bid on `modelId`, set up directly on chain (its agent is not needed). */
export async function secondProviderBid(
  market: TestMarket,
  modelId: Hex,
  prices: { perSecond: bigint; perInputToken: bigint; perOutputToken: bigint },
) {
  const provider = market.accounts.provider2;
  const wallet = market.wallet(provider);
  const send = async (request: Parameters<typeof wallet.writeContract>[0]) =>
    market.publicClient.waitForTransactionReceipt({ hash: await wallet.writeContract(request) });
  const stake = 100n * 10n ** 18n;
  await send({
    address: market.addresses.token,
    abi: marketTokenAbi,
    functionName: "approve",
    args: [market.addresses.staking, stake],
  });
  await send({ address: market.addresses.staking, abi: stakingAbi, functionName: "stake", args: [stake] });
  await send({
    address: market.addresses.providerRegistry,
    abi: providerRegistryAbi,
    functionName: "register",
    args: ["http://127.0.0.1:1", "", zeroAddress],
  });
  await send({
    address: market.addresses.token,
    abi: marketTokenAbi,
    functionName: "approve",
    args: [market.addresses.marketplace, 10n ** 24n],
  });
  await send({
    address: market.addresses.marketplace,
    abi: marketplaceAbi,
    functionName: "postBid",
    args: [modelId, prices],
  });
  return { provider, bidId: bidIdOf(provider.address, modelId) };
}

/** Cleanups registered as resources start, run in reverse by `after` (safe when a `before` failed half way). */
export class Teardown {
  private readonly steps: (() => Promise<unknown>)[] = [];

  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (const step of this.steps.reverse()) await step().catch((error: unknown) => console.error("teardown:", error));
    this.steps.length = 0;
  }
}
