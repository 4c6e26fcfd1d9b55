/**
 * Contract wallets (ERC-1271) as provider, operator and user. A provider's (or operator's) approvals
 * and countersignatures signed by the wallet's owner key are accepted for the wallet (ERC-1271), a
 * stranger's are not. A
 * contract-wallet user opens with an EOA session key, and its receipts are plain ECDSA by that key:
 * never ERC-1271, so a wallet that later rejects everything cannot un-sign them (issue 5, item 1).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { Address, Hex } from "viem";
import {
  type SessionApproval,
  type UsageReceipt,
  bidIdOf,
  emptyReceipt,
  hashSessionTypedData,
  sessionCost,
} from "../protocol";
import type { SmartWallet } from "../typechain-types";
import {
  ANY_FEE_BPS,
  ANY_ROYALTY_BPS,
  E18,
  MAX_PRICES,
  PARAMS,
  PRICES,
  deployMarket,
  marketWithBid,
  openSession,
  openedSession,
  receiptFor,
  receiptTuple,
  registerModel,
  signReceipt,
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
  // The key the wallet user's client keeps for its sessions: a fresh EOA, not the wallet's owner.
  const sessionKey = new ethers.Wallet(ethers.id("erc1271.test session key"));
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
    sessionKey,
    bidId: bidIdOf(providerAddress, modelId),
  };
}

type WalletMarket = Awaited<ReturnType<typeof walletMarket>>;

const WALLET_DEPOSIT = 10n * E18;
const ERC1271_MAGIC = "0x1626ba7e";

/**
 * The wallet user opens a session (its owner sends the call through the wallet) naming `sessionKey`;
 * returns the session and a close by the contract-wallet provider.
 */
async function openAsWallet(market: WalletMarket, sessionKey: string) {
  const approval = await approvalFor(market, market.userAddress);
  const approvalSignature = await signTyped(market.walletOwner, market.domain, "SessionApproval", approval);
  const router = market.sessionRouter;
  const wallet = market.userWallet.connect(market.userOwner);
  const openData = router.interface.encodeFunctionData("openSession", [
    approval,
    approvalSignature,
    WALLET_DEPOSIT,
    MAX_PRICES,
    sessionKey,
  ]);
  const tx = await wallet.execute(await router.getAddress(), openData);
  const { sessionId, terms } = await openedSession(market, tx);
  const closeAsProvider = async (receipt: UsageReceipt, signature: Hex) =>
    market.providerWallet
      .connect(market.walletOwner)
      .execute(
        await router.getAddress(),
        router.interface.encodeFunctionData("closeSession", [terms, receipt, signature, "0x"]),
      );
  return { router, wallet, sessionId, terms, closeAsProvider };
}

/** The settlement of a `SessionSettled` event in a transaction. */
async function openedSettlement(market: WalletMarket, tx: { hash: string }) {
  const receipt = await ethers.provider.getTransactionReceipt(tx.hash);
  for (const log of receipt!.logs) {
    const parsed = market.sessionRouter.interface.parseLog(log);
    if (parsed?.name === "SessionSettled") {
      const settlement = parsed.args.settlement as { cost: bigint; elapsedSeconds: bigint };
      return { cost: settlement.cost, elapsedSeconds: settlement.elapsedSeconds };
    }
  }
  throw new Error(`transaction ${tx.hash} emitted no SessionSettled`);
}

async function approvalFor(market: Awaited<ReturnType<typeof walletMarket>>, user: Address): Promise<SessionApproval> {
  return {
    bidId: market.bidId,
    user,
    maxDeposit: 100n * E18,
    maxDuration: 3_600n,
    deadline: BigInt(await time.latest()) + 600n,
    nonce: 7n,
    maxRoyaltyBps: ANY_ROYALTY_BPS,
    maxFeeBps: ANY_FEE_BPS,
  };
}

