/**
 * SessionRouter's signatures: the EIP-712 domain, approval deadlines and nonces, who may sign an
 * approval or a receipt, malleable and short signatures, and the viem helpers in protocol/ that the
 * agent and client sign with.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { type Address, type Hex, concat, numberToHex, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  type SessionApproval,
  emptyReceipt,
  hashSessionTypedData,
  marketDomain,
  sessionTypes,
  signSessionApproval,
  signUsageReceipt,
  verifySessionApproval,
  verifyUsageReceipt,
} from "../protocol";
import {
  E18,
  MAX_PRICES,
  type MarketWithBid,
  makeApproval,
  marketWithBid,
  openSession,
  openedSession,
  postBid,
  receiptFor,
  registerProvider,
  signReceipt,
  signTyped,
} from "./fixtures";

const DEPOSIT = 100n * E18;
/** The order of secp256k1: a signature (r, s, v) is also valid as (r, n - s, v ^ 1). */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** The same signature with s flipped to n - s and v to the other parity: what ecrecover still accepts. */
function malleate(signature: Hex): Hex {
  const r = BigInt(`0x${signature.slice(2, 66)}`);
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130, 132), 16);
  return concat([
    toHex(r, { size: 32 }),
    toHex(SECP256K1_N - s, { size: 32 }),
    numberToHex(v === 27 ? 28 : 27, { size: 1 }),
  ]);
}

/** Calls the ecrecover precompile directly, to show a malleated signature is still a valid signature of the signer. */
async function ecrecover(digest: Hex, signature: Hex): Promise<string> {
  const r = signature.slice(2, 66);
  const s = signature.slice(66, 130);
  const v = BigInt(`0x${signature.slice(130, 132)}`);
  const input = concat([digest, toHex(v, { size: 32 }), `0x${r}`, `0x${s}`]);
  const output = await ethers.provider.call({ to: "0x0000000000000000000000000000000000000001", data: input });
  return ethers.getAddress(ethers.dataSlice(output, 12));
}

async function signApproval(
  market: MarketWithBid,
  approval: SessionApproval,
  signer: HardhatEthersSigner = market.provider,
) {
  return signTyped(signer, market.domain, "SessionApproval", approval);
}

const STEP = 2n ** 32n;

/** Opens sessions of the fixture's provider with chosen approval nonces, and reads the nonce views. */
function nonceHelpers(market: MarketWithBid) {
  const { sessionRouter, provider, user } = market;
  const open = async (nonce: bigint) => {
    const approval = await makeApproval(market, { nonce });
    return sessionRouter
      .connect(user)
      .openSession(approval, await signApproval(market, approval), E18, MAX_PRICES, approval.user);
  };
  const isUsed = (nonce: bigint) => sessionRouter.isApprovalNonceUsed(provider.address, nonce);
  const expectSpent = async (nonce: bigint) => {
    expect(await isUsed(nonce), `nonce ${nonce}`).to.equal(true);
    await expect(open(nonce))
      .to.be.revertedWithCustomError(sessionRouter, "ApprovalNonceUsed")
      .withArgs(provider.address, nonce);
  };
  return { open, isUsed, expectSpent };
}

/**
 * Overwrites the provider's packed `ProviderSessions` slot (open count, highest nonce, window) in
 * SessionRouter's storage, for states no test could reach by opening sessions. The mapping's slot is
 * found by its current value (the provider has opened exactly one session, nonce 1), not assumed.
 */
async function setProviderSessions(
  market: MarketWithBid,
  value: { openSessions: bigint; highestNonce: bigint; recentNonces: bigint },
) {
  const router = await market.sessionRouter.getAddress();
  const pack = (v: typeof value) => v.openSessions | (v.highestNonce << 64n) | (v.recentNonces << 128n);
  const current = pack({ openSessions: 1n, highestNonce: 1n, recentNonces: 1n });
  const slots: string[] = [];
  for (let mappingSlot = 0n; mappingSlot < 32n; mappingSlot++) {
    const slot = ethers.keccak256(
      ethers.AbiCoder.defaultAbiCoder().encode(["address", "uint256"], [market.provider.address, mappingSlot]),
    );
    if (BigInt(await ethers.provider.getStorage(router, slot)) === current) slots.push(slot);
  }
  expect(slots, "the provider's ProviderSessions slot").to.have.length(1);
  await network.provider.send("hardhat_setStorageAt", [router, slots[0], ethers.toBeHex(pack(value), 32)]);
}

