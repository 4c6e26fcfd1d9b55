/**
 * The invariant run's world: the deployed market, its actors (3 providers with operators, 2 models,
 * 4 users, a stranger) and the shadow — a TypeScript model of every balance, stake, bid and session
 * that is updated from the protocol's own rules (`sessionCost`, `splitCost`), never from the chain.
 */
import { ethers } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { Signer } from "ethers";
import type { Address, Hex } from "viem";
import { type Prices, type SessionTerms, type UsageReceipt, bidIdOf, sessionCost, splitCost } from "../../protocol";
import { E18, type Market, approveAll, deployMarket } from "../fixtures";

export interface ProviderActor {
  index: number;
  provider: HardhatEthersSigner;
  operator: HardhatEthersSigner;
  /** The next fresh approval nonce; it jumps by random steps, sometimes past the 128-nonce window. */
  nextNonce: bigint;
  usedNonces: bigint[];
}

export interface ModelActor {
  index: number;
  owner: HardhatEthersSigner;
  modelId: Hex;
  royaltyBps: number;
}

export interface BidShadow {
  bidId: Hex;
  provider: ProviderActor;
  model: ModelActor;
  prices: Prices;
  active: boolean;
}

export interface SignedReceipt {
  receipt: UsageReceipt;
  /** "0x" for the empty receipt (seq 0), which needs no signature. */
  signature: Hex;
}

export type SessionStatusName = "open" | "closing" | "settled";

/** What signs a session's receipts: the user itself, or a fresh EOA its client keeps. */
export type SessionKey = Pick<Signer, "signTypedData"> & { address: string };

export interface SessionShadow {
  /** Position in `World.sessions`, for messages. */
  index: number;
  id: Hex;
  terms: SessionTerms;
  user: HardhatEthersSigner;
  sessionKey: SessionKey;
  provider: ProviderActor;
  deposit: bigint;
  endsAt: number;
  status: SessionStatusName;
  closedAt: number;
  pendingSeq: bigint;
  pendingReceipt: UsageReceipt | undefined;
  /** Every receipt the session key signed, in order; receipts[0] is the empty receipt. Kept off-chain, as a client does. */
  receipts: SignedReceipt[];
}

export interface AccountShadow {
  wallet: bigint;
  escrow: bigint;
  staked: bigint;
  unbonding: bigint;
  unlockAt: bigint;
}

export interface Expected {
  cost: bigint;
  providerAmount: bigint;
  royaltyAmount: bigint;
  feeAmount: bigint;
  refund: bigint;
  elapsedSeconds: bigint;
  treasury: string;
}

/**
 * Escrow as an indexer sees it: every balance re-derived from the router's and the escrow's events
 * alone (`SessionOpened` names a session's provider and royalty recipient, `SessionSettled` what
 * each got and which treasury took the fee, `RefundCredited` and `Claimed` the rest), never from a
 * view. The checks compare it with `Escrow.balanceOf` and the escrow's token balance.
 */
export interface EventLedger {
  /** The first block not yet applied. */
  fromBlock: number;
  /** Claimable balance of each account, as the events say. */
  balances: Map<string, bigint>;
  /** Tokens the escrow holds, as the events say: deposits and top-ups in, refunds and claims out. */
  escrowTokens: bigint;
  /** Each opened session's provider and royalty recipient, from its `SessionOpened`. */
  sessions: Map<string, { provider: string; royaltyRecipient: string }>;
}

export interface Params {
  protocolFeeBps: number;
  /** ModelRegistry's cap: a model's royalty in new sessions is min(its royaltyBps, this). */
  maxRoyaltyBps: number;
  challengeWindow: number;
  maxSessionDuration: number;
  bidFee: bigint;
  providerMinStake: bigint;
  unbondingPeriod: bigint;
}

export const UINT80_MAX = 2n ** 80n - 1n;
export const UINT96_MAX = 2n ** 96n - 1n;
const FUNDING = 1_000_000n * E18;

