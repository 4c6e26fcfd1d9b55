/**
 * Tokens that do not deliver what a transfer asks (issue 5, item 2). Staking and the router record
 * the amount they asked for, so they must refuse a pull that brought in anything else: every pull
 * (`Staking.stake`, `openSession`, `openSessionWithPermit`, `topUp`) compares the receiver's balance
 * before and after and reverts `TokenTransferMismatch(expected, received)`, leaving everything as it
 * was. The market here is Ignition's InferenceMarket module around a FeeOnTransferToken whose fee is
 * off while the provider, model and bid are set up, and switched on for each test.
 */
import { expect } from "chai";
import { marketErrorsAbi, sessionRouterAbi, stakingAbi } from "../protocol";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  E18,
  MAX_PRICES,
  PARAMS,
  approveAll,
  makeApproval,
  marketWithBidAround,
  openSession,
  signPermit,
  signTyped,
} from "./fixtures";

const DEPOSIT = 100n * E18;
/** 1%: the receiver gets 99 of every 100 tokens sent. */
const FEE_BPS = 100n;
const received = (amount: bigint, feeBps = FEE_BPS) => amount - (amount * feeBps) / 10_000n;

/** The market around a FeeOnTransferToken, with one open session made while the fee was off. */
async function feeMarket() {
  const [governance, treasury] = await ethers.getSigners();
  const feeToken = await ethers.deployContract("FeeOnTransferToken", [governance.address]);
  const market = await marketWithBidAround(feeToken, treasury.address);
  const session = await openSession(market, DEPOSIT);
  return { ...market, feeToken, session };
}

type FeeMarket = Awaited<ReturnType<typeof feeMarket>>;

/** Token balances of the accounts and contracts a pull touches, and the stake and session state. */
async function snapshot(market: FeeMarket) {
  const { feeToken, staking, escrow, sessionRouter, provider, user, session } = market;
  const state = await sessionRouter.getSessionState(session.sessionId);
  return {
    tokens: await Promise.all(
      [provider.address, user.address, await staking.getAddress(), await escrow.getAddress()].map((account) =>
        feeToken.balanceOf(account),
      ),
    ),
    stake: [...(await staking.stakeAccount(provider.address))],
    session: [...state],
    openSessions: await sessionRouter.openSessionCount(provider.address),
  };
}

