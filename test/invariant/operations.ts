/**
 * The random operations of the invariant run. Each one draws its actors and arguments (sometimes
 * invalid on purpose), predicts from the shadow alone whether the contracts must accept it — and if
 * not, with which custom error and arguments — sends it, and on success updates the shadow from the
 * protocol's rules. Every transaction gets an explicit timestamp so the run is deterministic.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { BaseContract, ContractTransactionReceipt, ContractTransactionResponse, Result } from "ethers";
import type { Address } from "viem";
import {
  type Prices,
  type SessionApproval,
  type SessionTerms,
  type UsageReceipt,
  sessionIdOf,
  usageCost,
} from "../../protocol";
import { E18, MAX_PRICES, emptyReceipt, openedSession, signPermit, signTyped } from "../fixtures";
import type { Prng } from "./prng";
import {
  type BidShadow,
  type Expected,
  type ProviderActor,
  type SessionKey,
  type SessionShadow,
  type SignedReceipt,
  type World,
  UINT80_MAX,
  accountOf,
  effectiveRoyaltyBps,
  endsAtOf,
  settleShadow,
} from "./world";

/** A fixed gas limit skips `eth_estimateGas`: faster, and a reverting call is mined and reported as such. */
const GAS = { gasLimit: 3_000_000n };
const PRICE_KEYS = ["perSecond", "perInputToken", "perOutputToken"] as const;
/** `SessionRouter.MAX_NONCE_STEP`. */
const MAX_NONCE_STEP = 2n ** 32n;

/** The highest approval nonce the provider has used (0 when none: the contract's start). */
function highestNonce(provider: ProviderActor): bigint {
  return provider.usedNonces.reduce((highest, nonce) => (nonce > highest ? nonce : highest), 0n);
}

interface Revert {
  contract: BaseContract;
  error: string;
  args: readonly unknown[];
}

const OPERATIONS = [
  "open",
  "use",
  "topUp",
  "closeByProvider",
  "closeByUser",
  "closeCooperatively",
  "closeByThirdParty",
  "challenge",
  "finalize",
  "claim",
  "stake",
  "requestUnstake",
  "withdraw",
  "postBid",
  "updateBid",
  "deleteBid",
  "advanceTime",
  "settleAgain",
  "governance",
] as const;
export type OperationName = (typeof OPERATIONS)[number];

export class Operations {
  /** What the current operation is doing, for failure messages. */
  note = "";
  /** Whether the current operation sent a transaction (off-chain ones, signing and the clock, do not). */
  sentTransaction = false;
  readonly counts = new Map<string, number>();
  private sessionKeys = 0;

  constructor(
    private readonly world: World,
    private readonly prng: Prng,
  ) {}

  /** Draws and runs one operation; returns what it did. */
  async runOne(): Promise<string> {
    const weights = this.weights();
    const name = this.prng.weighted(OPERATIONS.map((op) => [op, weights[op]] as const));
    this.note = name;
    this.sentTransaction = false;
    await this[name]();
    return this.note;
  }

  private weights(): Record<OperationName, number> {
    const unsettled = this.world.sessions.filter((s) => s.status !== "settled").length;
    const activeBids = [...this.world.bids.values()].filter((bid) => bid.active).length;
    return {
      // Keep a bounded number of live sessions so that every check reads them all cheaply.
      open: unsettled >= 16 ? 0 : 14,
      use: 14,
      topUp: 5,
      closeByProvider: 6,
      closeByUser: 5,
      closeCooperatively: 5,
      closeByThirdParty: 3,
      challenge: this.challengeable() ? 14 : 3,
      finalize: 6,
      claim: 6,
      stake: 3,
      requestUnstake: 3,
      withdraw: 3,
      postBid: activeBids < 2 ? 8 : 3,
      updateBid: 2,
      deleteBid: activeBids > 4 ? 3 : 1,
      advanceTime: 10,
      settleAgain: 3,
      governance: 3,
    };
  }

  /** A closing session, in its window, that the provider can outbid with a receipt it holds. */
  private challengeable(): boolean {
    return this.world.sessions.some(
      (s) => s.status === "closing" && this.world.now + 12 <= s.closedAt + s.terms.challengeWindow && this.outbids(s),
    );
  }

