/**
 * SessionRouter's money: what a deposit buys, how long a session may last, how a cost is split
 * (never paying out more than was deposited), and how settlements add up to one claim. Also the
 * provider's obligations to open sessions: deregistering and falling under the minimum stake.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { Hex } from "viem";
import { type Prices, type SessionTerms, type UsageReceipt, sessionCost, splitCost } from "../protocol";
import {
  E18,
  MAX_PRICES,
  PARAMS,
  PRICES,
  type MarketWithBid,
  emptyReceipt,
  makeApproval,
  marketWithBid,
  openSession,
  openedSession,
  receiptFor,
  receiptTuple,
  signReceipt,
  signTyped,
} from "./fixtures";

const DEPOSIT = 100n * E18;
const UINT96_MAX = 2n ** 96n - 1n;

/** splitmix64: a seeded generator, so the "random" cases are the same on every run. */
function seededRandom(seed: bigint) {
  let state = seed;
  const mask = 2n ** 64n - 1n;
  return (bound: bigint): bigint => {
    state = (state + 0x9e3779b97f4a7c15n) & mask;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
    z ^= z >> 31n;
    return z % bound;
  };
}

/** Opens a session with its block pinned to a known second. */
async function openAt(market: MarketWithBid, deposit = DEPOSIT, overrides = {}) {
  const openedAt = (await time.latest()) + 10;
  await time.setNextBlockTimestamp(openedAt);
  const session = await openSession(market, deposit, overrides);
  return { ...session, openedAt };
}

/** Escrow balances of everyone a settlement can credit. */
async function escrowBalances(market: MarketWithBid, accounts: HardhatEthersSigner[]) {
  return Promise.all(accounts.map((account) => market.escrow.balanceOf(account.address)));
}

/**
 * Provider-closes `session` at `openedAt + elapsed` with `receipt`; checks that the credits plus the
 * refund are exactly the deposit, that they match protocol's `sessionCost`/`splitCost`, and that the
 * escrow still holds exactly what it owes. Returns the settlement.
 */
async function settleAndCheck(
  market: MarketWithBid,
  session: { sessionId: Hex; terms: SessionTerms; openedAt: number; endsAt: number },
  deposit: bigint,
  elapsed: number,
  receipt: UsageReceipt,
) {
  const { sessionRouter, token, escrow, provider, modelOwner, treasury, user } = market;
  const signature = receipt.seq === 0n ? "0x" : await signReceipt(market, receipt);
  const accounts = [provider, modelOwner, treasury, user];
  const before = await escrowBalances(market, accounts);
  const userTokensBefore = await token.balanceOf(user.address);

  await time.setNextBlockTimestamp(session.openedAt + elapsed);
  const tx = await sessionRouter.connect(provider).closeSession(session.terms, receipt, signature, "0x");

  const after = await escrowBalances(market, accounts);
  const [providerCredit, royaltyCredit, feeCredit, userCredit] = after.map((balance, i) => balance - before[i]);
  const refund = (await token.balanceOf(user.address)) - userTokensBefore;
  expect(userCredit).to.equal(0n);
  expect(providerCredit + royaltyCredit + feeCredit + refund).to.equal(deposit);

  const elapsedSeconds = BigInt(Math.min(elapsed, session.endsAt - session.openedAt));
  const cost = sessionCost(session.terms, elapsedSeconds, receipt, deposit);
  const split = splitCost(session.terms, cost);
  expect([providerCredit, royaltyCredit, feeCredit, refund]).to.deep.equal([
    split.providerAmount,
    split.royaltyAmount,
    split.feeAmount,
    deposit - cost,
  ]);
  await expect(tx)
    .to.emit(sessionRouter, "SessionSettled")
    .withArgs(
      session.sessionId,
      user.address,
      provider.address,
      [
        cost,
        split.providerAmount,
        split.royaltyAmount,
        split.feeAmount,
        deposit - cost,
        elapsedSeconds,
        treasury.address,
      ],
      receiptTuple(receipt),
      provider.address,
      false,
    );
  // Solvency: the escrow holds exactly the credits (this fixture has no other open session or balance).
  expect(await token.balanceOf(await escrow.getAddress())).to.equal(after.reduce((sum, balance) => sum + balance, 0n));
  return { cost, ...split, refund: deposit - cost };
}