describe("Fee-on-transfer and other odd tokens: every pull is checked", function () {
  it("TokenTransferMismatch is in Staking's and SessionRouter's ABIs and in marketErrorsAbi", function () {
    for (const abi of [stakingAbi, sessionRouterAbi, marketErrorsAbi]) {
      const errors = (abi as readonly { type: string; name?: string; inputs?: readonly { type: string }[] }[]).filter(
        (item) => item.type === "error" && item.name === "TokenTransferMismatch",
      );
      expect(errors.map((item) => item.inputs?.map((input) => input.type))).to.deep.equal([["uint256", "uint256"]]);
    }
  });

  it("with the fee off the market works (the fixture staked, bid and opened a session)", async function () {
    const market = await loadFixture(feeMarket);
    expect(await market.feeToken.feeBps()).to.equal(0n);
    expect(await market.staking.stakeOf(market.provider.address)).to.equal(PARAMS.providerMinStake);
    expect(await market.feeToken.balanceOf(await market.escrow.getAddress())).to.equal(DEPOSIT);
  });

  it("stake: TokenTransferMismatch(amount, received), and nothing changes", async function () {
    const market = await loadFixture(feeMarket);
    await market.feeToken.connect(market.governance).setFeeBps(FEE_BPS);
    const before = await snapshot(market);
    await expect(market.staking.connect(market.provider).stake(E18))
      .to.be.revertedWithCustomError(market.staking, "TokenTransferMismatch")
      .withArgs(E18, received(E18));
    expect(await snapshot(market)).to.deep.equal(before);
  });

  it("stake: a transfer that makes the receiver's balance fall reports 0 received", async function () {
    const market = await loadFixture(feeMarket);
    // 150%: Staking loses half of the amount on top of receiving nothing of it.
    await market.feeToken.connect(market.governance).setFeeBps(15_000n);
    const before = await snapshot(market);
    await expect(market.staking.connect(market.provider).stake(E18))
      .to.be.revertedWithCustomError(market.staking, "TokenTransferMismatch")
      .withArgs(E18, 0n);
    expect(await snapshot(market)).to.deep.equal(before);
  });

  it("openSession: TokenTransferMismatch(deposit, received), and nothing changes (the nonce stays unused)", async function () {
    const market = await loadFixture(feeMarket);
    await market.feeToken.connect(market.governance).setFeeBps(FEE_BPS);
    const approval = await makeApproval(market);
    const signature = await signTyped(market.provider, market.domain, "SessionApproval", approval);
    const before = await snapshot(market);
    await expect(
      market.sessionRouter
        .connect(market.user)
        .openSession(approval, signature, DEPOSIT, MAX_PRICES, market.user.address),
    )
      .to.be.revertedWithCustomError(market.sessionRouter, "TokenTransferMismatch")
      .withArgs(DEPOSIT, received(DEPOSIT));
    expect(await snapshot(market)).to.deep.equal(before);
    expect(await market.sessionRouter.isApprovalNonceUsed(market.provider.address, approval.nonce)).to.equal(false);
  });

  it("openSessionWithPermit: TokenTransferMismatch(deposit, received), and nothing changes (the permit unused)", async function () {
    const market = await loadFixture(feeMarket);
    const { feeToken, sessionRouter, user } = market;
    await feeToken.connect(market.governance).setFeeBps(FEE_BPS);
    await feeToken.connect(user).approve(await sessionRouter.getAddress(), 0n);
    const approval = await makeApproval(market);
    const signature = await signTyped(market.provider, market.domain, "SessionApproval", approval);
    const deadline = BigInt(await time.latest()) + 3_600n;
    const permit = await signPermit(market.token, user, await sessionRouter.getAddress(), DEPOSIT, deadline);
    const before = await snapshot(market);
    await expect(
      sessionRouter
        .connect(user)
        .openSessionWithPermit(
          approval,
          signature,
          DEPOSIT,
          MAX_PRICES,
          user.address,
          deadline,
          permit.v,
          permit.r,
          permit.s,
        ),
    )
      .to.be.revertedWithCustomError(sessionRouter, "TokenTransferMismatch")
      .withArgs(DEPOSIT, received(DEPOSIT));
    expect(await snapshot(market)).to.deep.equal(before);
    expect(await feeToken.nonces(user.address)).to.equal(0n);
    expect(await feeToken.allowance(user.address, await sessionRouter.getAddress())).to.equal(0n);
  });

  it("topUp: TokenTransferMismatch(amount, received), and nothing changes", async function () {
    const market = await loadFixture(feeMarket);
    await market.feeToken.connect(market.governance).setFeeBps(FEE_BPS);
    const before = await snapshot(market);
    await expect(market.sessionRouter.connect(market.user).topUp(market.session.terms, 10n * E18))
      .to.be.revertedWithCustomError(market.sessionRouter, "TokenTransferMismatch")
      .withArgs(10n * E18, received(10n * E18));
    expect(await snapshot(market)).to.deep.equal(before);
  });

  it("the bid fee goes straight to the treasury and is not checked: the treasury bears the token's fee", async function () {
    const market = await loadFixture(feeMarket);
    const { feeToken, marketplace, provider, treasury, bidId, modelId } = market;
    await marketplace.connect(provider).deleteBid(bidId);
    await feeToken.connect(market.governance).setFeeBps(FEE_BPS);
    await approveAll(market, provider, marketplace);
    await expect(
      marketplace.connect(provider).postBid(modelId, { perSecond: 1n, perInputToken: 0n, perOutputToken: 0n }),
    ).to.changeTokenBalances(feeToken, [provider, treasury], [-PARAMS.bidFee, received(PARAMS.bidFee)]);
  });
});
