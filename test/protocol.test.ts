/**
 * protocol/ against the contracts: the generated ABIs are current, the EIP-712 types are the
 * contract's (the contract accepts what viem signs with them), and the off-chain ids and
 * arithmetic equal the contract's.
 */
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import hre, { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import {
  type Address,
  type Hex,
  type LocalAccount,
  decodeErrorResult,
  domainSeparator,
  getAddress,
  keccak256,
  toHex,
} from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { ABIS_FILE, renderAbis } from "../scripts/generate-abis";
import {
  KeystoreError,
  type SessionTerms,
  bidIdOf,
  decryptKeystore,
  encryptKeystore,
  marketDomain,
  marketErrorsAbi,
  modelIdOf,
  providerOfBid,
  recoverSessionSigner,
  sessionCost,
  sessionIdOf,
  sessionTypes,
  signSessionApproval,
  signSessionAuth,
  signUsageReceipt,
  splitCost,
  verifySessionApproval,
  verifySessionAuth,
  verifyUsageReceipt,
} from "../protocol";
import {
  E18,
  MAX_PRICES,
  PARAMS,
  type MarketWithBid,
  emptyReceipt,
  makeApproval,
  marketWithBid,
  openSession,
  openedSession,
  receiptFor,
  receiptTuple,
  signReceipt,
  signTyped,
} from "./fixtures";

const SESSION_LIB = join(__dirname, "..", "contracts", "libraries", "SessionLib.sol");

/** EIP-712 `encodeType` of a struct with no nested struct types: `Name(type1 name1,type2 name2)`. */
function encodeType(name: keyof typeof sessionTypes): string {
  return `${name}(${sessionTypes[name].map((field) => `${field.type} ${field.name}`).join(",")})`;
}

/** The type strings SessionLib.sol hashes into its `*_TYPEHASH` constants, read from the source. */
function solidityTypeStrings(): Map<string, string> {
  const source = readFileSync(SESSION_LIB, "utf8");
  const strings = new Map<string, string>();
  for (const match of source.matchAll(/"((\w+)\([^"]*\))"/g)) strings.set(match[2], match[1]);
  return strings;
}

/** A seeded, deterministic source of random bits: keccak256 of a counter. */
function randomBits(seed: string) {
  let counter = 0;
  return (bits: number): bigint => BigInt(keccak256(toHex(`${seed}:${counter++}`))) >> BigInt(256 - bits);
}

const hex32 = (value: bigint): Hex => `0x${value.toString(16).padStart(64, "0")}`;
const address = (value: bigint): Address => getAddress(`0x${value.toString(16).padStart(40, "0")}`);

/** viem accounts for the fixture's signers, derived from Hardhat's mnemonic. */
function viemAccounts(market: MarketWithBid) {
  const accounts = hre.network.config.accounts;
  if (typeof accounts !== "object" || Array.isArray(accounts) || !("mnemonic" in accounts)) {
    throw new Error("the hardhat network is expected to use Hardhat's default HD accounts");
  }
  const at = (addressIndex: number) => mnemonicToAccount(accounts.mnemonic, { addressIndex });
  const [provider, operator, user] = [at(2), at(3), at(5)];
  // The fixture's roles are accounts 2 (provider), 3 (operator) and 5 (user).
  expect([provider.address, operator.address, user.address]).to.deep.equal([
    market.provider.address,
    market.operator.address,
    market.user.address,
  ]);
  return { provider, operator, user };
}

async function marketWithViemAccounts() {
  const market = await marketWithBid();
  return { market, accounts: viemAccounts(market) };
}

/** Opens a session with an approval that viem signed as `signer`. */
async function openWithViemApproval(market: MarketWithBid, signer: LocalAccount, deposit = 100n * E18) {
  const approval = await makeApproval(market);
  const signature = await signSessionApproval(signer, market.domain, approval);
  const tx = await market.sessionRouter
    .connect(market.user)
    .openSession(approval, signature, deposit, MAX_PRICES, approval.user);
  return { ...(await openedSession(market, tx)), approval, signature, tx };
}