  private record(name: string, outcome: string) {
    const key = `${name}: ${outcome}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /* TRANSACTIONS */

  /** Moves the clock 1-12 s and pins the next block to it; returns the timestamp the next transaction runs at. */
  private async tick(): Promise<number> {
    this.sentTransaction = true;
    this.world.now += this.prng.int(1, 12);
    await time.setNextBlockTimestamp(this.world.now);
    return this.world.now;
  }

  private async mined(send: Promise<ContractTransactionResponse>): Promise<ContractTransactionReceipt> {
    const receipt = await (await send).wait();
    if (!receipt) throw new Error("transaction without a receipt");
    return receipt;
  }

  private async reverts(send: Promise<ContractTransactionResponse>, expected: Revert): Promise<void> {
    const assertion = expect(send).to.be.revertedWithCustomError(expected.contract, expected.error);
    await (expected.args.length > 0 ? assertion.withArgs(...expected.args) : assertion);
  }

  /** Runs `send` and checks that it reverts as `expected` says, or that it is mined when `expected` is undefined. */
  private async outcome(
    name: string,
    expected: Revert | undefined,
    send: () => Promise<ContractTransactionResponse>,
  ): Promise<ContractTransactionReceipt | undefined> {
    this.note += expected ? ` → expect ${expected.error}` : " → expect success";
    this.record(name, expected ? expected.error : "ok");
    if (expected) {
      await this.reverts(send(), expected);
      return undefined;
    }
    return this.mined(send());
  }

  private get router() {
    return this.world.market.sessionRouter;
  }

  private label(account: { address: string }): string {
    return this.world.labels.get(account.address as Address) ?? account.address;
  }

  /** A session key the client generated: a fresh EOA, not funded, that only signs. */
  private freshSessionKey(): SessionKey {
    this.sessionKeys += 1;
    return new ethers.Wallet(ethers.id(`invariant session key ${this.sessionKeys}`));
  }

  /* PICKERS */

  private sessionsIn(status: SessionShadow["status"]): SessionShadow[] {
    return this.world.sessions.filter((session) => session.status === status);
  }

  /** A session in `status`, preferring (with probability `bias`) those for which `preferred` holds. */
  private pickSession(
    status: SessionShadow["status"],
    preferred: (s: SessionShadow) => boolean = () => true,
    bias = 0,
  ): SessionShadow | undefined {
    const candidates = this.sessionsIn(status);
    if (candidates.length === 0) return undefined;
    const favoured = candidates.filter(preferred);
    return this.prng.pick(favoured.length > 0 && this.prng.chance(bias) ? favoured : candidates);
  }

  private latest(session: SessionShadow): SignedReceipt {
    return session.receipts.at(-1)!;
  }

  private randomPrices(tooHigh: boolean): Prices {
    const p = this.prng;
    const price = (zeroChance: number, minExp: number, maxExp: number) =>
      p.chance(zeroChance) ? 0n : p.bigint(1n, 9n) * 10n ** BigInt(p.int(minExp, maxExp));
    const prices = {
      perSecond: price(0.15, 9, 16),
      perInputToken: price(0.2, 8, 15),
      perOutputToken: price(0.2, 8, 16),
    };
    if (tooHigh) prices[p.pick(PRICE_KEYS)] = UINT80_MAX + p.bigint(1n, 1000n);
    return prices;
  }

  private priceError(prices: Prices): Revert | undefined {
    for (const key of PRICE_KEYS) {
      if (prices[key] > UINT80_MAX) {
        return { contract: this.world.market.marketplace, error: "PriceTooHigh", args: [prices[key], UINT80_MAX] };
      }
    }
    return undefined;
  }

  private stakeError(provider: ProviderActor): Revert | undefined {
    const staked = accountOf(this.world, provider.provider.address).staked;
    const minimum = this.world.params.providerMinStake;
    if (staked >= minimum) return undefined;
    return {
      contract: this.world.market.providerRegistry,
      error: "StakeBelowMinimum",
      args: [provider.provider.address, staked, minimum],
    };
  }

  /* SESSIONS */

  private async open(): Promise<void> {
    const { world, prng: p } = this;
    const user = p.pick(world.users);
    // Users mostly pick a bid they saw active; now and then a stale one.
    const bid = this.pickBid(p.chance(0.9) ? true : undefined);
    const { provider, model } = bid;
    const fault = p.chance(0.3)
      ? p.pick([
          "zeroDeposit",
          "aboveApproval",
          "expired",
          "anotherUser",
          "zeroDuration",
          "badSigner",
          "usedNonce",
          "priceAboveMax",
          "tooSmall",
          "noPermit",
          "zeroSessionKey",
          "royaltyAboveApproval",
          "feeAboveApproval",
          "nonceTooLarge",
        ] as const)
      : "none";
    const now = world.now + 1; // a lower bound: tick() below moves the clock 1-12 s
    provider.nextNonce += BigInt(p.int(1, 300));
    const maxDeposit = p.bigint(1n, 9n) * 10n ** BigInt(p.int(18, 21)) + p.bigint(0n, E18);
    const approval: SessionApproval = {
      bidId: bid.bidId,
      user: user.address as Address,
      maxDeposit,
      maxDuration: BigInt(p.int(60, 2 * 86_400)),
      deadline: BigInt(now + 12 + p.int(0, 600)),
      nonce: provider.nextNonce,
      // The agent binds the royalty and fee it priced the bid with: today's, or a margin above.
      maxRoyaltyBps: effectiveRoyaltyBps(world, model) + (p.chance(0.5) ? 0 : p.int(1, 100)),
      maxFeeBps: world.params.protocolFeeBps + (p.chance(0.5) ? 0 : p.int(1, 100)),
    };
    let deposit = p.chance(0.1) ? maxDeposit : p.bigint(maxDeposit / 50n, maxDeposit);
    let sender = user;
    let signer = p.chance(0.5) ? provider.provider : provider.operator;
    let maxPrices: Prices = p.chance(0.5) ? MAX_PRICES : { ...bid.prices };
    let validPermit = true;
    // An EOA user signs its receipts itself, or names a fresh key its client keeps.
    const sessionKey: SessionKey = p.chance(0.5) ? user : this.freshSessionKey();
    let sessionKeyAddress = sessionKey.address;
    if (fault === "zeroSessionKey") sessionKeyAddress = ethers.ZeroAddress;
    // The royalty or fee was raised after the agent signed.
    if (fault === "royaltyAboveApproval" && effectiveRoyaltyBps(world, model) > 0) {
      approval.maxRoyaltyBps = effectiveRoyaltyBps(world, model) - 1;
    }
    if (fault === "feeAboveApproval" && world.params.protocolFeeBps > 0) {
      approval.maxFeeBps = world.params.protocolFeeBps - 1;
    }
    if (fault === "zeroDeposit") deposit = 0n;
    if (fault === "aboveApproval") deposit = maxDeposit + p.bigint(1n, E18);
    if (fault === "expired") approval.deadline = BigInt(now - p.int(1, 3_600));
    if (fault === "anotherUser") sender = p.pick(world.users.filter((u) => u !== user));
    if (fault === "zeroDuration") approval.maxDuration = 0n;
    if (fault === "badSigner") {
      signer = p.pick([world.stranger, user, ...world.providers.filter((o) => o !== provider).map((o) => o.operator)]);
    }
    if (fault === "usedNonce" && provider.usedNonces.length > 0) approval.nonce = p.pick(provider.usedNonces);
    // A buggy agent (or a leaked operator key) jumps past the step bound.
    if (fault === "nonceTooLarge") approval.nonce = highestNonce(provider) + MAX_NONCE_STEP + p.bigint(1n, 2n ** 40n);
    if (fault === "priceAboveMax") {
      const key = p.pick(PRICE_KEYS);
      if (bid.prices[key] > 0n) maxPrices = { ...MAX_PRICES, [key]: bid.prices[key] - 1n };
    }
    if (fault === "tooSmall" && bid.prices.perSecond > 1n) deposit = p.bigint(1n, bid.prices.perSecond - 1n);
    if (fault === "noPermit") validPermit = false;

    const signature = await signTyped(signer, world.market.domain, "SessionApproval", approval);
    const withPermit = sender === world.permitUser;
    this.note = `open #${world.sessions.length} ${this.label(sender)} on bid ${provider.index}/${model.index}, deposit ${deposit}, fault ${fault}${withPermit ? " (permit)" : ""}`;

