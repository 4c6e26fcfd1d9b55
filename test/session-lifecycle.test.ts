/**
 * SessionRouter, a session from open to settlement: who may close, the challenge window, cooperative
 * closes, expiry, top-ups, permits, and the checks an open makes against the bid, model and provider.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { ContractTransactionResponse } from "ethers";
import type { Address, Hex } from "viem";
import { type SessionTerms, type UsageReceipt, sessionIdOf } from "../protocol";
import {
  E18,
  MAX_PRICES,
  PARAMS,
  PRICES,
  type MarketWithBid,
  approveAll,
  emptyReceipt,
  makeApproval,
  marketWithBid,
  openSession,
  openedSession,
  receiptFor,
  receiptTuple,
  signPermit,
  signReceipt,
  signTyped,
} from "./fixtures";

const DEPOSIT = 100n * E18;
const STATUS = { None: 0n, Open: 1n, Closing: 2n } as const;

interface ExpectedSettlement {
  cost: bigint;
  providerAmount: bigint;
  royaltyAmount: bigint;
  feeAmount: bigint;
  refund: bigint;
  elapsedSeconds: bigint;
}

const termsTuple = (t: SessionTerms) => [
  t.user,
  t.sessionKey,
  t.provider,
  t.modelId,
  t.nonce,
  t.pricePerSecond,
  t.pricePerInputToken,
  t.pricePerOutputToken,
  t.royaltyRecipient,
  t.royaltyBps,
  t.feeBps,
  t.challengeWindow,
  t.maxDeposit,
  t.openedAt,
  t.maxEndsAt,
];
/** A settlement as an event argument, with the treasury credited with its fee. */
const settlementTuple = (s: ExpectedSettlement, treasury: string) => [
  s.cost,
  s.providerAmount,
  s.royaltyAmount,
  s.feeAmount,
  s.refund,
  s.elapsedSeconds,
  treasury,
];

/** The default bid's cost, written out by hand (not through protocol/): 1e12/s, 1e9/input, 4e9/output, 2.5% fee, 5% royalty. */
function defaultSettlement(
  elapsedSeconds: bigint,
  inputTokens: bigint,
  outputTokens: bigint,
  deposit = DEPOSIT,
): ExpectedSettlement {
  let cost = elapsedSeconds * 10n ** 12n + inputTokens * 10n ** 9n + outputTokens * 4n * 10n ** 9n;
  if (cost > deposit) cost = deposit;
  const feeAmount = (cost * 250n) / 10_000n;
  const royaltyAmount = (cost * 500n) / 10_000n;
  return {
    cost,
    providerAmount: cost - feeAmount - royaltyAmount,
    royaltyAmount,
    feeAmount,
    refund: deposit - cost,
    elapsedSeconds,
  };
}

/**
 * Sends a settling transaction and checks everything a settlement does: the event, the three
 * escrow credits, the refund in the user's wallet, the state erased and the open count decremented.
 */
async function expectSettles(
  market: MarketWithBid,
  session: { sessionId: Hex; terms: SessionTerms },
  send: () => Promise<ContractTransactionResponse>,
  expected: {
    settlement: ExpectedSettlement;
    receipt: UsageReceipt;
    closedBy: HardhatEthersSigner;
    challenged: boolean;
  },
) {
  const { escrow, token, sessionRouter, provider, modelOwner, treasury, user } = market;
  const accounts = [provider, modelOwner, treasury, user];
  const escrowBefore = await Promise.all(accounts.map((account) => escrow.balanceOf(account.address)));
  const openBefore = await sessionRouter.openSessionCount(provider.address);
  const userTokensBefore = await token.balanceOf(user.address);
  const escrowTokensBefore = await token.balanceOf(await escrow.getAddress());

  const tx = send();
  await expect(tx)
    .to.emit(sessionRouter, "SessionSettled")
    .withArgs(
      session.sessionId,
      user.address,
      provider.address,
      settlementTuple(expected.settlement, treasury.address),
      receiptTuple(expected.receipt),
      expected.closedBy.address,
      expected.challenged,
    );

  const escrowAfter = await Promise.all(accounts.map((account) => escrow.balanceOf(account.address)));
  const s = expected.settlement;
  expect(escrowAfter.map((after, i) => after - escrowBefore[i])).to.deep.equal([
    s.providerAmount,
    s.royaltyAmount,
    s.feeAmount,
    0n,
  ]);
  expect((await token.balanceOf(user.address)) - userTokensBefore).to.equal(s.refund);
  expect(escrowTokensBefore - (await token.balanceOf(await escrow.getAddress()))).to.equal(s.refund);
  expect(s.providerAmount + s.royaltyAmount + s.feeAmount + s.refund).to.equal(s.cost + s.refund);

  const state = await sessionRouter.getSessionState(session.sessionId);
  expect([state.deposit, state.endsAt, state.closedAt, state.status, state.pendingSeq]).to.deep.equal([
    0n,
    0n,
    0n,
    STATUS.None,
    0n,
  ]);
  expect(await sessionRouter.openSessionCount(provider.address)).to.equal(openBefore - 1n);
}

/** Opens a session with the open block pinned to a known second; returns it with that second. */
async function openAt(market: MarketWithBid, deposit = DEPOSIT, overrides = {}) {
  const openedAt = (await time.latest()) + 10;
  await time.setNextBlockTimestamp(openedAt);
  const session = await openSession(market, deposit, overrides);
  expect(session.terms.openedAt).to.equal(openedAt);
  return { ...session, openedAt };
}

