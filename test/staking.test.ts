import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { E18, PARAMS, approveAll, deployMarket } from "./fixtures";

const UINT128_MAX = 2n ** 128n - 1n;

/** A market where `provider` approved the staking contract and staked 100 tokens. */
async function stakedMarket() {
  const market = await deployMarket();
  await approveAll(market, market.provider, market.staking);
  await market.staking.connect(market.provider).stake(100n * E18);
  return market;
}

describe("Staking", function () {
  describe("stake", function () {
    it("pulls the tokens, counts them as stake and emits Staked with the new total", async function () {
      const { staking, token, provider } = await loadFixture(stakedMarket);
      const amount = 25n * E18;

      const tx = staking.connect(provider).stake(amount);

      await expect(tx)
        .to.emit(staking, "Staked")
        .withArgs(provider.address, amount, 125n * E18);
      await expect(tx).to.changeTokenBalances(token, [provider, staking], [-amount, amount]);
      expect(await staking.stakeOf(provider.address)).to.equal(125n * E18);
      const account = await staking.stakeAccount(provider.address);
      expect(account.staked).to.equal(125n * E18);
      expect(account.unbonding).to.equal(0n);
      expect(account.unlockAt).to.equal(0n);
    });

    it("reverts ZeroAmount for 0", async function () {
      const { staking, provider } = await loadFixture(stakedMarket);
      await expect(staking.connect(provider).stake(0n)).to.be.revertedWithCustomError(staking, "ZeroAmount");
    });

    it("reverts in the token without an allowance", async function () {
      const { staking, token, stranger } = await loadFixture(stakedMarket);
      await expect(staking.connect(stranger).stake(E18))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(await staking.getAddress(), 0n, E18);
    });

    it("reverts AmountTooLarge when the stake would pass uint128", async function () {
      const { staking, token, governance, stranger } = await loadFixture(stakedMarket);
      // Governance owns the dev token, so it can mint past what any real holder has.
      await token.connect(governance).mint(stranger.address, UINT128_MAX + 1n);
      await token.connect(stranger).approve(await staking.getAddress(), ethers.MaxUint256);

      await expect(staking.connect(stranger).stake(UINT128_MAX + 1n))
        .to.be.revertedWithCustomError(staking, "AmountTooLarge")
        .withArgs(UINT128_MAX + 1n);

      await staking.connect(stranger).stake(UINT128_MAX);
      expect(await staking.stakeOf(stranger.address)).to.equal(UINT128_MAX);
      await expect(staking.connect(stranger).stake(1n))
        .to.be.revertedWithCustomError(staking, "AmountTooLarge")
        .withArgs(1n);
    });
  });

  describe("requestUnstake", function () {
    it("moves stake into unbonding, stops it counting, and emits the unlock time", async function () {
      const { staking, provider } = await loadFixture(stakedMarket);
      const requestedAt = (await time.latest()) + 10;
      await time.setNextBlockTimestamp(requestedAt);
      const unlockAt = BigInt(requestedAt) + PARAMS.unbondingPeriod;

      await expect(staking.connect(provider).requestUnstake(40n * E18))
        .to.emit(staking, "UnstakeRequested")
        .withArgs(provider.address, 40n * E18, 60n * E18, 40n * E18, unlockAt);

      expect(await staking.stakeOf(provider.address)).to.equal(60n * E18);
      const account = await staking.stakeAccount(provider.address);
      expect(account.staked).to.equal(60n * E18);
      expect(account.unbonding).to.equal(40n * E18);
      expect(account.unlockAt).to.equal(unlockAt);
    });

    it("lets the whole stake be requested", async function () {
      const { staking, provider } = await loadFixture(stakedMarket);
      await staking.connect(provider).requestUnstake(100n * E18);
      expect(await staking.stakeOf(provider.address)).to.equal(0n);
      expect((await staking.stakeAccount(provider.address)).unbonding).to.equal(100n * E18);
    });

    it("restarts the timer for everything unbonding on a second request", async function () {
      const { staking, provider } = await loadFixture(stakedMarket);
      await staking.connect(provider).requestUnstake(10n * E18);
      const secondAt = (await time.latest()) + 3 * 24 * 3600;
      await time.setNextBlockTimestamp(secondAt);
      const unlockAt = BigInt(secondAt) + PARAMS.unbondingPeriod;

      await expect(staking.connect(provider).requestUnstake(5n * E18))
        .to.emit(staking, "UnstakeRequested")
        .withArgs(provider.address, 5n * E18, 85n * E18, 15n * E18, unlockAt);

      const account = await staking.stakeAccount(provider.address);
      expect(account.unbonding).to.equal(15n * E18);
      expect(account.unlockAt).to.equal(unlockAt);
      // The first request's original unlock time no longer frees anything.
      await time.setNextBlockTimestamp(unlockAt - 1n);
      await expect(staking.connect(provider).withdraw(provider.address))
        .to.be.revertedWithCustomError(staking, "StillUnbonding")
        .withArgs(unlockAt);
    });

    it("reverts ZeroAmount for 0", async function () {
      const { staking, provider } = await loadFixture(stakedMarket);
      await expect(staking.connect(provider).requestUnstake(0n)).to.be.revertedWithCustomError(staking, "ZeroAmount");
    });

    it("reverts InsufficientStake above the stake, unbonding excluded", async function () {
      const { staking, provider, stranger } = await loadFixture(stakedMarket);
      await expect(staking.connect(provider).requestUnstake(100n * E18 + 1n))
        .to.be.revertedWithCustomError(staking, "InsufficientStake")
        .withArgs(100n * E18, 100n * E18 + 1n);

      await staking.connect(provider).requestUnstake(30n * E18);
      await expect(staking.connect(provider).requestUnstake(70n * E18 + 1n))
        .to.be.revertedWithCustomError(staking, "InsufficientStake")
        .withArgs(70n * E18, 70n * E18 + 1n);

      await expect(staking.connect(stranger).requestUnstake(1n))
        .to.be.revertedWithCustomError(staking, "InsufficientStake")
        .withArgs(0n, 1n);
    });
  });

  describe("withdraw", function () {
    /** `stakedMarket` with 40 tokens requested; returns the unlock time. */
    async function unbondingMarket() {
      const market = await stakedMarket();
      await market.staking.connect(market.provider).requestUnstake(40n * E18);
      const unlockAt = (await market.staking.stakeAccount(market.provider.address)).unlockAt;
      return { ...market, unlockAt };
    }

    it("reverts StillUnbonding with the unlock time one second before it", async function () {
      const { staking, provider, unlockAt } = await loadFixture(unbondingMarket);
      await time.setNextBlockTimestamp(unlockAt - 1n);
      await expect(staking.connect(provider).withdraw(provider.address))
        .to.be.revertedWithCustomError(staking, "StillUnbonding")
        .withArgs(unlockAt);
    });

    it("sends the unbonding stake to `to` at exactly the unlock time", async function () {
      const { staking, token, provider, stranger, unlockAt } = await loadFixture(unbondingMarket);
      await time.setNextBlockTimestamp(unlockAt);

      const tx = staking.connect(provider).withdraw(stranger.address);

      await expect(tx)
        .to.emit(staking, "Withdrawn")
        .withArgs(provider.address, stranger.address, 40n * E18);
      await expect(tx).to.changeTokenBalances(token, [staking, stranger, provider], [-40n * E18, 40n * E18, 0n]);
      const account = await staking.stakeAccount(provider.address);
      expect(account.staked).to.equal(60n * E18);
      expect(account.unbonding).to.equal(0n);
      expect(account.unlockAt).to.equal(0n);
    });

    it("returns the amount sent", async function () {
      const { staking, provider, unlockAt } = await loadFixture(unbondingMarket);
      await time.increaseTo(unlockAt);
      expect(await staking.connect(provider).withdraw.staticCall(provider.address)).to.equal(40n * E18);
    });

    it("reverts NothingToWithdraw without a request, and after the withdrawal", async function () {
      const { staking, provider, stranger, unlockAt } = await loadFixture(unbondingMarket);
      await expect(staking.connect(stranger).withdraw(stranger.address)).to.be.revertedWithCustomError(
        staking,
        "NothingToWithdraw",
      );

      await time.increaseTo(unlockAt);
      await staking.connect(provider).withdraw(provider.address);
      await expect(staking.connect(provider).withdraw(provider.address)).to.be.revertedWithCustomError(
        staking,
        "NothingToWithdraw",
      );
    });

    it("reverts ZeroAddress for `to` = zero", async function () {
      const { staking, provider, unlockAt } = await loadFixture(unbondingMarket);
      await time.increaseTo(unlockAt);
      await expect(staking.connect(provider).withdraw(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        staking,
        "ZeroAddress",
      );
    });

    it("frees a request at once when the unbonding period is zero", async function () {
      const { staking, token, governance, provider } = await loadFixture(stakedMarket);
      await staking.connect(governance).setUnbondingPeriod(0n);
      await staking.connect(provider).requestUnstake(E18);
      await expect(staking.connect(provider).withdraw(provider.address)).to.changeTokenBalance(token, provider, E18);
    });
  });

  describe("views", function () {
    it("exposes the token and the unbonding period", async function () {
      const { staking, token } = await loadFixture(deployMarket);
      expect(await staking.token()).to.equal(await token.getAddress());
      expect(await staking.unbondingPeriod()).to.equal(PARAMS.unbondingPeriod);
      expect(await staking.MAX_UNBONDING_PERIOD()).to.equal(90n * 24n * 3600n);
    });

    it("reports zero for an account that never staked", async function () {
      const { staking, stranger } = await loadFixture(deployMarket);
      expect(await staking.stakeOf(stranger.address)).to.equal(0n);
      const account = await staking.stakeAccount(stranger.address);
      expect([account.staked, account.unbonding, account.unlockAt]).to.deep.equal([0n, 0n, 0n]);
    });
  });
});