    const permit = withPermit ? await this.signPermit(sender, deposit, validPermit) : undefined;
    const openedAt = await this.tick();
    const expected = this.predictOpen(
      approval,
      sender,
      signer,
      deposit,
      maxPrices,
      sessionKeyAddress,
      bid,
      openedAt,
      validPermit,
    );
    const router = this.router.connect(sender);
    const receipt = await this.outcome("open", expected, () =>
      permit
        ? router.openSessionWithPermit(
            approval,
            signature,
            deposit,
            maxPrices,
            sessionKeyAddress,
            permit.deadline,
            permit.v,
            permit.r,
            permit.s,
            GAS,
          )
        : router.openSession(approval, signature, deposit, maxPrices, sessionKeyAddress, GAS),
    );
    if (!receipt) {
      const used = provider.usedNonces.includes(approval.nonce);
      expect(await this.router.isApprovalNonceUsed(provider.provider.address, approval.nonce)).to.equal(
        used,
        "nonce use",
      );
      return;
    }
    provider.usedNonces.push(approval.nonce);
    expect(await this.router.nextApprovalNonce(provider.provider.address)).to.equal(
      highestNonce(provider) + 1n,
      "nextApprovalNonce",
    );

    const duration = Math.min(Number(approval.maxDuration), world.params.maxSessionDuration);
    const terms: SessionTerms = {
      user: user.address as Address,
      sessionKey: sessionKey.address as Address,
      provider: provider.provider.address as Address,
      modelId: model.modelId,
      nonce: approval.nonce,
      pricePerSecond: bid.prices.perSecond,
      pricePerInputToken: bid.prices.perInputToken,
      pricePerOutputToken: bid.prices.perOutputToken,
      royaltyRecipient: model.owner.address as Address,
      royaltyBps: effectiveRoyaltyBps(world, model),
      feeBps: world.params.protocolFeeBps,
      challengeWindow: world.params.challengeWindow,
      maxDeposit: approval.maxDeposit,
      openedAt,
      maxEndsAt: openedAt + duration,
    };
    const opened = await openedSession(world.market, receipt);
    expect(opened.terms).to.deep.equal(terms, "terms of SessionOpened");
    expect(opened.sessionId).to.equal(sessionIdOf(terms), "session id");
    expect(opened.deposit).to.equal(deposit, "deposit of SessionOpened");
    expect(opened.endsAt).to.equal(endsAtOf(terms, deposit), "endsAt of SessionOpened");

    accountOf(world, user.address).wallet -= deposit;
    world.openCount.set(terms.provider, world.openCount.get(terms.provider)! + 1);
    world.sessions.push({
      index: world.sessions.length,
      id: opened.sessionId,
      terms,
      user,
      sessionKey,
      provider,
      deposit,
      endsAt: opened.endsAt,
      status: "open",
      closedAt: 0,
      pendingSeq: 0n,
      pendingReceipt: undefined,
      receipts: [{ receipt: emptyReceipt(opened.sessionId), signature: "0x" }],
    });
  }

  /** `_open`'s checks, in the contract's order, against the shadow. */
  private predictOpen(
    approval: SessionApproval,
    sender: HardhatEthersSigner,
    signer: HardhatEthersSigner,
    deposit: bigint,
    maxPrices: Prices,
    sessionKey: string,
    bid: BidShadow,
    now: number,
    validPermit: boolean,
  ): Revert | undefined {
    const { router } = this;
    const fail = (error: string, ...args: unknown[]): Revert => ({ contract: router, error, args });
    if (sender.address !== approval.user) return fail("ApprovalForAnotherUser", approval.user, sender.address);
    if (sessionKey === ethers.ZeroAddress) return fail("ZeroSessionKey");
    if (BigInt(now) > approval.deadline) return fail("ApprovalExpired", approval.deadline);
    if (approval.maxDuration === 0n) return fail("InvalidDuration");
    if (deposit === 0n) return fail("ZeroDeposit");
    if (deposit > approval.maxDeposit) return fail("DepositAboveApproval", deposit, approval.maxDeposit);
    if (!bid.active) return fail("BidNotActive", bid.bidId);
    const prices: Prices = bid.prices;
    for (const key of PRICE_KEYS)
      if (prices[key] > maxPrices[key]) return fail("PriceAboveMaximum", prices[key], maxPrices[key]);
    const royaltyBps = effectiveRoyaltyBps(this.world, bid.model);
    if (royaltyBps > approval.maxRoyaltyBps) return fail("RoyaltyAboveApproval", royaltyBps, approval.maxRoyaltyBps);
    const stakeError = this.stakeError(bid.provider);
    if (stakeError) return stakeError;
    if (signer !== bid.provider.provider && signer !== bid.provider.operator) {
      return fail("InvalidApprovalSigner", bid.provider.provider.address);
    }
    const maximum = highestNonce(bid.provider) + MAX_NONCE_STEP;
    if (approval.nonce > maximum) return fail("ApprovalNonceTooLarge", approval.nonce, maximum);
    if (bid.provider.usedNonces.includes(approval.nonce)) {
      return fail("ApprovalNonceUsed", bid.provider.provider.address, approval.nonce);
    }
    const feeBps = this.world.params.protocolFeeBps;
    if (feeBps > approval.maxFeeBps) return fail("FeeAboveApproval", feeBps, approval.maxFeeBps);
    if (prices.perSecond > 0n && deposit < prices.perSecond) return fail("DepositTooSmall", deposit, prices.perSecond);
    if (sender === this.world.permitUser && !validPermit) {
      // The failed permit is swallowed; the transfer then finds no allowance.
      return {
        contract: this.world.market.token,
        error: "ERC20InsufficientAllowance",
        args: [this.world.addresses.sessionRouter, 0n, deposit],
      };
    }
    return undefined;
  }

  private async signPermit(owner: HardhatEthersSigner, value: bigint, valid: boolean) {
    // An invalid permit is one already expired: `permit` reverts and the router carries on without it.
    const deadline = valid ? BigInt(this.world.now + 100_000) : BigInt(this.world.now - 1);
    return signPermit(this.world.market.token, owner, this.world.addresses.sessionRouter, value, deadline);
  }

