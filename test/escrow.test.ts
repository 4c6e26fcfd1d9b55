import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { IEscrow } from "../typechain-types/contracts/Escrow";
import { E18, PARAMS, PRICES, emptyReceipt, marketWithBid, marketWithBidAround, openSession } from "./fixtures";

const DEPOSIT = 100n * E18;
const ELAPSED = 100n;
// The provider closes ELAPSED seconds after opening with no receipt: time only is charged.
const COST = ELAPSED * PRICES.perSecond;
const FEE = (COST * PARAMS.protocolFeeBps) / 10_000n;
const ROYALTY = (COST * 500n) / 10_000n;
const PROVIDER_SHARE = COST - FEE - ROYALTY;
const REFUND = DEPOSIT - COST;

/** Opens a session on `market` and has the provider settle it ELAPSED seconds later. */
async function settleOneSession(market: Awaited<ReturnType<typeof marketWithBid>>) {
  const session = await openSession(market, DEPOSIT);
  await time.setNextBlockTimestamp(BigInt(session.terms.openedAt) + ELAPSED);
  const tx = await market.sessionRouter
    .connect(market.provider)
    .closeSession(session.terms, emptyReceipt(session.sessionId), "0x", "0x");
  return { session, tx };
}

/** `marketWithBid` with one session settled: the provider, model owner and treasury hold balances. */
async function settledMarket() {
  const market = await marketWithBid();
  await settleOneSession(market);
  return market;
}

/** An Escrow deployed straight from an EOA, which becomes its router, on a token that can refuse. */
async function standaloneEscrow() {
  const [router, tokenOwner, provider, modelOwner, treasury, user, stranger] = await ethers.getSigners();
  const token = await ethers.deployContract("RefusingToken", [tokenOwner.address]);
  const escrow = await ethers.deployContract("Escrow", [await token.getAddress()], router);
  await token.connect(tokenOwner).mint(await escrow.getAddress(), 1_000n * E18);
  return {
    token,
    escrow,
    router,
    tokenOwner,
    provider,
    modelOwner,
    treasury,
    user,
    stranger,
  };
}

function payout(
  accounts: { provider: { address: string }; modelOwner: { address: string }; treasury: { address: string } },
  user: { address: string },
  amounts: { provider: bigint; royalty: bigint; fee: bigint; refund: bigint },
): IEscrow.PayoutStruct {
  return {
    provider: accounts.provider.address,
    providerAmount: amounts.provider,
    royaltyRecipient: accounts.modelOwner.address,
    royaltyAmount: amounts.royalty,
    treasury: accounts.treasury.address,
    feeAmount: amounts.fee,
    user: user.address,
    refund: amounts.refund,
  };
}

/**
 * The whole market (Ignition's InferenceMarket module) around a RefusingToken, with a provider, a model (5%
 * royalty) and a bid, so a real session's refund can be refused.
 */
async function refusingMarket() {
  const [governance, treasury] = await ethers.getSigners();
  const refusingToken = await ethers.deployContract("RefusingToken", [governance.address]);
  return { ...(await marketWithBidAround(refusingToken, treasury.address)), refusingToken };
}

