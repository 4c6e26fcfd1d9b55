/**
 * Reentrancy: every function of the market that moves tokens holds OpenZeppelin's
 * ReentrancyGuardTransient. The market is deployed by hand on ReentrantToken, whose owner arms a
 * one-shot hook: inside the next transfer, before any token moves, the token calls back into the
 * market, as a token with transfer callbacks would let an attacker do. Each attack asserts the
 * re-entered contract's own `ReentrancyGuardReentrantCall`; the controls show the hook itself works
 * (a view call succeeds mid-call) and that each re-entrant call, made with no guard held, would
 * have reached the function's body.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { BaseContract } from "ethers";
import type { Address } from "viem";
import { type UsageReceipt, sessionCost, splitCost } from "../protocol";
import {
  E18,
  MAX_PRICES,
  PARAMS,
  PRICES,
  approveAll,
  emptyReceipt,
  makeApproval,
  marketWithBidAround,
  openSession,
  receiptFor,
  signPermit,
  signReceipt,
  signTyped,
} from "./fixtures";

/** ReentrantToken.HookMode. */
const HookMode = { BubbleRevert: 0, RecordAndTransfer: 1, RecordAndRefuse: 2 } as const;
type HookModeValue = (typeof HookMode)[keyof typeof HookMode];

const DEPOSIT = 100n * E18;
const ELAPSED = 100n;
// A provider close ELAPSED seconds after opening, with no receipt, charges time only.
const COST = ELAPSED * PRICES.perSecond;
const FEE = (COST * PARAMS.protocolFeeBps) / 10_000n;
const ROYALTY = (COST * 500n) / 10_000n;
const PROVIDER_SHARE = COST - FEE - ROYALTY;
const REFUND = DEPOSIT - COST;
const STATUS = { None: 0n, Open: 1n, Closing: 2n } as const;
/** The 4-byte revert data of `ReentrancyGuardReentrantCall()`, the same in every contract. */
const REENTRANT_CALL = ethers.id("ReentrancyGuardReentrantCall()").slice(0, 10);

/**
 * The whole market (Ignition's InferenceMarket module) around a ReentrantToken, with a provider, a model (5%
 * royalty) and a bid. The treasury is the token itself: every settlement credits it a fee
 * in the escrow just before the refund transfer fires the hook, so a re-entrant `Escrow.claim` by
 * the token would have something to take.
 */
async function reentrantMarket() {
  const [governance] = await ethers.getSigners();
  const reentrantToken = await ethers.deployContract("ReentrantToken", [governance.address]);
  const tokenAddress = await reentrantToken.getAddress();
  return { ...(await marketWithBidAround(reentrantToken, tokenAddress)), reentrantToken, tokenAddress };
}

type ReentrantMarket = Awaited<ReturnType<typeof reentrantMarket>>;
type OpenedSession = Awaited<ReturnType<typeof openSession>>;

/** The market with one open session, `existing`, for re-entrant calls to name. */
async function marketWithOpenSession() {
  const market = await reentrantMarket();
  const existing = await openSession(market, DEPOSIT);
  return { ...market, existing };
}

/**
 * The market with two sessions: `closing`, which the user asked to close (no receipt) ELAPSED
 * seconds after it opened and whose challenge window is over, so anyone may finalize it; and
 * `open`, opened after that, for the provider to settle.
 */
async function marketWithClosingAndOpen() {
  const market = await reentrantMarket();
  const closing = await openSession(market, DEPOSIT);
  await time.setNextBlockTimestamp(BigInt(closing.terms.openedAt) + ELAPSED);
  await market.sessionRouter
    .connect(market.user)
    .closeSession(closing.terms, emptyReceipt(closing.sessionId), "0x", "0x");
  await time.increase(PARAMS.challengeWindow + 1n);
  const open = await openSession(market, DEPOSIT);
  return { ...market, closing, open };
}

type SettlingMarket = Awaited<ReturnType<typeof marketWithClosingAndOpen>>;

/** The market after one session settled by its provider: provider, model owner and token hold balances. */
async function settledMarket() {
  const market = await reentrantMarket();
  const session = await openSession(market, DEPOSIT);
  await closeByProvider(market, session);
  return market;
}

/** Arms the token's hook to call `target` with `data` inside the next transfer. */
async function arm(market: ReentrantMarket, target: BaseContract, data: string, mode: HookModeValue) {
  await market.reentrantToken.connect(market.governance).arm(await target.getAddress(), data, mode);
}