  /** The client signs a new cumulative receipt after a response; nothing goes on-chain. */
  private async use(): Promise<void> {
    const session = this.pickSession("open");
    if (!session) return this.open();
    const p = this.prng;
    const last = this.latest(session).receipt;
    const seq = last.seq + 1n;
    const receipt: UsageReceipt = {
      sessionId: session.id,
      seq,
      inputTokens: last.inputTokens + p.bigint(0n, 20_000n),
      outputTokens: last.outputTokens + p.bigint(0n, 10_000n),
      requests: Number(seq),
      ttftMsAvg: p.int(40, 2_000),
      tpsX1000Avg: p.int(1_000, 120_000),
    };
    const signature = await signTyped(session.sessionKey, this.world.market.domain, "UsageReceipt", receipt);
    session.receipts.push({ receipt, signature });
    this.note = `use #${session.index} seq ${seq}`;
    this.record("use", "signed");
  }

  private async topUp(): Promise<void> {
    const { world, prng: p } = this;
    const fault = p.chance(0.25) ? p.pick(["closing", "notUser", "above", "zero"] as const) : "none";
    const session =
      (fault === "closing" ? this.pickSession("closing") : undefined) ??
      this.pickSession("open", (s) => s.endsAt > world.now + 12, 0.8);
    if (!session) return this.open();
    const sender =
      fault === "notUser" ? p.pick([world.stranger, ...world.users.filter((u) => u !== session.user)]) : session.user;
    const room = session.terms.maxDeposit - session.deposit;
    let amount = room > 0n ? p.bigint(1n, room) : 1n;
    if (fault === "above") amount = room + p.bigint(1n, 10n * E18);
    if (fault === "zero") amount = 0n;
    this.note = `topUp #${session.index} by ${this.label(sender)} amount ${amount}, fault ${fault}`;

    const { token } = world.market;
    const approves = sender === world.permitUser && amount > 0n;
    // The permit user keeps no standing allowance: it approves exactly this top-up.
    if (approves) {
      await this.tick();
      await this.mined(token.connect(sender).approve(world.addresses.sessionRouter, amount, GAS));
    }
    const now = await this.tick();
    const fail = (error: string, ...args: unknown[]): Revert => ({ contract: this.router, error, args });
    const deposit = session.deposit + amount;
    let expected: Revert | undefined;
    if (session.status !== "open") expected = fail("SessionNotOpen", session.id);
    else if (sender !== session.user) expected = fail("NotSessionUser", session.id, sender.address);
    else if (now >= session.endsAt) expected = fail("SessionExpired", session.id, session.endsAt);
    else if (amount === 0n) expected = fail("ZeroDeposit");
    else if (deposit > session.terms.maxDeposit)
      expected = fail("DepositAboveApproval", deposit, session.terms.maxDeposit);

    const receipt = await this.outcome("topUp", expected, () =>
      this.router.connect(sender).topUp(session.terms, amount, GAS),
    );
    if (!receipt) {
      if (approves) {
        await this.tick();
        await this.mined(token.connect(sender).approve(world.addresses.sessionRouter, 0n, GAS));
      }
      return;
    }
    accountOf(world, sender.address).wallet -= amount;
    session.deposit = deposit;
    session.endsAt = endsAtOf(session.terms, deposit);
  }

  /** A receipt the closer holds: usually the latest, sometimes an older one, sometimes none. */
  private someReceipt(session: SessionShadow, latestChance: number, emptyChance: number): SignedReceipt {
    const p = this.prng;
    if (p.chance(latestChance)) return this.latest(session);
    if (p.chance(emptyChance)) return session.receipts[0];
    return p.pick(session.receipts);
  }

  /**
   * Receipt faults any close can carry: forged by someone other than the session key (the user
   * itself, when the session has a key of its own), or from another session.
   */
  private async faultyReceipt(
    session: SessionShadow,
    chosen: SignedReceipt,
    someForger: SessionKey,
  ): Promise<{ signed: SignedReceipt; fault: string; expected: Revert | undefined }> {
    const p = this.prng;
    const forger = session.sessionKey !== session.user && p.chance(0.5) ? session.user : someForger;
    const fail = (error: string, ...args: unknown[]): Revert => ({ contract: this.router, error, args });
    if (p.chance(0.06)) {
      const last = this.latest(session).receipt;
      const receipt = {
        ...last,
        seq: last.seq + 1n,
        outputTokens: last.outputTokens + 1_000_000n,
        requests: last.requests + 1,
      };
      const signature = await signTyped(forger, this.world.market.domain, "UsageReceipt", receipt);
      return {
        signed: { receipt, signature },
        fault: `forged by ${this.label(forger)}${forger === session.user ? " (not the session key)" : ""}`,
        expected: fail("InvalidUserSignature"),
      };
    }
    const others = this.world.sessions.filter((s) => s !== session && s.receipts.length > 1);
    if (p.chance(0.04) && others.length > 0) {
      const other = this.latest(p.pick(others));
      return {
        signed: other,
        fault: "receipt of another session",
        expected: fail("ReceiptSessionMismatch", session.id, other.receipt.sessionId),
      };
    }
    return { signed: chosen, fault: "none", expected: undefined };
  }

  private async closeByProvider(): Promise<void> {
    const { prng: p } = this;
    const session = (p.chance(0.05) ? this.pickSession("closing") : undefined) ?? this.pickSession("open");
    if (!session) return this.open();
    const caller = p.chance(0.5) ? session.provider.provider : session.provider.operator;
    const faulty = await this.faultyReceipt(session, this.someReceipt(session, 0.7, 0.3), caller);
    const { receipt, signature } = faulty.signed;
    this.note = `close #${session.index} by ${this.label(caller)} seq ${receipt.seq}, fault ${faulty.fault}`;
    const now = await this.tick();
    const expected =
      session.status !== "open"
        ? { contract: this.router, error: "SessionNotOpen", args: [session.id] }
        : faulty.expected;
    const txReceipt = await this.outcome("closeByProvider", expected, () =>
      this.router.connect(caller).closeSession(session.terms, receipt, signature, "0x", GAS),
    );
    if (!txReceipt) return;
    this.expectSettled(txReceipt, session, settleShadow(this.world, session, receipt, now), receipt, caller, false);
  }