export interface World {
  market: Market;
  params: Params;
  addresses: { token: Address; escrow: Address; staking: Address; sessionRouter: Address };
  /** A name per tracked account ("provider1", "user3"), for failure messages. */
  labels: Map<Address, string>;
  governance: HardhatEthersSigner;
  /** The marketplace's treasury (bid fees), and the router's until governance moves it. */
  treasury: HardhatEthersSigner;
  /** The router's treasury now: protocol fees of settlements go here. */
  routerTreasury: HardhatEthersSigner;
  /** What governance may make the router's treasury. */
  treasuryCandidates: HardhatEthersSigner[];
  ledger: EventLedger;
  providers: ProviderActor[];
  models: ModelActor[];
  users: HardhatEthersSigner[];
  /** Opens only with ERC-2612 permits and never approves the router for more than one top-up. */
  permitUser: HardhatEthersSigner;
  stranger: HardhatEthersSigner;
  /** Everyone who stakes in the run: providers, model owners and one user. */
  stakers: HardhatEthersSigner[];
  /** Every account that could ever hold a token, an escrow balance or a stake. */
  accounts: HardhatEthersSigner[];
  /**
   * Those a settlement credits: providers, model owners, every account the router's treasury can be,
   * and users (a refused refund is credited).
   */
  escrowHolders: Set<HardhatEthersSigner>;
  shadow: Map<Address, AccountShadow>;
  bids: Map<Hex, BidShadow>;
  sessions: SessionShadow[];
  openCount: Map<Address, number>;
  /** The timestamp of the last transaction sent; every transaction gets a later one, set explicitly. */
  now: number;
}

/** Deploys the market and sets up the actors; the shadow starts from the chain's balances at the end. */
export async function setUpWorld(): Promise<World> {
  const market = await deployMarket();
  const signers = await ethers.getSigners();
  const at = (i: number) => signers[i];
  const [governance, treasury] = [at(0), at(1)];
  // deployMarket funds accounts 0-9; the others get tokens from governance, the token's owner.
  for (const i of [10, 11, 12, 13, 14]) await market.token.connect(governance).mint(at(i).address, FUNDING);

  const providers: ProviderActor[] = [
    [2, 3],
    [7, 8],
    [9, 10],
  ].map(([p, o], index) => ({ index, provider: at(p), operator: at(o), nextNonce: 1n, usedNonces: [] }));
  const modelOwners = [at(4), at(11)];
  const users = [at(5), at(12), at(13), at(14)];
  const permitUser = users[3];
  const stranger = at(6);
  const stakers = [...providers.map((p) => p.provider), ...modelOwners, users[0]];

  const params: Params = {
    protocolFeeBps: Number(await market.sessionRouter.protocolFeeBps()),
    maxRoyaltyBps: Number(await market.modelRegistry.maxRoyaltyBps()),
    challengeWindow: Number(await market.sessionRouter.challengeWindow()),
    maxSessionDuration: Number(await market.sessionRouter.maxSessionDuration()),
    bidFee: await market.marketplace.bidFee(),
    providerMinStake: await market.providerRegistry.providerMinStake(),
    unbondingPeriod: await market.staking.unbondingPeriod(),
  };

  for (const staker of stakers) await approveAll(market, staker, market.staking);
  for (const user of users) if (user !== permitUser) await approveAll(market, user, market.sessionRouter);
  for (const { provider, operator } of providers) {
    await approveAll(market, provider, market.marketplace);
    // A margin above the minimum, so that most small unstakes leave the provider able to sell.
    await market.staking.connect(provider).stake(params.providerMinStake + 100n * E18);
    await market.providerRegistry.connect(provider).register("http://127.0.0.1:8080", "ipfs://meta", operator.address);
  }
  const models: ModelActor[] = [];
  for (const [index, royaltyBps] of [500, 0].entries()) {
    const owner = modelOwners[index];
    const contentHash = ethers.id(`invariant-model-${index}`);
    await market.staking.connect(owner).stake(await market.modelRegistry.modelMinStake());
    await market.modelRegistry
      .connect(owner)
      .registerModel(contentHash, ethers.ZeroHash, royaltyBps, `m${index}`, "file://m", []);
    models.push({
      index,
      owner,
      modelId: (await market.modelRegistry.modelIdOf(owner.address, contentHash)) as Hex,
      royaltyBps,
    });
  }

  const bids = new Map<Hex, BidShadow>();
  for (const provider of providers) {
    for (const model of models) {
      const bidId = bidIdOf(provider.provider.address as Address, model.modelId);
      bids.set(bidId, {
        bidId,
        provider,
        model,
        prices: { perSecond: 0n, perInputToken: 0n, perOutputToken: 0n },
        active: false,
      });
    }
  }
  // One bid per provider to start with; the run posts, updates and deletes the rest.
  for (const provider of providers) {
    const bid = bids.get(bidIdOf(provider.provider.address as Address, models[provider.index % 2].modelId))!;
    bid.prices = { perSecond: 10n ** 13n, perInputToken: 10n ** 11n, perOutputToken: 4n * 10n ** 11n };
    await market.marketplace.connect(provider.provider).postBid(bid.model.modelId, bid.prices);
    bid.active = true;
  }

  const labels = new Map<Address, string>([
    [governance.address as Address, "governance"],
    [treasury.address as Address, "treasury"],
    ...providers.flatMap((p): [Address, string][] => [
      [p.provider.address as Address, `provider${p.index}`],
      [p.operator.address as Address, `operator${p.index}`],
    ]),
    ...modelOwners.map((owner, i): [Address, string] => [owner.address as Address, `modelOwner${i}`]),
    ...users.map((user, i): [Address, string] => [user.address as Address, `user${i}`]),
    [stranger.address as Address, "stranger"],
  ]);
  const accounts = [...labels.keys()].map((address) => signers.find((s) => s.address === address)!);
  // Bid fees and protocol fees start on the one treasury the shadow credits.
  if (
    (await market.marketplace.treasury()) !== treasury.address ||
    (await market.sessionRouter.treasury()) !== treasury.address
  ) {
    throw new Error("the marketplace and the session router must share the treasury account");
  }
  const shadow = new Map<Address, AccountShadow>();
  for (const account of accounts) {
    const stake = await market.staking.stakeAccount(account.address);
    shadow.set(account.address as Address, {
      wallet: await market.token.balanceOf(account.address),
      escrow: await market.escrow.balanceOf(account.address),
      staked: stake.staked,
      unbonding: stake.unbonding,
      unlockAt: stake.unlockAt,
    });
  }
  const latest = await ethers.provider.getBlock("latest");
  return {
    market,
    params,
    addresses: {
      token: (await market.token.getAddress()) as Address,
      escrow: (await market.escrow.getAddress()) as Address,
      staking: (await market.staking.getAddress()) as Address,
      sessionRouter: (await market.sessionRouter.getAddress()) as Address,
    },
    labels,
    governance,
    treasury,
    routerTreasury: treasury,
    treasuryCandidates: [treasury, governance, stranger],
    ledger: { fromBlock: 0, balances: new Map(), escrowTokens: 0n, sessions: new Map() },
    providers,
    models,
    users,
    permitUser,
    stranger,
    stakers,
    accounts,
    escrowHolders: new Set([
      treasury,
      governance,
      stranger,
      ...providers.map((p) => p.provider),
      ...modelOwners,
      ...users,
    ]),
    shadow,
    bids,
    sessions: [],
    openCount: new Map(providers.map((p) => [p.provider.address as Address, 0])),
    now: latest!.timestamp,
  };
}