/** Disarms the token's hook without firing it. */
async function disarm(market: ReentrantMarket) {
  await market.reentrantToken.connect(market.governance).disarm();
}

/** A transfer between two bystanders: it fires the hook with no market function on the call stack. */
function plainTransfer(market: ReentrantMarket) {
  return market.reentrantToken.connect(market.stranger).transfer(market.others[0].address, 1n);
}

/** The provider closes `session` ELAPSED seconds after it opened, with no receipt: time only is charged. */
async function closeByProvider(market: ReentrantMarket, session: OpenedSession) {
  await time.setNextBlockTimestamp(BigInt(session.terms.openedAt) + ELAPSED);
  return market.sessionRouter
    .connect(market.provider)
    .closeSession(session.terms, emptyReceipt(session.sessionId), "0x", "0x");
}

/** A call into the market, and what it reverts with when made with no guard held (from a plain transfer). */
interface Reentry {
  name: string;
  target: BaseContract;
  data: string;
  outside: { contract: BaseContract; error: string; args: unknown[] };
}

/** The re-entrant call called `name` in `reentries`. */
function named(reentries: Reentry[], name: string): Reentry {
  const reentry = reentries.find((candidate) => candidate.name === name);
  if (reentry === undefined) throw new Error(`no re-entrant call named ${name}`);
  return reentry;
}

/** A call of every guarded SessionRouter function, each of which the token may not make as a user. */
async function routerReentries(market: ReentrantMarket, existing: OpenedSession): Promise<Reentry[]> {
  const { sessionRouter, user, tokenAddress } = market;
  const router = sessionRouter.interface;
  // A valid approval, but for the user, not for the token that makes the re-entrant call.
  const approval = await makeApproval(market);
  const signature = await signTyped(market.provider, market.domain, "SessionApproval", approval);
  const empty = emptyReceipt(existing.sessionId);
  const notUser = { contract: sessionRouter, error: "ApprovalForAnotherUser", args: [user.address, tokenAddress] };
  const notClosing = { contract: sessionRouter, error: "SessionNotClosing", args: [existing.sessionId] };
  return [
    {
      name: "openSession",
      target: sessionRouter,
      data: router.encodeFunctionData("openSession", [approval, signature, DEPOSIT, MAX_PRICES, user.address]),
      outside: notUser,
    },
    {
      name: "openSessionWithPermit",
      target: sessionRouter,
      data: router.encodeFunctionData("openSessionWithPermit", [
        approval,
        signature,
        DEPOSIT,
        MAX_PRICES,
        user.address,
        0n,
        0,
        ethers.ZeroHash,
        ethers.ZeroHash,
      ]),
      outside: notUser,
    },
    {
      name: "topUp",
      target: sessionRouter,
      data: router.encodeFunctionData("topUp", [existing.terms, E18]),
      outside: { contract: sessionRouter, error: "NotSessionUser", args: [existing.sessionId, tokenAddress] },
    },
    {
      name: "closeSession",
      target: sessionRouter,
      data: router.encodeFunctionData("closeSession", [existing.terms, empty, "0x", "0x"]),
      outside: { contract: sessionRouter, error: "NotAllowedToClose", args: [existing.sessionId, tokenAddress] },
    },
    {
      name: "challenge",
      target: sessionRouter,
      data: router.encodeFunctionData("challenge", [existing.terms, empty, empty, "0x"]),
      outside: notClosing,
    },
    {
      name: "finalize",
      target: sessionRouter,
      data: router.encodeFunctionData("finalize", [existing.terms, empty]),
      outside: notClosing,
    },
  ];
}

/** Calls of the guarded Escrow functions; the token may claim (it holds no balance until a settlement). */
function escrowReentries(market: ReentrantMarket): Reentry[] {
  const { escrow, tokenAddress } = market;
  const nothing = { contract: escrow, error: "NothingToClaim", args: [tokenAddress] };
  return [
    { name: "claim", target: escrow, data: escrow.interface.encodeFunctionData("claim"), outside: nothing },
    {
      name: "claimTo",
      target: escrow,
      data: escrow.interface.encodeFunctionData("claimTo", [tokenAddress]),
      outside: nothing,
    },
    {
      name: "settle",
      target: escrow,
      data: escrow.interface.encodeFunctionData("settle", [
        {
          provider: tokenAddress,
          providerAmount: DEPOSIT,
          royaltyRecipient: tokenAddress,
          royaltyAmount: 0n,
          treasury: tokenAddress,
          feeAmount: 0n,
          user: tokenAddress,
          refund: 0n,
        },
      ]),
      outside: { contract: escrow, error: "OnlySessionRouter", args: [tokenAddress] },
    },
  ];
}