  private async closeByUser(): Promise<void> {
    const session = this.pickSession("open");
    if (!session) return this.open();
    // A user who closes alone may well pick a receipt older than the provider holds: the provider then challenges.
    const faulty = await this.faultyReceipt(session, this.someReceipt(session, 0.3, 0.3), session.provider.operator);
    const { receipt, signature } = faulty.signed;
    this.note = `user closes #${session.index} seq ${receipt.seq}, fault ${faulty.fault}`;
    const now = await this.tick();
    const txReceipt = await this.outcome("closeByUser", faulty.expected, () =>
      this.router.connect(session.user).closeSession(session.terms, receipt, signature, "0x", GAS),
    );
    if (!txReceipt) return;
    this.expectCloseRequested(txReceipt, session, receipt, session.user, now);
  }

  private async closeCooperatively(): Promise<void> {
    const { world, prng: p } = this;
    const session = this.pickSession("open", (s) => s.receipts.length > 1, 0.9);
    if (!session) return this.open();
    const { receipt, signature } = this.latest(session);
    if (receipt.seq === 0n) return this.closeByUser();
    const badCounter = p.chance(0.15);
    const counterSigner = badCounter
      ? p.pick([
          world.stranger,
          session.user,
          ...world.providers.filter((o) => o !== session.provider).map((o) => o.operator),
        ])
      : p.pick([session.provider.provider, session.provider.operator]);
    const countersignature = await signTyped(counterSigner, world.market.domain, "UsageReceipt", receipt);
    this.note = `cooperative close #${session.index} seq ${receipt.seq} countersigned by ${this.label(counterSigner)}`;
    const now = await this.tick();
    const expected = badCounter ? { contract: this.router, error: "InvalidProviderSignature", args: [] } : undefined;
    const txReceipt = await this.outcome("closeCooperatively", expected, () =>
      this.router.connect(session.user).closeSession(session.terms, receipt, signature, countersignature, GAS),
    );
    if (!txReceipt) return;
    this.expectSettled(txReceipt, session, settleShadow(world, session, receipt, now), receipt, session.user, false);
  }

  private async closeByThirdParty(): Promise<void> {
    const { world, prng: p } = this;
    const session = this.pickSession("open", (s) => s.endsAt <= world.now + 1, 0.8);
    if (!session) return this.open();
    const caller = p.pick([
      world.stranger,
      world.treasury,
      ...world.users.filter((u) => u !== session.user),
      ...world.providers.filter((o) => o !== session.provider).flatMap((o) => [o.provider, o.operator]),
    ]);
    // A keeper closes with no receipt, or with one the user handed it.
    const { receipt, signature } = p.chance(0.6) ? session.receipts[0] : this.latest(session);
    this.note = `${this.label(caller)} closes #${session.index} (endsAt ${session.endsAt}) seq ${receipt.seq}`;
    const now = await this.tick();
    const expected =
      now < session.endsAt
        ? { contract: this.router, error: "NotAllowedToClose", args: [session.id, caller.address] }
        : undefined;
    const txReceipt = await this.outcome("closeByThirdParty", expected, () =>
      this.router.connect(caller).closeSession(session.terms, receipt, signature, "0x", GAS),
    );
    if (!txReceipt) return;
    this.expectCloseRequested(txReceipt, session, receipt, caller, now);
  }

  private async challenge(): Promise<void> {
    const { world, prng: p } = this;
    const inWindow = (s: SessionShadow) => world.now + 12 <= s.closedAt + s.terms.challengeWindow && this.outbids(s);
    const session =
      (p.chance(0.05) ? this.pickSession("open") : undefined) ?? this.pickSession("closing", inWindow, 0.8);
    if (!session) return this.closeByUser();
    const notProvider = p.chance(0.1);
    const caller = notProvider
      ? p.pick([
          world.stranger,
          session.user,
          ...world.providers.filter((o) => o !== session.provider).map((o) => o.operator),
        ])
      : p.pick([session.provider.provider, session.provider.operator]);
    // The provider answers the close with a receipt whose tokens cost more; sometimes with one that does not.
    const closing = session.pendingReceipt ?? session.receipts[0].receipt;
    const closingCost = usageCost(session.terms, closing);
    const higher = session.receipts.filter((r) => usageCost(session.terms, r.receipt) > closingCost);
    const notHigher = session.receipts.filter((r) => usageCost(session.terms, r.receipt) <= closingCost);
    const { receipt, signature } =
      higher.length === 0 || p.chance(0.15) ? p.pick(notHigher) : p.chance(0.7) ? higher.at(-1)! : p.pick(higher);
    // The close's receipt must be handed back exactly; now and then the challenger gets it wrong.
    const wrongClosing = p.chance(0.05) && session.receipts.some((r) => r.receipt.seq !== closing.seq);
    const claimedClosing = wrongClosing
      ? p.pick(session.receipts.filter((r) => r.receipt.seq !== closing.seq)).receipt
      : closing;
    const challengeEndsAt = session.closedAt + session.terms.challengeWindow;
    this.note = `${this.label(caller)} challenges #${session.index} (${session.status}, closed with seq ${closing.seq}) with seq ${receipt.seq}${wrongClosing ? ", wrong closing receipt" : ""}`;
    const now = await this.tick();
    const fail = (error: string, ...args: unknown[]): Revert => ({ contract: this.router, error, args });
    const cost = usageCost(session.terms, receipt);
    let expected: Revert | undefined;
    if (session.status !== "closing") expected = fail("SessionNotClosing", session.id);
    else if (notProvider) expected = fail("NotSessionProvider", session.id, caller.address);
    else if (now > challengeEndsAt) expected = fail("ChallengeWindowClosed", challengeEndsAt);
    else if (wrongClosing) expected = fail("ReceiptMismatch");
    else if (cost <= closingCost) expected = fail("ChallengeNotHigher", cost, closingCost);
    const txReceipt = await this.outcome("challenge", expected, () =>
      this.router.connect(caller).challenge(session.terms, claimedClosing, receipt, signature, GAS),
    );
    if (!txReceipt) return;
    const settled = settleShadow(world, session, receipt, session.closedAt);
    this.expectSettled(txReceipt, session, settled, receipt, caller, true);
  }

