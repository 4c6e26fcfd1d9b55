import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Address, Hex } from "viem";
import { modelIdOf } from "../protocol";
import { CONTENT_HASH, PARAMS, approveAll, deployMarket, registerModel } from "./fixtures";

const ADAPTER_HASH = ethers.id("tiny-lora.gguf") as Hex;
const OTHER_HASH = ethers.id("other-model.gguf") as Hex;
const NAME = "tiny";
const URI = "file://tiny.gguf";
const TAGS = ["test", "llama"];

/** A market with `modelOwner` staked at the minimum and its base model registered (5% royalty). */
async function marketWithModel() {
  const market = await deployMarket();
  const baseModelId = await registerModel(market);
  // `stranger` can register models too (it owns the adapters below).
  await approveAll(market, market.stranger, market.staking);
  await market.staking.connect(market.stranger).stake(PARAMS.modelMinStake);
  return { ...market, baseModelId };
}

/** `marketWithModel` plus an adapter of the base model owned by `stranger`. */
async function marketWithAdapter() {
  const market = await marketWithModel();
  await market.modelRegistry
    .connect(market.stranger)
    .registerModel(ADAPTER_HASH, market.baseModelId, 100, "tiny-lora", URI, []);
  const adapterId = (await market.modelRegistry.modelIdOf(market.stranger.address, ADAPTER_HASH)) as Hex;
  return { ...market, adapterId };
}

