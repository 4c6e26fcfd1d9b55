import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  E18,
  PARAMS,
  approveAll,
  deployMarket,
  emptyReceipt,
  marketWithBid,
  openSession,
  registerProvider,
} from "./fixtures";

const ENDPOINT = "https://provider.example:8080";
const METADATA = "ipfs://provider-metadata";

/** A market where `provider` staked exactly the minimum but has not registered. */
async function stakedProvider() {
  const market = await deployMarket();
  await approveAll(market, market.provider, market.staking);
  await market.staking.connect(market.provider).stake(PARAMS.providerMinStake);
  return market;
}

/** A market with `provider` registered (operator = `operator`). */
async function registeredProvider() {
  const market = await deployMarket();
  await registerProvider(market);
  return market;
}

describe("ProviderRegistry", function () {
  describe("register", function () {
    it("records the provider and emits ProviderRegistered", async function () {
      const { providerRegistry, provider, operator } = await loadFixture(stakedProvider);
      const registeredAt = (await time.latest()) + 5;
      await time.setNextBlockTimestamp(registeredAt);

      await expect(providerRegistry.connect(provider).register(ENDPOINT, METADATA, operator.address))
        .to.emit(providerRegistry, "ProviderRegistered")
        .withArgs(provider.address, operator.address, ENDPOINT, METADATA);

      const record = await providerRegistry.getProvider(provider.address);
      expect(record.operator).to.equal(operator.address);
      expect(record.registeredAt).to.equal(BigInt(registeredAt));
      expect(record.active).to.equal(true);
      expect(record.endpoint).to.equal(ENDPOINT);
      expect(await providerRegistry.isActive(provider.address)).to.equal(true);
      expect(await providerRegistry.operatorOf(provider.address)).to.equal(operator.address);
      expect(await providerRegistry.activeOperatorOf(provider.address)).to.equal(operator.address);
    });

    it("accepts no operator, empty metadata, and the longest endpoint and metadata", async function () {
      const { providerRegistry, provider } = await loadFixture(stakedProvider);
      await expect(providerRegistry.connect(provider).register("x".repeat(256), "", ethers.ZeroAddress))
        .to.emit(providerRegistry, "ProviderRegistered")
        .withArgs(provider.address, ethers.ZeroAddress, "x".repeat(256), "");
      await providerRegistry.connect(provider).update(ENDPOINT, "m".repeat(2048));
      expect(await providerRegistry.activeOperatorOf(provider.address)).to.equal(ethers.ZeroAddress);
    });

    it("reverts ProviderAlreadyRegistered for an active provider", async function () {
      const { providerRegistry, provider } = await loadFixture(registeredProvider);
      await expect(providerRegistry.connect(provider).register(ENDPOINT, METADATA, ethers.ZeroAddress))
        .to.be.revertedWithCustomError(providerRegistry, "ProviderAlreadyRegistered")
        .withArgs(provider.address);
    });

    it("reverts StakeBelowMinimum one token unit under the minimum, and with no stake", async function () {
      const { providerRegistry, staking, provider, stranger } = await loadFixture(stakedProvider);
      await staking.connect(provider).requestUnstake(1n);
      await expect(providerRegistry.connect(provider).register(ENDPOINT, METADATA, ethers.ZeroAddress))
        .to.be.revertedWithCustomError(providerRegistry, "StakeBelowMinimum")
        .withArgs(provider.address, PARAMS.providerMinStake - 1n, PARAMS.providerMinStake);
      await expect(providerRegistry.connect(stranger).register(ENDPOINT, METADATA, ethers.ZeroAddress))
        .to.be.revertedWithCustomError(providerRegistry, "StakeBelowMinimum")
        .withArgs(stranger.address, 0n, PARAMS.providerMinStake);
    });

    it("reverts InvalidEndpoint for an empty or 257-byte endpoint", async function () {
      const { providerRegistry, provider } = await loadFixture(stakedProvider);
      await expect(
        providerRegistry.connect(provider).register("", METADATA, ethers.ZeroAddress),
      ).to.be.revertedWithCustomError(providerRegistry, "InvalidEndpoint");
      await expect(
        providerRegistry.connect(provider).register("x".repeat(257), METADATA, ethers.ZeroAddress),
      ).to.be.revertedWithCustomError(providerRegistry, "InvalidEndpoint");
    });

    it("reverts MetadataURITooLong for 2049 bytes of metadata", async function () {
      const { providerRegistry, provider } = await loadFixture(stakedProvider);
      await expect(providerRegistry.connect(provider).register(ENDPOINT, "m".repeat(2049), ethers.ZeroAddress))
        .to.be.revertedWithCustomError(providerRegistry, "MetadataURITooLong")
        .withArgs(2049n, 2048n);
    });

    it("re-registers a provider that left, with a new endpoint and operator", async function () {
      const { providerRegistry, provider, stranger } = await loadFixture(registeredProvider);
      await providerRegistry.connect(provider).deregister();
      const registeredAt = (await time.latest()) + 100;
      await time.setNextBlockTimestamp(registeredAt);

      await expect(providerRegistry.connect(provider).register("https://new.example", "", stranger.address))
        .to.emit(providerRegistry, "ProviderRegistered")
        .withArgs(provider.address, stranger.address, "https://new.example", "");

      const record = await providerRegistry.getProvider(provider.address);
      expect(record.active).to.equal(true);
      expect(record.operator).to.equal(stranger.address);
      expect(record.registeredAt).to.equal(BigInt(registeredAt));
      expect(record.endpoint).to.equal("https://new.example");
    });
  });

  describe("update", function () {
    it("changes the endpoint and emits ProviderUpdated", async function () {
      const { providerRegistry, provider, operator } = await loadFixture(registeredProvider);
      await expect(providerRegistry.connect(provider).update("https://moved.example", "ipfs://new"))
        .to.emit(providerRegistry, "ProviderUpdated")
        .withArgs(provider.address, "https://moved.example", "ipfs://new");
      const record = await providerRegistry.getProvider(provider.address);
      expect(record.endpoint).to.equal("https://moved.example");
      expect(record.operator).to.equal(operator.address);
    });

    it("reverts ProviderNotRegistered for a stranger and for a provider that left", async function () {
      const { providerRegistry, provider, stranger } = await loadFixture(registeredProvider);
      await expect(providerRegistry.connect(stranger).update(ENDPOINT, METADATA))
        .to.be.revertedWithCustomError(providerRegistry, "ProviderNotRegistered")
        .withArgs(stranger.address);
      await providerRegistry.connect(provider).deregister();
      await expect(providerRegistry.connect(provider).update(ENDPOINT, METADATA))
        .to.be.revertedWithCustomError(providerRegistry, "ProviderNotRegistered")
        .withArgs(provider.address);
    });

    it("checks the endpoint and metadata as register does", async function () {
      const { providerRegistry, provider } = await loadFixture(registeredProvider);
      await expect(providerRegistry.connect(provider).update("", METADATA)).to.be.revertedWithCustomError(
        providerRegistry,
        "InvalidEndpoint",
      );
      await expect(providerRegistry.connect(provider).update("x".repeat(257), METADATA)).to.be.revertedWithCustomError(
        providerRegistry,
        "InvalidEndpoint",
      );
      await expect(providerRegistry.connect(provider).update(ENDPOINT, "m".repeat(2049)))
        .to.be.revertedWithCustomError(providerRegistry, "MetadataURITooLong")
        .withArgs(2049n, 2048n);
    });
  });

  describe("setOperator", function () {
    it("replaces the operator and emits OperatorSet", async function () {
      const { providerRegistry, provider, stranger } = await loadFixture(registeredProvider);
      await expect(providerRegistry.connect(provider).setOperator(stranger.address))
        .to.emit(providerRegistry, "OperatorSet")
        .withArgs(provider.address, stranger.address);
      expect(await providerRegistry.operatorOf(provider.address)).to.equal(stranger.address);
      expect(await providerRegistry.activeOperatorOf(provider.address)).to.equal(stranger.address);
    });

    it("removes the operator with zero", async function () {
      const { providerRegistry, provider } = await loadFixture(registeredProvider);
      await expect(providerRegistry.connect(provider).setOperator(ethers.ZeroAddress))
        .to.emit(providerRegistry, "OperatorSet")
        .withArgs(provider.address, ethers.ZeroAddress);
      expect(await providerRegistry.operatorOf(provider.address)).to.equal(ethers.ZeroAddress);
      expect((await providerRegistry.getProvider(provider.address)).active).to.equal(true);
    });

    it("reverts ProviderNotRegistered for a stranger", async function () {
      const { providerRegistry, stranger } = await loadFixture(registeredProvider);
      await expect(providerRegistry.connect(stranger).setOperator(stranger.address))
        .to.be.revertedWithCustomError(providerRegistry, "ProviderNotRegistered")
        .withArgs(stranger.address);
    });
  });

  describe("deregister", function () {
    it("deactivates the provider, drops its operator and emits ProviderDeregistered", async function () {
      const { providerRegistry, provider } = await loadFixture(registeredProvider);
      const before = await providerRegistry.getProvider(provider.address);

      await expect(providerRegistry.connect(provider).deregister())
        .to.emit(providerRegistry, "ProviderDeregistered")
        .withArgs(provider.address);

      const record = await providerRegistry.getProvider(provider.address);
      expect(record.active).to.equal(false);
      expect(record.operator).to.equal(ethers.ZeroAddress);
      expect(record.registeredAt).to.equal(before.registeredAt);
      expect(record.endpoint).to.equal(before.endpoint);
      expect(await providerRegistry.isActive(provider.address)).to.equal(false);
      expect(await providerRegistry.operatorOf(provider.address)).to.equal(ethers.ZeroAddress);
      await expect(providerRegistry.activeOperatorOf(provider.address))
        .to.be.revertedWithCustomError(providerRegistry, "ProviderNotRegistered")
        .withArgs(provider.address);
    });

    it("reverts ProviderNotRegistered for a stranger", async function () {
      const { providerRegistry, stranger } = await loadFixture(registeredProvider);
      await expect(providerRegistry.connect(stranger).deregister())
        .to.be.revertedWithCustomError(providerRegistry, "ProviderNotRegistered")
        .withArgs(stranger.address);
    });

    it("reverts OpenSessionsRemain while a session is open, and succeeds once it is settled", async function () {
      const market = await loadFixture(marketWithBid);
      const { providerRegistry, sessionRouter, provider } = market;
      const session = await openSession(market);

      await expect(providerRegistry.connect(provider).deregister())
        .to.be.revertedWithCustomError(providerRegistry, "OpenSessionsRemain")
        .withArgs(provider.address, 1n);

      // The provider closing settles at once.
      await sessionRouter.connect(provider).closeSession(session.terms, emptyReceipt(session.sessionId), "0x", "0x");
      expect(await sessionRouter.openSessionCount(provider.address)).to.equal(0n);
      await expect(providerRegistry.connect(provider).deregister())
        .to.emit(providerRegistry, "ProviderDeregistered")
        .withArgs(provider.address);
    });

    it("counts every open session and a session still in its challenge window", async function () {
      const market = await loadFixture(marketWithBid);
      const { providerRegistry, sessionRouter, provider, user } = market;
      const first = await openSession(market);
      await openSession(market);
      await expect(providerRegistry.connect(provider).deregister())
        .to.be.revertedWithCustomError(providerRegistry, "OpenSessionsRemain")
        .withArgs(provider.address, 2n);

      // A user's close without the provider's countersignature only starts the challenge window.
      await sessionRouter.connect(user).closeSession(first.terms, emptyReceipt(first.sessionId), "0x", "0x");
      await expect(providerRegistry.connect(provider).deregister())
        .to.be.revertedWithCustomError(providerRegistry, "OpenSessionsRemain")
        .withArgs(provider.address, 2n);
    });

    it("reverts SessionRouterNotSet in a registry that was never given its router", async function () {
      const { staking, governance, provider } = await loadFixture(stakedProvider);
      const registry = await ethers
        .getContractFactory("ProviderRegistry")
        .then((factory) => factory.deploy(staking, governance.address, PARAMS.providerMinStake));
      await registry.connect(provider).register(ENDPOINT, METADATA, ethers.ZeroAddress);

      await expect(registry.connect(provider).deregister()).to.be.revertedWithCustomError(
        registry,
        "SessionRouterNotSet",
      );
    });
  });

  describe("activeOperatorOf", function () {
    it("reverts ProviderNotRegistered for an address that never registered", async function () {
      const { providerRegistry, stranger } = await loadFixture(registeredProvider);
      await expect(providerRegistry.activeOperatorOf(stranger.address))
        .to.be.revertedWithCustomError(providerRegistry, "ProviderNotRegistered")
        .withArgs(stranger.address);
    });

    it("reverts StakeBelowMinimum once an unstake request takes the stake under the minimum", async function () {
      const { providerRegistry, staking, provider } = await loadFixture(registeredProvider);
      await staking.connect(provider).requestUnstake(1n);
      await expect(providerRegistry.activeOperatorOf(provider.address))
        .to.be.revertedWithCustomError(providerRegistry, "StakeBelowMinimum")
        .withArgs(provider.address, PARAMS.providerMinStake - 1n, PARAMS.providerMinStake);
      // Still registered, so the plain views are unchanged.
      expect(await providerRegistry.isActive(provider.address)).to.equal(true);
    });

    it("reverts StakeBelowMinimum when governance raises the minimum, and recovers with more stake", async function () {
      const { providerRegistry, staking, governance, provider, operator } = await loadFixture(registeredProvider);
      await providerRegistry.connect(governance).setProviderMinStake(PARAMS.providerMinStake + E18);
      await expect(providerRegistry.activeOperatorOf(provider.address))
        .to.be.revertedWithCustomError(providerRegistry, "StakeBelowMinimum")
        .withArgs(provider.address, PARAMS.providerMinStake, PARAMS.providerMinStake + E18);

      await staking.connect(provider).stake(E18);
      expect(await providerRegistry.activeOperatorOf(provider.address)).to.equal(operator.address);
    });
  });

  describe("views", function () {
    it("returns an all-zero record for an address that never registered", async function () {
      const { providerRegistry, stranger } = await loadFixture(registeredProvider);
      const record = await providerRegistry.getProvider(stranger.address);
      expect([record.operator, record.registeredAt, record.active, record.endpoint]).to.deep.equal([
        ethers.ZeroAddress,
        0n,
        false,
        "",
      ]);
      expect(await providerRegistry.isActive(stranger.address)).to.equal(false);
      expect(await providerRegistry.operatorOf(stranger.address)).to.equal(ethers.ZeroAddress);
    });

    it("exposes its staking contract, minimum stake, router and limits", async function () {
      const { providerRegistry, staking, sessionRouter } = await loadFixture(deployMarket);
      expect(await providerRegistry.staking()).to.equal(await staking.getAddress());
      expect(await providerRegistry.providerMinStake()).to.equal(PARAMS.providerMinStake);
      expect(await providerRegistry.sessionRouter()).to.equal(await sessionRouter.getAddress());
      expect(await providerRegistry.MAX_ENDPOINT_LENGTH()).to.equal(256n);
      expect(await providerRegistry.MAX_METADATA_URI_LENGTH()).to.equal(2048n);
    });
  });
});
