/**
 * Session keys (issue 5, item 1): at open the user names the EOA that signs the session's receipts
 * and auth tokens. It is part of the terms (so of the session id), receipts are plain ECDSA by it and
 * by nothing else — not the user, not ERC-1271 — and a zero key is refused. The fixture's sessions
 * use the user itself; here an EOA user names a fresh key its client keeps.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { sessionIdOf, signSessionAuth, signUsageReceipt, verifySessionAuth, verifyUsageReceipt } from "../protocol";
import {
  E18,
  MAX_PRICES,
  type MarketWithBid,
  makeApproval,
  marketWithBid,
  openSession,
  receiptFor,
  receiptTuple,
  signPermit,
  signReceipt,
  signTyped,
} from "./fixtures";

const DEPOSIT = 100n * E18;
/** A fixed key, not a random one, keeps the test deterministic. */
const SESSION_KEY = ethers.id("session-keys.test session key") as Hex;

/** The fixture's market and a session of its user whose receipts a fresh EOA (`key`) signs. */
async function sessionWithOwnKey() {
  const market = await marketWithBid();
  const key = new ethers.Wallet(SESSION_KEY);
  const session = await openSession(market, DEPOSIT, {}, market.provider, key.address);
  return { market, key, session };
}

/** A user close of `receipt` (seq > 0) signed by `signer`, without countersignature. */
async function userClose(market: MarketWithBid, session: Awaited<ReturnType<typeof openSession>>, signature: Hex) {
  const receipt = receiptFor(session.sessionId, 1n, 10n, 10n);
  return market.sessionRouter.connect(market.user).closeSession(session.terms, receipt, signature, "0x");
}

/** `openSessionWithPermit` by the fixture's user, on a fresh approval and permit, naming `sessionKey`. */
async function openWithPermit(market: MarketWithBid, sessionKey: string) {
  const approval = await makeApproval(market);
  const signature = await signTyped(market.provider, market.domain, "SessionApproval", approval);
  const deadline = BigInt(await time.latest()) + 3_600n;
  const permit = await signPermit(
    market.token,
    market.user,
    await market.sessionRouter.getAddress(),
    DEPOSIT,
    deadline,
  );
  return market.sessionRouter
    .connect(market.user)
    .openSessionWithPermit(
      approval,
      signature,
      DEPOSIT,
      MAX_PRICES,
      sessionKey,
      deadline,
      permit.v,
      permit.r,
      permit.s,
    );
}