  /** Whether the provider holds a receipt whose tokens cost more than those of the one the session was closed with. */
  private outbids(session: SessionShadow): boolean {
    const closing = usageCost(session.terms, session.pendingReceipt ?? session.receipts[0].receipt);
    return session.receipts.some((r) => usageCost(session.terms, r.receipt) > closing);
  }

  private async finalize(): Promise<void> {
    const { world, prng: p } = this;
    const pastWindow = (s: SessionShadow) => world.now + 1 > s.closedAt + s.terms.challengeWindow;
    const session =
      (p.chance(0.05) ? this.pickSession("open") : undefined) ?? this.pickSession("closing", pastWindow, 0.8);
    if (!session) return this.closeByUser();
    const caller = p.pick(world.accounts);
    const pending = session.pendingReceipt ?? session.receipts[0].receipt;
    const others = session.receipts.filter((r) => r.receipt.seq !== pending.seq);
    const mismatch = others.length > 0 && p.chance(0.1);
    const receipt = mismatch ? p.pick(others).receipt : pending;
    const challengeEndsAt = session.closedAt + session.terms.challengeWindow;
    this.note = `${this.label(caller)} finalizes #${session.index} (${session.status}, window ends ${challengeEndsAt}) seq ${receipt.seq}`;
    const now = await this.tick();
    const fail = (error: string, ...args: unknown[]): Revert => ({ contract: this.router, error, args });
    let expected: Revert | undefined;
    if (session.status !== "closing") expected = fail("SessionNotClosing", session.id);
    else if (now <= challengeEndsAt) expected = fail("ChallengeWindowOpen", challengeEndsAt);
    else if (mismatch) expected = fail("ReceiptMismatch");
    const txReceipt = await this.outcome("finalize", expected, () =>
      this.router.connect(caller).finalize(session.terms, receipt, GAS),
    );
    if (!txReceipt) return;
    const settled = settleShadow(world, session, receipt, session.closedAt);
    this.expectSettled(txReceipt, session, settled, receipt, caller, false);
  }

  /** A settled session must stay settled: every path that could pay it again reverts. */
  private async settleAgain(): Promise<void> {
    const { world, prng: p } = this;
    const session = this.pickSession("settled");
    if (!session) return this.open();
    const { receipt, signature } = this.latest(session);
    const path = p.pick(["providerClose", "userClose", "cooperativeClose", "challenge", "finalize", "topUp"] as const);
    this.note = `settle #${session.index} again by ${path}`;
    const notOpen: Revert = { contract: this.router, error: "SessionNotOpen", args: [session.id] };
    const notClosing: Revert = { contract: this.router, error: "SessionNotClosing", args: [session.id] };
    const provider = session.provider.provider;
    const countersignature = await signTyped(provider, world.market.domain, "UsageReceipt", receipt);
    await this.tick();
    const router = this.router;
    switch (path) {
      case "providerClose":
        await this.outcome(path, notOpen, () =>
          router.connect(provider).closeSession(session.terms, receipt, signature, "0x", GAS),
        );
        break;
      case "userClose":
        await this.outcome(path, notOpen, () =>
          router.connect(session.user).closeSession(session.terms, receipt, signature, "0x", GAS),
        );
        break;
      case "cooperativeClose":
        await this.outcome(path, notOpen, () =>
          router.connect(session.user).closeSession(session.terms, receipt, signature, countersignature, GAS),
        );
        break;
      case "challenge":
        await this.outcome(path, notClosing, () =>
          router.connect(provider).challenge(session.terms, receipt, receipt, signature, GAS),
        );
        break;
      case "finalize":
        await this.outcome(path, notClosing, () =>
          router.connect(world.stranger).finalize(session.terms, receipt, GAS),
        );
        break;
      case "topUp":
        await this.outcome(path, notOpen, () => router.connect(session.user).topUp(session.terms, 1n, GAS));
        break;
    }
  }

  private expectSettled(
    txReceipt: ContractTransactionReceipt,
    session: SessionShadow,
    expected: Expected,
    receipt: UsageReceipt,
    closedBy: HardhatEthersSigner,
    challenged: boolean,
  ) {
    const event = this.findEvent(txReceipt, "SessionSettled");
    expect(event.args.sessionId).to.equal(session.id);
    expect(event.args.user).to.equal(session.terms.user);
    expect(event.args.provider).to.equal(session.terms.provider);
    expect((event.args.settlement as Result).toArray()).to.deep.equal(
      [
        expected.cost,
        expected.providerAmount,
        expected.royaltyAmount,
        expected.feeAmount,
        expected.refund,
        expected.elapsedSeconds,
        expected.treasury,
      ],
      "settlement (cost, provider, royalty, fee, refund, elapsed, treasury)",
    );
    expect((event.args.receipt as Result).toArray()).to.deep.equal(receiptTuple(receipt), "receipt of SessionSettled");
    expect(event.args.closedBy).to.equal(closedBy.address);
    expect(event.args.challenged).to.equal(challenged);
    this.note += ` (cost ${expected.cost}, refund ${expected.refund})`;
    this.record("settlement", expected.refund === 0n ? "cost capped at the deposit" : "cost below the deposit");
  }

  private expectCloseRequested(
    txReceipt: ContractTransactionReceipt,
    session: SessionShadow,
    receipt: UsageReceipt,
    closedBy: HardhatEthersSigner,
    now: number,
  ) {
    const event = this.findEvent(txReceipt, "SessionCloseRequested");
    expect(event.args.sessionId).to.equal(session.id);
    expect(event.args.closedBy).to.equal(closedBy.address);
    expect((event.args.receipt as Result).toArray()).to.deep.equal(
      receiptTuple(receipt),
      "receipt of SessionCloseRequested",
    );
    expect(event.args.closedAt).to.equal(BigInt(now));
    expect(event.args.challengeEndsAt).to.equal(BigInt(now + session.terms.challengeWindow));
    session.status = "closing";
    session.closedAt = now;
    session.pendingSeq = receipt.seq;
    session.pendingReceipt = receipt;
  }

  private findEvent(txReceipt: ContractTransactionReceipt, name: string) {
    for (const log of txReceipt.logs) {
      const parsed = this.router.interface.parseLog(log);
      if (parsed?.name === name) return parsed;
    }
    throw new Error(`no ${name} event in ${txReceipt.hash}`);
  }

  /* ESCROW */

