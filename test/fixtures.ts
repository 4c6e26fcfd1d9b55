/**
 * The market deployed by its own Ignition module (LocalMarket) on Hardhat's in-process chain,
 * plus helpers every contract test shares: a staked provider with a model and a bid, typed-data
 * signing through `protocol/`, and a session opened end to end.
 */
import { ethers, ignition } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { Signer } from "ethers";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { Address, Hex } from "viem";
import InferenceMarketModule from "../ignition/modules/InferenceMarket";
import LocalMarketModule from "../ignition/modules/LocalMarket";
import {
  type MarketDomain,
  type SessionApproval,
  type SessionTerms,
  type UsageReceipt,
  emptyReceipt,
  marketDomain,
  permitDomain,
  permitTypes,
  sessionTypes,
} from "../protocol";
import type {
  Escrow,
  Marketplace,
  MarketToken,
  ModelRegistry,
  ProviderRegistry,
  SessionRouter,
  Staking,
} from "../typechain-types";
import type { SessionOpenedEvent } from "../typechain-types/contracts/SessionRouter";

export const E18 = 10n ** 18n;
export const PARAMS = {
  unbondingPeriod: 7n * 24n * 3600n,
  providerMinStake: 100n * E18,
  modelMinStake: 10n * E18,
  maxRoyaltyBps: 2_000n,
  bidFee: 1n * E18,
  protocolFeeBps: 250n,
  maxSessionDuration: 24n * 3600n,
  challengeWindow: 3_600n,
} as const;

/**
 * An approval's royalty and fee bounds that accept anything: the contracts' own caps
 * (`ModelRegistry.ROYALTY_CAP_BPS`, `SessionRouter.MAX_PROTOCOL_FEE_BPS`).
 */
export const ANY_ROYALTY_BPS = 5_000;
export const ANY_FEE_BPS = 1_000;

/** Default bid prices: 1e12 per second, 1e9 per input token, 4e9 per output token. */
export const PRICES = { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 4n * 10n ** 9n };
export const MAX_PRICES = { perSecond: 2n ** 255n, perInputToken: 2n ** 255n, perOutputToken: 2n ** 255n };
export const CONTENT_HASH = ethers.id("tiny-model.gguf") as Hex;

export interface Market {
  token: MarketToken;
  staking: Staking;
  providerRegistry: ProviderRegistry;
  modelRegistry: ModelRegistry;
  marketplace: Marketplace;
  sessionRouter: SessionRouter;
  escrow: Escrow;
  governance: HardhatEthersSigner;
  treasury: HardhatEthersSigner;
  provider: HardhatEthersSigner;
  operator: HardhatEthersSigner;
  modelOwner: HardhatEthersSigner;
  user: HardhatEthersSigner;
  stranger: HardhatEthersSigner;
  others: HardhatEthersSigner[];
  domain: MarketDomain;
}

type Deployed = Record<
  "token" | "staking" | "providerRegistry" | "modelRegistry" | "marketplace" | "sessionRouter" | "escrow",
  {
    getAddress(): Promise<string>;
  }
>;

/** Typed handles on what an Ignition module deployed, with the test accounts in their roles. */
async function marketFrom(deployed: Deployed): Promise<Market> {
  const [governance, treasury, provider, operator, modelOwner, user, stranger, ...others] = await ethers.getSigners();
  const at = async <T>(name: string, contract: { getAddress(): Promise<string> }) =>
    (await ethers.getContractAt(name, await contract.getAddress())) as unknown as T;
  const sessionRouter = await at<SessionRouter>("SessionRouter", deployed.sessionRouter);
  const { chainId } = await ethers.provider.getNetwork();
  return {
    token: await at<MarketToken>("MarketToken", deployed.token),
    staking: await at<Staking>("Staking", deployed.staking),
    providerRegistry: await at<ProviderRegistry>("ProviderRegistry", deployed.providerRegistry),
    modelRegistry: await at<ModelRegistry>("ModelRegistry", deployed.modelRegistry),
    marketplace: await at<Marketplace>("Marketplace", deployed.marketplace),
    sessionRouter,
    escrow: await at<Escrow>("Escrow", deployed.escrow),
    governance: governance,
    treasury: treasury,
    provider: provider,
    operator: operator,
    modelOwner: modelOwner,
    user: user,
    stranger: stranger,
    others,
    domain: marketDomain(chainId, (await sessionRouter.getAddress()) as Address),
  };
}