describe("SessionRouter: session keys", function () {
  describe("open", function () {
    it("puts the session key in the terms, the event and the session id", async function () {
      const { market, key, session } = await loadFixture(sessionWithOwnKey);
      expect(session.terms.user).to.equal(market.user.address);
      expect(session.terms.sessionKey).to.equal(key.address);
      expect(sessionIdOf(session.terms)).to.equal(session.sessionId);
      // The same terms with another key name no session.
      const otherKey = { ...session.terms, sessionKey: market.user.address as Address };
      expect(sessionIdOf(otherKey)).to.not.equal(session.sessionId);
      const receipt = receiptFor(session.sessionId, 1n, 10n, 10n);
      await expect(
        market.sessionRouter
          .connect(market.provider)
          .closeSession(otherKey, receipt, await signReceipt(market, receipt, market.user), "0x"),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "SessionNotOpen")
        .withArgs(sessionIdOf(otherKey));
    });

    it("a zero session key: ZeroSessionKey (openSession)", async function () {
      const market = await loadFixture(marketWithBid);
      const approval = await makeApproval(market);
      const signature = await signTyped(market.provider, market.domain, "SessionApproval", approval);
      await expect(
        market.sessionRouter
          .connect(market.user)
          .openSession(approval, signature, DEPOSIT, MAX_PRICES, ethers.ZeroAddress),
      ).to.be.revertedWithCustomError(market.sessionRouter, "ZeroSessionKey");
      expect(await market.sessionRouter.isApprovalNonceUsed(market.provider.address, approval.nonce)).to.equal(false);
    });

    it("a zero session key: ZeroSessionKey (openSessionWithPermit)", async function () {
      const market = await loadFixture(marketWithBid);
      await expect(openWithPermit(market, ethers.ZeroAddress)).to.be.revertedWithCustomError(
        market.sessionRouter,
        "ZeroSessionKey",
      );
    });

    it("openSessionWithPermit takes the session key too", async function () {
      const market = await loadFixture(marketWithBid);
      const key = new ethers.Wallet(SESSION_KEY);
      await expect(openWithPermit(market, key.address))
        .to.emit(market.sessionRouter, "SessionOpened")
        .withArgs(
          (id: string) => ethers.isHexString(id, 32),
          market.user.address,
          market.provider.address,
          market.bidId,
          (terms: { sessionKey: string }) => terms.sessionKey === key.address,
          DEPOSIT,
          (endsAt: bigint) => endsAt > 0n,
        );
    });
  });

  describe("receipts", function () {
    it("the provider settles with a receipt the key signed; the user's own signature is refused", async function () {
      const { market, key, session } = await loadFixture(sessionWithOwnKey);
      const receipt = receiptFor(session.sessionId, 2n, 1_000n, 500n);
      const close = (signature: Hex) =>
        market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, signature, "0x");
      await expect(close(await signReceipt(market, receipt, market.user))).to.be.revertedWithCustomError(
        market.sessionRouter,
        "InvalidUserSignature",
      );
      await expect(close(await signTyped(key, market.domain, "UsageReceipt", receipt)))
        .to.emit(market.sessionRouter, "SessionSettled")
        .withArgs(
          session.sessionId,
          market.user.address,
          market.provider.address,
          (settlement: { cost: bigint }) => settlement.cost > 0n,
          receiptTuple(receipt),
          market.provider.address,
          false,
        );
    });

    it("a user close needs the key's signature too; with it and a countersignature it settles at once", async function () {
      const { market, key, session } = await loadFixture(sessionWithOwnKey);
      const receipt = receiptFor(session.sessionId, 1n, 10n, 10n);
      await expect(
        userClose(market, session, await signReceipt(market, receipt, market.user)),
      ).to.be.revertedWithCustomError(market.sessionRouter, "InvalidUserSignature");
      const keySignature = await signTyped(key, market.domain, "UsageReceipt", receipt);
      const countersignature = await signReceipt(market, receipt, market.operator);
      await expect(
        market.sessionRouter.connect(market.user).closeSession(session.terms, receipt, keySignature, countersignature),
      ).to.emit(market.sessionRouter, "SessionSettled");
    });

    it("a challenge needs the key's signature: the user's own is refused, the key's wins", async function () {
      const { market, key, session } = await loadFixture(sessionWithOwnKey);
      const closing = receiptFor(session.sessionId, 1n, 10n, 10n);
      await userClose(market, session, await signTyped(key, market.domain, "UsageReceipt", closing));
      const higher = receiptFor(session.sessionId, 2n, 5_000n, 5_000n);
      const challenge = (signature: Hex) =>
        market.sessionRouter.connect(market.operator).challenge(session.terms, closing, higher, signature);
      await expect(challenge(await signReceipt(market, higher, market.user))).to.be.revertedWithCustomError(
        market.sessionRouter,
        "InvalidUserSignature",
      );
      await expect(challenge(await signTyped(key, market.domain, "UsageReceipt", higher))).to.emit(
        market.sessionRouter,
        "SessionSettled",
      );
    });
  });

  describe("protocol/ helpers", function () {
    it("a viem session key signs receipts and auth tokens; verify helpers check them against the key", async function () {
      const { market, session } = await loadFixture(sessionWithOwnKey);
      const key = privateKeyToAccount(SESSION_KEY);
      expect(key.address).to.equal(session.terms.sessionKey);
      const auth = { sessionId: session.sessionId, expiresAt: BigInt(session.endsAt) };
      const authSignature = await signSessionAuth(key, market.domain, auth);
      expect(await verifySessionAuth(market.domain, auth, authSignature, session.terms.sessionKey)).to.equal(true);
      expect(await verifySessionAuth(market.domain, auth, authSignature, session.terms.user)).to.equal(false);

      const receipt = receiptFor(session.sessionId, 1n, 7n, 7n);
      const signature = await signUsageReceipt(key, market.domain, receipt);
      expect(await verifyUsageReceipt(market.domain, receipt, signature, [session.terms.sessionKey])).to.equal(true);
      expect(await verifyUsageReceipt(market.domain, receipt, signature, [session.terms.user])).to.equal(false);
      await expect(
        market.sessionRouter.connect(market.provider).closeSession(session.terms, receipt, signature, "0x"),
      ).to.emit(market.sessionRouter, "SessionSettled");
    });
  });
});