/** Hardhat's default private key of account `index`, derived from the network's configured mnemonic. */
function hardhatPrivateKey(index: number): Hex {
  const accounts = network.config.accounts;
  if (typeof accounts !== "object" || Array.isArray(accounts) || !("mnemonic" in accounts)) {
    throw new Error("the hardhat network is expected to use its default HD accounts");
  }
  const path = `${accounts.path}/${accounts.initialIndex + index}`;
  return ethers.HDNodeWallet.fromPhrase(accounts.mnemonic, accounts.passphrase, path).privateKey as Hex;
}

describe("SessionRouter: signatures", function () {
  describe("EIP-712 domain", function () {
    it("the contract's domain separator is the one protocol/ signs with", async function () {
      const market = await loadFixture(marketWithBid);
      expect(await market.sessionRouter.domainSeparator()).to.equal(ethers.TypedDataEncoder.hashDomain(market.domain));
    });

    it("an approval signed for another chain id: InvalidApprovalSigner", async function () {
      const market = await loadFixture(marketWithBid);
      const approval = await makeApproval(market);
      const otherChain = { ...market.domain, chainId: market.domain.chainId + 1 };
      const signature = await signTyped(market.provider, otherChain, "SessionApproval", approval);
      await expect(
        market.sessionRouter.connect(market.user).openSession(approval, signature, DEPOSIT, MAX_PRICES, approval.user),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "InvalidApprovalSigner")
        .withArgs(market.provider.address);
    });

    it("an approval signed for another verifying contract: InvalidApprovalSigner", async function () {
      const market = await loadFixture(marketWithBid);
      const approval = await makeApproval(market);
      const otherRouter = marketDomain(market.domain.chainId, (await market.marketplace.getAddress()) as Address);
      const signature = await signTyped(market.provider, otherRouter, "SessionApproval", approval);
      await expect(
        market.sessionRouter.connect(market.user).openSession(approval, signature, DEPOSIT, MAX_PRICES, approval.user),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "InvalidApprovalSigner")
        .withArgs(market.provider.address);
    });

    it("a receipt signed for another chain id or verifying contract: InvalidUserSignature", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openSession(market);
      const receipt = receiptFor(session.sessionId, 1n, 10n, 10n);
      const domains = [
        { ...market.domain, chainId: 1 },
        marketDomain(market.domain.chainId, (await market.escrow.getAddress()) as Address),
      ];
      for (const domain of domains) {
        const signature = await signTyped(market.user, domain, "UsageReceipt", receipt);
        await expect(
          market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, signature, "0x"),
        ).to.be.revertedWithCustomError(market.sessionRouter, "InvalidUserSignature");
      }
    });
  });

  describe("approvals", function () {
    it("is accepted at exactly its deadline and expired one second later: ApprovalExpired", async function () {
      const market = await loadFixture(marketWithBid);
      const deadline = BigInt(await time.latest()) + 100n;
      const onTime = await makeApproval(market, { deadline });
      const late = await makeApproval(market, { deadline });
      await time.setNextBlockTimestamp(deadline);
      await expect(
        market.sessionRouter
          .connect(market.user)
          .openSession(onTime, await signApproval(market, onTime), DEPOSIT, MAX_PRICES, onTime.user),
      ).to.emit(market.sessionRouter, "SessionOpened");
      // The next block is deadline + 1.
      await expect(
        market.sessionRouter
          .connect(market.user)
          .openSession(late, await signApproval(market, late), DEPOSIT, MAX_PRICES, late.user),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "ApprovalExpired")
        .withArgs(deadline);
    });

    it("a replayed nonce: ApprovalNonceUsed, and isApprovalNonceUsed says so", async function () {
      const market = await loadFixture(marketWithBid);
      const approval = await makeApproval(market);
      const signature = await signApproval(market, approval);
      expect(await market.sessionRouter.isApprovalNonceUsed(market.provider.address, approval.nonce)).to.equal(false);
      await market.sessionRouter
        .connect(market.user)
        .openSession(approval, signature, DEPOSIT, MAX_PRICES, approval.user);
      expect(await market.sessionRouter.isApprovalNonceUsed(market.provider.address, approval.nonce)).to.equal(true);

      await expect(
        market.sessionRouter.connect(market.user).openSession(approval, signature, DEPOSIT, MAX_PRICES, approval.user),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "ApprovalNonceUsed")
        .withArgs(market.provider.address, approval.nonce);
      // Another approval with the same nonce, even signed by the operator, is the same provider's nonce.
      const sameNonce = { ...approval, maxDeposit: approval.maxDeposit + 1n };
      await expect(
        market.sessionRouter
          .connect(market.user)
          .openSession(
            sameNonce,
            await signApproval(market, sameNonce, market.operator),
            DEPOSIT,
            MAX_PRICES,
            sameNonce.user,
          ),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "ApprovalNonceUsed")
        .withArgs(market.provider.address, approval.nonce);
    });

    it("nonce window: out-of-order use within 128 of the highest, older nonces spent", async function () {
      const market = await loadFixture(marketWithBid);
      const { sessionRouter, provider, user } = market;
      const { open, isUsed, expectSpent } = nonceHelpers(market);

      await open(1_000n);
      expect([await isUsed(1_000n), await isUsed(999n), await isUsed(1_001n)]).to.deep.equal([true, false, false]);
      // Below the highest but inside the window: usable once, in any order.
      await open(900n);
      await open(1_000n - 127n);
      await expectSpent(900n);
      await expectSpent(1_000n);
      await expectSpent(1_000n - 127n);
      // 128 below the highest is out of the window: spent, though never used.
      await expectSpent(1_000n - 128n);
      expect(await isUsed(901n)).to.equal(false);

      // A higher nonce slides the window: 1000 is now 127 below and still remembered; 900 fell out.
      await open(1_127n);
      await expectSpent(1_000n);
      await expectSpent(901n);
      expect(await isUsed(1_001n)).to.equal(false);
      await open(1_001n);

      // A jump of 128 or more forgets the whole window.
      await open(1_127n + 128n);
      await expectSpent(1_127n);
      expect(await isUsed(1_127n + 127n)).to.equal(false);
      expect(await sessionRouter.openSessionCount(provider.address)).to.equal(6n);

      // A second provider's nonces are its own.
      const [secondProvider, secondOperator] = market.others as [HardhatEthersSigner, HardhatEthersSigner];
      await registerProvider(market, secondProvider, secondOperator);
      const secondBidId = await postBid(market, market.modelId, undefined, secondProvider);
      expect(await sessionRouter.isApprovalNonceUsed(secondProvider.address, 255n)).to.equal(false);
      const approval = await makeApproval(market, { bidId: secondBidId, nonce: 255n });
      await expect(
        sessionRouter
          .connect(user)
          .openSession(approval, await signApproval(market, approval, secondProvider), E18, MAX_PRICES, approval.user),
      ).to.emit(sessionRouter, "SessionOpened");
      expect(await sessionRouter.isApprovalNonceUsed(secondProvider.address, 255n)).to.equal(true);
    });

    it("nonce step: at most MAX_NONCE_STEP above the highest (or above 0 before the first): ApprovalNonceTooLarge", async function () {
      const market = await loadFixture(marketWithBid);
      const { sessionRouter, provider } = market;
      const { open, isUsed } = nonceHelpers(market);
      expect(await sessionRouter.MAX_NONCE_STEP()).to.equal(STEP);
      const tooLarge = (nonce: bigint, maximum: bigint) =>
        expect(open(nonce))
          .to.be.revertedWithCustomError(sessionRouter, "ApprovalNonceTooLarge")
          .withArgs(nonce, maximum);

      // No nonce used yet: the first may be at most MAX_NONCE_STEP.
      expect(await sessionRouter.nextApprovalNonce(provider.address)).to.equal(0n);
      await tooLarge(STEP + 1n, STEP);
      await tooLarge(2n ** 64n - 1n, STEP);
      // Refused for now is not spent: it becomes usable once the window has moved up.
      expect(await isUsed(STEP + 1n)).to.equal(false);
      await open(STEP);
      await tooLarge(2n * STEP + 1n, 2n * STEP);
      await open(STEP + 1n);
      await open(2n * STEP);
      expect(await sessionRouter.nextApprovalNonce(provider.address)).to.equal(2n * STEP + 1n);
      expect(await sessionRouter.openSessionCount(provider.address)).to.equal(3n);
    });

    it("nonces above 2^64 - 1 are spent for the view and refused with the maximum, capped at 2^64 - 1", async function () {
      const market = await loadFixture(marketWithBid);
      const { sessionRouter, provider } = market;
      const { open, isUsed, expectSpent } = nonceHelpers(market);
      for (const nonce of [2n ** 64n, 2n ** 256n - 1n]) expect(await isUsed(nonce), `nonce ${nonce}`).to.equal(true);

      // The window's top 2^31 below the last nonce: unreachable in practice (2^32 opens at the
      // largest step), so the provider's slot is written directly.
      await open(1n);
      const highest = 2n ** 64n - 2n ** 31n;
      await setProviderSessions(market, { openSessions: 1n, highestNonce: highest, recentNonces: 1n });
      expect(await sessionRouter.nextApprovalNonce(provider.address)).to.equal(highest + 1n);
      expect(await sessionRouter.openSessionCount(provider.address)).to.equal(1n);
      // highest + MAX_NONCE_STEP is past 2^64 - 1: the maximum is 2^64 - 1 itself.
      for (const nonce of [2n ** 64n, highest + STEP]) {
        await expect(open(nonce))
          .to.be.revertedWithCustomError(sessionRouter, "ApprovalNonceTooLarge")
          .withArgs(nonce, 2n ** 64n - 1n);
      }
      await open(2n ** 64n - 1n);
      await expectSpent(2n ** 64n - 1n);
      await expectSpent(highest);
      expect(await isUsed(2n ** 64n - 2n)).to.equal(false);
      await open(2n ** 64n - 2n);
      expect(await sessionRouter.nextApprovalNonce(provider.address)).to.equal(2n ** 64n);
      expect(await isUsed(2n ** 64n)).to.equal(true);
      await expect(open(2n ** 64n))
        .to.be.revertedWithCustomError(sessionRouter, "ApprovalNonceTooLarge")
        .withArgs(2n ** 64n, 2n ** 64n - 1n);
      expect(await sessionRouter.openSessionCount(provider.address)).to.equal(3n);
    });

    it("nextApprovalNonce: 0 before any open, then the highest used + 1, whatever the order of use", async function () {
      const market = await loadFixture(marketWithBid);
      const { sessionRouter, provider } = market;
      const { open } = nonceHelpers(market);
      expect(await sessionRouter.nextApprovalNonce(provider.address)).to.equal(0n);
      await open(0n);
      expect(await sessionRouter.nextApprovalNonce(provider.address)).to.equal(1n);
      await open(5n);
      await open(3n);
      expect(await sessionRouter.nextApprovalNonce(provider.address)).to.equal(6n);
      // An agent resuming from it hands out a fresh nonce.
      await open(await sessionRouter.nextApprovalNonce(provider.address));
      expect(await sessionRouter.nextApprovalNonce(provider.address)).to.equal(7n);
      expect(await sessionRouter.nextApprovalNonce(market.stranger.address)).to.equal(0n);
    });

    it("signed by a stranger, or by the provider of another bid: InvalidApprovalSigner", async function () {
      const market = await loadFixture(marketWithBid);
      const [secondProvider, secondOperator] = market.others as [HardhatEthersSigner, HardhatEthersSigner];
      await registerProvider(market, secondProvider, secondOperator);
      for (const signer of [market.stranger, market.user, market.modelOwner, secondProvider, secondOperator]) {
        const approval = await makeApproval(market);
        await expect(
          market.sessionRouter
            .connect(market.user)
            .openSession(approval, await signApproval(market, approval, signer), DEPOSIT, MAX_PRICES, approval.user),
        )
          .to.be.revertedWithCustomError(market.sessionRouter, "InvalidApprovalSigner")
          .withArgs(market.provider.address);
      }
    });

    it("an empty signature: InvalidApprovalSigner", async function () {
      const market = await loadFixture(marketWithBid);
      const approval = await makeApproval(market);
      await expect(
        market.sessionRouter.connect(market.user).openSession(approval, "0x", DEPOSIT, MAX_PRICES, approval.user),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "InvalidApprovalSigner")
        .withArgs(market.provider.address);
    });

    it("signed by the operator: accepted", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openSession(market, DEPOSIT, {}, market.operator);
      expect(session.terms.provider).to.equal(market.provider.address);
      expect(await market.sessionRouter.isApprovalNonceUsed(market.provider.address, session.approval.nonce)).to.equal(
        true,
      );
    });

    it("signed by a replaced operator: InvalidApprovalSigner; the new operator's is accepted", async function () {
      const market = await loadFixture(marketWithBid);
      const earlier = await openSession(market);
      const newOperator = market.others[2];
      await market.providerRegistry.connect(market.provider).setOperator(newOperator.address);
      // The old operator has lost its say over the provider's sessions, too.
      await expect(
        market.sessionRouter
          .connect(market.operator)
          .closeSession(earlier.terms, emptyReceipt(earlier.sessionId), "0x", "0x"),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "NotAllowedToClose")
        .withArgs(earlier.sessionId, market.operator.address);
      const approval = await makeApproval(market);
      await expect(
        market.sessionRouter
          .connect(market.user)
          .openSession(
            approval,
            await signApproval(market, approval, market.operator),
            DEPOSIT,
            MAX_PRICES,
            approval.user,
          ),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "InvalidApprovalSigner")
        .withArgs(market.provider.address);
      await expect(
        market.sessionRouter
          .connect(market.user)
          .openSession(approval, await signApproval(market, approval, newOperator), DEPOSIT, MAX_PRICES, approval.user),
      ).to.emit(market.sessionRouter, "SessionOpened");
    });

    it("used by someone other than its user: ApprovalForAnotherUser", async function () {
      const market = await loadFixture(marketWithBid);
      const approval = await makeApproval(market);
      const signature = await signApproval(market, approval);
      await expect(
        market.sessionRouter
          .connect(market.stranger)
          .openSession(approval, signature, DEPOSIT, MAX_PRICES, approval.user),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "ApprovalForAnotherUser")
        .withArgs(market.user.address, market.stranger.address);
    });
  });

  describe("receipts", function () {
    it("a receipt of another session: ReceiptSessionMismatch (close and challenge)", async function () {
      const market = await loadFixture(marketWithBid);
      const first = await openSession(market);
      const second = await openSession(market);
      const receipt = receiptFor(second.sessionId, 1n, 10n, 10n);
      const signature = await signReceipt(market, receipt);
      await expect(market.sessionRouter.connect(market.provider).closeSession(first.terms, receipt, signature, "0x"))
        .to.be.revertedWithCustomError(market.sessionRouter, "ReceiptSessionMismatch")
        .withArgs(first.sessionId, second.sessionId);
      await expect(
        market.sessionRouter
          .connect(market.provider)
          .closeSession(first.terms, emptyReceipt(second.sessionId), "0x", "0x"),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "ReceiptSessionMismatch")
        .withArgs(first.sessionId, second.sessionId);

      await market.sessionRouter
        .connect(market.user)
        .closeSession(first.terms, emptyReceipt(first.sessionId), "0x", "0x");
      await expect(
        market.sessionRouter
          .connect(market.provider)
          .challenge(first.terms, emptyReceipt(first.sessionId), receipt, signature),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "ReceiptSessionMismatch")
        .withArgs(first.sessionId, second.sessionId);
    });

    it("a receipt signed by anyone but the user: InvalidUserSignature", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openSession(market);
      const receipt = receiptFor(session.sessionId, 1n, 10n, 10n);
      for (const signer of [market.provider, market.operator, market.stranger]) {
        const signature = await signReceipt(market, receipt, signer);
        await expect(
          market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, signature, "0x"),
        ).to.be.revertedWithCustomError(market.sessionRouter, "InvalidUserSignature");
      }
      await expect(
        market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, "0x", "0x"),
      ).to.be.revertedWithCustomError(market.sessionRouter, "InvalidUserSignature");
    });
  });

  describe("malleable and short signatures", function () {
    it("an approval with s flipped to n - s: InvalidApprovalSigner, though ecrecover accepts it", async function () {
      const market = await loadFixture(marketWithBid);
      const approval = await makeApproval(market);
      const signature = await signApproval(market, approval);
      const flipped = malleate(signature);
      const digest = hashSessionTypedData(market.domain, "SessionApproval", approval);
      expect(await ecrecover(digest, signature)).to.equal(market.provider.address);
      expect(await ecrecover(digest, flipped)).to.equal(market.provider.address);

      await expect(
        market.sessionRouter.connect(market.user).openSession(approval, flipped, DEPOSIT, MAX_PRICES, approval.user),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "InvalidApprovalSigner")
        .withArgs(market.provider.address);
      await expect(
        market.sessionRouter.connect(market.user).openSession(approval, signature, DEPOSIT, MAX_PRICES, approval.user),
      ).to.emit(market.sessionRouter, "SessionOpened");
    });

    it("a receipt or countersignature with s flipped to n - s: rejected", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openSession(market);
      const receipt = receiptFor(session.sessionId, 1n, 10n, 10n);
      const signature = await signReceipt(market, receipt);
      const flipped = malleate(signature);
      const digest = hashSessionTypedData(market.domain, "UsageReceipt", receipt);
      expect(await ecrecover(digest, flipped)).to.equal(market.user.address);
      await expect(
        market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, flipped, "0x"),
      ).to.be.revertedWithCustomError(market.sessionRouter, "InvalidUserSignature");

      const countersignature = malleate(await signReceipt(market, receipt, market.provider));
      await expect(
        market.sessionRouter.connect(market.user).closeSession(session.terms, receipt, signature, countersignature),
      ).to.be.revertedWithCustomError(market.sessionRouter, "InvalidProviderSignature");
    });

    it("a 64-byte (ERC-2098 compact) signature is rejected everywhere", async function () {
      const market = await loadFixture(marketWithBid);
      const compact = (signature: Hex) => ethers.Signature.from(signature).compactSerialized as Hex;

      const approval = await makeApproval(market);
      const shortApproval = compact(await signApproval(market, approval));
      expect(ethers.dataLength(shortApproval)).to.equal(64);
      await expect(
        market.sessionRouter
          .connect(market.user)
          .openSession(approval, shortApproval, DEPOSIT, MAX_PRICES, approval.user),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "InvalidApprovalSigner")
        .withArgs(market.provider.address);

      const session = await openSession(market);
      const receipt = receiptFor(session.sessionId, 1n, 10n, 10n);
      const signature = await signReceipt(market, receipt);
      await expect(
        market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, compact(signature), "0x"),
      ).to.be.revertedWithCustomError(market.sessionRouter, "InvalidUserSignature");
      const shortCountersignature = compact(await signReceipt(market, receipt, market.provider));
      await expect(
        market.sessionRouter
          .connect(market.user)
          .closeSession(session.terms, receipt, signature, shortCountersignature),
      ).to.be.revertedWithCustomError(market.sessionRouter, "InvalidProviderSignature");
    });
  });

  describe("protocol/ viem helpers", function () {
    // Hardhat's default accounts: 2 is the fixture's provider, 3 its operator, 5 its user.
    const providerAccount = () => privateKeyToAccount(hardhatPrivateKey(2));
    const operatorAccount = () => privateKeyToAccount(hardhatPrivateKey(3));
    const userAccount = () => privateKeyToAccount(hardhatPrivateKey(5));

    it("derives the fixture's signers from Hardhat's configured accounts", async function () {
      const market = await loadFixture(marketWithBid);
      expect([providerAccount().address, operatorAccount().address, userAccount().address]).to.deep.equal([
        market.provider.address,
        market.operator.address,
        market.user.address,
      ]);
    });

    it("hashSessionTypedData is ethers' EIP-712 digest", async function () {
      const market = await loadFixture(marketWithBid);
      const approval = await makeApproval(market);
      const types = { SessionApproval: sessionTypes.SessionApproval.map((field) => ({ ...field })) };
      expect(hashSessionTypedData(market.domain, "SessionApproval", approval)).to.equal(
        ethers.TypedDataEncoder.hash(market.domain, types, approval),
      );
    });

    for (const signerName of ["provider", "operator"] as const) {
      it(`signSessionApproval by the ${signerName}'s viem account opens a session; verifySessionApproval agrees`, async function () {
        const market = await loadFixture(marketWithBid);
        const account = signerName === "provider" ? providerAccount() : operatorAccount();
        const approval = await makeApproval(market);
        const signature = await signSessionApproval(account, market.domain, approval);
        // Deterministic ECDSA (RFC 6979): viem and ethers produce the same bytes.
        expect(signature).to.equal(await signApproval(market, approval, market[signerName]));
        const signers = [market.provider.address, market.operator.address] as Address[];
        expect(await verifySessionApproval(market.domain, approval, signature, signers)).to.equal(true);
        expect(
          await verifySessionApproval(market.domain, approval, signature, [market.stranger.address as Address]),
        ).to.equal(false);
        const otherChain = { ...market.domain, chainId: market.domain.chainId + 1 };
        expect(await verifySessionApproval(otherChain, approval, signature, signers)).to.equal(false);
        expect(
          await verifySessionApproval(market.domain, { ...approval, maxDeposit: 1n }, signature, signers),
        ).to.equal(false);
        expect(await verifySessionApproval(market.domain, approval, "0x1234", signers)).to.equal(false);

        await expect(
          market.sessionRouter
            .connect(market.user)
            .openSession(approval, signature, DEPOSIT, MAX_PRICES, approval.user),
        ).to.emit(market.sessionRouter, "SessionOpened");
      });
    }

    it("signUsageReceipt by the user's viem account settles a close; verifyUsageReceipt agrees", async function () {
      const market = await loadFixture(marketWithBid);
      const session = await openSession(market);
      const receipt = receiptFor(session.sessionId, 9n, 1_000n, 2_000n);
      const signature = await signUsageReceipt(userAccount(), market.domain, receipt);
      expect(signature).to.equal(await signReceipt(market, receipt));
      const user = [market.user.address as Address];
      expect(await verifyUsageReceipt(market.domain, receipt, signature, user)).to.equal(true);
      expect(await verifyUsageReceipt(market.domain, { ...receipt, outputTokens: 1n }, signature, user)).to.equal(
        false,
      );
      expect(
        await verifyUsageReceipt(market.domain, receipt, signature, [market.provider.address as Address]),
      ).to.equal(false);

      // A viem-signed countersignature makes it a cooperative close.
      const countersignature = await signUsageReceipt(providerAccount(), market.domain, receipt);
      expect(
        await verifyUsageReceipt(market.domain, receipt, countersignature, [market.provider.address as Address]),
      ).to.equal(true);
      await expect(
        market.sessionRouter.connect(market.user).closeSession(session.terms, receipt, signature, countersignature),
      ).to.emit(market.sessionRouter, "SessionSettled");
    });

    it("a fresh funded viem key can be a session's user end to end", async function () {
      const market = await loadFixture(marketWithBid);
      // A fixed key, not a random one, keeps the test deterministic.
      const key = ethers.id("signatures.test fresh user") as Hex;
      const account = privateKeyToAccount(key);
      const wallet = new ethers.Wallet(key, ethers.provider);
      await market.governance.sendTransaction({ to: account.address, value: E18 });
      await market.token.connect(market.governance).transfer(account.address, DEPOSIT);
      await market.token.connect(wallet).approve(await market.sessionRouter.getAddress(), DEPOSIT);

      const approval = await makeApproval(market, { user: account.address });
      const approvalSignature = await signSessionApproval(providerAccount(), market.domain, approval);
      const openTx = await market.sessionRouter
        .connect(wallet)
        .openSession(approval, approvalSignature, DEPOSIT, MAX_PRICES, approval.user);
      const { sessionId, terms } = await openedSession(market, openTx);
      expect(terms.user).to.equal(account.address);

      const receipt = receiptFor(sessionId, 1n, 5n, 5n);
      const signature = await signUsageReceipt(account, market.domain, receipt);
      expect(await verifyUsageReceipt(market.domain, receipt, signature, [account.address])).to.equal(true);
      await expect(market.sessionRouter.connect(market.provider).closeSession(terms, receipt, signature, "0x")).to.emit(
        market.sessionRouter,
        "SessionSettled",
      );
    });
  });
});
