import { expect } from "chai";
import { ethers } from "hardhat";
import type { Interface } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import type { SessionRouter } from "../typechain-types";
import {
  E18,
  PARAMS,
  type Market,
  approveAll,
  deployMarket,
  emptyReceipt,
  marketWithBid,
  openSession,
  signPermit,
} from "./fixtures";

const DEFAULT_ADMIN_ROLE = ethers.ZeroHash;
const HOUR = 3_600n;
const DAY = 24n * HOUR;

/** Asserts that `call` reverts with AccessControl's error for `caller` lacking the admin role. */
async function expectNotAdmin(call: Promise<unknown>, contract: { interface: Interface }, caller: HardhatEthersSigner) {
  await expect(call)
    .to.be.revertedWithCustomError(contract, "AccessControlUnauthorizedAccount")
    .withArgs(caller.address, DEFAULT_ADMIN_ROLE);
}

/** Valid constructor arguments for every contract, built around a deployed market's addresses. */
async function constructorArgs(market: Market) {
  return {
    token: await market.token.getAddress(),
    staking: await market.staking.getAddress(),
    providerRegistry: await market.providerRegistry.getAddress(),
    modelRegistry: await market.modelRegistry.getAddress(),
    marketplace: await market.marketplace.getAddress(),
    governance: market.governance.address,
    treasury: market.treasury.address,
  };
}

/** A SessionRouter deployment struct with the fixture's parameters. */
async function routerDeployment(market: Market): Promise<SessionRouter.DeploymentStruct> {
  const args = await constructorArgs(market);
  return {
    token: args.token,
    marketplace: args.marketplace,
    providerRegistry: args.providerRegistry,
    modelRegistry: args.modelRegistry,
    governance: args.governance,
    treasury: args.treasury,
    protocolFeeBps: PARAMS.protocolFeeBps,
    maxSessionDuration: PARAMS.maxSessionDuration,
    challengeWindow: PARAMS.challengeWindow,
  };
}