export function accountOf(world: World, address: string): AccountShadow {
  const account = world.shadow.get(address as Address);
  if (!account) throw new Error(`untracked account ${address}`);
  return account;
}

/** The royalty a session of `model` opened now takes: `ModelRegistry.royaltyOf`, capped by `maxRoyaltyBps`. */
export function effectiveRoyaltyBps(world: World, model: ModelActor): number {
  return Math.min(model.royaltyBps, world.params.maxRoyaltyBps);
}

/** `SessionLib.endsAt`: the deposit runs out, or the approved duration ends, whichever is first. */
export function endsAtOf(terms: SessionTerms, deposit: bigint): number {
  if (terms.pricePerSecond === 0n) return terms.maxEndsAt;
  const paidUntil = BigInt(terms.openedAt) + deposit / terms.pricePerSecond;
  return paidUntil < BigInt(terms.maxEndsAt) ? Number(paidUntil) : terms.maxEndsAt;
}

/**
 * Settles a session in the shadow, from the protocol's own pricing: the provider, royalty owner and
 * treasury are credited in escrow, the user refunded to the wallet. Returns what the event must say.
 */
export function settleShadow(world: World, session: SessionShadow, receipt: UsageReceipt, closedAt: number): Expected {
  const end = Math.min(closedAt, session.endsAt);
  const elapsedSeconds = BigInt(end - session.terms.openedAt);
  const cost = sessionCost(session.terms, elapsedSeconds, receipt, session.deposit);
  const split = splitCost(session.terms, cost);
  const refund = session.deposit - cost;
  accountOf(world, session.terms.provider).escrow += split.providerAmount;
  accountOf(world, session.terms.royaltyRecipient).escrow += split.royaltyAmount;
  accountOf(world, world.routerTreasury.address).escrow += split.feeAmount;
  accountOf(world, session.terms.user).wallet += refund;
  session.status = "settled";
  session.deposit = 0n;
  session.pendingReceipt = undefined;
  world.openCount.set(session.terms.provider, world.openCount.get(session.terms.provider)! - 1);
  return { cost, ...split, refund, elapsedSeconds, treasury: world.routerTreasury.address };
}
