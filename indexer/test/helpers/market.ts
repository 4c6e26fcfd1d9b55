/**
 * Drives the real market contracts on a local `hardhat node` with viem: stake, register, bid, open
 * and settle sessions, claim — what tests need to script a history. Approvals and receipts are
 * signed with `protocol/`'s EIP-712 helpers, exactly as the agent and client sign them.
 */
import {
  type Abi,
  type Address,
  type Hex,
  type PrivateKeyAccount,
  type PublicClient,
  type TestClient,
  createPublicClient,
  createTestClient,
  createWalletClient,
  decodeEventLog,
  encodeFunctionData,
  http,
  keccak256,
  toHex,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import {
  type MarketAddresses,
  type SignedUsageReceipt,
  type UsageReceipt,
  emptyReceipt,
  escrowAbi,
  marketDomain,
  marketTokenAbi,
  marketplaceAbi,
  modelRegistryAbi,
  providerRegistryAbi,
  sessionRouterAbi,
  sessionTypes,
  signReceipt,
  signSessionApproval,
  stakingAbi,
} from "../../../protocol/index.js";
import { type LocalMarket, startLocalMarket } from "../../../scripts/local-chain.js";

export const E18 = 10n ** 18n;
export const MAX_UINT = 2n ** 256n - 1n;

export interface Prices {
  perSecond: bigint;
  perInputToken: bigint;
  perOutputToken: bigint;
}

export interface OpenedSession {
  sessionId: Hex;
  /** The terms exactly as SessionOpened carried them (pass back to close). */
  terms: Record<string, unknown>;
  user: PrivateKeyAccount;
  blockNumber: bigint;
}

export type ReceiptStats = Pick<UsageReceipt, "inputTokens" | "outputTokens" | "ttftMsAvg" | "tpsX1000Avg">;

export class MarketDriver {
  readonly chain: LocalMarket;
  readonly public: PublicClient;
  readonly test: TestClient;
  readonly accounts: PrivateKeyAccount[];
  readonly addresses: MarketAddresses;
  #nonce = 1n;

  constructor(chain: LocalMarket) {
    this.chain = chain;
    this.addresses = chain.addresses;
    // cacheTime 0: viem otherwise answers getBlockNumber from a 4-second cache, and tests wait on the head.
    this.public = createPublicClient({ chain: hardhat, transport: http(chain.rpcUrl), cacheTime: 0 });
    this.test = createTestClient({ chain: hardhat, mode: "hardhat", transport: http(chain.rpcUrl) });
    this.accounts = chain.accounts.map((account) => privateKeyToAccount(account.privateKey));
  }

  static async start(): Promise<MarketDriver> {
    return new MarketDriver(await startLocalMarket());
  }

  stop(): Promise<void> {
    return this.chain.stop();
  }

  get governance(): PrivateKeyAccount {
    return this.accounts[0]!;
  }

  get domain() {
    return marketDomain(this.chain.chainId, this.addresses.sessionRouter);
  }

  /** Sends a transaction and returns its receipt; a revert throws. */
  async send(from: PrivateKeyAccount, to: Address, abi: Abi, functionName: string, args: readonly unknown[]) {
    const wallet = createWalletClient({ account: from, chain: hardhat, transport: http(this.chain.rpcUrl) });
    // The helper serves every contract function; viem checks the arguments against the ABI at runtime.
    const data = encodeFunctionData({ abi, functionName, args });
    const hash = await wallet.sendTransaction({ to, data, chain: hardhat });
    const receipt = await this.public.waitForTransactionReceipt({ hash, pollingInterval: 20 });
    if (receipt.status !== "success") throw new Error(`${functionName} reverted (${hash})`);
    return receipt;
  }

  async blockNumber(): Promise<number> {
    return Number(await this.public.getBlockNumber());
  }

  /** Mines blocks one by one (hardhat_mine with a count leaves zero parent hashes). */
  async mine(blocks = 1): Promise<void> {
    for (let i = 0; i < blocks; i++) await this.test.request({ method: "evm_mine" } as never);
  }

  async increaseTime(seconds: number): Promise<void> {
    await this.test.increaseTime({ seconds });
  }

  async snapshot(): Promise<Hex> {
    return this.test.snapshot();
  }

  async revert(id: Hex): Promise<void> {
    await this.test.revert({ id });
  }

  /* TOKENS AND STAKE */

  /** Mints market tokens (governance owns the local token) to an account the deployment did not fund. */
  async fund(account: Address, amount = 10_000n * E18) {
    return this.send(this.governance, this.addresses.token, marketTokenAbi, "mint", [account, amount]);
  }

  async approveAll(owner: PrivateKeyAccount, spender: Address) {
    return this.send(owner, this.addresses.token, marketTokenAbi, "approve", [spender, MAX_UINT]);
  }

  async stake(account: PrivateKeyAccount, amount: bigint) {
    await this.approveAll(account, this.addresses.staking);
    return this.send(account, this.addresses.staking, stakingAbi, "stake", [amount]);
  }

  async requestUnstake(account: PrivateKeyAccount, amount: bigint) {
    return this.send(account, this.addresses.staking, stakingAbi, "requestUnstake", [amount]);
  }

  async withdraw(account: PrivateKeyAccount, to: Address) {
    return this.send(account, this.addresses.staking, stakingAbi, "withdraw", [to]);
  }

  /* PROVIDERS, MODELS, BIDS */

  async registerProvider(
    provider: PrivateKeyAccount,
    options: { endpoint?: string; operator?: Address; stake?: bigint } = {},
  ) {
    await this.stake(provider, options.stake ?? 100n * E18);
    return this.send(provider, this.addresses.providerRegistry, providerRegistryAbi, "register", [
      options.endpoint ?? "http://127.0.0.1:1/",
      "ipfs://provider",
      options.operator ?? "0x0000000000000000000000000000000000000000",
    ]);
  }

  async registerModel(
    owner: PrivateKeyAccount,
    options: { name?: string; royaltyBps?: number; baseModelId?: Hex; tags?: string[]; stake?: boolean } = {},
  ): Promise<Hex> {
    if (options.stake ?? true) await this.stake(owner, 10n * E18);
    const name = options.name ?? "tiny";
    const contentHash = keccak256(toHex(`${name}-${owner.address}`));
    const receipt = await this.send(owner, this.addresses.modelRegistry, modelRegistryAbi, "registerModel", [
      contentHash,
      options.baseModelId ?? `0x${"0".repeat(64)}`,
      options.royaltyBps ?? 500,
      name,
      `file://${name}.gguf`,
      options.tags ?? ["test"],
    ]);
    for (const log of receipt.logs) {
      const decoded = decodeEventLog({ abi: modelRegistryAbi, data: log.data, topics: log.topics, strict: false });
      if (decoded.eventName === "ModelRegistered") return decoded.args.modelId!;
    }
    throw new Error("no ModelRegistered event");
  }

  async postBid(provider: PrivateKeyAccount, modelId: Hex, prices: Prices): Promise<Hex> {
    await this.approveAll(provider, this.addresses.marketplace);
    await this.send(provider, this.addresses.marketplace, marketplaceAbi, "postBid", [modelId, prices]);
    return this.bidIdOf(provider.address, modelId);
  }

  bidIdOf(provider: Address, modelId: Hex): Hex {
    const id = (BigInt(provider) << 96n) | (BigInt(modelId) & ((1n << 96n) - 1n));
    return `0x${id.toString(16).padStart(64, "0")}`;
  }

  /* SESSIONS */

  /**
   * Opens a session as `user` on `bidId`, approved by `signer` (the provider or its operator). Works
   * with both shapes of `openSession`: with and without the session-key parameter (issue 5).
   */
  async openSession(options: {
    user: PrivateKeyAccount;
    bidId: Hex;
    signer: PrivateKeyAccount;
    deposit: bigint;
    maxDuration?: bigint;
  }): Promise<OpenedSession> {
    const { user, bidId, signer, deposit } = options;
    await this.approveAll(user, this.addresses.sessionRouter);
    const block = await this.public.getBlock();
    const known: Record<string, unknown> = {
      bidId,
      user: user.address,
      maxDeposit: deposit * 10n,
      maxDuration: options.maxDuration ?? 3_600n,
      deadline: block.timestamp + 3_600n,
      nonce: this.#nonce++,
    };
    // Fields the approval gains later (caps the user accepts) default to "anything".
    const approval = Object.fromEntries(
      sessionTypes.SessionApproval.map((field) => [field.name, known[field.name] ?? 10_000]),
    );
    const signature = await signSessionApproval(signer, this.domain, approval as never);
    const openAbi = (sessionRouterAbi as Abi).find(
      (item) => item.type === "function" && item.name === "openSession",
    ) as { inputs: readonly unknown[] };
    const maxPrices = { perSecond: MAX_UINT >> 1n, perInputToken: MAX_UINT >> 1n, perOutputToken: MAX_UINT >> 1n };
    const args: unknown[] = [approval, signature, deposit, maxPrices];
    if (openAbi.inputs.length === 5) args.push(user.address); // the session key: the user itself
    const receipt = await this.send(user, this.addresses.sessionRouter, sessionRouterAbi, "openSession", args);
    for (const log of receipt.logs) {
      if (log.address.toLowerCase() !== this.addresses.sessionRouter.toLowerCase()) continue;
      const decoded = decodeEventLog({ abi: sessionRouterAbi, data: log.data, topics: log.topics });
      if (decoded.eventName === "SessionOpened") {
        return {
          sessionId: decoded.args.sessionId,
          terms: decoded.args.terms as unknown as Record<string, unknown>,
          user,
          blockNumber: receipt.blockNumber,
        };
      }
    }
    throw new Error("no SessionOpened event");
  }

  signedReceipt(session: OpenedSession, seq: bigint, stats: ReceiptStats) {
    return signReceipt(session.user, this.domain, {
      sessionId: session.sessionId,
      seq,
      requests: Number(seq),
      ...stats,
    });
  }

  /** What a close carries: the receipt for `stats`, or the unsigned empty receipt when `stats` is null. */
  private closingReceipt(session: OpenedSession, seq: bigint, stats: ReceiptStats | null): Promise<SignedUsageReceipt> {
    return stats === null
      ? Promise.resolve({ receipt: emptyReceipt(session.sessionId), signature: "0x" })
      : this.signedReceipt(session, seq, stats);
  }

  /** The provider (or operator) closes with a receipt: settles at once. `stats: null` closes with no receipt. */
  async settleByProvider(session: OpenedSession, closer: PrivateKeyAccount, stats: ReceiptStats | null) {
    const { receipt, signature } = await this.closingReceipt(session, 1n, stats);
    return this.send(closer, this.addresses.sessionRouter, sessionRouterAbi, "closeSession", [
      session.terms,
      receipt,
      signature,
      "0x",
    ]);
  }

  /** The user asks to close (no countersignature): the session waits for its challenge window. */
  async requestClose(session: OpenedSession, stats: ReceiptStats | null, seq = 1n) {
    const { receipt, signature } = await this.closingReceipt(session, seq, stats);
    await this.send(session.user, this.addresses.sessionRouter, sessionRouterAbi, "closeSession", [
      session.terms,
      receipt,
      signature,
      "0x",
    ]);
    return receipt;
  }

  async challenge(session: OpenedSession, challenger: PrivateKeyAccount, closing: UsageReceipt, stats: ReceiptStats) {
    const { receipt, signature } = await this.signedReceipt(session, closing.seq + 1n, stats);
    return this.send(challenger, this.addresses.sessionRouter, sessionRouterAbi, "challenge", [
      session.terms,
      closing,
      receipt,
      signature,
    ]);
  }

  async finalize(session: OpenedSession, caller: PrivateKeyAccount, closing: UsageReceipt) {
    return this.send(caller, this.addresses.sessionRouter, sessionRouterAbi, "finalize", [session.terms, closing]);
  }

  async topUp(session: OpenedSession, amount: bigint) {
    return this.send(session.user, this.addresses.sessionRouter, sessionRouterAbi, "topUp", [session.terms, amount]);
  }

  async claim(account: PrivateKeyAccount) {
    return this.send(account, this.addresses.escrow, escrowAbi, "claim", []);
  }

  async escrowBalance(account: Address): Promise<bigint> {
    return this.public.readContract({
      address: this.addresses.escrow,
      abi: escrowAbi,
      functionName: "balanceOf",
      args: [account],
    });
  }
}