/** Calls of the guarded Staking functions; the token has staked nothing and approved nothing. */
function stakingReentries(market: ReentrantMarket): Reentry[] {
  const { staking, reentrantToken, tokenAddress } = market;
  return [
    {
      name: "stake",
      target: staking,
      data: staking.interface.encodeFunctionData("stake", [1n]),
      outside: {
        contract: reentrantToken,
        error: "ERC20InsufficientAllowance",
        args: [staking.target, 0n, 1n],
      },
    },
    {
      name: "withdraw",
      target: staking,
      data: staking.interface.encodeFunctionData("withdraw", [tokenAddress]),
      outside: { contract: staking, error: "NothingToWithdraw", args: [] },
    },
  ];
}

/** A bid by the token, which is no registered provider. */
function marketplaceReentries(market: ReentrantMarket): Reentry[] {
  const { marketplace, providerRegistry, modelId, tokenAddress } = market;
  return [
    {
      name: "postBid",
      target: marketplace,
      data: marketplace.interface.encodeFunctionData("postBid", [modelId, PRICES]),
      outside: { contract: providerRegistry, error: "ProviderNotRegistered", args: [tokenAddress] },
    },
  ];
}

/** Asserts a settlement by the provider of `open` in which the refund was credited, not sent, and paid once. */
async function expectRefundCredited(market: SettlingMarket) {
  const { escrow, reentrantToken, provider, modelOwner, user, tokenAddress } = market;
  expect((await market.sessionRouter.getSessionState(market.open.sessionId)).status).to.equal(STATUS.None);
  expect(await escrow.balanceOf(user.address)).to.equal(REFUND);
  expect(await escrow.balanceOf(provider.address)).to.equal(PROVIDER_SHARE);
  expect(await escrow.balanceOf(modelOwner.address)).to.equal(ROYALTY);
  expect(await escrow.balanceOf(tokenAddress)).to.equal(FEE);
  // Both deposits are still in the escrow: the `open` one split into credits, the closing one untouched.
  expect(await reentrantToken.balanceOf(await escrow.getAddress())).to.equal(2n * DEPOSIT);

  // The user gets the refund exactly once.
  await expect(escrow.connect(user).claim()).to.changeTokenBalances(reentrantToken, [user, escrow], [REFUND, -REFUND]);
  await expect(escrow.connect(user).claim())
    .to.be.revertedWithCustomError(escrow, "NothingToClaim")
    .withArgs(user.address);
}