/** Sets the bid's prices, the protocol fee and the model's royalty for sessions opened next. */
async function setEconomics(market: MarketWithBid, prices: Prices, feeBps: number, royaltyBps: number) {
  await market.marketplace.connect(market.provider).updateBid(market.bidId, prices);
  await market.sessionRouter.connect(market.governance).setProtocolFeeBps(feeBps);
  await market.modelRegistry
    .connect(market.modelOwner)
    .updateModel(market.modelId, royaltyBps, "tiny", "file://tiny.gguf", ["test"]);
}

describe("SessionRouter: session economics", function () {
  describe("deposit and duration at open", function () {
    it("a deposit that buys less than one second: DepositTooSmall; exactly one second opens", async function () {
      const market = await loadFixture(marketWithBid);
      await expect(openSession(market, PRICES.perSecond - 1n))
        .to.be.revertedWithCustomError(market.sessionRouter, "DepositTooSmall")
        .withArgs(PRICES.perSecond - 1n, PRICES.perSecond);
      const session = await openAt(market, PRICES.perSecond);
      expect(session.endsAt).to.equal(session.openedAt + 1);
    });

    it("a zero deposit: ZeroDeposit", async function () {
      const market = await loadFixture(marketWithBid);
      await expect(openSession(market, 0n)).to.be.revertedWithCustomError(market.sessionRouter, "ZeroDeposit");
    });

    it("a deposit above the approval's maxDeposit: DepositAboveApproval; exactly maxDeposit opens", async function () {
      const market = await loadFixture(marketWithBid);
      await expect(openSession(market, 10n * E18 + 1n, { maxDeposit: 10n * E18 }))
        .to.be.revertedWithCustomError(market.sessionRouter, "DepositAboveApproval")
        .withArgs(10n * E18 + 1n, 10n * E18);
      const session = await openSession(market, 10n * E18, { maxDeposit: 10n * E18 });
      expect(session.terms.maxDeposit).to.equal(10n * E18);
    });

    it("a deposit above uint96: DepositTooLarge; a maxDeposit above uint96 is clamped in the terms", async function () {
      const market = await loadFixture(marketWithBid);
      await expect(openSession(market, UINT96_MAX + 1n, { maxDeposit: 2n ** 200n }))
        .to.be.revertedWithCustomError(market.sessionRouter, "DepositTooLarge")
        .withArgs(UINT96_MAX + 1n);
      const session = await openSession(market, DEPOSIT, { maxDeposit: 2n ** 200n });
      expect(session.terms.maxDeposit).to.equal(UINT96_MAX);
    });

    it("maxDuration 0: InvalidDuration", async function () {
      const market = await loadFixture(marketWithBid);
      await expect(openSession(market, DEPOSIT, { maxDuration: 0n })).to.be.revertedWithCustomError(
        market.sessionRouter,
        "InvalidDuration",
      );
    });

    it("maxDuration above maxSessionDuration is clamped to it", async function () {
      const market = await loadFixture(marketWithBid);
      for (const maxDuration of [PARAMS.maxSessionDuration + 1n, 10n * 24n * 3600n, 2n ** 64n - 1n]) {
        const session = await openAt(market, DEPOSIT, { maxDuration });
        expect(session.terms.maxEndsAt).to.equal(session.openedAt + Number(PARAMS.maxSessionDuration));
        expect(session.endsAt).to.equal(session.terms.maxEndsAt);
      }
      await market.sessionRouter.connect(market.governance).setMaxSessionDuration(7_200n);
      const shorter = await openAt(market, DEPOSIT, { maxDuration: 10_000n });
      expect(shorter.endsAt).to.equal(shorter.openedAt + 7_200);
    });

    it("endsAt is what the deposit buys when that is shorter than maxDuration", async function () {
      const market = await loadFixture(marketWithBid);
      // 1234.999... seconds: the fraction buys nothing.
      const session = await openAt(market, 1_235n * PRICES.perSecond - 1n);
      expect(session.endsAt).to.equal(session.openedAt + 1_234);
      expect(session.terms.maxEndsAt).to.equal(session.openedAt + 3_600);
    });
  });

  describe("free sessions", function () {
    it("price 0 on every axis: lasts min(maxDuration, maximum), costs 0, refunds all, credits nothing", async function () {
      const market = await loadFixture(marketWithBid);
      await market.marketplace
        .connect(market.provider)
        .updateBid(market.bidId, { perSecond: 0n, perInputToken: 0n, perOutputToken: 0n });
      // Each is settled before the next opens: settleAndCheck expects the escrow to hold no other deposit.
      for (const [deposit, maxDuration, duration] of [
        [1n, 7_200n, 7_200],
        [DEPOSIT, 30n * 24n * 3600n, Number(PARAMS.maxSessionDuration)],
      ] as const) {
        const session = await openAt(market, deposit, { maxDuration });
        expect(session.endsAt).to.equal(session.openedAt + duration);
        const receipt = receiptFor(session.sessionId, 3n, 10n ** 9n, 10n ** 9n);
        const settlement = await settleAndCheck(market, session, deposit, 100_000, receipt);
        expect(settlement).to.deep.equal({
          cost: 0n,
          providerAmount: 0n,
          royaltyAmount: 0n,
          feeAmount: 0n,
          refund: deposit,
        });
      }
      for (const account of [market.provider, market.modelOwner, market.treasury]) {
        expect(await market.escrow.balanceOf(account.address)).to.equal(0n);
      }
    });
  });

  describe("cost split and rounding", function () {
    interface Case {
      name: string;
      prices: Prices;
      feeBps: number;
      royaltyBps: number;
      deposit: bigint;
      elapsed: number;
      inputTokens: bigint;
      outputTokens: bigint;
      /** Written out by hand for the named cases; the seeded ones rely on protocol/ and the sum. */
      expected?: { cost: bigint; providerAmount: bigint; royaltyAmount: bigint; feeAmount: bigint };
    }
    const tokensOnly = (perInputToken: bigint, perOutputToken = 0n): Prices => ({
      perSecond: 0n,
      perInputToken,
      perOutputToken,
    });

    const named: Case[] = [
      {
        name: "cost 1: fee and royalty round to 0, the provider takes it",
        prices: tokensOnly(1n),
        feeBps: 250,
        royaltyBps: 500,
        deposit: E18,
        elapsed: 10,
        inputTokens: 1n,
        outputTokens: 0n,
        expected: { cost: 1n, providerAmount: 1n, royaltyAmount: 0n, feeAmount: 0n },
      },
      {
        name: "cost 3 at maximum fee and royalty",
        prices: tokensOnly(0n, 3n),
        feeBps: 1_000,
        royaltyBps: 2_000,
        deposit: E18,
        elapsed: 10,
        inputTokens: 0n,
        outputTokens: 1n,
        expected: { cost: 3n, providerAmount: 3n, royaltyAmount: 0n, feeAmount: 0n },
      },
      {
        name: "cost 9999 at maximum fee and royalty",
        prices: tokensOnly(1n),
        feeBps: 1_000,
        royaltyBps: 2_000,
        deposit: E18,
        elapsed: 10,
        inputTokens: 9_999n,
        outputTokens: 0n,
        expected: { cost: 9_999n, providerAmount: 7_001n, royaltyAmount: 1_999n, feeAmount: 999n },
      },
      {
        name: "prime cost 10007 with prime basis points",
        prices: tokensOnly(10_007n),
        feeBps: 331,
        royaltyBps: 1_999,
        deposit: E18,
        elapsed: 10,
        inputTokens: 1n,
        outputTokens: 0n,
        // 10007 * 331 / 10000 = 331.23; 10007 * 1999 / 10000 = 2000.39
        expected: { cost: 10_007n, providerAmount: 7_676n, royaltyAmount: 2_000n, feeAmount: 331n },
      },
      {
        name: "Mersenne prime cost 2^61 - 1 at 1 basis point each",
        prices: tokensOnly(2n ** 61n - 1n),
        feeBps: 1,
        royaltyBps: 1,
        deposit: 10n * E18,
        elapsed: 10,
        inputTokens: 1n,
        outputTokens: 0n,
        expected: {
          cost: 2n ** 61n - 1n,
          providerAmount: 2n ** 61n - 1n - 2n * 230_584_300_921_369n,
          royaltyAmount: 230_584_300_921_369n,
          feeAmount: 230_584_300_921_369n,
        },
      },
      {
        name: "time, input and output all priced in primes",
        prices: { perSecond: 7_919n, perInputToken: 104_729n, perOutputToken: 1_299_709n },
        feeBps: 997,
        royaltyBps: 1_009,
        deposit: E18,
        elapsed: 97,
        inputTokens: 101n,
        outputTokens: 103n,
        // 97 * 7919 + 101 * 104729 + 103 * 1299709 = 768143 + 10577629 + 133870027
        expected: {
          cost: 145_215_799n,
          providerAmount: 116_085_510n,
          royaltyAmount: 14_652_274n,
          feeAmount: 14_478_015n,
        },
      },
      {
        name: "no fee and no royalty: the provider takes everything",
        prices: PRICES,
        feeBps: 0,
        royaltyBps: 0,
        deposit: DEPOSIT,
        elapsed: 600,
        inputTokens: 1_000n,
        outputTokens: 500n,
        expected: { cost: 603n * 10n ** 12n, providerAmount: 603n * 10n ** 12n, royaltyAmount: 0n, feeAmount: 0n },
      },
      {
        name: "cost above the deposit is capped at the deposit (no refund)",
        prices: tokensOnly(E18),
        feeBps: 250,
        royaltyBps: 500,
        deposit: 999n * E18 + 7n,
        elapsed: 10,
        inputTokens: 1_000n,
        outputTokens: 0n,
        expected: {
          cost: 999n * E18 + 7n,
          providerAmount: 999n * E18 + 7n - 24_975n * 10n ** 15n - 49_950n * 10n ** 15n,
          royaltyAmount: 49_950n * 10n ** 15n, // 7 * 500 / 10000 rounds away
          feeAmount: 24_975n * 10n ** 15n,
        },
      },
      {
        name: "time past endsAt is not charged; tokens still push the cost to the cap",
        prices: { perSecond: 3n, perInputToken: 5n, perOutputToken: 0n },
        feeBps: 1_000,
        royaltyBps: 2_000,
        deposit: 3_001n, // buys 1000 s with 1 wei over
        elapsed: 5_000,
        inputTokens: 1n,
        outputTokens: 0n,
        // 1000 * 3 + 1 * 5 = 3005 > 3001
        expected: { cost: 3_001n, providerAmount: 2_101n, royaltyAmount: 600n, feeAmount: 300n },
      },
    ];

    const random = seededRandom(0x5e55_10a5n);
    const seeded: Case[] = Array.from({ length: 12 }, (_, i) => {
      const perSecond = random(2n ** 40n);
      return {
        name: `seeded case ${i}`,
        prices: { perSecond, perInputToken: random(2n ** 40n), perOutputToken: random(2n ** 40n) },
        feeBps: Number(random(1_001n)),
        royaltyBps: Number(random(2_001n)),
        // Always buys at least one second; sometimes less than the session runs.
        deposit: perSecond * (1n + random(4_000n)) + random(perSecond + 1n) + 1n,
        elapsed: 1 + Number(random(4_000n)),
        inputTokens: random(2n ** 20n),
        outputTokens: random(2n ** 20n),
      };
    });

    for (const c of [...named, ...seeded]) {
      it(`${c.name}: credits + refund == deposit, as protocol/ computes`, async function () {
        const market = await loadFixture(marketWithBid);
        await setEconomics(market, c.prices, c.feeBps, c.royaltyBps);
        const session = await openAt(market, c.deposit);
        expect([session.terms.feeBps, session.terms.royaltyBps]).to.deep.equal([c.feeBps, c.royaltyBps]);
        const receipt = receiptFor(session.sessionId, 1n, c.inputTokens, c.outputTokens);
        const settlement = await settleAndCheck(market, session, c.deposit, c.elapsed, receipt);
        if (c.expected) {
          expect(settlement).to.deep.equal({ ...c.expected, refund: c.deposit - c.expected.cost });
          expect(c.expected.providerAmount + c.expected.royaltyAmount + c.expected.feeAmount).to.equal(c.expected.cost);
        }
        // Rounding favours nobody but the provider, and never by a full unit of fee or royalty.
        expect(settlement.feeAmount * 10_000n <= settlement.cost * BigInt(c.feeBps)).to.equal(true);
        expect((settlement.feeAmount + 1n) * 10_000n > settlement.cost * BigInt(c.feeBps)).to.equal(true);
        expect(settlement.royaltyAmount * 10_000n <= settlement.cost * BigInt(c.royaltyBps)).to.equal(true);
        expect((settlement.royaltyAmount + 1n) * 10_000n > settlement.cost * BigInt(c.royaltyBps)).to.equal(true);
      });
    }
  });

  describe("royalty and fee at open (issue 5.3)", function () {
    /** An approval as the agent signs it, bound to `bounds`, and its open. */
    async function signedApproval(market: MarketWithBid, bounds: { maxRoyaltyBps: number; maxFeeBps: number }) {
      const approval = await makeApproval(market, bounds);
      const signature = await signTyped(market.provider, market.domain, "SessionApproval", approval);
      const open = () =>
        market.sessionRouter
          .connect(market.user)
          .openSession(approval, signature, DEPOSIT, MAX_PRICES, market.user.address);
      return { approval, signature, open };
    }

    const setRoyalty = (market: MarketWithBid, royaltyBps: number) =>
      market.modelRegistry
        .connect(market.modelOwner)
        .updateModel(market.modelId, royaltyBps, "tiny", "file://tiny.gguf", ["test"]);

    it("a royalty raised after the approval: RoyaltyAboveApproval; at exactly the approved royalty it opens", async function () {
      const market = await loadFixture(marketWithBid);
      const { open } = await signedApproval(market, { maxRoyaltyBps: 500, maxFeeBps: Number(PARAMS.protocolFeeBps) });
      await setRoyalty(market, 501);
      await expect(open())
        .to.be.revertedWithCustomError(market.sessionRouter, "RoyaltyAboveApproval")
        .withArgs(501, 500);
      await setRoyalty(market, 500);
      const opened = await openedSession(market, await open());
      expect(opened.terms.royaltyBps).to.equal(500);
    });

    it("a protocol fee raised after the approval: FeeAboveApproval; at exactly the approved fee it opens", async function () {
      const market = await loadFixture(marketWithBid);
      const feeBps = Number(PARAMS.protocolFeeBps);
      const { open } = await signedApproval(market, { maxRoyaltyBps: 500, maxFeeBps: feeBps });
      await market.sessionRouter.connect(market.governance).setProtocolFeeBps(feeBps + 1);
      await expect(open())
        .to.be.revertedWithCustomError(market.sessionRouter, "FeeAboveApproval")
        .withArgs(feeBps + 1, feeBps);
      await market.sessionRouter.connect(market.governance).setProtocolFeeBps(feeBps);
      const opened = await openedSession(market, await open());
      expect(opened.terms.feeBps).to.equal(feeBps);
    });

    it("a royalty or fee lowered after the approval opens at the lower rate", async function () {
      const market = await loadFixture(marketWithBid);
      const { open } = await signedApproval(market, { maxRoyaltyBps: 500, maxFeeBps: Number(PARAMS.protocolFeeBps) });
      await setRoyalty(market, 100);
      await market.sessionRouter.connect(market.governance).setProtocolFeeBps(0);
      const opened = await openedSession(market, await open());
      expect([opened.terms.royaltyBps, opened.terms.feeBps]).to.deep.equal([100, 0]);
    });

    it("a royalty cap lowered below an existing model's royalty applies to the next open (issue 5.3a)", async function () {
      const market = await loadFixture(marketWithBid);
      const { modelRegistry, sessionRouter, governance, provider } = market;
      await setRoyalty(market, 2_000);
      const before = await openAt(market);
      expect(before.terms.royaltyBps).to.equal(2_000);

      await modelRegistry.connect(governance).setMaxRoyaltyBps(300);
      const after = await openAt(market);
      expect(after.terms.royaltyBps).to.equal(300);
      // The model's record keeps the royalty its owner asked; the cap applies at open.
      expect((await modelRegistry.getModel(market.modelId)).royaltyBps).to.equal(2_000n);

      // Each session settles at the royalty it opened with.
      for (const session of [before, after]) {
        await time.setNextBlockTimestamp(session.openedAt + 100);
        const cost = 100n * PRICES.perSecond;
        const split = splitCost(session.terms, cost);
        expect(split.royaltyAmount).to.equal((cost * BigInt(session.terms.royaltyBps)) / 10_000n);
        await expect(
          sessionRouter.connect(provider).closeSession(session.terms, emptyReceipt(session.sessionId), "0x", "0x"),
        ).to.changeTokenBalance(market.token, market.user, DEPOSIT - cost);
        expect(await market.escrow.balanceOf(market.modelOwner.address)).to.be.greaterThanOrEqual(split.royaltyAmount);
      }
      expect(await market.escrow.balanceOf(market.modelOwner.address)).to.equal(
        splitCost(before.terms, 100n * PRICES.perSecond).royaltyAmount +
          splitCost(after.terms, 100n * PRICES.perSecond).royaltyAmount,
      );
      expect(await sessionRouter.openSessionCount(provider.address)).to.equal(0n);
    });

    it("an approval bound to the capped royalty opens although the model asks more", async function () {
      const market = await loadFixture(marketWithBid);
      await setRoyalty(market, 2_000);
      await market.modelRegistry.connect(market.governance).setMaxRoyaltyBps(300);
      const { open } = await signedApproval(market, { maxRoyaltyBps: 300, maxFeeBps: Number(PARAMS.protocolFeeBps) });
      const opened = await openedSession(market, await open());
      expect(opened.terms.royaltyBps).to.equal(300);
    });

    it("the bounds are signed: an approval whose bounds were raised after signing: InvalidApprovalSigner", async function () {
      const market = await loadFixture(marketWithBid);
      const { approval, signature } = await signedApproval(market, { maxRoyaltyBps: 500, maxFeeBps: 250 });
      for (const raised of [
        { ...approval, maxRoyaltyBps: 501 },
        { ...approval, maxFeeBps: 251 },
      ]) {
        await expect(
          market.sessionRouter
            .connect(market.user)
            .openSession(raised, signature, DEPOSIT, MAX_PRICES, market.user.address),
        )
          .to.be.revertedWithCustomError(market.sessionRouter, "InvalidApprovalSigner")
          .withArgs(market.provider.address);
      }
    });
  });

  describe("provider obligations", function () {
    it("deregistering with open or closing sessions: OpenSessionsRemain; after settlement it succeeds", async function () {
      const market = await loadFixture(marketWithBid);
      const { providerRegistry, sessionRouter, provider, user } = market;
      const first = await openSession(market);
      const second = await openSession(market);
      expect(await sessionRouter.openSessionCount(provider.address)).to.equal(2n);
      await expect(providerRegistry.connect(provider).deregister())
        .to.be.revertedWithCustomError(providerRegistry, "OpenSessionsRemain")
        .withArgs(provider.address, 2n);

      await sessionRouter.connect(provider).closeSession(first.terms, emptyReceipt(first.sessionId), "0x", "0x");
      // A closing session is still unsettled.
      await sessionRouter.connect(user).closeSession(second.terms, emptyReceipt(second.sessionId), "0x", "0x");
      expect(await sessionRouter.openSessionCount(provider.address)).to.equal(1n);
      await expect(providerRegistry.connect(provider).deregister())
        .to.be.revertedWithCustomError(providerRegistry, "OpenSessionsRemain")
        .withArgs(provider.address, 1n);

      await time.increase(PARAMS.challengeWindow + 1n);
      await sessionRouter.finalize(second.terms, emptyReceipt(second.sessionId));
      expect(await sessionRouter.openSessionCount(provider.address)).to.equal(0n);
      await expect(providerRegistry.connect(provider).deregister())
        .to.emit(providerRegistry, "ProviderDeregistered")
        .withArgs(provider.address);
      expect(await providerRegistry.isActive(provider.address)).to.equal(false);
    });

    it("stake under the minimum after a bid: opens fail, open sessions still settle (close and challenge)", async function () {
      const market = await loadFixture(marketWithBid);
      const { sessionRouter, staking, providerRegistry, provider, operator, user } = market;
      const closedByProvider = await openAt(market);
      const challenged = await openAt(market);
      await staking.connect(provider).requestUnstake(PARAMS.providerMinStake / 2n);
      await expect(openSession(market))
        .to.be.revertedWithCustomError(providerRegistry, "StakeBelowMinimum")
        .withArgs(provider.address, PARAMS.providerMinStake / 2n, PARAMS.providerMinStake);

      const receipt = receiptFor(closedByProvider.sessionId, 1n, 100n, 100n);
      await expect(
        sessionRouter
          .connect(provider)
          .closeSession(closedByProvider.terms, receipt, await signReceipt(market, receipt), "0x"),
      ).to.emit(sessionRouter, "SessionSettled");

      await sessionRouter.connect(user).closeSession(challenged.terms, emptyReceipt(challenged.sessionId), "0x", "0x");
      const later = receiptFor(challenged.sessionId, 2n, 100n, 100n);
      await expect(
        sessionRouter
          .connect(operator)
          .challenge(challenged.terms, emptyReceipt(challenged.sessionId), later, await signReceipt(market, later)),
      ).to.emit(sessionRouter, "SessionSettled");
      expect(await sessionRouter.openSessionCount(provider.address)).to.equal(0n);
      expect(await market.escrow.balanceOf(provider.address)).to.be.greaterThan(0n);
    });

    it("an open session settles after its bid is deleted and its model deregistered, royalty included", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market);
      await market.marketplace.connect(market.provider).deleteBid(market.bidId);
      await market.modelRegistry.connect(market.modelOwner).deregisterModel(market.modelId);
      const receipt = receiptFor(session.sessionId, 1n, 1_000n, 1_000n);
      const settlement = await settleAndCheck(market, session, DEPOSIT, 60, receipt);
      expect(settlement.royaltyAmount).to.equal((settlement.cost * 500n) / 10_000n);
      expect(settlement.royaltyAmount).to.be.greaterThan(0n);
    });
  });

  describe("claims", function () {
    it("ten settled sessions, one claim pays the sum; a second claim: NothingToClaim", async function () {
      const market = await loadFixture(marketWithBid);
      const { sessionRouter, escrow, token, provider, operator, modelOwner, treasury, user, stranger } = market;
      const totals = { providerAmount: 0n, royaltyAmount: 0n, feeAmount: 0n };
      for (let i = 0; i < 10; i++) {
        const deposit = BigInt(i + 1) * E18 + BigInt(i * 7_919);
        const session = await openAt(market, deposit);
        const receipt = receiptFor(session.sessionId, BigInt(i + 1), BigInt(1_000 * i + 13), BigInt(97 * i));
        const signature = await signReceipt(market, receipt);
        const elapsed = 60 * i + 1;
        await time.setNextBlockTimestamp(session.openedAt + elapsed);
        // Alternate who settles: provider, operator, and a cooperative close by the user.
        if (i % 3 === 0) await sessionRouter.connect(provider).closeSession(session.terms, receipt, signature, "0x");
        else if (i % 3 === 1)
          await sessionRouter.connect(operator).closeSession(session.terms, receipt, signature, "0x");
        else {
          const countersignature = await signReceipt(market, receipt, provider);
          await sessionRouter.connect(user).closeSession(session.terms, receipt, signature, countersignature);
        }
        const split = splitCost(session.terms, sessionCost(session.terms, BigInt(elapsed), receipt, deposit));
        totals.providerAmount += split.providerAmount;
        totals.royaltyAmount += split.royaltyAmount;
        totals.feeAmount += split.feeAmount;
      }
      expect(await escrow.balanceOf(provider.address)).to.equal(totals.providerAmount);
      const escrowAddress = await escrow.getAddress();
      expect(await token.balanceOf(escrowAddress)).to.equal(
        totals.providerAmount + totals.royaltyAmount + totals.feeAmount,
      );

      const claim = escrow.connect(provider).claim();
      await expect(claim)
        .to.emit(escrow, "Claimed")
        .withArgs(provider.address, provider.address, totals.providerAmount);
      await expect(claim).to.changeTokenBalances(
        token,
        [provider, escrow],
        [totals.providerAmount, -totals.providerAmount],
      );
      expect(await escrow.balanceOf(provider.address)).to.equal(0n);
      await expect(escrow.connect(provider).claim())
        .to.be.revertedWithCustomError(escrow, "NothingToClaim")
        .withArgs(provider.address);

      // The royalty goes elsewhere with claimTo; the treasury claims; then the escrow is empty.
      await expect(escrow.connect(modelOwner).claimTo(stranger.address))
        .to.emit(escrow, "Claimed")
        .withArgs(modelOwner.address, stranger.address, totals.royaltyAmount);
      await expect(escrow.connect(treasury).claim()).to.changeTokenBalance(token, treasury, totals.feeAmount);
      expect(await token.balanceOf(escrowAddress)).to.equal(0n);
      await expect(escrow.connect(modelOwner).claimTo(stranger.address))
        .to.be.revertedWithCustomError(escrow, "NothingToClaim")
        .withArgs(modelOwner.address);
    });
  });
});