  private async claim(): Promise<void> {
    const { world, prng: p } = this;
    const withBalance = world.accounts.filter((a) => accountOf(world, a.address).escrow > 0n);
    const account = withBalance.length > 0 && p.chance(0.85) ? p.pick(withBalance) : p.pick(world.accounts);
    const mode = p.weighted([
      ["claim", 50],
      ["claimTo", 45],
      ["claimToZero", 5],
    ] as const);
    const to =
      mode === "claimTo"
        ? p.pick(world.accounts).address
        : mode === "claimToZero"
          ? ethers.ZeroAddress
          : account.address;
    const balance = accountOf(world, account.address).escrow;
    this.note = `${this.label(account)} ${mode} ${world.labels.get(to as Address) ?? to} (balance ${balance})`;
    await this.tick();
    const escrow = world.market.escrow;
    let expected: Revert | undefined;
    if (mode === "claimToZero") expected = { contract: escrow, error: "ZeroAddress", args: [] };
    else if (balance === 0n) expected = { contract: escrow, error: "NothingToClaim", args: [account.address] };
    const txReceipt = await this.outcome(mode, expected, () =>
      mode === "claim" ? escrow.connect(account).claim(GAS) : escrow.connect(account).claimTo(to, GAS),
    );
    if (!txReceipt) return;
    accountOf(world, account.address).escrow = 0n;
    accountOf(world, to).wallet += balance;
  }

  /* STAKING */

  private async stake(): Promise<void> {
    const { world, prng: p } = this;
    const below = world.providers
      .filter((o) => accountOf(world, o.provider.address).staked < world.params.providerMinStake)
      .map((o) => o.provider);
    const staker = below.length > 0 && p.chance(0.7) ? p.pick(below) : p.pick(world.stakers);
    const amount = p.chance(0.05) ? 0n : p.bigint(1n, 200n * E18);
    this.note = `${this.label(staker)} stakes ${amount}`;
    await this.tick();
    const expected = amount === 0n ? { contract: world.market.staking, error: "ZeroAmount", args: [] } : undefined;
    if (!(await this.outcome("stake", expected, () => world.market.staking.connect(staker).stake(amount, GAS)))) return;
    const account = accountOf(world, staker.address);
    account.wallet -= amount;
    account.staked += amount;
  }

  private async requestUnstake(): Promise<void> {
    const { world, prng: p } = this;
    const staker = p.pick(world.stakers);
    const account = accountOf(world, staker.address);
    const fault = p.chance(0.1) ? p.pick(["zero", "over"] as const) : "none";
    let amount: bigint;
    if (fault === "zero") amount = 0n;
    else if (fault === "over" || account.staked === 0n) amount = account.staked + p.bigint(1n, E18);
    else if (p.chance(0.1)) amount = account.staked;
    else {
      // Providers mostly keep the minimum stake they sell with; sometimes they drop below it.
      const isProvider = world.providers.some((o) => o.provider === staker);
      const spare = account.staked - world.params.providerMinStake;
      const limit = isProvider && spare > 0n && p.chance(0.9) ? spare : account.staked;
      amount = p.bigint(1n, limit < 60n * E18 ? limit : 60n * E18);
    }
    this.note = `${this.label(staker)} requests unstake of ${amount} (staked ${account.staked})`;
    const now = await this.tick();
    const staking = world.market.staking;
    let expected: Revert | undefined;
    if (amount === 0n) expected = { contract: staking, error: "ZeroAmount", args: [] };
    else if (amount > account.staked)
      expected = { contract: staking, error: "InsufficientStake", args: [account.staked, amount] };
    if (!(await this.outcome("requestUnstake", expected, () => staking.connect(staker).requestUnstake(amount, GAS))))
      return;
    account.staked -= amount;
    account.unbonding += amount;
    account.unlockAt = BigInt(now) + world.params.unbondingPeriod;
  }

  private async withdraw(): Promise<void> {
    const { world, prng: p } = this;
    const unbonding = world.stakers.filter((s) => accountOf(world, s.address).unbonding > 0n);
    const staker = unbonding.length > 0 && p.chance(0.8) ? p.pick(unbonding) : p.pick(world.stakers);
    const account = accountOf(world, staker.address);
    const to = p.weighted([
      [staker.address, 80],
      [p.pick(world.accounts).address, 15],
      [ethers.ZeroAddress, 5],
    ] as const);
    this.note = `${this.label(staker)} withdraws ${account.unbonding} to ${world.labels.get(to as Address) ?? to} (unlockAt ${account.unlockAt})`;
    const now = await this.tick();
    const staking = world.market.staking;
    let expected: Revert | undefined;
    if (to === ethers.ZeroAddress) expected = { contract: staking, error: "ZeroAddress", args: [] };
    else if (account.unbonding === 0n) expected = { contract: staking, error: "NothingToWithdraw", args: [] };
    else if (BigInt(now) < account.unlockAt)
      expected = { contract: staking, error: "StillUnbonding", args: [account.unlockAt] };
    if (!(await this.outcome("withdraw", expected, () => staking.connect(staker).withdraw(to, GAS)))) return;
    accountOf(world, to).wallet += account.unbonding;
    account.unbonding = 0n;
    account.unlockAt = 0n;
  }

  /* BIDS */

  private pickBid(preferActive: boolean | undefined): BidShadow {
    const bids = [...this.world.bids.values()];
    const favoured = preferActive === undefined ? bids : bids.filter((bid) => bid.active === preferActive);
    return this.prng.pick(favoured.length > 0 && this.prng.chance(0.8) ? favoured : bids);
  }

  private async postBid(): Promise<void> {
    const { world, prng: p } = this;
    const bid = this.pickBid(false);
    const prices = this.randomPrices(p.chance(0.08));
    const provider = bid.provider.provider;
    this.note = `post bid ${bid.provider.index}/${bid.model.index} (${bid.active ? "active" : "inactive"}) prices ${pricesText(prices)}`;
    await this.tick();
    const marketplace = world.market.marketplace;
    const expected = bid.active
      ? { contract: marketplace, error: "BidAlreadyActive", args: [bid.bidId] }
      : (this.stakeError(bid.provider) ?? this.priceError(prices));
    if (
      !(await this.outcome("postBid", expected, () =>
        marketplace.connect(provider).postBid(bid.model.modelId, prices, GAS),
      ))
    ) {
      return;
    }
    accountOf(world, provider.address).wallet -= world.params.bidFee;
    accountOf(world, world.treasury.address).wallet += world.params.bidFee;
    bid.active = true;
    bid.prices = prices;
  }

