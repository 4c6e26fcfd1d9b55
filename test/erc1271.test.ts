/**
 * Contract wallets (ERC-1271) as provider and as user: approvals and receipts signed by the
 * wallet's owner key are accepted for the wallet, and a stranger's are not.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Address, Hex } from "viem";
import { type SessionApproval, bidIdOf } from "../protocol";
import type { SmartWallet } from "../typechain-types";
import {
  E18,
  MAX_PRICES,
  PARAMS,
  PRICES,
  deployMarket,
  openedSession,
  receiptFor,
  registerModel,
  signTyped,
} from "./fixtures";

async function walletMarket() {
  const market = await deployMarket();
  const [walletOwner, userOwner] = market.others;
  const deploy = async (owner: typeof walletOwner) =>
    (await (await ethers.getContractFactory("SmartWallet")).deploy(owner.address)) as unknown as SmartWallet;
  const providerWallet = await deploy(walletOwner);
  const userWallet = await deploy(userOwner);
  const { token, staking, providerRegistry, marketplace, sessionRouter } = market;

  // The provider is a contract: it stakes, registers and bids through its owner.
  const providerAddress = (await providerWallet.getAddress()) as Address;
  await token.mint(providerAddress, 1_000n * E18);
  const asProvider = providerWallet.connect(walletOwner);
  await asProvider.approve(await token.getAddress(), await staking.getAddress(), ethers.MaxUint256);
  await asProvider.approve(await token.getAddress(), await marketplace.getAddress(), ethers.MaxUint256);
  await asProvider.execute(
    await staking.getAddress(),
    staking.interface.encodeFunctionData("stake", [PARAMS.providerMinStake]),
  );
  await asProvider.execute(
    await providerRegistry.getAddress(),
    providerRegistry.interface.encodeFunctionData("register", ["http://127.0.0.1:8080", "", ethers.ZeroAddress]),
  );
  const modelId = await registerModel(market);
  await asProvider.execute(
    await marketplace.getAddress(),
    marketplace.interface.encodeFunctionData("postBid", [modelId, PRICES]),
  );

  const userAddress = (await userWallet.getAddress()) as Address;
  await token.mint(userAddress, 1_000n * E18);
  await userWallet
    .connect(userOwner)
    .approve(await token.getAddress(), await sessionRouter.getAddress(), ethers.MaxUint256);

  return {
    ...market,
    walletOwner: walletOwner,
    userOwner: userOwner,
    providerWallet,
    userWallet,
    providerAddress,
    userAddress,
    bidId: bidIdOf(providerAddress, modelId),
  };
}

async function approvalFor(market: Awaited<ReturnType<typeof walletMarket>>, user: Address): Promise<SessionApproval> {
  return {
    bidId: market.bidId,
    user,
    maxDeposit: 100n * E18,
    maxDuration: 3_600n,
    deadline: BigInt(await time.latest()) + 600n,
    nonce: 7n,
  };
}

describe("ERC-1271 contract wallets", () => {
  it("accepts an approval for a contract-wallet provider signed by the wallet's owner", async () => {
    const market = await loadFixture(walletMarket);
    const approval = await approvalFor(market, market.user.address as Address);
    const signature = await signTyped(market.walletOwner, market.domain, "SessionApproval", approval);
    await market.token.connect(market.user).approve(await market.sessionRouter.getAddress(), ethers.MaxUint256);

    const tx = await market.sessionRouter.connect(market.user).openSession(approval, signature, 10n * E18, MAX_PRICES);
    const { terms } = await openedSession(market, tx);
    expect(terms.provider).to.equal(market.providerAddress);
  });

  it("rejects an approval for a contract-wallet provider signed by anyone else", async () => {
    const market = await loadFixture(walletMarket);
    const approval = await approvalFor(market, market.user.address as Address);
    const signature = await signTyped(market.stranger, market.domain, "SessionApproval", approval);
    await market.token.connect(market.user).approve(await market.sessionRouter.getAddress(), ethers.MaxUint256);

    await expect(market.sessionRouter.connect(market.user).openSession(approval, signature, 10n * E18, MAX_PRICES))
      .to.be.revertedWithCustomError(market.sessionRouter, "InvalidApprovalSigner")
      .withArgs(market.providerAddress);
  });

  it("settles a contract-wallet user's session with a receipt its owner signed, and rejects a stranger's", async () => {
    const market = await loadFixture(walletMarket);
    const approval = await approvalFor(market, market.userAddress);
    const approvalSignature = await signTyped(market.walletOwner, market.domain, "SessionApproval", approval);
    const router = market.sessionRouter;
    const openData = router.interface.encodeFunctionData("openSession", [
      approval,
      approvalSignature,
      10n * E18,
      MAX_PRICES,
    ]);
    const tx = await market.userWallet.connect(market.userOwner).execute(await router.getAddress(), openData);
    const { sessionId, terms } = await openedSession(market, tx);

    const receipt = receiptFor(sessionId, 1n, 100n, 50n);
    const strangerSignature = await signTyped(market.stranger, market.domain, "UsageReceipt", receipt);
    const closeAsProvider = (signature: Hex) =>
      market.providerWallet
        .connect(market.walletOwner)
        .execute(
          router.getAddress(),
          router.interface.encodeFunctionData("closeSession", [terms, receipt, signature, "0x"]),
        );
    await expect(closeAsProvider(strangerSignature))
      .to.be.revertedWithCustomError(market.providerWallet, "CallFailed")
      .withArgs(router.interface.encodeErrorResult("InvalidUserSignature", []));

    const ownerSignature = await signTyped(market.userOwner, market.domain, "UsageReceipt", receipt);
    await expect(closeAsProvider(ownerSignature)).to.emit(router, "SessionSettled");
    expect((await router.getSessionState(sessionId)).status).to.equal(0n);
  });
});
