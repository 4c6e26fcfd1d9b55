import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { Address, Hex } from "viem";
import { bidIdOf, providerOfBid } from "../protocol";
import { PARAMS, PRICES, marketWithBid, registerModel, registerProvider } from "./fixtures";

const UINT80_MAX = 2n ** 80n - 1n;
const SECOND_MODEL_HASH = ethers.id("second-model.gguf") as Hex;

/** `marketWithBid` plus a second model (same owner) that nobody bids on yet. */
async function marketWithSecondModel() {
  const market = await marketWithBid();
  const secondModelId = await registerModel(market, market.modelOwner, 0, SECOND_MODEL_HASH);
  return { ...market, secondModelId };
}

/** The prices a stored bid holds, in `Prices` form. */
function pricesOf(bid: { pricePerSecond: bigint; pricePerInputToken: bigint; pricePerOutputToken: bigint }) {
  return {
    perSecond: bid.pricePerSecond,
    perInputToken: bid.pricePerInputToken,
    perOutputToken: bid.pricePerOutputToken,
  };
}

const asTuple = (prices: typeof PRICES) => [prices.perSecond, prices.perInputToken, prices.perOutputToken];

describe("Marketplace", function () {
  describe("postBid", function () {
    it("stores the bid, pays exactly the bid fee to the treasury and emits BidPosted", async function () {
      const { marketplace, token, provider, treasury, secondModelId } = await loadFixture(marketWithSecondModel);
      const bidId = bidIdOf(provider.address as Address, secondModelId);
      expect(await marketplace.connect(provider).postBid.staticCall(secondModelId, PRICES)).to.equal(bidId);

      const tx = marketplace.connect(provider).postBid(secondModelId, PRICES);

      await expect(tx)
        .to.emit(marketplace, "BidPosted")
        .withArgs(bidId, provider.address, secondModelId, asTuple(PRICES), PARAMS.bidFee);
      await expect(tx).to.changeTokenBalances(
        token,
        [provider, treasury, marketplace],
        [-PARAMS.bidFee, PARAMS.bidFee, 0n],
      );
      const bid = await marketplace.getBid(bidId);
      expect(bid.modelId).to.equal(secondModelId);
      expect(pricesOf(bid)).to.deep.equal(PRICES);
      expect(bid.active).to.equal(true);
    });

    it("makes no transfer when the bid fee is zero", async function () {
      const { marketplace, token, governance, provider, secondModelId } = await loadFixture(marketWithSecondModel);
      await marketplace.connect(governance).setBidFee(0n);

      const tx = marketplace.connect(provider).postBid(secondModelId, PRICES);

      await expect(tx)
        .to.emit(marketplace, "BidPosted")
        .withArgs(
          bidIdOf(provider.address as Address, secondModelId),
          provider.address,
          secondModelId,
          asTuple(PRICES),
          0n,
        );
      await expect(tx).to.not.emit(token, "Transfer");
    });

    it("pays the fee to the treasury governance set last", async function () {
      const { marketplace, token, governance, provider, stranger, secondModelId } =
        await loadFixture(marketWithSecondModel);
      await marketplace.connect(governance).setTreasury(stranger.address);
      await expect(marketplace.connect(provider).postBid(secondModelId, PRICES)).to.changeTokenBalances(
        token,
        [provider, stranger],
        [-PARAMS.bidFee, PARAMS.bidFee],
      );
    });

    it("accepts zero prices and prices of exactly uint80 max", async function () {
      const { marketplace, provider, secondModelId, modelId, bidId } = await loadFixture(marketWithSecondModel);
      const highest = { perSecond: UINT80_MAX, perInputToken: UINT80_MAX, perOutputToken: UINT80_MAX };
      await marketplace.connect(provider).postBid(secondModelId, highest);
      expect(pricesOf(await marketplace.getBid(bidIdOf(provider.address as Address, secondModelId)))).to.deep.equal(
        highest,
      );

      const free = { perSecond: 0n, perInputToken: 0n, perOutputToken: 0n };
      await marketplace.connect(provider).updateBid(bidId, free);
      const bid = await marketplace.getBid(bidId);
      expect(pricesOf(bid)).to.deep.equal(free);
      expect(bid.modelId).to.equal(modelId);
    });

    it("reverts BidAlreadyActive for a second bid on the same model", async function () {
      const { marketplace, provider, modelId, bidId } = await loadFixture(marketWithBid);
      await expect(marketplace.connect(provider).postBid(modelId, PRICES))
        .to.be.revertedWithCustomError(marketplace, "BidAlreadyActive")
        .withArgs(bidId);
    });

    it("reverts ProviderNotRegistered (from the registry) for a caller that is not a provider", async function () {
      const { marketplace, providerRegistry, token, stranger, modelId } = await loadFixture(marketWithBid);
      await token.connect(stranger).approve(await marketplace.getAddress(), ethers.MaxUint256);
      await expect(marketplace.connect(stranger).postBid(modelId, PRICES))
        .to.be.revertedWithCustomError(providerRegistry, "ProviderNotRegistered")
        .withArgs(stranger.address);
    });

    it("reverts ProviderNotRegistered for a provider that deregistered", async function () {
      const { marketplace, providerRegistry, provider, secondModelId } = await loadFixture(marketWithSecondModel);
      await providerRegistry.connect(provider).deregister();
      await expect(marketplace.connect(provider).postBid(secondModelId, PRICES))
        .to.be.revertedWithCustomError(providerRegistry, "ProviderNotRegistered")
        .withArgs(provider.address);
    });

    it("reverts StakeBelowMinimum (from the registry) for an under-staked provider", async function () {
      const { marketplace, providerRegistry, staking, provider, secondModelId } =
        await loadFixture(marketWithSecondModel);
      await staking.connect(provider).requestUnstake(1n);
      await expect(marketplace.connect(provider).postBid(secondModelId, PRICES))
        .to.be.revertedWithCustomError(providerRegistry, "StakeBelowMinimum")
        .withArgs(provider.address, PARAMS.providerMinStake - 1n, PARAMS.providerMinStake);
    });

    it("reverts ModelNotActive for a deregistered or unknown model", async function () {
      const { marketplace, modelRegistry, modelOwner, provider, secondModelId } =
        await loadFixture(marketWithSecondModel);
      await modelRegistry.connect(modelOwner).deregisterModel(secondModelId);
      await expect(marketplace.connect(provider).postBid(secondModelId, PRICES))
        .to.be.revertedWithCustomError(modelRegistry, "ModelNotActive")
        .withArgs(secondModelId);

      const unknownId = ethers.id("never registered");
      await expect(marketplace.connect(provider).postBid(unknownId, PRICES))
        .to.be.revertedWithCustomError(modelRegistry, "ModelNotActive")
        .withArgs(unknownId);
    });

    for (const field of ["perSecond", "perInputToken", "perOutputToken"] as const) {
      it(`reverts PriceTooHigh for ${field} one above uint80 max`, async function () {
        const { marketplace, provider, secondModelId } = await loadFixture(marketWithSecondModel);
        await expect(marketplace.connect(provider).postBid(secondModelId, { ...PRICES, [field]: UINT80_MAX + 1n }))
          .to.be.revertedWithCustomError(marketplace, "PriceTooHigh")
          .withArgs(UINT80_MAX + 1n, UINT80_MAX);
      });
    }

    it("reverts in the token when the provider has not approved the fee", async function () {
      const { marketplace, token, provider, secondModelId } = await loadFixture(marketWithSecondModel);
      await token.connect(provider).approve(await marketplace.getAddress(), 0n);
      await expect(marketplace.connect(provider).postBid(secondModelId, PRICES))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(await marketplace.getAddress(), 0n, PARAMS.bidFee);
    });
  });

  describe("updateBid", function () {
    const NEW_PRICES = { perSecond: 5n, perInputToken: 6n, perOutputToken: 7n };

    it("changes the prices without a fee and emits BidUpdated", async function () {
      const { marketplace, token, provider, modelId, bidId } = await loadFixture(marketWithBid);

      const tx = marketplace.connect(provider).updateBid(bidId, NEW_PRICES);

      await expect(tx)
        .to.emit(marketplace, "BidUpdated")
        .withArgs(bidId, provider.address, modelId, asTuple(NEW_PRICES));
      await expect(tx).to.not.emit(token, "Transfer");
      const bid = await marketplace.getBid(bidId);
      expect(pricesOf(bid)).to.deep.equal(NEW_PRICES);
      expect(bid.active).to.equal(true);
    });

    it("reverts NotBidProvider for another caller", async function () {
      const { marketplace, stranger, bidId } = await loadFixture(marketWithBid);
      await expect(marketplace.connect(stranger).updateBid(bidId, NEW_PRICES))
        .to.be.revertedWithCustomError(marketplace, "NotBidProvider")
        .withArgs(bidId, stranger.address);
    });

    it("reverts NotBidProvider for the provider's own operator", async function () {
      const { marketplace, operator, bidId } = await loadFixture(marketWithBid);
      await expect(marketplace.connect(operator).updateBid(bidId, NEW_PRICES))
        .to.be.revertedWithCustomError(marketplace, "NotBidProvider")
        .withArgs(bidId, operator.address);
    });

    it("reverts BidNotActive for a deleted bid and for one never posted", async function () {
      const { marketplace, provider, bidId, secondModelId } = await loadFixture(marketWithSecondModel);
      await marketplace.connect(provider).deleteBid(bidId);
      await expect(marketplace.connect(provider).updateBid(bidId, NEW_PRICES))
        .to.be.revertedWithCustomError(marketplace, "BidNotActive")
        .withArgs(bidId);

      const neverPosted = bidIdOf(provider.address as Address, secondModelId);
      await expect(marketplace.connect(provider).updateBid(neverPosted, NEW_PRICES))
        .to.be.revertedWithCustomError(marketplace, "BidNotActive")
        .withArgs(neverPosted);
    });

    it("reverts PriceTooHigh one above uint80 max", async function () {
      const { marketplace, provider, bidId } = await loadFixture(marketWithBid);
      await expect(marketplace.connect(provider).updateBid(bidId, { ...NEW_PRICES, perOutputToken: UINT80_MAX + 1n }))
        .to.be.revertedWithCustomError(marketplace, "PriceTooHigh")
        .withArgs(UINT80_MAX + 1n, UINT80_MAX);
    });
  });

  describe("deleteBid", function () {
    it("deactivates the bid and emits BidDeleted", async function () {
      const { marketplace, provider, modelId, bidId } = await loadFixture(marketWithBid);
      await expect(marketplace.connect(provider).deleteBid(bidId))
        .to.emit(marketplace, "BidDeleted")
        .withArgs(bidId, provider.address, modelId);
      const bid = await marketplace.getBid(bidId);
      expect(bid.active).to.equal(false);
      expect(bid.modelId).to.equal(modelId);
    });

    it("reverts NotBidProvider for another caller", async function () {
      const { marketplace, stranger, bidId } = await loadFixture(marketWithBid);
      await expect(marketplace.connect(stranger).deleteBid(bidId))
        .to.be.revertedWithCustomError(marketplace, "NotBidProvider")
        .withArgs(bidId, stranger.address);
    });

    it("reverts BidNotActive for a bid already deleted", async function () {
      const { marketplace, provider, bidId } = await loadFixture(marketWithBid);
      await marketplace.connect(provider).deleteBid(bidId);
      await expect(marketplace.connect(provider).deleteBid(bidId))
        .to.be.revertedWithCustomError(marketplace, "BidNotActive")
        .withArgs(bidId);
    });

    it("lets the provider post again, charging the fee again", async function () {
      const { marketplace, token, provider, treasury, modelId, bidId } = await loadFixture(marketWithBid);
      await marketplace.connect(provider).deleteBid(bidId);
      const newPrices = { perSecond: 1n, perInputToken: 2n, perOutputToken: 3n };

      const tx = marketplace.connect(provider).postBid(modelId, newPrices);

      await expect(tx)
        .to.emit(marketplace, "BidPosted")
        .withArgs(bidId, provider.address, modelId, asTuple(newPrices), PARAMS.bidFee);
      await expect(tx).to.changeTokenBalances(token, [provider, treasury], [-PARAMS.bidFee, PARAMS.bidFee]);
      expect(pricesOf(await marketplace.getBid(bidId))).to.deep.equal(newPrices);
    });
  });

  describe("bid ids", function () {
    it("packs the provider and the model's low 96 bits, as protocol/ does, and round-trips", async function () {
      const { marketplace, provider, modelId, bidId } = await loadFixture(marketWithBid);
      // Fixed, spread-out inputs derived by hashing, so the check is deterministic.
      const cases: Array<[Address, Hex]> = [[provider.address as Address, modelId]];
      for (let i = 0; i < 8; i++) {
        const address = ethers.getAddress(ethers.dataSlice(ethers.id(`provider ${i}`), 12)) as Address;
        cases.push([address, ethers.id(`model ${i}`) as Hex]);
      }
      cases.push([ethers.ZeroAddress as Address, ethers.ZeroHash as Hex]);
      cases.push(["0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF", `0x${"ff".repeat(32)}`]);

      for (const [owner, id] of cases) {
        const onChain = await marketplace.bidIdOf(owner, id);
        expect(onChain).to.equal(bidIdOf(owner, id));
        expect(BigInt(onChain) & (2n ** 96n - 1n)).to.equal(BigInt(id) & (2n ** 96n - 1n));
        expect(await marketplace.providerOf(onChain)).to.equal(owner);
        expect(providerOfBid(onChain as Hex).toLowerCase()).to.equal(owner.toLowerCase());
      }
      expect(await marketplace.bidIdOf(provider.address, modelId)).to.equal(bidId);
    });

    it("gives two providers on one model different bids", async function () {
      const market = await loadFixture(marketWithBid);
      const secondProvider = market.others[0];
      const secondOperator = market.others[1];
      await registerProvider(market, secondProvider, secondOperator);
      await market.token.connect(secondProvider).approve(await market.marketplace.getAddress(), ethers.MaxUint256);
      const secondPrices = { perSecond: 9n, perInputToken: 9n, perOutputToken: 9n };
      await market.marketplace.connect(secondProvider).postBid(market.modelId, secondPrices);

      const secondBidId = bidIdOf(secondProvider.address as Address, market.modelId);
      expect(secondBidId).to.not.equal(market.bidId);
      expect(pricesOf(await market.marketplace.getBid(secondBidId))).to.deep.equal(secondPrices);
      expect(pricesOf(await market.marketplace.getBid(market.bidId))).to.deep.equal(PRICES);
    });
  });

  describe("a model leaving the market", function () {
    it("leaves its bids stored and active while the model reads inactive", async function () {
      const { marketplace, modelRegistry, modelOwner, provider, modelId, bidId } = await loadFixture(marketWithBid);
      await modelRegistry.connect(modelOwner).deregisterModel(modelId);

      expect((await modelRegistry.royaltyOf(modelId))[0]).to.equal(false);
      const bid = await marketplace.getBid(bidId);
      expect(bid.active).to.equal(true);
      expect(pricesOf(bid)).to.deep.equal(PRICES);
      // The provider can still withdraw it.
      await expect(marketplace.connect(provider).deleteBid(bidId)).to.emit(marketplace, "BidDeleted");
    });
  });

  describe("views", function () {
    it("exposes its token, registries, fee and treasury", async function () {
      const { marketplace, token, providerRegistry, modelRegistry, treasury } = await loadFixture(marketWithBid);
      expect(await marketplace.token()).to.equal(await token.getAddress());
      expect(await marketplace.providerRegistry()).to.equal(await providerRegistry.getAddress());
      expect(await marketplace.modelRegistry()).to.equal(await modelRegistry.getAddress());
      expect(await marketplace.bidFee()).to.equal(PARAMS.bidFee);
      expect(await marketplace.treasury()).to.equal(treasury.address);
      expect(await marketplace.MAX_BID_FEE()).to.equal(1_000n * 10n ** 18n);
    });

    it("returns an all-zero bid for an id never posted", async function () {
      const { marketplace } = await loadFixture(marketWithBid);
      const bid = await marketplace.getBid(ethers.id("nothing"));
      expect([bid.modelId, ...Object.values(pricesOf(bid)), bid.active]).to.deep.equal([
        ethers.ZeroHash,
        0n,
        0n,
        0n,
        false,
      ]);
    });
  });
});