  private async updateBid(): Promise<void> {
    const { world, prng: p } = this;
    const bid = this.pickBid(true);
    const notOwner = p.chance(0.1);
    const caller = notOwner
      ? p.pick(world.providers.filter((o) => o !== bid.provider)).provider
      : bid.provider.provider;
    const prices = this.randomPrices(p.chance(0.08));
    this.note = `${this.label(caller)} updates bid ${bid.provider.index}/${bid.model.index} to ${pricesText(prices)}`;
    await this.tick();
    const marketplace = world.market.marketplace;
    let expected: Revert | undefined;
    if (notOwner) expected = { contract: marketplace, error: "NotBidProvider", args: [bid.bidId, caller.address] };
    else if (!bid.active) expected = { contract: marketplace, error: "BidNotActive", args: [bid.bidId] };
    else expected = this.priceError(prices);
    if (
      !(await this.outcome("updateBid", expected, () => marketplace.connect(caller).updateBid(bid.bidId, prices, GAS)))
    )
      return;
    // Open sessions keep the prices in their terms; the shadow prices them from their terms too.
    bid.prices = prices;
  }

  private async deleteBid(): Promise<void> {
    const { world, prng: p } = this;
    const bid = this.pickBid(true);
    const notOwner = p.chance(0.1);
    const caller = notOwner
      ? p.pick(world.providers.filter((o) => o !== bid.provider)).provider
      : bid.provider.provider;
    this.note = `${this.label(caller)} deletes bid ${bid.provider.index}/${bid.model.index}`;
    await this.tick();
    const marketplace = world.market.marketplace;
    let expected: Revert | undefined;
    if (notOwner) expected = { contract: marketplace, error: "NotBidProvider", args: [bid.bidId, caller.address] };
    else if (!bid.active) expected = { contract: marketplace, error: "BidNotActive", args: [bid.bidId] };
    if (!(await this.outcome("deleteBid", expected, () => marketplace.connect(caller).deleteBid(bid.bidId, GAS))))
      return;
    bid.active = false;
  }

  /* GOVERNANCE */

  /**
   * Governance moves the router's treasury (fees of later settlements go there, and
   * `SessionSettled` says so), the protocol fee or the royalty cap (both apply to later opens);
   * now and then out of bounds, or sent by someone who is not the admin.
   */
  private async governance(): Promise<void> {
    const { world, prng: p } = this;
    const { sessionRouter, modelRegistry } = world.market;
    const setting = p.pick(["setTreasury", "setProtocolFeeBps", "setMaxRoyaltyBps"] as const);
    const notAdmin = p.chance(0.05);
    const caller = notAdmin ? p.pick([world.stranger, ...world.users]) : world.governance;
    let expected: Revert | undefined;
    let send: () => Promise<ContractTransactionResponse>;
    let apply: () => void;
    if (setting === "setTreasury") {
      const candidates = world.treasuryCandidates.filter((candidate) => candidate !== world.routerTreasury);
      const next = p.chance(0.05) ? undefined : p.pick(candidates);
      const address = next?.address ?? ethers.ZeroAddress;
      this.note = `${this.label(caller)} sets the router's treasury to ${next ? this.label(next) : "zero"}`;
      if (!next) expected = { contract: sessionRouter, error: "ZeroAddress", args: [] };
      send = () => sessionRouter.connect(caller).setTreasury(address, GAS);
      apply = () => (world.routerTreasury = next!);
    } else if (setting === "setProtocolFeeBps") {
      const maximum = 1_000;
      const fee = p.chance(0.05)
        ? p.int(maximum + 1, 2 * maximum)
        : p.pick([0, 100, 250, 500, maximum, p.int(0, maximum)]);
      this.note = `${this.label(caller)} sets the protocol fee to ${fee} bps`;
      if (fee > maximum) expected = { contract: sessionRouter, error: "ProtocolFeeTooHigh", args: [fee, maximum] };
      send = () => sessionRouter.connect(caller).setProtocolFeeBps(fee, GAS);
      apply = () => (world.params.protocolFeeBps = fee);
    } else {
      const maximum = 5_000;
      const cap = p.chance(0.05)
        ? p.int(maximum + 1, 2 * maximum)
        : p.pick([0, 300, 500, 2_000, maximum, p.int(0, maximum)]);
      this.note = `${this.label(caller)} sets the royalty cap to ${cap} bps`;
      if (cap > maximum) expected = { contract: modelRegistry, error: "RoyaltyTooHigh", args: [cap, maximum] };
      send = () => modelRegistry.connect(caller).setMaxRoyaltyBps(cap, GAS);
      apply = () => (world.params.maxRoyaltyBps = cap);
    }
    if (notAdmin) {
      const contract = setting === "setMaxRoyaltyBps" ? modelRegistry : sessionRouter;
      expected = { contract, error: "AccessControlUnauthorizedAccount", args: [caller.address, ethers.ZeroHash] };
      this.note += " (not the admin)";
    }
    await this.tick();
    if (await this.outcome(setting, expected, send)) apply();
  }

  /* TIME */

  /** Moves the shadow clock; the next transaction is pinned to it, so no block needs mining now. */
  private advanceTime(): Promise<void> {
    const p = this.prng;
    const span = p.weighted([
      [[1, 120], 50],
      [[121, 1_800], 30],
      [[1_801, 4 * 3_600], 16],
      [[86_400, 8 * 86_400], 4],
    ] as const);
    const seconds = p.int(span[0], span[1]);
    this.world.now += seconds;
    this.note = `advance time ${seconds} s`;
    this.record("advanceTime", "ok");
    return Promise.resolve();
  }
}

function receiptTuple(r: UsageReceipt) {
  return [
    r.sessionId,
    r.seq,
    r.inputTokens,
    r.outputTokens,
    BigInt(r.requests),
    BigInt(r.ttftMsAvg),
    BigInt(r.tpsX1000Avg),
  ];
}

function pricesText(prices: Prices): string {
  return `${prices.perSecond}/s ${prices.perInputToken}/in ${prices.perOutputToken}/out`;
}