describe("Deployment and governance", function () {
  describe("constructors", function () {
    it("Staking rejects a zero token or governance and an unbonding period over 90 days", async function () {
      const market = await loadFixture(deployMarket);
      const { token, governance } = await constructorArgs(market);
      const factory = await ethers.getContractFactory("Staking");
      const zero = ethers.ZeroAddress;
      await expect(factory.deploy(zero, governance, 0n)).to.be.revertedWithCustomError(factory, "ZeroAddress");
      await expect(factory.deploy(token, zero, 0n)).to.be.revertedWithCustomError(factory, "ZeroAddress");
      await expect(factory.deploy(token, governance, 90n * DAY + 1n))
        .to.be.revertedWithCustomError(factory, "UnbondingPeriodTooLong")
        .withArgs(90n * DAY + 1n, 90n * DAY);

      const staking = await factory.deploy(token, governance, 90n * DAY);
      await expect(staking.deploymentTransaction())
        .to.emit(staking, "UnbondingPeriodSet")
        .withArgs(90n * DAY);
      expect(await staking.hasRole(DEFAULT_ADMIN_ROLE, governance)).to.equal(true);
    });

    it("ProviderRegistry rejects a zero staking or governance", async function () {
      const market = await loadFixture(deployMarket);
      const { staking, governance } = await constructorArgs(market);
      const factory = await ethers.getContractFactory("ProviderRegistry");
      const zero = ethers.ZeroAddress;
      await expect(factory.deploy(zero, governance, 1n)).to.be.revertedWithCustomError(factory, "ZeroAddress");
      await expect(factory.deploy(staking, zero, 1n)).to.be.revertedWithCustomError(factory, "ZeroAddress");

      const registry = await factory.deploy(staking, governance, 7n);
      await expect(registry.deploymentTransaction()).to.emit(registry, "ProviderMinStakeSet").withArgs(7n);
      expect(await registry.sessionRouter()).to.equal(zero);
      expect(await registry.hasRole(DEFAULT_ADMIN_ROLE, governance)).to.equal(true);
    });

    it("ModelRegistry rejects a zero staking or governance and a royalty cap over 5000 bps", async function () {
      const market = await loadFixture(deployMarket);
      const { staking, governance } = await constructorArgs(market);
      const factory = await ethers.getContractFactory("ModelRegistry");
      const zero = ethers.ZeroAddress;
      await expect(factory.deploy(zero, governance, 1n, 100)).to.be.revertedWithCustomError(factory, "ZeroAddress");
      await expect(factory.deploy(staking, zero, 1n, 100)).to.be.revertedWithCustomError(factory, "ZeroAddress");
      await expect(factory.deploy(staking, governance, 1n, 5_001))
        .to.be.revertedWithCustomError(factory, "RoyaltyTooHigh")
        .withArgs(5_001n, 5_000n);

      const registry = await factory.deploy(staking, governance, 3n, 5_000);
      await expect(registry.deploymentTransaction()).to.emit(registry, "ModelMinStakeSet").withArgs(3n);
      await expect(registry.deploymentTransaction()).to.emit(registry, "MaxRoyaltySet").withArgs(5_000n);
      expect(await registry.hasRole(DEFAULT_ADMIN_ROLE, governance)).to.equal(true);
    });

    it("Marketplace rejects each zero address and a bid fee over MAX_BID_FEE", async function () {
      const market = await loadFixture(deployMarket);
      const { token, providerRegistry, modelRegistry, governance, treasury } = await constructorArgs(market);
      const factory = await ethers.getContractFactory("Marketplace");
      const zero = ethers.ZeroAddress;
      const maxFee = 1_000n * E18;
      for (const args of [
        [zero, providerRegistry, modelRegistry, governance, treasury],
        [token, zero, modelRegistry, governance, treasury],
        [token, providerRegistry, zero, governance, treasury],
        [token, providerRegistry, modelRegistry, zero, treasury],
        [token, providerRegistry, modelRegistry, governance, zero],
      ] as const) {
        await expect(factory.deploy(...args, 0n)).to.be.revertedWithCustomError(factory, "ZeroAddress");
      }
      await expect(factory.deploy(token, providerRegistry, modelRegistry, governance, treasury, maxFee + 1n))
        .to.be.revertedWithCustomError(factory, "BidFeeTooHigh")
        .withArgs(maxFee + 1n, maxFee);

      const marketplace = await factory.deploy(token, providerRegistry, modelRegistry, governance, treasury, maxFee);
      await expect(marketplace.deploymentTransaction()).to.emit(marketplace, "BidFeeSet").withArgs(maxFee);
      await expect(marketplace.deploymentTransaction()).to.emit(marketplace, "TreasurySet").withArgs(treasury);
      expect(await marketplace.hasRole(DEFAULT_ADMIN_ROLE, governance)).to.equal(true);
    });

    it("SessionRouter rejects each zero address in its deployment struct", async function () {
      const market = await loadFixture(deployMarket);
      const valid = await routerDeployment(market);
      const factory = await ethers.getContractFactory("SessionRouter");
      for (const field of [
        "token",
        "marketplace",
        "providerRegistry",
        "modelRegistry",
        "governance",
        "treasury",
      ] as const) {
        await expect(factory.deploy({ ...valid, [field]: ethers.ZeroAddress })).to.be.revertedWithCustomError(
          factory,
          "ZeroAddress",
        );
      }
    });

    it("SessionRouter rejects parameters one past their bounds and accepts them at the bounds", async function () {
      const market = await loadFixture(deployMarket);
      const valid = await routerDeployment(market);
      const factory = await ethers.getContractFactory("SessionRouter");
      await expect(factory.deploy({ ...valid, protocolFeeBps: 1_001 }))
        .to.be.revertedWithCustomError(factory, "ProtocolFeeTooHigh")
        .withArgs(1_001n, 1_000n);
      for (const duration of [HOUR - 1n, 365n * DAY + 1n]) {
        await expect(factory.deploy({ ...valid, maxSessionDuration: duration }))
          .to.be.revertedWithCustomError(factory, "MaxSessionDurationOutOfBounds")
          .withArgs(duration);
      }
      for (const window of [59n, 7n * DAY + 1n]) {
        await expect(factory.deploy({ ...valid, challengeWindow: window }))
          .to.be.revertedWithCustomError(factory, "ChallengeWindowOutOfBounds")
          .withArgs(window);
      }

      const low = await factory.deploy({ ...valid, protocolFeeBps: 0, maxSessionDuration: HOUR, challengeWindow: 60n });
      const deployTx = low.deploymentTransaction();
      await expect(deployTx).to.emit(low, "ProtocolFeeSet").withArgs(0n);
      await expect(deployTx).to.emit(low, "MaxSessionDurationSet").withArgs(HOUR);
      await expect(deployTx).to.emit(low, "ChallengeWindowSet").withArgs(60n);
      await expect(deployTx).to.emit(low, "TreasurySet").withArgs(valid.treasury);
      const high = await factory.deploy({
        ...valid,
        protocolFeeBps: 1_000,
        maxSessionDuration: 365n * DAY,
        challengeWindow: 7n * DAY,
      });
      expect(await high.protocolFeeBps()).to.equal(1_000n);
      expect(await high.maxSessionDuration()).to.equal(365n * DAY);
      expect(await high.challengeWindow()).to.equal(7n * DAY);
    });

    it("SessionRouter creates its own Escrow on the same token", async function () {
      const market = await loadFixture(deployMarket);
      const router = await ethers.deployContract("SessionRouter", [await routerDeployment(market)]);
      const escrow = await ethers.getContractAt("Escrow", await router.escrow());
      expect(await escrow.sessionRouter()).to.equal(await router.getAddress());
      expect(await escrow.token()).to.equal(await market.token.getAddress());
      expect(await router.hasRole(DEFAULT_ADMIN_ROLE, market.governance.address)).to.equal(true);
    });

    it("Escrow rejects a zero token", async function () {
      const factory = await ethers.getContractFactory("Escrow");
      await expect(factory.deploy(ethers.ZeroAddress)).to.be.revertedWithCustomError(factory, "ZeroAddress");
    });

    it("MarketToken rejects a zero owner", async function () {
      const factory = await ethers.getContractFactory("MarketToken");
      await expect(factory.deploy(ethers.ZeroAddress))
        .to.be.revertedWithCustomError(factory, "OwnableInvalidOwner")
        .withArgs(ethers.ZeroAddress);
    });
  });

  describe("Staking.setUnbondingPeriod", function () {
    it("accepts exactly 90 days and zero, emitting UnbondingPeriodSet", async function () {
      const { staking, governance } = await loadFixture(deployMarket);
      await expect(staking.connect(governance).setUnbondingPeriod(90n * DAY))
        .to.emit(staking, "UnbondingPeriodSet")
        .withArgs(90n * DAY);
      expect(await staking.unbondingPeriod()).to.equal(90n * DAY);
      await expect(staking.connect(governance).setUnbondingPeriod(0n))
        .to.emit(staking, "UnbondingPeriodSet")
        .withArgs(0n);
    });

    it("reverts UnbondingPeriodTooLong one second past 90 days", async function () {
      const { staking, governance } = await loadFixture(deployMarket);
      await expect(staking.connect(governance).setUnbondingPeriod(90n * DAY + 1n))
        .to.be.revertedWithCustomError(staking, "UnbondingPeriodTooLong")
        .withArgs(90n * DAY + 1n, 90n * DAY);
    });

    it("reverts AccessControlUnauthorizedAccount for a non-admin", async function () {
      const { staking, stranger } = await loadFixture(deployMarket);
      await expectNotAdmin(staking.connect(stranger).setUnbondingPeriod(DAY), staking, stranger);
    });

    it("applies to the next unstake request", async function () {
      const market = await loadFixture(deployMarket);
      const { staking, governance, provider } = market;
      await approveAll(market, provider, staking);
      await staking.connect(provider).stake(E18);
      await staking.connect(governance).setUnbondingPeriod(DAY);
      const requestedAt = BigInt(await time.latest()) + 1n;
      await time.setNextBlockTimestamp(requestedAt);
      await staking.connect(provider).requestUnstake(E18);
      expect((await staking.stakeAccount(provider.address)).unlockAt).to.equal(requestedAt + DAY);
    });
  });

  describe("ProviderRegistry setters", function () {
    it("setProviderMinStake sets any value and emits ProviderMinStakeSet", async function () {
      const { providerRegistry, governance } = await loadFixture(deployMarket);
      await expect(providerRegistry.connect(governance).setProviderMinStake(0n))
        .to.emit(providerRegistry, "ProviderMinStakeSet")
        .withArgs(0n);
      await expect(providerRegistry.connect(governance).setProviderMinStake(ethers.MaxUint256))
        .to.emit(providerRegistry, "ProviderMinStakeSet")
        .withArgs(ethers.MaxUint256);
      expect(await providerRegistry.providerMinStake()).to.equal(ethers.MaxUint256);
    });

    it("setSessionRouter sets the router, emits SessionRouterSet, and rejects zero", async function () {
      const { providerRegistry, governance, stranger } = await loadFixture(deployMarket);
      await expect(providerRegistry.connect(governance).setSessionRouter(stranger.address))
        .to.emit(providerRegistry, "SessionRouterSet")
        .withArgs(stranger.address);
      expect(await providerRegistry.sessionRouter()).to.equal(stranger.address);
      await expect(
        providerRegistry.connect(governance).setSessionRouter(ethers.ZeroAddress),
      ).to.be.revertedWithCustomError(providerRegistry, "ZeroAddress");
    });

    it("both revert AccessControlUnauthorizedAccount for a non-admin", async function () {
      const { providerRegistry, stranger } = await loadFixture(deployMarket);
      await expectNotAdmin(providerRegistry.connect(stranger).setProviderMinStake(0n), providerRegistry, stranger);
      await expectNotAdmin(
        providerRegistry.connect(stranger).setSessionRouter(stranger.address),
        providerRegistry,
        stranger,
      );
    });
  });

  describe("ModelRegistry setters", function () {
    it("setModelMinStake sets any value, emits ModelMinStakeSet, and gates the next registration", async function () {
      const market = await loadFixture(deployMarket);
      const { modelRegistry, staking, governance, modelOwner } = market;
      await expect(modelRegistry.connect(governance).setModelMinStake(5n * E18))
        .to.emit(modelRegistry, "ModelMinStakeSet")
        .withArgs(5n * E18);
      expect(await modelRegistry.modelMinStake()).to.equal(5n * E18);

      await approveAll(market, modelOwner, staking);
      await staking.connect(modelOwner).stake(5n * E18 - 1n);
      const register = () =>
        modelRegistry.connect(modelOwner).registerModel(ethers.id("m"), ethers.ZeroHash, 0, "m", "", []);
      await expect(register())
        .to.be.revertedWithCustomError(modelRegistry, "StakeBelowMinimum")
        .withArgs(modelOwner.address, 5n * E18 - 1n, 5n * E18);
      await staking.connect(modelOwner).stake(1n);
      await expect(register()).to.emit(modelRegistry, "ModelRegistered");
    });

    it("setMaxRoyaltyBps accepts exactly 5000 and rejects 5001", async function () {
      const { modelRegistry, governance } = await loadFixture(deployMarket);
      await expect(modelRegistry.connect(governance).setMaxRoyaltyBps(5_000))
        .to.emit(modelRegistry, "MaxRoyaltySet")
        .withArgs(5_000n);
      expect(await modelRegistry.maxRoyaltyBps()).to.equal(5_000n);
      await expect(modelRegistry.connect(governance).setMaxRoyaltyBps(5_001))
        .to.be.revertedWithCustomError(modelRegistry, "RoyaltyTooHigh")
        .withArgs(5_001n, 5_000n);
    });

    it("setMaxRoyaltyBps bounds the royalty of later registrations", async function () {
      const market = await loadFixture(deployMarket);
      const { modelRegistry, staking, governance, modelOwner } = market;
      await modelRegistry.connect(governance).setMaxRoyaltyBps(100);
      await approveAll(market, modelOwner, staking);
      await staking.connect(modelOwner).stake(PARAMS.modelMinStake);
      await expect(modelRegistry.connect(modelOwner).registerModel(ethers.id("m"), ethers.ZeroHash, 101, "m", "", []))
        .to.be.revertedWithCustomError(modelRegistry, "RoyaltyTooHigh")
        .withArgs(101n, 100n);
      await expect(
        modelRegistry.connect(modelOwner).registerModel(ethers.id("m"), ethers.ZeroHash, 100, "m", "", []),
      ).to.emit(modelRegistry, "ModelRegistered");
    });

    it("both revert AccessControlUnauthorizedAccount for a non-admin", async function () {
      const { modelRegistry, stranger } = await loadFixture(deployMarket);
      await expectNotAdmin(modelRegistry.connect(stranger).setModelMinStake(0n), modelRegistry, stranger);
      await expectNotAdmin(modelRegistry.connect(stranger).setMaxRoyaltyBps(0), modelRegistry, stranger);
    });
  });

  describe("Marketplace setters", function () {
    it("setBidFee accepts exactly MAX_BID_FEE and rejects one more", async function () {
      const { marketplace, governance } = await loadFixture(deployMarket);
      const maxFee = 1_000n * E18;
      await expect(marketplace.connect(governance).setBidFee(maxFee))
        .to.emit(marketplace, "BidFeeSet")
        .withArgs(maxFee);
      expect(await marketplace.bidFee()).to.equal(maxFee);
      await expect(marketplace.connect(governance).setBidFee(maxFee + 1n))
        .to.be.revertedWithCustomError(marketplace, "BidFeeTooHigh")
        .withArgs(maxFee + 1n, maxFee);
    });

    it("setTreasury sets the treasury, emits TreasurySet, and rejects zero", async function () {
      const { marketplace, governance, stranger } = await loadFixture(deployMarket);
      await expect(marketplace.connect(governance).setTreasury(stranger.address))
        .to.emit(marketplace, "TreasurySet")
        .withArgs(stranger.address);
      expect(await marketplace.treasury()).to.equal(stranger.address);
      await expect(marketplace.connect(governance).setTreasury(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        marketplace,
        "ZeroAddress",
      );
    });

    it("both revert AccessControlUnauthorizedAccount for a non-admin", async function () {
      const { marketplace, stranger } = await loadFixture(deployMarket);
      await expectNotAdmin(marketplace.connect(stranger).setBidFee(0n), marketplace, stranger);
      await expectNotAdmin(marketplace.connect(stranger).setTreasury(stranger.address), marketplace, stranger);
    });
  });

  describe("SessionRouter setters", function () {
    it("setProtocolFeeBps accepts exactly 1000 bps and rejects 1001", async function () {
      const { sessionRouter, governance } = await loadFixture(deployMarket);
      await expect(sessionRouter.connect(governance).setProtocolFeeBps(1_000))
        .to.emit(sessionRouter, "ProtocolFeeSet")
        .withArgs(1_000n);
      expect(await sessionRouter.protocolFeeBps()).to.equal(1_000n);
      await expect(sessionRouter.connect(governance).setProtocolFeeBps(0))
        .to.emit(sessionRouter, "ProtocolFeeSet")
        .withArgs(0n);
      await expect(sessionRouter.connect(governance).setProtocolFeeBps(1_001))
        .to.be.revertedWithCustomError(sessionRouter, "ProtocolFeeTooHigh")
        .withArgs(1_001n, 1_000n);
    });

    it("setMaxSessionDuration accepts exactly 1 hour and 365 days and rejects one second outside", async function () {
      const { sessionRouter, governance } = await loadFixture(deployMarket);
      for (const duration of [HOUR, 365n * DAY]) {
        await expect(sessionRouter.connect(governance).setMaxSessionDuration(duration))
          .to.emit(sessionRouter, "MaxSessionDurationSet")
          .withArgs(duration);
        expect(await sessionRouter.maxSessionDuration()).to.equal(duration);
      }
      for (const duration of [HOUR - 1n, 365n * DAY + 1n]) {
        await expect(sessionRouter.connect(governance).setMaxSessionDuration(duration))
          .to.be.revertedWithCustomError(sessionRouter, "MaxSessionDurationOutOfBounds")
          .withArgs(duration);
      }
    });

    it("setChallengeWindow accepts exactly 60 seconds and 7 days and rejects one second outside", async function () {
      const { sessionRouter, governance } = await loadFixture(deployMarket);
      for (const window of [60n, 7n * DAY]) {
        await expect(sessionRouter.connect(governance).setChallengeWindow(window))
          .to.emit(sessionRouter, "ChallengeWindowSet")
          .withArgs(window);
        expect(await sessionRouter.challengeWindow()).to.equal(window);
      }
      for (const window of [59n, 7n * DAY + 1n]) {
        await expect(sessionRouter.connect(governance).setChallengeWindow(window))
          .to.be.revertedWithCustomError(sessionRouter, "ChallengeWindowOutOfBounds")
          .withArgs(window);
      }
    });

    it("setTreasury sets the treasury, emits TreasurySet, and rejects zero", async function () {
      const { sessionRouter, governance, stranger } = await loadFixture(deployMarket);
      await expect(sessionRouter.connect(governance).setTreasury(stranger.address))
        .to.emit(sessionRouter, "TreasurySet")
        .withArgs(stranger.address);
      expect(await sessionRouter.treasury()).to.equal(stranger.address);
      await expect(sessionRouter.connect(governance).setTreasury(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        sessionRouter,
        "ZeroAddress",
      );
    });

    it("all revert AccessControlUnauthorizedAccount for a non-admin", async function () {
      const { sessionRouter, stranger, provider } = await loadFixture(deployMarket);
      for (const caller of [stranger, provider]) {
        const router = sessionRouter.connect(caller);
        await expectNotAdmin(router.setProtocolFeeBps(0), sessionRouter, caller);
        await expectNotAdmin(router.setMaxSessionDuration(HOUR), sessionRouter, caller);
        await expectNotAdmin(router.setChallengeWindow(60n), sessionRouter, caller);
        await expectNotAdmin(router.setTreasury(caller.address), sessionRouter, caller);
      }
    });

    it("fee, duration and window apply to sessions opened after the change", async function () {
      const market = await loadFixture(marketWithBid);
      const { sessionRouter, governance } = market;
      const before = await openSession(market, 10n * E18);
      await sessionRouter.connect(governance).setProtocolFeeBps(1_000);
      await sessionRouter.connect(governance).setChallengeWindow(60n);
      await sessionRouter.connect(governance).setMaxSessionDuration(HOUR);

      const after = await openSession(market, 10n * E18, { maxDuration: 2n * HOUR });

      expect(before.terms.feeBps).to.equal(Number(PARAMS.protocolFeeBps));
      expect(before.terms.challengeWindow).to.equal(Number(PARAMS.challengeWindow));
      expect(after.terms.feeBps).to.equal(1_000);
      expect(after.terms.challengeWindow).to.equal(60);
      expect(after.terms.maxEndsAt - after.terms.openedAt).to.equal(Number(HOUR));
    });

    it("pays the protocol fee to the treasury set at settlement time, and SessionSettled names it (issue 5.4b)", async function () {
      const market = await loadFixture(marketWithBid);
      const { sessionRouter, escrow, governance, provider, treasury, stranger } = market;
      const session = await openSession(market, 10n * E18);
      await sessionRouter.connect(governance).setTreasury(stranger.address);
      await time.setNextBlockTimestamp(BigInt(session.terms.openedAt) + 1_000n);

      const tx = sessionRouter
        .connect(provider)
        .closeSession(session.terms, emptyReceipt(session.sessionId), "0x", "0x");

      const cost = 1_000n * session.terms.pricePerSecond;
      const fee = (cost * PARAMS.protocolFeeBps) / 10_000n;
      const royalty = (cost * 500n) / 10_000n;
      await expect(tx)
        .to.emit(sessionRouter, "SessionSettled")
        .withArgs(
          session.sessionId,
          market.user.address,
          provider.address,
          [cost, cost - fee - royalty, royalty, fee, 10n * E18 - cost, 1_000n, stranger.address],
          anyValue,
          provider.address,
          false,
        );
      expect(await escrow.balanceOf(stranger.address)).to.equal(fee);
      expect(await escrow.balanceOf(treasury.address)).to.equal(0n);
    });
  });

  describe("admin role", function () {
    it("passes to a new admin; the old one loses its powers once it renounces", async function () {
      const { sessionRouter, governance, stranger } = await loadFixture(deployMarket);
      await sessionRouter.connect(governance).grantRole(DEFAULT_ADMIN_ROLE, stranger.address);
      await sessionRouter.connect(governance).renounceRole(DEFAULT_ADMIN_ROLE, governance.address);

      await expect(sessionRouter.connect(stranger).setProtocolFeeBps(10)).to.emit(sessionRouter, "ProtocolFeeSet");
      await expectNotAdmin(sessionRouter.connect(governance).setProtocolFeeBps(20), sessionRouter, governance);
    });

    it("is held by governance on every contract after deployment", async function () {
      const { staking, providerRegistry, modelRegistry, marketplace, sessionRouter, governance, stranger } =
        await loadFixture(deployMarket);
      for (const contract of [staking, providerRegistry, modelRegistry, marketplace, sessionRouter]) {
        expect(await contract.hasRole(DEFAULT_ADMIN_ROLE, governance.address)).to.equal(true);
        expect(await contract.hasRole(DEFAULT_ADMIN_ROLE, stranger.address)).to.equal(false);
      }
    });
  });

  describe("MarketToken", function () {
    it("has its name, symbol, 18 decimals and governance as owner", async function () {
      const { token, governance } = await loadFixture(deployMarket);
      expect(await token.name()).to.equal("Inference Market Token");
      expect(await token.symbol()).to.equal("INFER");
      expect(await token.decimals()).to.equal(18n);
      expect(await token.owner()).to.equal(governance.address);
    });

    it("mints for the owner", async function () {
      const { token, governance, stranger } = await loadFixture(deployMarket);
      const supply = await token.totalSupply();
      await expect(token.connect(governance).mint(stranger.address, 5n))
        .to.emit(token, "Transfer")
        .withArgs(ethers.ZeroAddress, stranger.address, 5n);
      expect(await token.totalSupply()).to.equal(supply + 5n);
    });

    it("reverts OwnableUnauthorizedAccount when anyone else mints", async function () {
      const { token, stranger } = await loadFixture(deployMarket);
      await expect(token.connect(stranger).mint(stranger.address, 1n))
        .to.be.revertedWithCustomError(token, "OwnableUnauthorizedAccount")
        .withArgs(stranger.address);
    });

    it("sets an allowance from a permit signed off-chain, submitted by anyone", async function () {
      const market = await loadFixture(deployMarket);
      const { token, user, stranger } = market;
      const deadline = BigInt(await time.latest()) + HOUR;
      const signature = await signPermit(market.token, user, stranger.address, 7n * E18, deadline);

      await expect(
        token
          .connect(stranger)
          .permit(user.address, stranger.address, 7n * E18, deadline, signature.v, signature.r, signature.s),
      )
        .to.emit(token, "Approval")
        .withArgs(user.address, stranger.address, 7n * E18);
      expect(await token.allowance(user.address, stranger.address)).to.equal(7n * E18);
      expect(await token.nonces(user.address)).to.equal(1n);
      await expect(
        token.connect(stranger).transferFrom(user.address, stranger.address, 7n * E18),
      ).to.changeTokenBalances(token, [user, stranger], [-7n * E18, 7n * E18]);
    });

    it("rejects an expired permit, one signed by someone else, and a replay", async function () {
      const market = await loadFixture(deployMarket);
      const { token, user, stranger } = market;
      const now = BigInt(await time.latest());

      const expired = await signPermit(market.token, user, stranger.address, 1n, now);
      await expect(token.permit(user.address, stranger.address, 1n, now, expired.v, expired.r, expired.s))
        .to.be.revertedWithCustomError(token, "ERC2612ExpiredSignature")
        .withArgs(now);

      const deadline = now + HOUR;
      const forged = await signPermit(market.token, user, stranger.address, 1n, deadline, stranger);
      await expect(token.permit(user.address, stranger.address, 1n, deadline, forged.v, forged.r, forged.s))
        .to.be.revertedWithCustomError(token, "ERC2612InvalidSigner")
        .withArgs(stranger.address, user.address);

      const valid = await signPermit(market.token, user, stranger.address, 1n, deadline);
      await token.permit(user.address, stranger.address, 1n, deadline, valid.v, valid.r, valid.s);
      // The nonce moved on, so the same signature now recovers to some other address.
      await expect(
        token.permit(user.address, stranger.address, 1n, deadline, valid.v, valid.r, valid.s),
      ).to.be.revertedWithCustomError(token, "ERC2612InvalidSigner");
    });
  });
});