/** A user-signed receipt and its signature. */
async function signedReceipt(
  market: MarketWithBid,
  sessionId: Hex,
  seq: bigint,
  inputTokens: bigint,
  outputTokens: bigint,
) {
  const receipt = receiptFor(sessionId, seq, inputTokens, outputTokens);
  return { receipt, signature: await signReceipt(market, receipt) };
}

describe("SessionRouter: session lifecycle", function () {
  describe("open", function () {
    it("opens a session: event with the terms, state, escrowed deposit and open count", async function () {
      const market = await loadFixture(marketWithBid);
      const { sessionRouter, token, escrow, user, provider, modelOwner } = market;
      const escrowTokensBefore = await token.balanceOf(await escrow.getAddress());
      const openedAt = (await time.latest()) + 10;
      const approval = await makeApproval(market, { maxDeposit: 500n * E18, maxDuration: 1_800n });
      const signature = await signTyped(provider, market.domain, "SessionApproval", approval);
      const terms: SessionTerms = {
        user: user.address as Address,
        sessionKey: user.address as Address,
        provider: provider.address as Address,
        modelId: market.modelId,
        nonce: approval.nonce,
        pricePerSecond: PRICES.perSecond,
        pricePerInputToken: PRICES.perInputToken,
        pricePerOutputToken: PRICES.perOutputToken,
        royaltyRecipient: modelOwner.address as Address,
        royaltyBps: 500,
        feeBps: Number(PARAMS.protocolFeeBps),
        challengeWindow: Number(PARAMS.challengeWindow),
        maxDeposit: 500n * E18,
        openedAt,
        maxEndsAt: openedAt + 1_800,
      };
      const sessionId = sessionIdOf(terms);
      expect(await sessionRouter.sessionIdOf(terms)).to.equal(sessionId);

      await time.setNextBlockTimestamp(openedAt);
      const tx = sessionRouter.connect(user).openSession(approval, signature, DEPOSIT, MAX_PRICES, approval.user);
      await expect(tx)
        .to.emit(sessionRouter, "SessionOpened")
        .withArgs(
          sessionId,
          user.address,
          provider.address,
          market.bidId,
          termsTuple(terms),
          DEPOSIT,
          openedAt + 1_800,
        );
      await expect(tx).to.changeTokenBalances(token, [user, escrow], [-DEPOSIT, DEPOSIT]);

      const state = await sessionRouter.getSessionState(sessionId);
      expect([state.deposit, state.endsAt, state.closedAt, state.status, state.pendingSeq]).to.deep.equal([
        DEPOSIT,
        BigInt(openedAt + 1_800),
        0n,
        STATUS.Open,
        0n,
      ]);
      expect(await sessionRouter.openSessionCount(provider.address)).to.equal(1n);
      expect(await token.balanceOf(await escrow.getAddress())).to.equal(escrowTokensBefore + DEPOSIT);
      expect(await sessionRouter.isApprovalNonceUsed(provider.address, approval.nonce)).to.equal(true);
    });

    it("fails when the bid was deleted", async function () {
      const market = await loadFixture(marketWithBid);
      await market.marketplace.connect(market.provider).deleteBid(market.bidId);
      await expect(openSession(market))
        .to.be.revertedWithCustomError(market.sessionRouter, "BidNotActive")
        .withArgs(market.bidId);
    });

    it("fails when the model was deregistered", async function () {
      const market = await loadFixture(marketWithBid);
      await market.modelRegistry.connect(market.modelOwner).deregisterModel(market.modelId);
      await expect(openSession(market))
        .to.be.revertedWithCustomError(market.sessionRouter, "ModelNotActive")
        .withArgs(market.modelId);
    });

    it("fails when the provider's stake fell under the minimum (the registry's error)", async function () {
      const market = await loadFixture(marketWithBid);
      await market.staking.connect(market.provider).requestUnstake(1n);
      await expect(openSession(market))
        .to.be.revertedWithCustomError(market.providerRegistry, "StakeBelowMinimum")
        .withArgs(market.provider.address, PARAMS.providerMinStake - 1n, PARAMS.providerMinStake);
    });

    it("fails when the minimum stake was raised above the provider's stake", async function () {
      const market = await loadFixture(marketWithBid);
      await market.providerRegistry.connect(market.governance).setProviderMinStake(PARAMS.providerMinStake + 1n);
      await expect(openSession(market))
        .to.be.revertedWithCustomError(market.providerRegistry, "StakeBelowMinimum")
        .withArgs(market.provider.address, PARAMS.providerMinStake, PARAMS.providerMinStake + 1n);
    });

    it("fails when the provider deregistered", async function () {
      const market = await loadFixture(marketWithBid);
      await market.providerRegistry.connect(market.provider).deregister();
      await expect(openSession(market))
        .to.be.revertedWithCustomError(market.providerRegistry, "ProviderNotRegistered")
        .withArgs(market.provider.address);
    });

    for (const axis of ["perSecond", "perInputToken", "perOutputToken"] as const) {
      it(`fails with PriceAboveMaximum when the bid's ${axis} price is above the user's maximum`, async function () {
        const market = await loadFixture(marketWithBid);
        const approval = await makeApproval(market);
        const signature = await signTyped(market.provider, market.domain, "SessionApproval", approval);
        const maxPrices = { ...MAX_PRICES, [axis]: PRICES[axis] - 1n };
        await expect(
          market.sessionRouter.connect(market.user).openSession(approval, signature, DEPOSIT, maxPrices, approval.user),
        )
          .to.be.revertedWithCustomError(market.sessionRouter, "PriceAboveMaximum")
          .withArgs(PRICES[axis], PRICES[axis] - 1n);
        // Exactly the bid's prices are accepted.
        await expect(
          market.sessionRouter.connect(market.user).openSession(approval, signature, DEPOSIT, PRICES, approval.user),
        ).to.emit(market.sessionRouter, "SessionOpened");
      });
    }

    it("keeps the session's prices after the provider updates the bid", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market);
      await market.marketplace
        .connect(market.provider)
        .updateBid(market.bidId, { perSecond: 10n ** 15n, perInputToken: 10n ** 12n, perOutputToken: 10n ** 13n });
      const { receipt, signature } = await signedReceipt(market, session.sessionId, 2n, 1_000n, 500n);
      await time.setNextBlockTimestamp(session.openedAt + 600);
      await expectSettles(
        market,
        session,
        () => market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, signature, "0x"),
        { settlement: defaultSettlement(600n, 1_000n, 500n), receipt, closedBy: market.provider, challenged: false },
      );

      // A session opened after the update gets the new prices.
      const later = await openSession(market);
      expect([
        later.terms.pricePerSecond,
        later.terms.pricePerInputToken,
        later.terms.pricePerOutputToken,
      ]).to.deep.equal([10n ** 15n, 10n ** 12n, 10n ** 13n]);
    });
  });

  describe("openSessionWithPermit", function () {
    /** A wallet holding tokens and no allowance, and its ERC-2612 permit for the router. */
    async function freshWalletWithPermit(market: MarketWithBid, deposit: bigint) {
      const wallet = market.others[5]; // Hardhat account 12: not funded by the fixture, no allowance.
      await market.token.connect(market.governance).transfer(wallet.address, deposit);
      const routerAddress = await market.sessionRouter.getAddress();
      expect(await market.token.allowance(wallet.address, routerAddress)).to.equal(0n);
      const deadline = BigInt(await time.latest()) + 3_600n;
      const { v, r, s } = await signPermit(market.token, wallet, routerAddress, deposit, deadline);
      const approval = await makeApproval(market, { user: wallet.address as Address });
      const approvalSignature = await signTyped(market.provider, market.domain, "SessionApproval", approval);
      return { wallet, routerAddress, deadline, v, r, s, approval, approvalSignature };
    }

    /** The fresh wallet's `openSessionWithPermit` of `deposit`, with its permit and approval. */
    function openWithPermit(
      market: MarketWithBid,
      p: Awaited<ReturnType<typeof freshWalletWithPermit>>,
      deposit: bigint,
    ) {
      return market.sessionRouter
        .connect(p.wallet)
        .openSessionWithPermit(
          p.approval,
          p.approvalSignature,
          deposit,
          MAX_PRICES,
          p.approval.user,
          p.deadline,
          p.v,
          p.r,
          p.s,
        );
    }

    it("opens from a fresh wallet with no allowance in one transaction", async function () {
      const market = await loadFixture(marketWithBid);
      const p = await freshWalletWithPermit(market, DEPOSIT);
      const tx = openWithPermit(market, p, DEPOSIT);
      await expect(tx).to.emit(market.sessionRouter, "SessionOpened");
      await expect(tx).to.changeTokenBalances(market.token, [p.wallet, market.escrow], [-DEPOSIT, DEPOSIT]);
      const opened = await openedSession(market, await tx);
      expect(opened.terms.user).to.equal(p.wallet.address);
      expect(await market.token.nonces(p.wallet.address)).to.equal(1n);
      expect(await market.token.allowance(p.wallet.address, p.routerAddress)).to.equal(0n);
    });

    it("still opens when someone front-ran the permit (permit used, allowance present)", async function () {
      const market = await loadFixture(marketWithBid);
      const p = await freshWalletWithPermit(market, DEPOSIT);
      await market.token
        .connect(market.stranger)
        .permit(p.wallet.address, p.routerAddress, DEPOSIT, p.deadline, p.v, p.r, p.s);
      expect(await market.token.allowance(p.wallet.address, p.routerAddress)).to.equal(DEPOSIT);
      const tx = openWithPermit(market, p, DEPOSIT);
      await expect(tx).to.emit(market.sessionRouter, "SessionOpened");
      await expect(tx).to.changeTokenBalances(market.token, [p.wallet, market.escrow], [-DEPOSIT, DEPOSIT]);
    });

    it("fails on the transfer when the permit is invalid and there is no allowance", async function () {
      const market = await loadFixture(marketWithBid);
      const p = await freshWalletWithPermit(market, DEPOSIT);
      // The permit was signed for DEPOSIT; asking for one token less invalidates it.
      await expect(openWithPermit(market, p, DEPOSIT - 1n))
        .to.be.revertedWithCustomError(market.token, "ERC20InsufficientAllowance")
        .withArgs(p.routerAddress, 0n, DEPOSIT - 1n);
    });
  });

  describe("provider and operator close", function () {
    it("provider close settles at once with exact balances", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market);
      const { receipt, signature } = await signedReceipt(market, session.sessionId, 3n, 1_000n, 500n);
      await time.setNextBlockTimestamp(session.openedAt + 600);
      const settlement = defaultSettlement(600n, 1_000n, 500n);
      // 600 s * 1e12 + 1000 * 1e9 + 500 * 4e9, split 2.5% fee, 5% royalty, the rest to the provider.
      expect(settlement).to.deep.equal({
        cost: 603n * 10n ** 12n,
        providerAmount: 557_775n * 10n ** 9n,
        royaltyAmount: 30_150n * 10n ** 9n,
        feeAmount: 15_075n * 10n ** 9n,
        refund: DEPOSIT - 603n * 10n ** 12n,
        elapsedSeconds: 600n,
      });
      await expectSettles(
        market,
        session,
        () => market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, signature, "0x"),
        { settlement, receipt, closedBy: market.provider, challenged: false },
      );
    });

    it("operator close settles at once", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market);
      const { receipt, signature } = await signedReceipt(market, session.sessionId, 1n, 10n, 20n);
      await time.setNextBlockTimestamp(session.openedAt + 61);
      const tx = () =>
        market.sessionRouter.connect(market.operator).closeSession(session.terms, receipt, signature, "0x");
      await expectSettles(market, session, tx, {
        settlement: defaultSettlement(61n, 10n, 20n),
        receipt,
        closedBy: market.operator,
        challenged: false,
      });
    });

    it("a provider close after endsAt charges time only up to endsAt", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market, 1_000n * 10n ** 12n); // buys 1000 s
      expect(session.endsAt).to.equal(session.openedAt + 1_000);
      await time.setNextBlockTimestamp(session.openedAt + 5_000);
      const receipt = emptyReceipt(session.sessionId);
      await expectSettles(
        market,
        session,
        () => market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, "0x", "0x"),
        {
          settlement: defaultSettlement(1_000n, 0n, 0n, 1_000n * 10n ** 12n),
          receipt,
          closedBy: market.provider,
          challenged: false,
        },
      );
    });

    it("a closed (settled) session cannot be closed again: SessionNotOpen", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openSession(market);
      const receipt = emptyReceipt(session.sessionId);
      await market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, "0x", "0x");
      for (const closer of [market.provider, market.user, market.stranger]) {
        await expect(market.sessionRouter.connect(closer).closeSession(session.terms, receipt, "0x", "0x"))
          .to.be.revertedWithCustomError(market.sessionRouter, "SessionNotOpen")
          .withArgs(session.sessionId);
      }
    });

    it("terms that were altered name no session: SessionNotOpen", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openSession(market);
      const cheaper = { ...session.terms, pricePerSecond: 0n };
      const cheaperId = sessionIdOf(cheaper);
      await expect(
        market.sessionRouter.connect(market.provider).closeSession(cheaper, emptyReceipt(cheaperId), "0x", "0x"),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "SessionNotOpen")
        .withArgs(cheaperId);
    });
  });

  describe("user close, challenge and finalize", function () {
    /** Opens at a pinned second and has the user close 600 s later with a seq-2 receipt. */
    async function closingSession() {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market);
      const closed = await signedReceipt(market, session.sessionId, 2n, 1_000n, 100n);
      const closedAt = session.openedAt + 600;
      const challengeEndsAt = closedAt + Number(PARAMS.challengeWindow);
      await time.setNextBlockTimestamp(closedAt);
      await market.sessionRouter
        .connect(market.user)
        .closeSession(session.terms, closed.receipt, closed.signature, "0x");
      return { market, session, closed, closedAt, challengeEndsAt };
    }

    it("a user close without countersignature requests the close and starts the challenge window", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market);
      const { receipt, signature } = await signedReceipt(market, session.sessionId, 2n, 1_000n, 100n);
      const closedAt = session.openedAt + 600;
      await time.setNextBlockTimestamp(closedAt);
      const tx = market.sessionRouter.connect(market.user).closeSession(session.terms, receipt, signature, "0x");
      await expect(tx)
        .to.emit(market.sessionRouter, "SessionCloseRequested")
        .withArgs(session.sessionId, market.user.address, receiptTuple(receipt), closedAt, closedAt + 3_600);
      await expect(tx).not.to.emit(market.sessionRouter, "SessionSettled");
      await expect(tx).to.changeTokenBalances(market.token, [market.user, market.escrow], [0n, 0n]);

      const state = await market.sessionRouter.getSessionState(session.sessionId);
      expect([state.deposit, state.endsAt, state.closedAt, state.status, state.pendingSeq]).to.deep.equal([
        DEPOSIT,
        BigInt(session.endsAt),
        BigInt(closedAt),
        STATUS.Closing,
        2n,
      ]);
      expect(await market.sessionRouter.openSessionCount(market.provider.address)).to.equal(1n);
    });

    it("provider challenge with a receipt that charges more settles with the challenger's receipt and the original closedAt", async function () {
      const { market, session, closedAt, closed } = await closingSession();
      const higher = await signedReceipt(market, session.sessionId, 5n, 9_000n, 4_000n);
      await time.setNextBlockTimestamp(closedAt + 1_800);
      await expectSettles(
        market,
        session,
        () =>
          market.sessionRouter
            .connect(market.provider)
            .challenge(session.terms, closed.receipt, higher.receipt, higher.signature),
        {
          settlement: defaultSettlement(600n, 9_000n, 4_000n),
          receipt: higher.receipt,
          closedBy: market.provider,
          challenged: true,
        },
      );
    });

    it("operator challenge at exactly challengeEndsAt settles", async function () {
      const { market, session, challengeEndsAt, closed } = await closingSession();
      const higher = await signedReceipt(market, session.sessionId, 3n, 2_000n, 200n);
      await time.setNextBlockTimestamp(challengeEndsAt);
      await expectSettles(
        market,
        session,
        () =>
          market.sessionRouter
            .connect(market.operator)
            .challenge(session.terms, closed.receipt, higher.receipt, higher.signature),
        {
          settlement: defaultSettlement(600n, 2_000n, 200n),
          receipt: higher.receipt,
          closedBy: market.operator,
          challenged: true,
        },
      );
    });

    it("challenge with a receipt costing no more than the closing one: ChallengeNotHigher", async function () {
      const { market, session, closed } = await closingSession();
      // The closing receipt costs 1_000 input and 100 output tokens. A higher seq alone wins nothing,
      // and neither does the same cost reached another way.
      const closingCost = 1_000n * PRICES.perInputToken + 100n * PRICES.perOutputToken;
      for (const [seq, inputTokens, outputTokens] of [
        [3n, 1_000n, 100n],
        [9n, 500n, 100n],
        [4n, 1_000n + 4n * 100n, 0n],
      ] as const) {
        const challenger = await signedReceipt(market, session.sessionId, seq, inputTokens, outputTokens);
        const cost = inputTokens * PRICES.perInputToken + outputTokens * PRICES.perOutputToken;
        await expect(
          market.sessionRouter
            .connect(market.provider)
            .challenge(session.terms, closed.receipt, challenger.receipt, challenger.signature),
        )
          .to.be.revertedWithCustomError(market.sessionRouter, "ChallengeNotHigher")
          .withArgs(cost, closingCost);
      }
    });

    it("a user closing with a huge seq and no tokens is still beaten by a lower-seq receipt that charges more", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market);
      const closedAt = session.openedAt + 600;
      const inflated = await signedReceipt(market, session.sessionId, 2n ** 64n - 1n, 0n, 0n);
      await time.setNextBlockTimestamp(closedAt);
      await market.sessionRouter
        .connect(market.user)
        .closeSession(session.terms, inflated.receipt, inflated.signature, "0x");
      const real = await signedReceipt(market, session.sessionId, 5n, 9_000n, 4_000n);
      await time.setNextBlockTimestamp(closedAt + 60);
      await expectSettles(
        market,
        session,
        () =>
          market.sessionRouter
            .connect(market.provider)
            .challenge(session.terms, inflated.receipt, real.receipt, real.signature),
        {
          settlement: defaultSettlement(600n, 9_000n, 4_000n),
          receipt: real.receipt,
          closedBy: market.provider,
          challenged: true,
        },
      );
    });

    it("challenge with a closing receipt other than the one the close carried: ReceiptMismatch", async function () {
      const { market, session } = await closingSession();
      const pretend = await signedReceipt(market, session.sessionId, 1n, 1n, 1n);
      const higher = await signedReceipt(market, session.sessionId, 3n, 2_000n, 200n);
      await expect(
        market.sessionRouter
          .connect(market.provider)
          .challenge(session.terms, pretend.receipt, higher.receipt, higher.signature),
      ).to.be.revertedWithCustomError(market.sessionRouter, "ReceiptMismatch");
    });

    it("challenge by anyone but the provider or operator: NotSessionProvider", async function () {
      const { market, session, closed } = await closingSession();
      const higher = await signedReceipt(market, session.sessionId, 3n, 2_000n, 200n);
      for (const caller of [market.stranger, market.user, market.modelOwner]) {
        await expect(
          market.sessionRouter
            .connect(caller)
            .challenge(session.terms, closed.receipt, higher.receipt, higher.signature),
        )
          .to.be.revertedWithCustomError(market.sessionRouter, "NotSessionProvider")
          .withArgs(session.sessionId, caller.address);
      }
    });

    it("challenge after the window: ChallengeWindowClosed", async function () {
      const { market, session, challengeEndsAt, closed } = await closingSession();
      const higher = await signedReceipt(market, session.sessionId, 3n, 2_000n, 200n);
      await time.increaseTo(challengeEndsAt + 1);
      await expect(
        market.sessionRouter
          .connect(market.provider)
          .challenge(session.terms, closed.receipt, higher.receipt, higher.signature),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "ChallengeWindowClosed")
        .withArgs(challengeEndsAt);
    });

    it("challenge with a receipt the user did not sign: InvalidUserSignature", async function () {
      const { market, session, closed } = await closingSession();
      const forged = receiptFor(session.sessionId, 3n, 90_000n, 90_000n);
      const providerSigned = await signReceipt(market, forged, market.provider);
      await expect(
        market.sessionRouter.connect(market.provider).challenge(session.terms, closed.receipt, forged, providerSigned),
      ).to.be.revertedWithCustomError(market.sessionRouter, "InvalidUserSignature");
    });

    it("finalize before the window ends: ChallengeWindowOpen, up to and including challengeEndsAt", async function () {
      const { market, session, closed, challengeEndsAt } = await closingSession();
      await expect(market.sessionRouter.connect(market.stranger).finalize(session.terms, closed.receipt))
        .to.be.revertedWithCustomError(market.sessionRouter, "ChallengeWindowOpen")
        .withArgs(challengeEndsAt);
      await time.increaseTo(challengeEndsAt - 1);
      // The next block is at challengeEndsAt exactly: still open.
      await expect(market.sessionRouter.connect(market.stranger).finalize(session.terms, closed.receipt))
        .to.be.revertedWithCustomError(market.sessionRouter, "ChallengeWindowOpen")
        .withArgs(challengeEndsAt);
    });

    it("finalize after the window settles with the close's receipt, by anyone", async function () {
      const { market, session, closed, challengeEndsAt } = await closingSession();
      await time.setNextBlockTimestamp(challengeEndsAt + 1);
      await expectSettles(
        market,
        session,
        () => market.sessionRouter.connect(market.stranger).finalize(session.terms, closed.receipt),
        {
          settlement: defaultSettlement(600n, 1_000n, 100n),
          receipt: closed.receipt,
          closedBy: market.stranger,
          challenged: false,
        },
      );
    });

    it("finalize with a receipt other than the close's: ReceiptMismatch", async function () {
      const { market, session, closed, challengeEndsAt } = await closingSession();
      await time.increaseTo(challengeEndsAt + 1);
      const others = [
        receiptFor(session.sessionId, 3n, 2_000n, 200n),
        { ...closed.receipt, outputTokens: closed.receipt.outputTokens - 1n },
        emptyReceipt(session.sessionId),
      ];
      for (const other of others) {
        await expect(market.sessionRouter.finalize(session.terms, other)).to.be.revertedWithCustomError(
          market.sessionRouter,
          "ReceiptMismatch",
        );
      }
    });

    it("a closing session cannot be closed again, topped up, or challenged once settled", async function () {
      const { market, session, closed, challengeEndsAt } = await closingSession();
      await expect(
        market.sessionRouter
          .connect(market.provider)
          .closeSession(session.terms, closed.receipt, closed.signature, "0x"),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "SessionNotOpen")
        .withArgs(session.sessionId);
      await expect(market.sessionRouter.connect(market.user).topUp(session.terms, E18))
        .to.be.revertedWithCustomError(market.sessionRouter, "SessionNotOpen")
        .withArgs(session.sessionId);

      await time.increaseTo(challengeEndsAt + 1);
      await market.sessionRouter.finalize(session.terms, closed.receipt);
      const higher = await signedReceipt(market, session.sessionId, 3n, 2_000n, 200n);
      await expect(
        market.sessionRouter
          .connect(market.provider)
          .challenge(session.terms, closed.receipt, higher.receipt, higher.signature),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "SessionNotClosing")
        .withArgs(session.sessionId);
      await expect(market.sessionRouter.finalize(session.terms, closed.receipt))
        .to.be.revertedWithCustomError(market.sessionRouter, "SessionNotClosing")
        .withArgs(session.sessionId);
    });

    it("challenge and finalize of an open session: SessionNotClosing", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openSession(market);
      const { receipt, signature } = await signedReceipt(market, session.sessionId, 1n, 1n, 1n);
      await expect(
        market.sessionRouter
          .connect(market.provider)
          .challenge(session.terms, emptyReceipt(session.sessionId), receipt, signature),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "SessionNotClosing")
        .withArgs(session.sessionId);
      await expect(market.sessionRouter.finalize(session.terms, emptyReceipt(session.sessionId)))
        .to.be.revertedWithCustomError(market.sessionRouter, "SessionNotClosing")
        .withArgs(session.sessionId);
    });

    it("a user close with no receipt can be challenged with seq 1", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market);
      const closedAt = session.openedAt + 300;
      await time.setNextBlockTimestamp(closedAt);
      const none = emptyReceipt(session.sessionId);
      await expect(market.sessionRouter.connect(market.user).closeSession(session.terms, none, "0x", "0x"))
        .to.emit(market.sessionRouter, "SessionCloseRequested")
        .withArgs(session.sessionId, market.user.address, receiptTuple(none), closedAt, closedAt + 3_600);
      const first = await signedReceipt(market, session.sessionId, 1n, 700n, 70n);
      await time.setNextBlockTimestamp(closedAt + 10);
      await expectSettles(
        market,
        session,
        () =>
          market.sessionRouter.connect(market.provider).challenge(session.terms, none, first.receipt, first.signature),
        {
          settlement: defaultSettlement(300n, 700n, 70n),
          receipt: first.receipt,
          closedBy: market.provider,
          challenged: true,
        },
      );
    });
  });

  describe("cooperative close", function () {
    for (const countersigner of ["provider", "operator"] as const) {
      it(`a user close countersigned by the ${countersigner} settles at once`, async function () {
        const market = await loadFixture(marketWithBid);
        const session = await openAt(market);
        const { receipt, signature } = await signedReceipt(market, session.sessionId, 4n, 3_000n, 1_500n);
        const countersignature = await signReceipt(market, receipt, market[countersigner]);
        await time.setNextBlockTimestamp(session.openedAt + 900);
        const tx = () =>
          market.sessionRouter.connect(market.user).closeSession(session.terms, receipt, signature, countersignature);
        await expectSettles(market, session, tx, {
          settlement: defaultSettlement(900n, 3_000n, 1_500n),
          receipt,
          closedBy: market.user,
          challenged: false,
        });
      });
    }

    it("a user close with no receipt, countersigned by the provider, settles at once (time only)", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market);
      const none = emptyReceipt(session.sessionId);
      const countersignature = await signReceipt(market, none, market.provider);
      await time.setNextBlockTimestamp(session.openedAt + 77);
      const tx = () =>
        market.sessionRouter.connect(market.user).closeSession(session.terms, none, "0x", countersignature);
      await expectSettles(market, session, tx, {
        settlement: defaultSettlement(77n, 0n, 0n),
        receipt: none,
        closedBy: market.user,
        challenged: false,
      });
    });

    it("a countersignature by someone else, or of another receipt: InvalidProviderSignature", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openSession(market);
      const { receipt, signature } = await signedReceipt(market, session.sessionId, 4n, 3_000n, 1_500n);
      const byStranger = await signReceipt(market, receipt, market.stranger);
      const ofAnotherReceipt = await signReceipt(market, { ...receipt, seq: 3n }, market.provider);
      for (const countersignature of [byStranger, ofAnotherReceipt, signature]) {
        await expect(
          market.sessionRouter.connect(market.user).closeSession(session.terms, receipt, signature, countersignature),
        ).to.be.revertedWithCustomError(market.sessionRouter, "InvalidProviderSignature");
      }
    });
  });

  describe("expiry and third-party close", function () {
    it("a third party cannot close before endsAt (NotAllowedToClose) and can at endsAt, then finalize", async function () {
      const market = await loadFixture(marketWithBid);
      const deposit = 2_000n * 10n ** 12n; // buys 2000 s
      const session = await openAt(market, deposit);
      const endsAt = session.openedAt + 2_000;
      expect(session.endsAt).to.equal(endsAt);
      const none = emptyReceipt(session.sessionId);

      await expect(market.sessionRouter.connect(market.stranger).closeSession(session.terms, none, "0x", "0x"))
        .to.be.revertedWithCustomError(market.sessionRouter, "NotAllowedToClose")
        .withArgs(session.sessionId, market.stranger.address);
      await time.increaseTo(endsAt - 2);
      // The next block is endsAt - 1.
      await expect(market.sessionRouter.connect(market.stranger).closeSession(session.terms, none, "0x", "0x"))
        .to.be.revertedWithCustomError(market.sessionRouter, "NotAllowedToClose")
        .withArgs(session.sessionId, market.stranger.address);

      await time.setNextBlockTimestamp(endsAt);
      await expect(market.sessionRouter.connect(market.stranger).closeSession(session.terms, none, "0x", "0x"))
        .to.emit(market.sessionRouter, "SessionCloseRequested")
        .withArgs(session.sessionId, market.stranger.address, receiptTuple(none), endsAt, endsAt + 3_600);
      expect((await market.sessionRouter.getSessionState(session.sessionId)).status).to.equal(STATUS.Closing);

      await time.setNextBlockTimestamp(endsAt + 3_601);
      await expectSettles(
        market,
        session,
        () => market.sessionRouter.connect(market.others[0]).finalize(session.terms, none),
        {
          settlement: defaultSettlement(2_000n, 0n, 0n, deposit),
          receipt: none,
          closedBy: market.others[0],
          challenged: false,
        },
      );
    });

    it("a third-party close long after endsAt with the user's receipt charges time up to endsAt", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market, DEPOSIT, { maxDuration: 120n });
      expect(session.endsAt).to.equal(session.openedAt + 120);
      const { receipt, signature } = await signedReceipt(market, session.sessionId, 7n, 123n, 45n);
      const closedAt = session.openedAt + 10_000;
      await time.setNextBlockTimestamp(closedAt);
      await expect(market.sessionRouter.connect(market.stranger).closeSession(session.terms, receipt, signature, "0x"))
        .to.emit(market.sessionRouter, "SessionCloseRequested")
        .withArgs(session.sessionId, market.stranger.address, receiptTuple(receipt), closedAt, closedAt + 3_600);
      await time.setNextBlockTimestamp(closedAt + 3_601);
      await expectSettles(
        market,
        session,
        () => market.sessionRouter.connect(market.stranger).finalize(session.terms, receipt),
        {
          settlement: defaultSettlement(120n, 123n, 45n),
          receipt,
          closedBy: market.stranger,
          challenged: false,
        },
      );
    });
  });

  describe("top-up", function () {
    it("adds to the deposit and moves endsAt", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market, 600n * 10n ** 12n); // buys 600 s of a 3600 s maximum
      expect(session.endsAt).to.equal(session.openedAt + 600);
      const amount = 300n * 10n ** 12n + 5n; // the 5 wei buy no extra second
      const tx = market.sessionRouter.connect(market.user).topUp(session.terms, amount);
      await expect(tx)
        .to.emit(market.sessionRouter, "SessionToppedUp")
        .withArgs(session.sessionId, market.user.address, amount, 900n * 10n ** 12n + 5n, session.openedAt + 900);
      await expect(tx).to.changeTokenBalances(market.token, [market.user, market.escrow], [-amount, amount]);
      const state = await market.sessionRouter.getSessionState(session.sessionId);
      expect([state.deposit, state.endsAt, state.status]).to.deep.equal([
        900n * 10n ** 12n + 5n,
        BigInt(session.openedAt + 900),
        STATUS.Open,
      ]);
    });

    it("caps endsAt at maxEndsAt", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market, 600n * 10n ** 12n);
      await expect(market.sessionRouter.connect(market.user).topUp(session.terms, 10n * E18))
        .to.emit(market.sessionRouter, "SessionToppedUp")
        .withArgs(
          session.sessionId,
          market.user.address,
          10n * E18,
          10n * E18 + 600n * 10n ** 12n,
          session.terms.maxEndsAt,
        );
      expect(session.terms.maxEndsAt).to.equal(session.openedAt + 3_600);
    });

    it("above the approval's maxDeposit: DepositAboveApproval; exactly maxDeposit is accepted", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market, 600n * 10n ** 12n, { maxDeposit: E18 });
      const room = E18 - 600n * 10n ** 12n;
      await expect(market.sessionRouter.connect(market.user).topUp(session.terms, room + 1n))
        .to.be.revertedWithCustomError(market.sessionRouter, "DepositAboveApproval")
        .withArgs(E18 + 1n, E18);
      await expect(market.sessionRouter.connect(market.user).topUp(session.terms, room)).to.emit(
        market.sessionRouter,
        "SessionToppedUp",
      );
    });

    it("at or after endsAt: SessionExpired; one second before is accepted", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market, 600n * 10n ** 12n);
      const endsAt = session.openedAt + 600;
      await time.setNextBlockTimestamp(endsAt - 1);
      await market.sessionRouter.connect(market.user).topUp(session.terms, 10n ** 12n);
      const movedEndsAt = endsAt + 1;
      expect((await market.sessionRouter.getSessionState(session.sessionId)).endsAt).to.equal(movedEndsAt);
      await time.increaseTo(movedEndsAt - 1);
      // The next block is at the new endsAt exactly.
      await expect(market.sessionRouter.connect(market.user).topUp(session.terms, 10n ** 12n))
        .to.be.revertedWithCustomError(market.sessionRouter, "SessionExpired")
        .withArgs(session.sessionId, movedEndsAt);
    });

    it("by anyone but the user: NotSessionUser", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openSession(market);
      for (const caller of [market.stranger, market.provider]) {
        await approveAll(market, caller, market.sessionRouter);
        await expect(market.sessionRouter.connect(caller).topUp(session.terms, E18))
          .to.be.revertedWithCustomError(market.sessionRouter, "NotSessionUser")
          .withArgs(session.sessionId, caller.address);
      }
    });

    it("of zero: ZeroDeposit", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openSession(market);
      await expect(market.sessionRouter.connect(market.user).topUp(session.terms, 0n)).to.be.revertedWithCustomError(
        market.sessionRouter,
        "ZeroDeposit",
      );
    });

    it("of a settled session: SessionNotOpen", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openSession(market);
      await market.sessionRouter
        .connect(market.provider)
        .closeSession(session.terms, emptyReceipt(session.sessionId), "0x", "0x");
      await expect(market.sessionRouter.connect(market.user).topUp(session.terms, E18))
        .to.be.revertedWithCustomError(market.sessionRouter, "SessionNotOpen")
        .withArgs(session.sessionId);
    });

    it("is settled against: the top-up is part of the deposit refunded", async function () {
      const market = await loadFixture(marketWithBid);
      const deposit = 600n * 10n ** 12n;
      const session = await openAt(market, deposit);
      await market.sessionRouter.connect(market.user).topUp(session.terms, 5n * E18);
      await time.setNextBlockTimestamp(session.openedAt + 1_000);
      const receipt = emptyReceipt(session.sessionId);
      await expectSettles(
        market,
        session,
        () => market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, "0x", "0x"),
        {
          settlement: defaultSettlement(1_000n, 0n, 0n, deposit + 5n * E18),
          receipt,
          closedBy: market.provider,
          challenged: false,
        },
      );
    });
  });

  describe("receipts", function () {
    it("a zero-token receipt settles and the event shows outputTokens 0", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market);
      const { receipt, signature } = await signedReceipt(market, session.sessionId, 1n, 250n, 0n);
      expect(receipt.outputTokens).to.equal(0n);
      await time.setNextBlockTimestamp(session.openedAt + 30);
      await expectSettles(
        market,
        session,
        () => market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, signature, "0x"),
        { settlement: defaultSettlement(30n, 250n, 0n), receipt, closedBy: market.provider, challenged: false },
      );
    });

    it("a no-receipt close (seq 0) prices time only and needs no signature", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openAt(market);
      const receipt = emptyReceipt(session.sessionId);
      await time.setNextBlockTimestamp(session.openedAt + 1_234);
      await expectSettles(
        market,
        session,
        () => market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, "0x", "0x"),
        { settlement: defaultSettlement(1_234n, 0n, 0n), receipt, closedBy: market.provider, challenged: false },
      );
    });

    for (const field of ["inputTokens", "outputTokens", "requests", "ttftMsAvg", "tpsX1000Avg"] as const) {
      it(`seq 0 with a non-zero ${field}: InvalidReceipt`, async function () {
        const market = await loadFixture(marketWithBid);
        const session = await openSession(market);
        const receipt = {
          ...emptyReceipt(session.sessionId),
          [field]: typeof emptyReceipt(session.sessionId)[field] === "bigint" ? 1n : 1,
        };
        const signature = await signReceipt(market, receipt);
        for (const closer of [market.provider, market.user]) {
          await expect(
            market.sessionRouter.connect(closer).closeSession(session.terms, receipt, signature, "0x"),
          ).to.be.revertedWithCustomError(market.sessionRouter, "InvalidReceipt");
        }
      });
    }
  });
});