describe("protocol/", function () {
  describe("index", function () {
    it("re-exports every value each protocol module exports, by name (ESM services import it)", function () {
      /* eslint-disable @typescript-eslint/no-require-imports -- the modules' runtime export lists */
      const index = require("../protocol/index") as Record<string, unknown>;
      for (const module of ["abis", "addresses", "eip712", "keystore", "permit", "session"]) {
        const exports = require(`../protocol/${module}`) as Record<string, unknown>;
        /* eslint-enable @typescript-eslint/no-require-imports */
        for (const name of Object.keys(exports)) {
          expect(index[name], `protocol/index.ts does not re-export ${name} from ./${module}`).to.equal(exports[name]);
        }
      }
    });
  });

  describe("generated ABIs", function () {
    it("protocol/abis.ts is what scripts/generate-abis.ts renders from the current artifacts", function () {
      const current = readFileSync(ABIS_FILE, "utf8");
      expect(current === renderAbis(), "protocol/abis.ts is stale: run `npm run compile`").to.equal(true);
    });

    it("marketErrorsAbi decodes an error the router bubbles up from the registry", async function () {
      const market = await loadFixture(marketWithBid);
      await market.staking.connect(market.provider).requestUnstake(1n);
      const approval = await makeApproval(market);
      const signature = await signTyped(market.provider, market.domain, "SessionApproval", approval);
      const call = market.sessionRouter
        .connect(market.user)
        .openSession(approval, signature, E18, MAX_PRICES, approval.user);
      // ethers puts the raw revert data on the error it throws.
      const revertData = await call.then(
        () => expect.fail("openSession should revert"),
        (error: unknown) => (error as { data: Hex }).data,
      );
      const decoded = decodeErrorResult({ abi: marketErrorsAbi, data: revertData });
      expect(decoded.errorName).to.equal("StakeBelowMinimum");
      expect(decoded.args).to.deep.equal([
        getAddress(market.provider.address),
        PARAMS.providerMinStake - 1n,
        PARAMS.providerMinStake,
      ]);
    });
  });

  describe("EIP-712 types", function () {
    it("SessionApproval and UsageReceipt are the type strings SessionLib.sol hashes", function () {
      const solidity = solidityTypeStrings();
      for (const name of ["SessionApproval", "UsageReceipt"] as const) {
        const fromSolidity = solidity.get(name);
        expect(fromSolidity, `SessionLib.sol has no ${name} type string`).to.be.a("string");
        expect(encodeType(name)).to.equal(fromSolidity);
        expect(keccak256(toHex(encodeType(name)))).to.equal(keccak256(toHex(fromSolidity!)));
      }
    });

    it("SessionAuth, which only the agent checks, is the type in the design", function () {
      expect(encodeType("SessionAuth")).to.equal("SessionAuth(bytes32 sessionId,uint64 expiresAt)");
    });

    it("marketDomain is the router's EIP-712 domain", async function () {
      const { market } = await loadFixture(marketWithViemAccounts);
      const { chainId } = await ethers.provider.getNetwork();
      const domain = marketDomain(chainId, (await market.sessionRouter.getAddress()) as Address);
      expect(domain).to.deep.equal(market.domain);
      expect(domainSeparator({ domain })).to.equal(await market.sessionRouter.domainSeparator());
    });

    it("the router opens a session on an approval viem signed as the provider", async function () {
      const { market, accounts } = await loadFixture(marketWithViemAccounts);
      const approval = await makeApproval(market);
      const signature = await signSessionApproval(accounts.provider, market.domain, approval);
      await expect(
        market.sessionRouter
          .connect(market.user)
          .openSession(approval, signature, 100n * E18, MAX_PRICES, approval.user),
      ).to.emit(market.sessionRouter, "SessionOpened");
      expect(await market.sessionRouter.isApprovalNonceUsed(market.provider.address, approval.nonce)).to.equal(true);
    });

    it("the router opens a session on an approval viem signed as the operator", async function () {
      const { market, accounts } = await loadFixture(marketWithViemAccounts);
      const { sessionId } = await openWithViemApproval(market, accounts.operator);
      expect((await market.sessionRouter.getSessionState(sessionId)).status).to.equal(1n);
    });

    it("the router refuses an approval signed for another chain", async function () {
      const { market, accounts } = await loadFixture(marketWithViemAccounts);
      const approval = await makeApproval(market);
      const signature = await signSessionApproval(
        accounts.provider,
        { ...market.domain, chainId: market.domain.chainId + 1 },
        approval,
      );
      await expect(
        market.sessionRouter
          .connect(market.user)
          .openSession(approval, signature, 100n * E18, MAX_PRICES, approval.user),
      )
        .to.be.revertedWithCustomError(market.sessionRouter, "InvalidApprovalSigner")
        .withArgs(market.provider.address);
    });

    it("the router settles on a receipt viem signed as the user, closed by the provider", async function () {
      const { market, accounts } = await loadFixture(marketWithViemAccounts);
      const { sessionId, terms } = await openWithViemApproval(market, accounts.provider);
      const receipt = receiptFor(sessionId, 3n, 1_000n, 500n);
      const userSignature = await signUsageReceipt(accounts.user, market.domain, receipt);
      await expect(market.sessionRouter.connect(market.provider).closeSession(terms, receipt, userSignature, "0x"))
        .to.emit(market.sessionRouter, "SessionSettled")
        .withArgs(
          sessionId,
          market.user.address,
          market.provider.address,
          anyValue,
          receiptTuple(receipt),
          market.provider.address,
          false,
        );
    });

    it("the router settles a cooperative close at once: user and operator signatures by viem", async function () {
      const { market, accounts } = await loadFixture(marketWithViemAccounts);
      const { sessionId, terms } = await openWithViemApproval(market, accounts.provider);
      const receipt = receiptFor(sessionId, 2n, 10n, 20n);
      const userSignature = await signUsageReceipt(accounts.user, market.domain, receipt);
      const operatorSignature = await signUsageReceipt(accounts.operator, market.domain, receipt);
      await expect(
        market.sessionRouter.connect(market.user).closeSession(terms, receipt, userSignature, operatorSignature),
      )
        .to.emit(market.sessionRouter, "SessionSettled")
        .withArgs(
          sessionId,
          market.user.address,
          market.provider.address,
          anyValue,
          receiptTuple(receipt),
          market.user.address,
          false,
        );
    });

    it("the router refuses a receipt whose viem signature covers other numbers", async function () {
      const { market, accounts } = await loadFixture(marketWithViemAccounts);
      const { sessionId, terms } = await openWithViemApproval(market, accounts.provider);
      const signed = receiptFor(sessionId, 3n, 1_000n, 500n);
      const userSignature = await signUsageReceipt(accounts.user, market.domain, signed);
      const inflated = { ...signed, outputTokens: signed.outputTokens * 10n };
      await expect(
        market.sessionRouter.connect(market.provider).closeSession(terms, inflated, userSignature, "0x"),
      ).to.be.revertedWithCustomError(market.sessionRouter, "InvalidUserSignature");
    });
  });

  describe("sign, recover and verify helpers", function () {
    it("verify the genuine signer and reject a tampered message, a wrong signer and garbage signatures", async function () {
      const { market, accounts } = await loadFixture(marketWithViemAccounts);
      const { domain } = market;
      const receipt = receiptFor(hex32(7n), 4n, 100n, 200n);
      const signature = await signUsageReceipt(accounts.user, domain, receipt);
      expect(await recoverSessionSigner(domain, "UsageReceipt", receipt, signature)).to.equal(accounts.user.address);
      expect(await verifyUsageReceipt(domain, receipt, signature, [accounts.user.address])).to.equal(true);
      // Addresses compare without regard to case.
      expect(
        await verifyUsageReceipt(domain, receipt, signature, [accounts.user.address.toLowerCase() as Address]),
      ).to.equal(true);
      expect(await verifyUsageReceipt(domain, { ...receipt, seq: 5n }, signature, [accounts.user.address])).to.equal(
        false,
      );
      expect(await verifyUsageReceipt({ ...domain, chainId: 1 }, receipt, signature, [accounts.user.address])).to.equal(
        false,
      );
      expect(await verifyUsageReceipt(domain, receipt, signature, [accounts.provider.address])).to.equal(false);
      expect(await verifyUsageReceipt(domain, receipt, signature, [])).to.equal(false);
      for (const garbage of ["0x", "0x1234", `0x${"00".repeat(65)}`, `0x${"ff".repeat(65)}`] as Hex[]) {
        expect(await verifyUsageReceipt(domain, receipt, garbage, [accounts.user.address]), garbage).to.equal(false);
      }

      const approval = await makeApproval(market);
      const approvalSignature = await signSessionApproval(accounts.operator, domain, approval);
      const signers = [accounts.provider.address, accounts.operator.address];
      expect(await verifySessionApproval(domain, approval, approvalSignature, signers)).to.equal(true);
      expect(
        await verifySessionApproval(
          domain,
          { ...approval, maxDeposit: approval.maxDeposit + 1n },
          approvalSignature,
          signers,
        ),
      ).to.equal(false);
      expect(await verifySessionApproval(domain, approval, "0xdeadbeef", signers)).to.equal(false);

      const auth = { sessionId: hex32(9n), expiresAt: 1_900_000_000n };
      const authSignature = await signSessionAuth(accounts.user, domain, auth);
      expect(await verifySessionAuth(domain, auth, authSignature, accounts.user.address)).to.equal(true);
      expect(
        await verifySessionAuth(
          domain,
          { ...auth, expiresAt: auth.expiresAt + 1n },
          authSignature,
          accounts.user.address,
        ),
      ).to.equal(false);
      expect(await verifySessionAuth(domain, auth, authSignature, accounts.provider.address)).to.equal(false);
      expect(await verifySessionAuth(domain, auth, "0x00", accounts.user.address)).to.equal(false);
    });

    it("emptyReceipt is the all-zero receipt the router takes without a signature", async function () {
      const { market } = await loadFixture(marketWithViemAccounts);
      const { sessionId, terms } = await openSession(market);
      const receipt = emptyReceipt(sessionId);
      expect(receipt).to.deep.equal({
        sessionId,
        seq: 0n,
        inputTokens: 0n,
        outputTokens: 0n,
        requests: 0,
        ttftMsAvg: 0,
        tpsX1000Avg: 0,
      });
      await expect(market.sessionRouter.connect(market.provider).closeSession(terms, receipt, "0x", "0x")).to.emit(
        market.sessionRouter,
        "SessionSettled",
      );
    });
  });

  describe("ids", function () {
    it("sessionIdOf is the id the router gave an opened session", async function () {
      const { market } = await loadFixture(marketWithViemAccounts);
      const { sessionId, terms } = await openSession(market);
      expect(sessionIdOf(terms)).to.equal(sessionId);
      expect(await market.sessionRouter.sessionIdOf(terms)).to.equal(sessionId);
    });

    it("sessionIdOf equals the router's sessionIdOf for random terms", async function () {
      const { market } = await loadFixture(marketWithViemAccounts);
      const random = randomBits("session-terms");
      for (let i = 0; i < 25; i++) {
        const terms: SessionTerms = {
          user: address(random(160)),
          sessionKey: address(random(160)),
          provider: address(random(160)),
          modelId: hex32(random(256)),
          nonce: random(256),
          pricePerSecond: random(256),
          pricePerInputToken: random(80),
          pricePerOutputToken: random(i % 2 === 0 ? 256 : 1),
          royaltyRecipient: address(random(160)),
          royaltyBps: Number(random(16)),
          feeBps: Number(random(16)),
          challengeWindow: Number(random(32)),
          maxDeposit: random(96),
          openedAt: Number(random(40)),
          maxEndsAt: Number(random(40)),
        };
        expect(sessionIdOf(terms), `terms #${i}`).to.equal(await market.sessionRouter.sessionIdOf(terms));
      }
    });

    it("bidIdOf, providerOfBid and modelIdOf equal the contracts' for the fixture and random inputs", async function () {
      const { market } = await loadFixture(marketWithViemAccounts);
      const provider = market.provider.address as Address;
      expect(bidIdOf(provider, market.modelId)).to.equal(market.bidId);
      expect(getAddress(providerOfBid(market.bidId))).to.equal(provider);
      const random = randomBits("ids");
      for (let i = 0; i < 25; i++) {
        const account = address(random(160));
        const hash = hex32(random(256));
        const modelId = modelIdOf(account, hash);
        expect(modelId).to.equal(await market.modelRegistry.modelIdOf(account, hash));
        const bidId = bidIdOf(account, modelId);
        expect(bidId).to.equal(await market.marketplace.bidIdOf(account, modelId));
        expect(getAddress(providerOfBid(bidId))).to.equal(await market.marketplace.providerOf(bidId));
        expect(getAddress(providerOfBid(bidId))).to.equal(account);
      }
    });
  });

  describe("sessionCost and splitCost", function () {
    async function settle(
      market: MarketWithBid,
      deposit: bigint,
      secondsOpen: number,
      receiptTokens: [bigint, bigint],
    ) {
      const { sessionId, terms, endsAt } = await openSession(market, deposit);
      const closedAt = terms.openedAt + secondsOpen;
      await time.setNextBlockTimestamp(closedAt);
      const receipt = receiptFor(sessionId, 1n, ...receiptTokens);
      const userSignature = await signReceipt(market, receipt);
      const elapsed = BigInt(Math.min(closedAt, endsAt) - terms.openedAt);
      const cost = sessionCost(
        terms,
        elapsed,
        { inputTokens: receipt.inputTokens, outputTokens: receipt.outputTokens },
        deposit,
      );
      const { providerAmount, royaltyAmount, feeAmount } = splitCost(terms, cost);
      const tx = market.sessionRouter.connect(market.provider).closeSession(terms, receipt, userSignature, "0x");
      await expect(tx)
        .to.emit(market.sessionRouter, "SessionSettled")
        .withArgs(
          sessionId,
          market.user.address,
          market.provider.address,
          [cost, providerAmount, royaltyAmount, feeAmount, deposit - cost, elapsed, market.treasury.address],
          receiptTuple(receipt),
          market.provider.address,
          false,
        );
      return { terms, cost, elapsed, providerAmount, royaltyAmount, feeAmount };
    }

    it("price time and tokens as the router did, and split it into its fee, royalty and provider parts", async function () {
      const { market } = await loadFixture(marketWithViemAccounts);
      const result = await settle(market, 100n * E18, 600, [1_234n, 567n]);
      // 600 s × 1e12 + 1,234 × 1e9 + 567 × 4e9, split 2.5% fee and 5% royalty.
      expect(result.elapsed).to.equal(600n);
      expect(result.cost).to.equal(600n * 10n ** 12n + 1_234n * 10n ** 9n + 567n * 4n * 10n ** 9n);
      expect(result.feeAmount).to.equal((result.cost * 250n) / 10_000n);
      expect(result.royaltyAmount).to.equal((result.cost * 500n) / 10_000n);
      expect(result.providerAmount + result.royaltyAmount + result.feeAmount).to.equal(result.cost);
    });

    it("cap the cost at the deposit and time at the session's end, as the router did", async function () {
      const { market } = await loadFixture(marketWithViemAccounts);
      // 1 token buys 1e6 s; the approval caps the session at 3,600 s; the receipt asks far more than the deposit.
      const result = await settle(market, E18, 7_200, [0n, 10n ** 9n]);
      expect(result.elapsed).to.equal(3_600n);
      expect(result.cost).to.equal(E18);
    });

    it("round fee and royalty down and leave the remainder to the provider", function () {
      const split = splitCost({ feeBps: 250, royaltyBps: 500 }, 399n);
      expect(split).to.deep.equal({ feeAmount: 9n, royaltyAmount: 19n, providerAmount: 371n });
    });
  });

  describe("V3 keystores", function () {
    // The PBKDF2 test vector of the Web3 Secret Storage definition (password "testpassword").
    const VECTOR_KEY = "0x7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d";
    const VECTOR_ADDRESS = "0x008AeEda4D805471dF9b2A5B0f38A0C3bCBA786b";
    interface Keystore {
      version: unknown;
      address?: unknown;
      crypto: Record<string, unknown> & { cipherparams: Record<string, unknown>; kdfparams: Record<string, unknown> };
    }
    function pbkdf2Vector(): Keystore {
      return {
        version: 3,
        crypto: {
          cipher: "aes-128-ctr",
          cipherparams: { iv: "6087dab2f9fdbbfaddc31a909735c1e6" },
          ciphertext: "5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46",
          kdf: "pbkdf2",
          kdfparams: {
            c: 262144,
            dklen: 32,
            prf: "hmac-sha256",
            salt: "ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd",
          },
          mac: "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2",
        },
      };
    }
    const text = (keystore: Keystore) => JSON.stringify(keystore);
    function refusal(json: string, password: string): KeystoreError {
      try {
        decryptKeystore(json, password);
      } catch (error) {
        expect(error).to.be.instanceOf(KeystoreError);
        return error as KeystoreError;
      }
      throw new Error("decryptKeystore accepted the keystore");
    }

    it("decrypts the spec's PBKDF2 vector and its own scrypt keystores", function () {
      expect(decryptKeystore(text(pbkdf2Vector()), "testpassword")).to.equal(VECTOR_KEY);
      const json = encryptKeystore(VECTOR_KEY, "pw", 1 << 10);
      expect(JSON.parse(json)).to.include({ version: 3, address: VECTOR_ADDRESS.slice(2).toLowerCase() });
      expect(decryptKeystore(json, "pw")).to.equal(VECTOR_KEY);
    });

    it("says a password is wrong, and a key is not the address the keystore states", function () {
      const wrong = refusal(text(pbkdf2Vector()), "nope");
      expect(wrong.reason).to.equal("wrong-password");
      expect(wrong.message).to.equal("wrong password (the keystore's MAC does not match)");
      const stated = { ...pbkdf2Vector(), address: VECTOR_ADDRESS };
      expect(decryptKeystore(text(stated), "testpassword")).to.equal(VECTOR_KEY);
      const mismatch = refusal(text({ ...stated, address: "11".repeat(20) }), "testpassword");
      expect(mismatch.reason).to.equal("address-mismatch");
      expect(mismatch.message).to.match(/not the keystore's address 0x1111/);
    });

    it("names what is malformed or unsupported", function () {
      const edits: [(keystore: Keystore) => void, RegExp][] = [
        [(k) => (k.version = 1), /not a version 3 keystore/],
        [(k) => (k.crypto.cipher = "aes-256-gcm"), /cipher "aes-256-gcm" is not supported/],
        [(k) => (k.crypto.ciphertext = "xyz"), /field ciphertext is not hex/],
        [(k) => (k.crypto.cipherparams.iv = "00"), /field cipherparams\.iv is not 16 bytes/],
        [(k) => (k.crypto.mac = 7), /field mac is not hex/],
        [(k) => (k.crypto.kdfparams.c = "262144"), /field kdfparams\.c is not a positive integer/],
        [(k) => (k.crypto.kdfparams.dklen = 16), /kdfparams\.dklen is 16, below 32/],
        [(k) => (k.crypto.kdfparams.prf = "hmac-sha512"), /prf "hmac-sha512" is not supported/],
        [(k) => (k.crypto.kdf = "argon2"), /kdf "argon2" is not supported/],
        [(k) => (k.address = "0x1234"), /field address is not an address/],
      ];
      for (const [edit, message] of edits) {
        const keystore = pbkdf2Vector();
        edit(keystore);
        expect(refusal(text(keystore), "testpassword").message).to.match(message);
      }
      expect(refusal("{ not json", "pw").message).to.match(/^the keystore is not JSON/);
      const scrypt = JSON.parse(encryptKeystore(VECTOR_KEY, "pw", 1 << 10)) as Keystore;
      for (const [params, message] of [
        [{ n: 1000 }, /kdfparams\.n is not a power of two/],
        [{ n: 1 << 18, r: 1 }, /kdfparams\.n \(262144\) is not below 2\^\(16·r\)/],
        [{ n: 1 << 30 }, /need 1\d{6} MiB, more than the 1024 MiB allowed/],
      ] as const) {
        const edited = {
          ...scrypt,
          crypto: { ...scrypt.crypto, kdfparams: { ...scrypt.crypto.kdfparams, ...params } },
        };
        expect(refusal(text(edited), "pw").message).to.match(message);
      }
    });
  });
});