describe("ModelRegistry", function () {
  describe("registerModel", function () {
    it("registers a base model, returns its id and emits ModelRegistered", async function () {
      const { modelRegistry, stranger } = await loadFixture(marketWithModel);
      const expectedId = modelIdOf(stranger.address as Address, OTHER_HASH);
      const registry = modelRegistry.connect(stranger);
      expect(await registry.registerModel.staticCall(OTHER_HASH, ethers.ZeroHash, 2_000, NAME, URI, TAGS)).to.equal(
        expectedId,
      );
      const registeredAt = (await time.latest()) + 7;
      await time.setNextBlockTimestamp(registeredAt);

      await expect(registry.registerModel(OTHER_HASH, ethers.ZeroHash, 2_000, NAME, URI, TAGS))
        .to.emit(modelRegistry, "ModelRegistered")
        .withArgs(expectedId, stranger.address, ethers.ZeroHash, OTHER_HASH, 2_000n, NAME, URI, TAGS);

      const model = await modelRegistry.getModel(expectedId);
      expect(model.owner).to.equal(stranger.address);
      expect(model.royaltyBps).to.equal(2_000n);
      expect(model.active).to.equal(true);
      expect(model.registeredAt).to.equal(BigInt(registeredAt));
      expect(model.contentHash).to.equal(OTHER_HASH);
      expect(model.baseModelId).to.equal(ethers.ZeroHash);
      expect(await modelRegistry.royaltyOf(expectedId)).to.deep.equal([true, stranger.address, 2_000n]);
    });

    it("registers a LoRA adapter of an active base model", async function () {
      const { modelRegistry, stranger, baseModelId } = await loadFixture(marketWithModel);
      const adapterId = modelIdOf(stranger.address as Address, ADAPTER_HASH);

      await expect(modelRegistry.connect(stranger).registerModel(ADAPTER_HASH, baseModelId, 0, "lora", URI, []))
        .to.emit(modelRegistry, "ModelRegistered")
        .withArgs(adapterId, stranger.address, baseModelId, ADAPTER_HASH, 0n, "lora", URI, []);
      expect((await modelRegistry.getModel(adapterId)).baseModelId).to.equal(baseModelId);
    });

    it("accepts the longest name, uri, tag list and tag", async function () {
      const { modelRegistry, stranger } = await loadFixture(marketWithModel);
      const tags = Array.from({ length: 16 }, (_, i) => `${i}`.padEnd(64, "t"));
      await expect(
        modelRegistry
          .connect(stranger)
          .registerModel(OTHER_HASH, ethers.ZeroHash, 0, "n".repeat(128), "u".repeat(2048), tags),
      ).to.emit(modelRegistry, "ModelRegistered");
    });

    it("reverts BaseModelIsAdapter for an adapter of an adapter", async function () {
      const { modelRegistry, modelOwner, adapterId } = await loadFixture(marketWithAdapter);
      await expect(modelRegistry.connect(modelOwner).registerModel(OTHER_HASH, adapterId, 0, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "BaseModelIsAdapter")
        .withArgs(adapterId);
    });

    it("reverts ModelNotActive for a deregistered or unknown base model", async function () {
      const { modelRegistry, modelOwner, stranger, baseModelId } = await loadFixture(marketWithModel);
      await modelRegistry.connect(modelOwner).deregisterModel(baseModelId);
      await expect(modelRegistry.connect(stranger).registerModel(ADAPTER_HASH, baseModelId, 0, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "ModelNotActive")
        .withArgs(baseModelId);

      const unknownId = ethers.id("never registered");
      await expect(modelRegistry.connect(stranger).registerModel(ADAPTER_HASH, unknownId, 0, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "ModelNotActive")
        .withArgs(unknownId);
    });

    it("reverts ModelAlreadyRegistered for the same owner and content hash", async function () {
      const { modelRegistry, modelOwner, baseModelId } = await loadFixture(marketWithModel);
      await expect(modelRegistry.connect(modelOwner).registerModel(CONTENT_HASH, ethers.ZeroHash, 0, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "ModelAlreadyRegistered")
        .withArgs(baseModelId);
    });

    it("lets another owner register the same file under its own id", async function () {
      const { modelRegistry, stranger, baseModelId } = await loadFixture(marketWithModel);
      const id = modelIdOf(stranger.address as Address, CONTENT_HASH);
      expect(id).to.not.equal(baseModelId);
      await expect(modelRegistry.connect(stranger).registerModel(CONTENT_HASH, ethers.ZeroHash, 0, NAME, URI, []))
        .to.emit(modelRegistry, "ModelRegistered")
        .withArgs(id, stranger.address, ethers.ZeroHash, CONTENT_HASH, 0n, NAME, URI, []);
    });

    it("re-activates a deregistered model with new terms under the same id", async function () {
      const { modelRegistry, modelOwner, baseModelId } = await loadFixture(marketWithModel);
      await modelRegistry.connect(modelOwner).deregisterModel(baseModelId);

      await expect(modelRegistry.connect(modelOwner).registerModel(CONTENT_HASH, ethers.ZeroHash, 1_500, "v2", URI, []))
        .to.emit(modelRegistry, "ModelRegistered")
        .withArgs(baseModelId, modelOwner.address, ethers.ZeroHash, CONTENT_HASH, 1_500n, "v2", URI, []);
      expect(await modelRegistry.royaltyOf(baseModelId)).to.deep.equal([true, modelOwner.address, 1_500n]);
    });

    it("reverts BaseModelMismatch when a re-registration would change the model's kind or base", async function () {
      const { modelRegistry, modelOwner, stranger, baseModelId, adapterId } = await loadFixture(marketWithAdapter);
      // A base model cannot come back as an adapter (of another base)...
      await modelRegistry.connect(stranger).registerModel(OTHER_HASH, ethers.ZeroHash, 0, "other", URI, []);
      const otherBaseId = (await modelRegistry.modelIdOf(stranger.address, OTHER_HASH)) as Hex;
      await modelRegistry.connect(modelOwner).deregisterModel(baseModelId);
      await expect(modelRegistry.connect(modelOwner).registerModel(CONTENT_HASH, otherBaseId, 0, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "BaseModelMismatch")
        .withArgs(baseModelId, ethers.ZeroHash, otherBaseId);

      // ...and an adapter cannot come back as a base model or as an adapter of something else.
      await modelRegistry.connect(stranger).deregisterModel(adapterId);
      await expect(modelRegistry.connect(stranger).registerModel(ADAPTER_HASH, ethers.ZeroHash, 0, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "BaseModelMismatch")
        .withArgs(adapterId, baseModelId, ethers.ZeroHash);
      await expect(modelRegistry.connect(stranger).registerModel(ADAPTER_HASH, otherBaseId, 0, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "BaseModelMismatch")
        .withArgs(adapterId, baseModelId, otherBaseId);
    });

    it("reverts ZeroContentHash", async function () {
      const { modelRegistry, stranger } = await loadFixture(marketWithModel);
      await expect(
        modelRegistry.connect(stranger).registerModel(ethers.ZeroHash, ethers.ZeroHash, 0, NAME, URI, []),
      ).to.be.revertedWithCustomError(modelRegistry, "ZeroContentHash");
    });

    it("reverts InvalidName for an empty or 129-byte name", async function () {
      const { modelRegistry, stranger } = await loadFixture(marketWithModel);
      const registry = modelRegistry.connect(stranger);
      await expect(registry.registerModel(OTHER_HASH, ethers.ZeroHash, 0, "", URI, [])).to.be.revertedWithCustomError(
        modelRegistry,
        "InvalidName",
      );
      await expect(
        registry.registerModel(OTHER_HASH, ethers.ZeroHash, 0, "n".repeat(129), URI, []),
      ).to.be.revertedWithCustomError(modelRegistry, "InvalidName");
    });

    it("reverts MetadataTooLong for a 2049-byte uri, 17 tags, or a 65-byte tag", async function () {
      const { modelRegistry, stranger } = await loadFixture(marketWithModel);
      const registry = modelRegistry.connect(stranger);
      await expect(
        registry.registerModel(OTHER_HASH, ethers.ZeroHash, 0, NAME, "u".repeat(2049), []),
      ).to.be.revertedWithCustomError(modelRegistry, "MetadataTooLong");
      const seventeenTags = Array.from({ length: 17 }, (_, i) => `tag${i}`);
      await expect(
        registry.registerModel(OTHER_HASH, ethers.ZeroHash, 0, NAME, URI, seventeenTags),
      ).to.be.revertedWithCustomError(modelRegistry, "MetadataTooLong");
      await expect(
        registry.registerModel(OTHER_HASH, ethers.ZeroHash, 0, NAME, URI, ["ok", "t".repeat(65)]),
      ).to.be.revertedWithCustomError(modelRegistry, "MetadataTooLong");
    });

    it("reverts RoyaltyTooHigh one basis point above the maximum", async function () {
      const { modelRegistry, stranger } = await loadFixture(marketWithModel);
      await expect(modelRegistry.connect(stranger).registerModel(OTHER_HASH, ethers.ZeroHash, 2_001, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "RoyaltyTooHigh")
        .withArgs(2_001n, PARAMS.maxRoyaltyBps);
    });

    it("reverts StakeBelowMinimum for an owner under the minimum stake", async function () {
      const { modelRegistry, staking, stranger, user } = await loadFixture(marketWithModel);
      await expect(modelRegistry.connect(user).registerModel(OTHER_HASH, ethers.ZeroHash, 0, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "StakeBelowMinimum")
        .withArgs(user.address, 0n, PARAMS.modelMinStake);

      await staking.connect(stranger).requestUnstake(1n);
      await expect(modelRegistry.connect(stranger).registerModel(OTHER_HASH, ethers.ZeroHash, 0, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "StakeBelowMinimum")
        .withArgs(stranger.address, PARAMS.modelMinStake - 1n, PARAMS.modelMinStake);
    });
  });

  describe("updateModel", function () {
    it("changes the royalty and emits ModelUpdated", async function () {
      const { modelRegistry, modelOwner, baseModelId } = await loadFixture(marketWithModel);
      await expect(modelRegistry.connect(modelOwner).updateModel(baseModelId, 2_000, "renamed", "ipfs://x", ["a"]))
        .to.emit(modelRegistry, "ModelUpdated")
        .withArgs(baseModelId, 2_000n, "renamed", "ipfs://x", ["a"]);
      expect(await modelRegistry.royaltyOf(baseModelId)).to.deep.equal([true, modelOwner.address, 2_000n]);
      expect((await modelRegistry.getModel(baseModelId)).contentHash).to.equal(CONTENT_HASH);
    });

    it("reverts NotModelOwner for another caller", async function () {
      const { modelRegistry, stranger, baseModelId } = await loadFixture(marketWithModel);
      await expect(modelRegistry.connect(stranger).updateModel(baseModelId, 0, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "NotModelOwner")
        .withArgs(baseModelId, stranger.address);
    });

    it("reverts ModelNotActive for a deregistered or unknown model", async function () {
      const { modelRegistry, modelOwner, baseModelId } = await loadFixture(marketWithModel);
      await modelRegistry.connect(modelOwner).deregisterModel(baseModelId);
      await expect(modelRegistry.connect(modelOwner).updateModel(baseModelId, 0, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "ModelNotActive")
        .withArgs(baseModelId);
      const unknownId = ethers.id("never registered");
      await expect(modelRegistry.connect(modelOwner).updateModel(unknownId, 0, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "ModelNotActive")
        .withArgs(unknownId);
    });

    it("checks the royalty and metadata as registerModel does", async function () {
      const { modelRegistry, modelOwner, baseModelId } = await loadFixture(marketWithModel);
      const registry = modelRegistry.connect(modelOwner);
      await expect(registry.updateModel(baseModelId, 2_001, NAME, URI, []))
        .to.be.revertedWithCustomError(modelRegistry, "RoyaltyTooHigh")
        .withArgs(2_001n, PARAMS.maxRoyaltyBps);
      await expect(registry.updateModel(baseModelId, 0, "", URI, [])).to.be.revertedWithCustomError(
        modelRegistry,
        "InvalidName",
      );
      await expect(registry.updateModel(baseModelId, 0, "n".repeat(129), URI, [])).to.be.revertedWithCustomError(
        modelRegistry,
        "InvalidName",
      );
      await expect(registry.updateModel(baseModelId, 0, NAME, "u".repeat(2049), [])).to.be.revertedWithCustomError(
        modelRegistry,
        "MetadataTooLong",
      );
      await expect(
        registry.updateModel(
          baseModelId,
          0,
          NAME,
          URI,
          Array.from({ length: 17 }, () => "t"),
        ),
      ).to.be.revertedWithCustomError(modelRegistry, "MetadataTooLong");
      await expect(registry.updateModel(baseModelId, 0, NAME, URI, ["t".repeat(65)])).to.be.revertedWithCustomError(
        modelRegistry,
        "MetadataTooLong",
      );
    });
  });

  describe("deregisterModel", function () {
    it("deactivates the model and emits ModelDeregistered", async function () {
      const { modelRegistry, modelOwner, baseModelId } = await loadFixture(marketWithModel);
      await expect(modelRegistry.connect(modelOwner).deregisterModel(baseModelId))
        .to.emit(modelRegistry, "ModelDeregistered")
        .withArgs(baseModelId);
      expect(await modelRegistry.royaltyOf(baseModelId)).to.deep.equal([false, modelOwner.address, 500n]);
      expect((await modelRegistry.getModel(baseModelId)).active).to.equal(false);
    });

    it("leaves the base model's adapters active", async function () {
      const { modelRegistry, modelOwner, baseModelId, adapterId } = await loadFixture(marketWithAdapter);
      await modelRegistry.connect(modelOwner).deregisterModel(baseModelId);
      expect((await modelRegistry.royaltyOf(adapterId))[0]).to.equal(true);
    });

    it("reverts NotModelOwner for another caller", async function () {
      const { modelRegistry, stranger, baseModelId } = await loadFixture(marketWithModel);
      await expect(modelRegistry.connect(stranger).deregisterModel(baseModelId))
        .to.be.revertedWithCustomError(modelRegistry, "NotModelOwner")
        .withArgs(baseModelId, stranger.address);
    });

    it("reverts ModelNotActive for a model already deregistered", async function () {
      const { modelRegistry, modelOwner, baseModelId } = await loadFixture(marketWithModel);
      await modelRegistry.connect(modelOwner).deregisterModel(baseModelId);
      await expect(modelRegistry.connect(modelOwner).deregisterModel(baseModelId))
        .to.be.revertedWithCustomError(modelRegistry, "ModelNotActive")
        .withArgs(baseModelId);
    });
  });

  describe("views", function () {
    it("computes modelIdOf exactly as protocol/ does", async function () {
      const { modelRegistry, modelOwner, stranger } = await loadFixture(deployMarket);
      const cases: Array<[Address, Hex]> = [
        [modelOwner.address as Address, CONTENT_HASH],
        [stranger.address as Address, ADAPTER_HASH],
        [ethers.ZeroAddress as Address, ethers.ZeroHash as Hex],
        ["0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF", `0x${"ff".repeat(32)}`],
      ];
      for (const [owner, contentHash] of cases) {
        expect(await modelRegistry.modelIdOf(owner, contentHash)).to.equal(modelIdOf(owner, contentHash));
      }
    });

    it("royaltyOf gives the effective royalty: the model's, capped by maxRoyaltyBps as it is now", async function () {
      const market = await loadFixture(deployMarket);
      const { modelRegistry, governance, modelOwner } = market;
      const modelId = await registerModel(market, modelOwner, 1_500);
      expect(await modelRegistry.royaltyOf(modelId)).to.deep.equal([true, modelOwner.address, 1_500n]);
      await modelRegistry.connect(governance).setMaxRoyaltyBps(1_000);
      expect(await modelRegistry.royaltyOf(modelId)).to.deep.equal([true, modelOwner.address, 1_000n]);
      // The record keeps what the owner asked; raising the cap again gives it back.
      expect((await modelRegistry.getModel(modelId)).royaltyBps).to.equal(1_500n);
      await modelRegistry.connect(governance).setMaxRoyaltyBps(1_500);
      expect(await modelRegistry.royaltyOf(modelId)).to.deep.equal([true, modelOwner.address, 1_500n]);
      await modelRegistry.connect(governance).setMaxRoyaltyBps(0);
      expect(await modelRegistry.royaltyOf(modelId)).to.deep.equal([true, modelOwner.address, 0n]);
    });

    it("reports an unknown model as inactive with no owner", async function () {
      const { modelRegistry } = await loadFixture(deployMarket);
      const unknownId = ethers.id("never registered");
      expect(await modelRegistry.royaltyOf(unknownId)).to.deep.equal([false, ethers.ZeroAddress, 0n]);
      expect((await modelRegistry.getModel(unknownId)).owner).to.equal(ethers.ZeroAddress);
    });

    it("exposes its staking contract, minimum stake and limits", async function () {
      const { modelRegistry, staking } = await loadFixture(deployMarket);
      expect(await modelRegistry.staking()).to.equal(await staking.getAddress());
      expect(await modelRegistry.modelMinStake()).to.equal(PARAMS.modelMinStake);
      expect(await modelRegistry.maxRoyaltyBps()).to.equal(PARAMS.maxRoyaltyBps);
      expect(await modelRegistry.ROYALTY_CAP_BPS()).to.equal(5_000n);
      expect(await modelRegistry.MAX_NAME_LENGTH()).to.equal(128n);
      expect(await modelRegistry.MAX_URI_LENGTH()).to.equal(2048n);
      expect(await modelRegistry.MAX_TAGS()).to.equal(16n);
      expect(await modelRegistry.MAX_TAG_LENGTH()).to.equal(64n);
    });
  });
});