describe("Escrow", function () {
  describe("settle", function () {
    it("reverts OnlySessionRouter for any caller but its router", async function () {
      const { escrow, governance, stranger, provider, modelOwner, treasury, user } = await loadFixture(marketWithBid);
      const amounts = { provider: 1n, royalty: 1n, fee: 1n, refund: 0n };
      for (const caller of [stranger, governance]) {
        await expect(escrow.connect(caller).settle(payout({ provider, modelOwner, treasury }, user, amounts)))
          .to.be.revertedWithCustomError(escrow, "OnlySessionRouter")
          .withArgs(caller.address);
      }
    });

    it("credits each share of a real settlement and sends the refund in the same transaction", async function () {
      const market = await loadFixture(marketWithBid);
      const { escrow, token, provider, modelOwner, treasury, user } = market;
      const { tx } = await settleOneSession(market);

      await expect(tx).to.changeTokenBalances(token, [user, escrow], [REFUND, -REFUND]);
      await expect(tx).to.not.emit(escrow, "RefundCredited");
      expect(await escrow.balanceOf(provider.address)).to.equal(PROVIDER_SHARE);
      expect(await escrow.balanceOf(modelOwner.address)).to.equal(ROYALTY);
      expect(await escrow.balanceOf(treasury.address)).to.equal(FEE);
      expect(await escrow.balanceOf(user.address)).to.equal(0n);
      // Everything credited is still held.
      expect(await token.balanceOf(await escrow.getAddress())).to.equal(COST);
    });

    it("adds to balances already held, and zero shares change nothing", async function () {
      const { escrow, token, router, provider, modelOwner, treasury, user } = await loadFixture(standaloneEscrow);
      const parties = { provider, modelOwner, treasury };
      await escrow.connect(router).settle(payout(parties, user, { provider: 7n, royalty: 3n, fee: 2n, refund: 0n }));

      const tx = escrow
        .connect(router)
        .settle(payout(parties, user, { provider: 5n, royalty: 0n, fee: 0n, refund: 0n }));

      await expect(tx).to.not.emit(token, "Transfer");
      expect(await escrow.balanceOf(provider.address)).to.equal(12n);
      expect(await escrow.balanceOf(modelOwner.address)).to.equal(3n);
      expect(await escrow.balanceOf(treasury.address)).to.equal(2n);
      expect(await escrow.balanceOf(user.address)).to.equal(0n);
    });

    it("sends the refund when the token accepts it", async function () {
      const { escrow, token, router, provider, modelOwner, treasury, user } = await loadFixture(standaloneEscrow);
      const tx = escrow
        .connect(router)
        .settle(payout({ provider, modelOwner, treasury }, user, { provider: 1n, royalty: 0n, fee: 0n, refund: 40n }));
      await expect(tx).to.changeTokenBalances(token, [user, escrow], [40n, -40n]);
      await expect(tx).to.not.emit(escrow, "RefundCredited");
      expect(await escrow.balanceOf(user.address)).to.equal(0n);
    });

    it("credits a refund the token refuses, emits RefundCredited, and pays the other shares anyway", async function () {
      const { escrow, token, router, tokenOwner, provider, modelOwner, treasury, user } =
        await loadFixture(standaloneEscrow);
      await token.connect(tokenOwner).setBlocked(user.address, true);

      const tx = escrow
        .connect(router)
        .settle(payout({ provider, modelOwner, treasury }, user, { provider: 6n, royalty: 2n, fee: 1n, refund: 40n }));

      await expect(tx).to.emit(escrow, "RefundCredited").withArgs(user.address, 40n);
      await expect(tx).to.changeTokenBalances(token, [user, escrow], [0n, 0n]);
      expect(await escrow.balanceOf(user.address)).to.equal(40n);
      expect(await escrow.balanceOf(provider.address)).to.equal(6n);
      expect(await escrow.balanceOf(modelOwner.address)).to.equal(2n);
      expect(await escrow.balanceOf(treasury.address)).to.equal(1n);
    });

    it("keeps a refused refund claimable: claimTo elsewhere while blocked, claim once unblocked", async function () {
      const { escrow, token, router, tokenOwner, provider, modelOwner, treasury, user, stranger } =
        await loadFixture(standaloneEscrow);
      const parties = { provider, modelOwner, treasury };
      await token.connect(tokenOwner).setBlocked(user.address, true);
      await escrow.connect(router).settle(payout(parties, user, { provider: 0n, royalty: 0n, fee: 0n, refund: 40n }));
      await escrow.connect(router).settle(payout(parties, user, { provider: 0n, royalty: 0n, fee: 0n, refund: 2n }));
      expect(await escrow.balanceOf(user.address)).to.equal(42n);

      // A blocked user's own claim reverts in the token and leaves the balance where it was.
      await expect(escrow.connect(user).claim())
        .to.be.revertedWithCustomError(token, "RecipientBlocked")
        .withArgs(user.address);
      expect(await escrow.balanceOf(user.address)).to.equal(42n);

      await expect(escrow.connect(user).claimTo(stranger.address)).to.changeTokenBalance(token, stranger, 42n);
      expect(await escrow.balanceOf(user.address)).to.equal(0n);

      await escrow.connect(router).settle(payout(parties, user, { provider: 0n, royalty: 0n, fee: 0n, refund: 5n }));
      await token.connect(tokenOwner).setBlocked(user.address, false);
      await expect(escrow.connect(user).claim()).to.changeTokenBalance(token, user, 5n);
    });

    it("credits a real session's refund when the token refuses the user, through the router", async function () {
      const market = await loadFixture(refusingMarket);
      const { escrow, refusingToken, governance, provider, modelOwner, treasury, user } = market;
      const session = await openSession(market, DEPOSIT);
      await refusingToken.connect(governance).setBlocked(user.address, true);
      await time.setNextBlockTimestamp(BigInt(session.terms.openedAt) + ELAPSED);

      const tx = market.sessionRouter
        .connect(provider)
        .closeSession(session.terms, emptyReceipt(session.sessionId), "0x", "0x");

      await expect(tx).to.emit(escrow, "RefundCredited").withArgs(user.address, REFUND);
      await expect(tx).to.emit(market.sessionRouter, "SessionSettled");
      await expect(tx).to.changeTokenBalances(refusingToken, [user, escrow], [0n, 0n]);
      expect(await escrow.balanceOf(user.address)).to.equal(REFUND);
      expect(await escrow.balanceOf(provider.address)).to.equal(PROVIDER_SHARE);
      expect(await escrow.balanceOf(modelOwner.address)).to.equal(ROYALTY);
      expect(await escrow.balanceOf(treasury.address)).to.equal(FEE);

      await refusingToken.connect(governance).setBlocked(user.address, false);
      await expect(escrow.connect(user).claim())
        .to.emit(escrow, "Claimed")
        .withArgs(user.address, user.address, REFUND);
      expect(await refusingToken.balanceOf(await escrow.getAddress())).to.equal(COST);
    });
  });

  describe("claim", function () {
    it("sends the caller's whole balance to the caller and emits Claimed", async function () {
      const { escrow, token, provider } = await loadFixture(settledMarket);
      expect(await escrow.connect(provider).claim.staticCall()).to.equal(PROVIDER_SHARE);

      const tx = escrow.connect(provider).claim();

      await expect(tx).to.emit(escrow, "Claimed").withArgs(provider.address, provider.address, PROVIDER_SHARE);
      await expect(tx).to.changeTokenBalances(token, [provider, escrow], [PROVIDER_SHARE, -PROVIDER_SHARE]);
      expect(await escrow.balanceOf(provider.address)).to.equal(0n);
    });

    it("reverts NothingToClaim with no balance, and after a claim", async function () {
      const { escrow, stranger, treasury } = await loadFixture(settledMarket);
      await expect(escrow.connect(stranger).claim())
        .to.be.revertedWithCustomError(escrow, "NothingToClaim")
        .withArgs(stranger.address);

      await escrow.connect(treasury).claim();
      await expect(escrow.connect(treasury).claim())
        .to.be.revertedWithCustomError(escrow, "NothingToClaim")
        .withArgs(treasury.address);
    });
  });

  describe("claimTo", function () {
    it("moves exactly the caller's balance to another address and emits Claimed", async function () {
      const { escrow, token, modelOwner, stranger } = await loadFixture(settledMarket);

      const tx = escrow.connect(modelOwner).claimTo(stranger.address);

      await expect(tx).to.emit(escrow, "Claimed").withArgs(modelOwner.address, stranger.address, ROYALTY);
      await expect(tx).to.changeTokenBalances(token, [stranger, modelOwner, escrow], [ROYALTY, 0n, -ROYALTY]);
      expect(await escrow.balanceOf(modelOwner.address)).to.equal(0n);
      expect(await escrow.balanceOf(stranger.address)).to.equal(0n);
    });

    it("reverts ZeroAddress for `to` = zero", async function () {
      const { escrow, provider } = await loadFixture(settledMarket);
      await expect(escrow.connect(provider).claimTo(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        escrow,
        "ZeroAddress",
      );
      expect(await escrow.balanceOf(provider.address)).to.equal(PROVIDER_SHARE);
    });

    it("reverts NothingToClaim with no balance", async function () {
      const { escrow, stranger, user } = await loadFixture(settledMarket);
      await expect(escrow.connect(stranger).claimTo(user.address))
        .to.be.revertedWithCustomError(escrow, "NothingToClaim")
        .withArgs(stranger.address);
    });
  });

  describe("views", function () {
    it("names its token and the router that created it", async function () {
      const { escrow, token, sessionRouter } = await loadFixture(marketWithBid);
      expect(await escrow.token()).to.equal(await token.getAddress());
      expect(await escrow.sessionRouter()).to.equal(await sessionRouter.getAddress());
      expect(await sessionRouter.escrow()).to.equal(await escrow.getAddress());
    });
  });
});