describe("ERC-1271 contract wallets", () => {
  it("accepts an approval for a contract-wallet provider signed by the wallet's owner", async () => {
    const market = await loadFixture(walletMarket);
    const approval = await approvalFor(market, market.user.address as Address);
    const signature = await signTyped(market.walletOwner, market.domain, "SessionApproval", approval);
    await market.token.connect(market.user).approve(await market.sessionRouter.getAddress(), ethers.MaxUint256);

    const tx = await market.sessionRouter
      .connect(market.user)
      .openSession(approval, signature, 10n * E18, MAX_PRICES, approval.user);
    const { terms } = await openedSession(market, tx);
    expect(terms.provider).to.equal(market.providerAddress);
  });

  it("rejects an approval for a contract-wallet provider signed by anyone else", async () => {
    const market = await loadFixture(walletMarket);
    const approval = await approvalFor(market, market.user.address as Address);
    const signature = await signTyped(market.stranger, market.domain, "SessionApproval", approval);
    await market.token.connect(market.user).approve(await market.sessionRouter.getAddress(), ethers.MaxUint256);

    await expect(
      market.sessionRouter.connect(market.user).openSession(approval, signature, 10n * E18, MAX_PRICES, approval.user),
    )
      .to.be.revertedWithCustomError(market.sessionRouter, "InvalidApprovalSigner")
      .withArgs(market.providerAddress);
  });

  it("a contract-wallet operator's approval and countersignature are accepted through ERC-1271", async () => {
    const market = await loadFixture(marketWithBid);
    const [operatorOwner] = market.others;
    const operatorWallet = (await (
      await ethers.getContractFactory("SmartWallet")
    ).deploy(operatorOwner.address)) as unknown as SmartWallet;
    await market.providerRegistry.connect(market.provider).setOperator(await operatorWallet.getAddress());

    // The wallet's owner signs for the operator wallet: neither the provider nor the operator address recovers.
    const session = await openSession(market, 10n * E18, {}, operatorOwner);
    expect(session.terms.provider).to.equal(market.provider.address);
    const receipt = receiptFor(session.sessionId, 1n, 10n, 10n);
    const countersignature = await signTyped(operatorOwner, market.domain, "UsageReceipt", receipt);
    await expect(
      market.sessionRouter
        .connect(market.user)
        .closeSession(session.terms, receipt, await signReceipt(market, receipt), countersignature),
    ).to.emit(market.sessionRouter, "SessionSettled");
  });

  it("a contract-wallet user opens with an EOA session key; receipts by that key settle, a stranger's do not", async () => {
    const market = await loadFixture(walletMarket);
    const { router, sessionId, terms, closeAsProvider } = await openAsWallet(market, market.sessionKey.address);
    expect(terms.user).to.equal(market.userAddress);
    expect(terms.sessionKey).to.equal(market.sessionKey.address);

    const receipt = receiptFor(sessionId, 1n, 100n, 50n);
    const strangerSignature = await signTyped(market.stranger, market.domain, "UsageReceipt", receipt);
    await expect(closeAsProvider(receipt, strangerSignature))
      .to.be.revertedWithCustomError(market.providerWallet, "CallFailed")
      .withArgs(router.interface.encodeErrorResult("InvalidUserSignature", []));

    const keySignature = await signTyped(market.sessionKey, market.domain, "UsageReceipt", receipt);
    await expect(closeAsProvider(receipt, keySignature)).to.emit(router, "SessionSettled");
    expect((await router.getSessionState(sessionId)).status).to.equal(0n);
  });

  it("receipts are never ERC-1271: one the wallet itself accepts (its owner's signature) is refused", async () => {
    const market = await loadFixture(walletMarket);
    const { router, sessionId, closeAsProvider } = await openAsWallet(market, market.sessionKey.address);
    const receipt = receiptFor(sessionId, 1n, 100n, 50n);
    const ownerSignature = await signTyped(market.userOwner, market.domain, "UsageReceipt", receipt);
    const digest = hashSessionTypedData(market.domain, "UsageReceipt", receipt);
    expect(await market.userWallet.isValidSignature(digest, ownerSignature)).to.equal(ERC1271_MAGIC);

    await expect(closeAsProvider(receipt, ownerSignature))
      .to.be.revertedWithCustomError(market.providerWallet, "CallFailed")
      .withArgs(router.interface.encodeErrorResult("InvalidUserSignature", []));
  });

  it("a wallet that rejects everything after use cannot stop the provider charging the key's receipts (issue 5.1)", async () => {
    const market = await loadFixture(walletMarket);
    const { router, sessionId, terms, closeAsProvider } = await openAsWallet(market, market.sessionKey.address);
    // The user is served and signs receipts with its session key, then turns its wallet against them.
    const receipt = receiptFor(sessionId, 3n, 100_000n, 50_000n);
    const signature = await signTyped(market.sessionKey, market.domain, "UsageReceipt", receipt);
    await market.userWallet.connect(market.userOwner).setRejectsAll(true);
    const digest = hashSessionTypedData(market.domain, "UsageReceipt", receipt);
    expect(await market.userWallet.isValidSignature(digest, signature)).to.equal("0x00000000");

    const closedAt = (await time.latest()) + 100;
    await time.setNextBlockTimestamp(closedAt);
    const tx = closeAsProvider(receipt, signature);
    const elapsed = BigInt(closedAt - terms.openedAt);
    const cost = sessionCost(terms, elapsed, receipt, WALLET_DEPOSIT);
    // The tokens are charged, not only the time.
    expect(cost).to.be.greaterThan(elapsed * terms.pricePerSecond);
    await expect(tx)
      .to.emit(router, "SessionSettled")
      .withArgs(
        sessionId,
        market.userAddress,
        market.providerAddress,
        anyValue,
        receiptTuple(receipt),
        anyValue,
        false,
      );
    const settled = await openedSettlement(market, await tx);
    expect(settled.cost).to.equal(cost);
    expect(settled.elapsedSeconds).to.equal(elapsed);
  });

  it("a wallet that rejects everything cannot make a higher receipt lose a challenge either", async () => {
    const market = await loadFixture(walletMarket);
    const { router, sessionId, terms, wallet } = await openAsWallet(market, market.sessionKey.address);
    const low = receiptFor(sessionId, 1n, 10n, 10n);
    const high = receiptFor(sessionId, 2n, 100_000n, 50_000n);
    const [lowSignature, highSignature] = await Promise.all(
      [low, high].map((receipt) => signTyped(market.sessionKey, market.domain, "UsageReceipt", receipt)),
    );
    // The user closes with its lower receipt and turns the wallet against every signature.
    await wallet.execute(
      await router.getAddress(),
      router.interface.encodeFunctionData("closeSession", [terms, low, lowSignature, "0x"]),
    );
    await market.userWallet.connect(market.userOwner).setRejectsAll(true);

    await expect(
      market.providerWallet
        .connect(market.walletOwner)
        .execute(
          await router.getAddress(),
          router.interface.encodeFunctionData("challenge", [terms, low, high, highSignature]),
        ),
    )
      .to.emit(router, "SessionSettled")
      .withArgs(sessionId, market.userAddress, market.providerAddress, anyValue, receiptTuple(high), anyValue, true);
  });

  it("a wallet naming itself as session key can sign no receipt: the session settles on time only", async () => {
    const market = await loadFixture(walletMarket);
    const { router, sessionId, terms, closeAsProvider } = await openAsWallet(market, market.userAddress);
    expect(terms.sessionKey).to.equal(market.userAddress);
    const receipt = receiptFor(sessionId, 1n, 100n, 50n);
    const ownerSignature = await signTyped(market.userOwner, market.domain, "UsageReceipt", receipt);
    await expect(closeAsProvider(receipt, ownerSignature))
      .to.be.revertedWithCustomError(market.providerWallet, "CallFailed")
      .withArgs(router.interface.encodeErrorResult("InvalidUserSignature", []));
    await expect(closeAsProvider(emptyReceipt(sessionId), "0x")).to.emit(router, "SessionSettled");
  });

  it("a contract-wallet provider's countersignature is still checked with ERC-1271", async () => {
    const market = await loadFixture(walletMarket);
    const { router, sessionId, terms, wallet } = await openAsWallet(market, market.sessionKey.address);
    const receipt = receiptFor(sessionId, 1n, 100n, 50n);
    const signature = await signTyped(market.sessionKey, market.domain, "UsageReceipt", receipt);
    const close = async (countersigner: HardhatEthersSigner) =>
      wallet.execute(
        await router.getAddress(),
        router.interface.encodeFunctionData("closeSession", [
          terms,
          receipt,
          signature,
          await signTyped(countersigner, market.domain, "UsageReceipt", receipt),
        ]),
      );
    await expect(close(market.stranger))
      .to.be.revertedWithCustomError(market.userWallet, "CallFailed")
      .withArgs(router.interface.encodeErrorResult("InvalidProviderSignature", []));
    await expect(close(market.walletOwner)).to.emit(router, "SessionSettled");
  });
});
