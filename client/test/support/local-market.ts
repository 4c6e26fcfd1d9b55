/**
 * A fresh local market per test file: a real `hardhat node` on a free port with LocalMarket deployed
 * by Ignition (scripts/local-chain.ts), a challenge window of one minute, and helpers to move its
 * clock and fund accounts.
 */
import { type Address, type Hex, createTestClient, createWalletClient, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { marketTokenAbi } from "../../../protocol/index.js";
import { type LocalMarket, startLocalMarket } from "../../../scripts/local-chain.js";

export type { LocalMarket };

export const CHALLENGE_WINDOW_SECONDS = 60;

export async function startTestMarket(): Promise<LocalMarket> {
  return startLocalMarket({ parameters: { challengeWindow: CHALLENGE_WINDOW_SECONDS } });
}

export function testClient(market: LocalMarket) {
  return createTestClient({
    mode: "hardhat",
    chain: { ...hardhat, id: market.chainId },
    transport: http(market.rpcUrl),
  }).extend(publicActions);
}

/** Moves the chain's clock forward and mines a block. */
export async function advanceTime(market: LocalMarket, seconds: number): Promise<void> {
  const client = testClient(market);
  await client.increaseTime({ seconds });
  await client.mine({ blocks: 1 });
}

/** The dev account `index`'s key. */
export function devKey(market: LocalMarket, index: number): Hex {
  const account = market.accounts[index];
  if (!account) throw new Error(`no dev account ${index}`);
  return account.privateKey;
}

/** Sends market tokens from a funded dev account (0..9) to `to`. */
export async function fundTokens(market: LocalMarket, fromIndex: number, to: Address, amount: bigint): Promise<void> {
  const wallet = createWalletClient({
    account: privateKeyToAccount(devKey(market, fromIndex)),
    chain: { ...hardhat, id: market.chainId },
    transport: http(market.rpcUrl),
  }).extend(publicActions);
  const hash = await wallet.writeContract({
    address: market.addresses.token,
    abi: marketTokenAbi,
    functionName: "transfer",
    args: [to, amount],
  });
  await wallet.waitForTransactionReceipt({ hash });
}

/** Polls `condition` until it holds (or fails after `timeoutMs`): never a fixed sleep. */
export async function waitFor<T>(
  what: string,
  condition: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