/** The contracts, deployed and wired by `ignition/modules/LocalMarket.ts`; nobody staked yet. */
export async function deployMarket(): Promise<Market> {
  const [, treasury] = await ethers.getSigners();
  const deployed = await ignition.deploy(LocalMarketModule, {
    parameters: { LocalMarket: { treasury: treasury.address } },
  });
  return marketFrom(deployed);
}

/**
 * `marketWithBid` around another token, deployed by `ignition/modules/InferenceMarket.ts`: a test
 * token with MarketToken's functions (one that refuses or re-enters transfers, say), owned by
 * governance, which funds the provider, model owner, user and stranger with 1000 tokens each.
 */
export async function marketWithBidAround(token: { getAddress(): Promise<string> }, treasury: string) {
  const deployed = await ignition.deploy(InferenceMarketModule, {
    parameters: { InferenceMarket: { token: await token.getAddress(), treasury } },
  });
  const market = await marketFrom(deployed);
  for (const account of [market.provider, market.modelOwner, market.user, market.stranger]) {
    await market.token.connect(market.governance).mint(account.address, 1_000n * E18);
  }
  return withBid(market);
}

/** Approves `spender` for everything `signer` holds (infinite allowance, as wallets usually do). */
export async function approveAll(
  market: Market,
  signer: HardhatEthersSigner,
  spender: { getAddress(): Promise<string> },
) {
  await market.token.connect(signer).approve(await spender.getAddress(), ethers.MaxUint256);
}

/** Stakes the minimum and registers `provider` with `operator` as its hot key. */
export async function registerProvider(market: Market, provider = market.provider, operator = market.operator) {
  await approveAll(market, provider, market.staking);
  await market.staking.connect(provider).stake(PARAMS.providerMinStake);
  await market.providerRegistry
    .connect(provider)
    .register("http://127.0.0.1:8080", "ipfs://provider-metadata", operator.address);
}

/** Stakes and registers a base model owned by `owner`; returns its id. */
export async function registerModel(
  market: Market,
  owner = market.modelOwner,
  royaltyBps = 500,
  contentHash = CONTENT_HASH,
) {
  await approveAll(market, owner, market.staking);
  await market.staking.connect(owner).stake(PARAMS.modelMinStake);
  await market.modelRegistry
    .connect(owner)
    .registerModel(contentHash, ethers.ZeroHash, royaltyBps, "tiny", "file://tiny.gguf", ["test"]);
  return (await market.modelRegistry.modelIdOf(owner.address, contentHash)) as Hex;
}

/** Posts `provider`'s bid on `modelId`; returns the bid id. */
export async function postBid(market: Market, modelId: Hex, prices = PRICES, provider = market.provider) {
  await approveAll(market, provider, market.marketplace);
  await market.marketplace.connect(provider).postBid(modelId, prices);
  return (await market.marketplace.bidIdOf(provider.address, modelId)) as Hex;
}

/** A market with a registered, staked provider, a model with a 5% royalty and a bid on it. */
export async function marketWithBid() {
  return withBid(await deployMarket());
}

async function withBid(market: Market) {
  await registerProvider(market);
  const modelId = await registerModel(market);
  const bidId = await postBid(market, modelId);
  await approveAll(market, market.user, market.sessionRouter);
  return { ...market, modelId, bidId };
}

export type MarketWithBid = Awaited<ReturnType<typeof marketWithBid>>;

/** Signs typed data with an ethers signer, using the one definition of the types in `protocol/`. */
export async function signTyped(
  signer: Pick<Signer, "signTypedData">,
  domain: MarketDomain,
  primaryType: keyof typeof sessionTypes,
  message: SessionApproval | UsageReceipt | { sessionId: Hex; expiresAt: bigint },
): Promise<Hex> {
  const types = { [primaryType]: sessionTypes[primaryType].map((field) => ({ ...field })) };
  return (await signer.signTypedData(domain, types, message)) as Hex;
}