describe("Reentrancy guards", function () {
  describe("SessionRouter: the deposit's transferFrom", function () {
    it("openSession cannot re-enter openSession, openSessionWithPermit, topUp, closeSession, challenge or finalize", async function () {
      const market = await loadFixture(marketWithOpenSession);
      const { sessionRouter, reentrantToken, user, provider, escrow } = market;
      for (const reentry of await routerReentries(market, market.existing)) {
        await arm(market, reentry.target, reentry.data, HookMode.BubbleRevert);
        const approval = await makeApproval(market);
        const signature = await signTyped(provider, market.domain, "SessionApproval", approval);

        await expect(
          sessionRouter.connect(user).openSession(approval, signature, DEPOSIT, MAX_PRICES, approval.user),
          reentry.name,
        ).to.be.revertedWithCustomError(sessionRouter, "ReentrancyGuardReentrantCall");

        expect(await sessionRouter.isApprovalNonceUsed(provider.address, approval.nonce)).to.equal(false);
        expect(await sessionRouter.openSessionCount(provider.address)).to.equal(1n);
      }

      // The same open, with the hook disarmed, goes through: only the re-entry was refused.
      await disarm(market);
      const approval = await makeApproval(market);
      const signature = await signTyped(provider, market.domain, "SessionApproval", approval);
      await expect(
        sessionRouter.connect(user).openSession(approval, signature, DEPOSIT, MAX_PRICES, approval.user),
      ).to.changeTokenBalances(reentrantToken, [user, escrow], [-DEPOSIT, DEPOSIT]);
      expect(await sessionRouter.openSessionCount(provider.address)).to.equal(2n);
    });

    it("openSessionWithPermit cannot re-enter any guarded router function, and its permit is undone", async function () {
      const market = await loadFixture(marketWithOpenSession);
      const { sessionRouter, reentrantToken, stranger, provider, escrow } = market;
      const routerAddress = await sessionRouter.getAddress();
      // The stranger holds tokens but has approved nothing: only the permit lets the router pull.
      const deadline = BigInt(await time.latest()) + 3_600n;
      const permit = await signPermit(market.token, stranger, routerAddress, DEPOSIT, deadline);
      const approval = await makeApproval(market, { user: stranger.address as Address });
      const signature = await signTyped(provider, market.domain, "SessionApproval", approval);
      const open = () =>
        sessionRouter
          .connect(stranger)
          .openSessionWithPermit(
            approval,
            signature,
            DEPOSIT,
            MAX_PRICES,
            approval.user,
            deadline,
            permit.v,
            permit.r,
            permit.s,
          );

      for (const reentry of await routerReentries(market, market.existing)) {
        await arm(market, reentry.target, reentry.data, HookMode.BubbleRevert);
        await expect(open(), reentry.name).to.be.revertedWithCustomError(sessionRouter, "ReentrancyGuardReentrantCall");
        expect(await reentrantToken.nonces(stranger.address)).to.equal(0n);
        expect(await reentrantToken.allowance(stranger.address, routerAddress)).to.equal(0n);
        expect(await sessionRouter.isApprovalNonceUsed(provider.address, approval.nonce)).to.equal(false);
      }

      await disarm(market);
      await expect(open()).to.changeTokenBalances(reentrantToken, [stranger, escrow], [-DEPOSIT, DEPOSIT]);
      expect(await reentrantToken.nonces(stranger.address)).to.equal(1n);
    });

    it("topUp cannot re-enter any guarded router function", async function () {
      const market = await loadFixture(marketWithOpenSession);
      const { sessionRouter, reentrantToken, user, escrow, existing } = market;
      const stateBefore = await sessionRouter.getSessionState(existing.sessionId);

      for (const reentry of await routerReentries(market, existing)) {
        await arm(market, reentry.target, reentry.data, HookMode.BubbleRevert);
        await expect(
          sessionRouter.connect(user).topUp(existing.terms, E18),
          reentry.name,
        ).to.be.revertedWithCustomError(sessionRouter, "ReentrancyGuardReentrantCall");
        expect([...(await sessionRouter.getSessionState(existing.sessionId))]).to.deep.equal([...stateBefore]);
      }

      await disarm(market);
      await expect(sessionRouter.connect(user).topUp(existing.terms, E18)).to.changeTokenBalances(
        reentrantToken,
        [user, escrow],
        [-E18, E18],
      );
      expect((await sessionRouter.getSessionState(existing.sessionId)).deposit).to.equal(DEPOSIT + E18);
    });
  });

  describe("SessionRouter: the refund transfer inside Escrow.settle", function () {
    it("closeSession's refund cannot re-enter the router or the escrow; the refund is credited and paid once", async function () {
      const setup = await loadFixture(marketWithClosingAndOpen);
      const reentries = [
        // Finalizing another session, which anyone may do by now. Were the router's guard missing, the
        // nested Escrow.settle would still hit the escrow's guard (mid-settle) with the same error;
        // the guard on finalize itself is proven by the deposit-pull tests above.
        named(await routerReentries(setup, setup.closing), "finalize"),
        // Closing the very session being settled (its state is already deleted).
        named(await routerReentries(setup, setup.open), "closeSession"),
        // The token is the treasury, credited its fee just before the refund: a claim would pay it.
        ...escrowReentries(setup),
      ];

      for (const reentry of reentries) {
        const market = await loadFixture(marketWithClosingAndOpen);
        const { sessionRouter, escrow, reentrantToken, user, tokenAddress, closing, open } = market;
        // Refuse mode: the token records the re-entrant call's outcome and then returns false, so the
        // escrow's trySafeTransfer sees a refusal and the record survives for the test to read.
        await arm(market, reentry.target, reentry.data, HookMode.RecordAndRefuse);

        const tx = closeByProvider(market, open);

        await expect(tx, reentry.name)
          .to.emit(reentrantToken, "HookCalled")
          .withArgs(await reentry.target.getAddress(), false, REENTRANT_CALL);
        await expect(tx).to.emit(escrow, "RefundCredited").withArgs(user.address, REFUND);
        await expect(tx).to.emit(sessionRouter, "SessionSettled");
        await expect(tx).to.changeTokenBalances(reentrantToken, [user, escrow, tokenAddress], [0n, 0n, 0n]);
        expect(await reentrantToken.lastHookSucceeded()).to.equal(false);
        expect(await reentrantToken.lastHookResult()).to.equal(REENTRANT_CALL);
        // The session the hook tried to finalize is untouched.
        expect((await sessionRouter.getSessionState(closing.sessionId)).status).to.equal(STATUS.Closing);
        await expectRefundCredited(market);
      }
    });

    it("a refund transfer that reverts with the guard's error is credited, and the user is paid once", async function () {
      const market = await loadFixture(marketWithClosingAndOpen);
      const { sessionRouter, escrow, reentrantToken, user, closing, open } = market;
      const finalize = named(await routerReentries(market, closing), "finalize");
      await arm(market, finalize.target, finalize.data, HookMode.BubbleRevert);

      const tx = closeByProvider(market, open);

      await expect(tx).to.emit(escrow, "RefundCredited").withArgs(user.address, REFUND);
      // The token's revert undid the whole hook, its record and its disarming with it.
      await expect(tx).to.not.emit(reentrantToken, "HookCalled");
      await expect(tx).to.changeTokenBalances(reentrantToken, [user, escrow], [0n, 0n]);
      expect(await reentrantToken.armed()).to.equal(true);
      expect((await sessionRouter.getSessionState(closing.sessionId)).status).to.equal(STATUS.Closing);
      await disarm(market);
      await expectRefundCredited(market);
    });

    it("cooperative closeSession, challenge and finalize refunds cannot re-enter Escrow.claim either", async function () {
      /** Each settling call, and the session it settles, given a fresh market. */
      const paths: {
        name: string;
        settle: (
          market: SettlingMarket,
        ) => Promise<{ tx: Promise<unknown>; session: OpenedSession; receipt: UsageReceipt }>;
      }[] = [
        {
          name: "cooperative closeSession",
          settle: async (market) => {
            const { open } = market;
            const receipt = receiptFor(open.sessionId, 3n, 1_000n, 500n);
            const userSignature = await signReceipt(market, receipt);
            const providerSignature = await signTyped(market.provider, market.domain, "UsageReceipt", receipt);
            await time.setNextBlockTimestamp(BigInt(open.terms.openedAt) + ELAPSED);
            const tx = market.sessionRouter
              .connect(market.user)
              .closeSession(open.terms, receipt, userSignature, providerSignature);
            return { tx, session: open, receipt };
          },
        },
        {
          name: "challenge",
          settle: async (market) => {
            const { open } = market;
            const closingReceipt = emptyReceipt(open.sessionId);
            await time.setNextBlockTimestamp(BigInt(open.terms.openedAt) + ELAPSED);
            await market.sessionRouter.connect(market.user).closeSession(open.terms, closingReceipt, "0x", "0x");
            const receipt = receiptFor(open.sessionId, 3n, 1_000n, 500n);
            const userSignature = await signReceipt(market, receipt);
            const tx = market.sessionRouter
              .connect(market.provider)
              .challenge(open.terms, closingReceipt, receipt, userSignature);
            return { tx, session: open, receipt };
          },
        },
        {
          name: "finalize",
          settle: (market) => {
            const { closing } = market;
            const receipt = emptyReceipt(closing.sessionId);
            const tx = market.sessionRouter.connect(market.stranger).finalize(closing.terms, receipt);
            return Promise.resolve({ tx, session: closing, receipt });
          },
        },
      ];

      for (const path of paths) {
        const market = await loadFixture(marketWithClosingAndOpen);
        const { escrow, reentrantToken, user, tokenAddress } = market;
        const claim = named(escrowReentries(market), "claim");
        await arm(market, claim.target, claim.data, HookMode.RecordAndRefuse);

        const { tx, session, receipt } = await path.settle(market);

        // Every path settles ELAPSED seconds after its session opened.
        const cost = sessionCost(session.terms, ELAPSED, receipt, DEPOSIT);
        const { feeAmount } = splitCost(session.terms, cost);
        await expect(tx, path.name)
          .to.emit(reentrantToken, "HookCalled")
          .withArgs(await escrow.getAddress(), false, REENTRANT_CALL);
        await expect(tx)
          .to.emit(escrow, "RefundCredited")
          .withArgs(user.address, DEPOSIT - cost);
        await expect(tx).to.changeTokenBalances(reentrantToken, [user, escrow, tokenAddress], [0n, 0n, 0n]);
        // The fee credited to the token an instant before is still there: the re-entrant claim took nothing.
        expect(await escrow.balanceOf(tokenAddress)).to.equal(feeAmount);
        expect(await escrow.balanceOf(user.address)).to.equal(DEPOSIT - cost);
        expect((await market.sessionRouter.getSessionState(session.sessionId)).status).to.equal(STATUS.None);
      }
    });
  });

  describe("Escrow.claim: the payout transfer", function () {
    it("claim and claimTo cannot re-enter claim, claimTo or settle", async function () {
      const market = await loadFixture(settledMarket);
      const { escrow, reentrantToken, provider, stranger, tokenAddress } = market;
      const claims = [
        { name: "claim", send: () => escrow.connect(provider).claim() },
        { name: "claimTo", send: () => escrow.connect(provider).claimTo(stranger.address) },
      ];

      for (const outer of claims) {
        for (const reentry of escrowReentries(market)) {
          await arm(market, reentry.target, reentry.data, HookMode.BubbleRevert);
          await expect(outer.send(), `${outer.name} re-entering ${reentry.name}`).to.be.revertedWithCustomError(
            escrow,
            "ReentrancyGuardReentrantCall",
          );
          expect(await escrow.balanceOf(provider.address)).to.equal(PROVIDER_SHARE);
          expect(await escrow.balanceOf(tokenAddress)).to.equal(FEE);
        }
      }

      await disarm(market);
      await expect(escrow.connect(provider).claim()).to.changeTokenBalances(
        reentrantToken,
        [provider, escrow],
        [PROVIDER_SHARE, -PROVIDER_SHARE],
      );
    });

    it("a claim whose transfer survives the failed re-entry pays once, and the token's own balance stays", async function () {
      const market = await loadFixture(settledMarket);
      const { escrow, reentrantToken, provider, tokenAddress } = market;
      const claim = named(escrowReentries(market), "claim");
      await arm(market, claim.target, claim.data, HookMode.RecordAndTransfer);

      const tx = escrow.connect(provider).claim();

      await expect(tx).to.emit(reentrantToken, "HookCalled").withArgs(escrow.target, false, REENTRANT_CALL);
      await expect(tx).to.emit(escrow, "Claimed").withArgs(provider.address, provider.address, PROVIDER_SHARE);
      await expect(tx).to.changeTokenBalances(
        reentrantToken,
        [provider, escrow, tokenAddress],
        [PROVIDER_SHARE, -PROVIDER_SHARE, 0n],
      );
      expect(await escrow.balanceOf(provider.address)).to.equal(0n);
      expect(await escrow.balanceOf(tokenAddress)).to.equal(FEE);
    });
  });

  describe("Escrow.claim: read-only reentrancy", function () {
    /**
     * Arms the token to read, inside the next transfer and before any token moves, the claimer's
     * escrow balance, another holder's (the token's own fee) and the escrow's token balance, through
     * StaticMulticall; returns a decoder of what the hook recorded.
     */
    async function armViewReads(market: ReentrantMarket, claimer: string) {
      const { escrow, reentrantToken, tokenAddress } = market;
      const multicall = await ethers.deployContract("StaticMulticall");
      const escrowAddress = await escrow.getAddress();
      const record = (target: string, data: string) => ethers.concat([target, data]);
      const reads = ethers.concat([
        record(escrowAddress, escrow.interface.encodeFunctionData("balanceOf", [claimer])),
        record(escrowAddress, escrow.interface.encodeFunctionData("balanceOf", [tokenAddress])),
        record(tokenAddress, reentrantToken.interface.encodeFunctionData("balanceOf", [escrowAddress])),
      ]);
      await arm(market, multicall, multicall.interface.encodeFunctionData("read", [reads]), HookMode.BubbleRevert);
      return async () => {
        expect(await reentrantToken.lastHookSucceeded()).to.equal(true);
        const [results] = multicall.interface.decodeFunctionResult("read", await reentrantToken.lastHookResult());
        const words = ethers.AbiCoder.defaultAbiCoder().decode(["uint256", "uint256", "uint256"], results as string);
        const [claimerBalance, otherBalance, escrowTokens] = words.toArray() as [bigint, bigint, bigint];
        return { claimerBalance, otherBalance, escrowTokens };
      };
    }

    for (const variant of ["claim", "claimTo"] as const) {
      it(`a view read during ${variant}'s payout sees the claimer's balance already zero (issue 5.4c)`, async function () {
        const market = await loadFixture(settledMarket);
        const { escrow, reentrantToken, provider, stranger } = market;
        const escrowTokens = await reentrantToken.balanceOf(await escrow.getAddress());
        const recorded = await armViewReads(market, provider.address);

        const tx =
          variant === "claim" ? escrow.connect(provider).claim() : escrow.connect(provider).claimTo(stranger.address);
        await expect(tx).to.emit(reentrantToken, "HookCalled");
        await expect(tx)
          .to.emit(escrow, "Claimed")
          .withArgs(provider.address, variant === "claim" ? provider.address : stranger.address, PROVIDER_SHARE);

        // Mid-payout the tokens have not moved yet, but the balance being paid is already gone: no
        // view can show a balance that is about to leave, and the escrow is never short of what its
        // balances say it owes.
        expect(await recorded()).to.deep.equal({ claimerBalance: 0n, otherBalance: FEE, escrowTokens });
        expect(await escrow.balanceOf(provider.address)).to.equal(0n);
      });
    }
  });

  describe("Staking: stake's transferFrom and withdraw's transfer", function () {
    it("stake cannot re-enter stake or withdraw", async function () {
      const market = await loadFixture(reentrantMarket);
      const { staking, reentrantToken, provider } = market;

      for (const reentry of stakingReentries(market)) {
        await arm(market, reentry.target, reentry.data, HookMode.BubbleRevert);
        await expect(staking.connect(provider).stake(E18), reentry.name).to.be.revertedWithCustomError(
          staking,
          "ReentrancyGuardReentrantCall",
        );
        expect(await staking.stakeOf(provider.address)).to.equal(PARAMS.providerMinStake);
      }

      await disarm(market);
      await expect(staking.connect(provider).stake(E18)).to.changeTokenBalances(
        reentrantToken,
        [provider, staking],
        [-E18, E18],
      );
      expect(await staking.stakeOf(provider.address)).to.equal(PARAMS.providerMinStake + E18);
    });

    it("withdraw cannot re-enter withdraw or stake", async function () {
      const market = await loadFixture(reentrantMarket);
      const { staking, reentrantToken, stranger } = market;
      const amount = 50n * E18;
      await approveAll(market, stranger, staking);
      await staking.connect(stranger).stake(amount);
      await staking.connect(stranger).requestUnstake(amount);
      await time.increase(PARAMS.unbondingPeriod);
      const accountBefore = await staking.stakeAccount(stranger.address);

      for (const reentry of stakingReentries(market)) {
        await arm(market, reentry.target, reentry.data, HookMode.BubbleRevert);
        await expect(staking.connect(stranger).withdraw(stranger.address), reentry.name).to.be.revertedWithCustomError(
          staking,
          "ReentrancyGuardReentrantCall",
        );
        expect([...(await staking.stakeAccount(stranger.address))]).to.deep.equal([...accountBefore]);
      }

      await disarm(market);
      await expect(staking.connect(stranger).withdraw(stranger.address)).to.changeTokenBalances(
        reentrantToken,
        [stranger, staking],
        [amount, -amount],
      );
    });
  });

  describe("Marketplace: postBid's fee transferFrom", function () {
    it("postBid cannot re-enter postBid", async function () {
      const market = await loadFixture(reentrantMarket);
      const { marketplace, reentrantToken, provider, tokenAddress, modelId, bidId } = market;
      await marketplace.connect(provider).deleteBid(bidId);
      const postBid = named(marketplaceReentries(market), "postBid");
      await arm(market, postBid.target, postBid.data, HookMode.BubbleRevert);

      await expect(marketplace.connect(provider).postBid(modelId, PRICES)).to.be.revertedWithCustomError(
        marketplace,
        "ReentrancyGuardReentrantCall",
      );
      expect((await marketplace.getBid(bidId)).active).to.equal(false);

      await disarm(market);
      await expect(marketplace.connect(provider).postBid(modelId, PRICES)).to.changeTokenBalances(
        reentrantToken,
        [provider, tokenAddress],
        [-PARAMS.bidFee, PARAMS.bidFee],
      );
      expect((await marketplace.getBid(bidId)).active).to.equal(true);
    });
  });

  describe("controls", function () {
    it("every re-entrant call above, fired by a plain transfer with no guard held, reaches its function's own checks", async function () {
      const market = await loadFixture(marketWithOpenSession);
      const reentries = [
        ...(await routerReentries(market, market.existing)),
        ...escrowReentries(market),
        ...stakingReentries(market),
        ...marketplaceReentries(market),
      ];
      for (const reentry of reentries) {
        await arm(market, reentry.target, reentry.data, HookMode.BubbleRevert);
        await expect(plainTransfer(market), reentry.name)
          .to.be.revertedWithCustomError(reentry.outside.contract, reentry.outside.error)
          .withArgs(...reentry.outside.args);
      }
    });

    it("with no guard held, the re-entrant finalize settles the closing session and the re-entrant claim pays the token", async function () {
      const market = await loadFixture(marketWithClosingAndOpen);
      const { sessionRouter, escrow, reentrantToken, tokenAddress, closing } = market;
      const finalize = named(await routerReentries(market, closing), "finalize");
      const claim = named(escrowReentries(market), "claim");

      await arm(market, finalize.target, finalize.data, HookMode.RecordAndTransfer);
      const finalized = plainTransfer(market);
      await expect(finalized).to.emit(reentrantToken, "HookCalled").withArgs(sessionRouter.target, true, "0x");
      await expect(finalized).to.emit(sessionRouter, "SessionSettled");
      expect((await sessionRouter.getSessionState(closing.sessionId)).status).to.equal(STATUS.None);
      expect(await escrow.balanceOf(tokenAddress)).to.equal(FEE);

      await arm(market, claim.target, claim.data, HookMode.RecordAndTransfer);
      const claimed = plainTransfer(market);
      await expect(claimed)
        .to.emit(reentrantToken, "HookCalled")
        .withArgs(escrow.target, true, escrow.interface.encodeFunctionResult("claim", [FEE]));
      await expect(claimed).to.emit(escrow, "Claimed").withArgs(tokenAddress, tokenAddress, FEE);
      expect(await escrow.balanceOf(tokenAddress)).to.equal(0n);
    });

    it("a hook calling a view mid-call succeeds, and sees the state already written (checks-effects-interactions)", async function () {
      const market = await loadFixture(marketWithClosingAndOpen);
      const { sessionRouter, escrow, reentrantToken, provider, user, tokenAddress, open } = market;

      // Inside openSession's deposit pull the new session is already counted.
      await arm(
        market,
        sessionRouter,
        sessionRouter.interface.encodeFunctionData("openSessionCount", [provider.address]),
        HookMode.BubbleRevert,
      );
      const approval = await makeApproval(market);
      const signature = await signTyped(provider, market.domain, "SessionApproval", approval);
      const opened = sessionRouter.connect(user).openSession(approval, signature, DEPOSIT, MAX_PRICES, approval.user);
      await expect(opened)
        .to.emit(reentrantToken, "HookCalled")
        .withArgs(sessionRouter.target, true, sessionRouter.interface.encodeFunctionResult("openSessionCount", [3n]));
      await expect(opened).to.emit(sessionRouter, "SessionOpened");
      await expect(opened).to.changeTokenBalances(reentrantToken, [user, escrow], [-DEPOSIT, DEPOSIT]);

      // Inside the refund transfer the fee is already credited and the settled session deleted.
      await arm(
        market,
        escrow,
        escrow.interface.encodeFunctionData("balanceOf", [tokenAddress]),
        HookMode.BubbleRevert,
      );
      const closed = closeByProvider(market, open);
      await expect(closed)
        .to.emit(reentrantToken, "HookCalled")
        .withArgs(escrow.target, true, escrow.interface.encodeFunctionResult("balanceOf", [FEE]));
      await expect(closed).to.not.emit(escrow, "RefundCredited");
      await expect(closed).to.changeTokenBalances(reentrantToken, [user, escrow], [REFUND, -REFUND]);

      const second = await openSession(market, DEPOSIT);
      await arm(
        market,
        sessionRouter,
        sessionRouter.interface.encodeFunctionData("getSessionState", [second.sessionId]),
        HookMode.BubbleRevert,
      );
      const emptyState = sessionRouter.interface.encodeFunctionResult("getSessionState", [[0n, 0n, 0n, 0n, 0n]]);
      await expect(closeByProvider(market, second))
        .to.emit(reentrantToken, "HookCalled")
        .withArgs(sessionRouter.target, true, emptyState);
    });
  });
});