/** An ERC-2612 permit of `owner`'s tokens for `spender`, signed by `signer` (the owner unless a test forges one). */
export async function signPermit(
  token: MarketToken,
  owner: HardhatEthersSigner,
  spender: string,
  value: bigint,
  deadline: bigint,
  signer = owner,
) {
  const { chainId } = await ethers.provider.getNetwork();
  const domain = permitDomain(await token.name(), chainId, (await token.getAddress()) as Address);
  const types = { Permit: permitTypes.Permit.map((field) => ({ ...field })) };
  const message = { owner: owner.address, spender, value, nonce: await token.nonces(owner.address), deadline };
  const signature = ethers.Signature.from(await signer.signTypedData(domain, types, message));
  return { deadline, v: signature.v, r: signature.r, s: signature.s };
}

let nextNonce = 1n;

/** An approval for `user` on `bidId`, valid for an hour, with a fresh nonce, accepting any royalty and fee. */
export async function makeApproval(
  market: MarketWithBid,
  overrides: Partial<SessionApproval> = {},
): Promise<SessionApproval> {
  return {
    bidId: market.bidId,
    user: market.user.address as Address,
    maxDeposit: 1_000n * E18,
    maxDuration: 3_600n,
    deadline: BigInt(await time.latest()) + 3_600n,
    nonce: nextNonce++,
    maxRoyaltyBps: ANY_ROYALTY_BPS,
    maxFeeBps: ANY_FEE_BPS,
    ...overrides,
  };
}

/** Reads the `SessionOpened` event of a transaction. */
export async function openedSession(market: Market, tx: { hash: string }) {
  const receipt = await ethers.provider.getTransactionReceipt(tx.hash);
  for (const log of receipt!.logs) {
    const parsed = market.sessionRouter.interface.parseLog(log);
    if (parsed?.name === "SessionOpened") {
      // ethers types parsed event arguments as `any`; TypeChain's output type names them.
      const opened = parsed.args as unknown as SessionOpenedEvent.OutputObject;
      const t = opened.terms;
      const terms: SessionTerms = {
        user: t.user as Address,
        sessionKey: t.sessionKey as Address,
        provider: t.provider as Address,
        modelId: t.modelId as Hex,
        nonce: t.nonce,
        pricePerSecond: t.pricePerSecond,
        pricePerInputToken: t.pricePerInputToken,
        pricePerOutputToken: t.pricePerOutputToken,
        royaltyRecipient: t.royaltyRecipient as Address,
        royaltyBps: Number(t.royaltyBps),
        feeBps: Number(t.feeBps),
        challengeWindow: Number(t.challengeWindow),
        maxDeposit: t.maxDeposit,
        openedAt: Number(t.openedAt),
        maxEndsAt: Number(t.maxEndsAt),
      };
      return { sessionId: opened.sessionId as Hex, terms, deposit: opened.deposit, endsAt: Number(opened.endsAt) };
    }
  }
  throw new Error(`transaction ${tx.hash} emitted no SessionOpened`);
}

/**
 * Opens a session as `market.user` with a provider-signed approval; returns its id and terms. The
 * session key defaults to the user itself (an EOA user signing its own receipts).
 */
export async function openSession(
  market: MarketWithBid,
  deposit = 100n * E18,
  overrides: Partial<SessionApproval> = {},
  signer = market.provider,
  sessionKey: string = market.user.address,
) {
  const approval = await makeApproval(market, overrides);
  const signature = await signTyped(signer, market.domain, "SessionApproval", approval);
  const tx = await market.sessionRouter
    .connect(market.user)
    .openSession(approval, signature, deposit, MAX_PRICES, sessionKey);
  return { ...(await openedSession(market, tx)), approval, tx };
}

/** A cumulative receipt signed by the session key; the fixture's sessions use the user itself. */
export async function signReceipt(market: Market, receipt: UsageReceipt, signer = market.user) {
  return signTyped(signer, market.domain, "UsageReceipt", receipt);
}

export function receiptFor(sessionId: Hex, seq: bigint, inputTokens: bigint, outputTokens: bigint): UsageReceipt {
  return {
    sessionId,
    seq,
    inputTokens,
    outputTokens,
    requests: Number(seq < 0xffffffffn ? seq : 0xffffffffn),
    ttftMsAvg: 120,
    tpsX1000Avg: 45_000,
  };
}

/** A receipt as an event argument (`.withArgs`): its fields in ABI order. */
export function receiptTuple(receipt: UsageReceipt) {
  return [
    receipt.sessionId,
    receipt.seq,
    receipt.inputTokens,
    receipt.outputTokens,
    receipt.requests,
    receipt.ttftMsAvg,
    receipt.tpsX1000Avg,
  ];
}

export { emptyReceipt };
