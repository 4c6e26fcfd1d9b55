/**
 * What needs no chain: the session store (sealing, unlocking, atomic records), V3 keystores (ours and
 * ethers'), keys from the environment, and the bearer token and receipt header round-trips through
 * the agent's own parsers in protocol/agent-api.ts.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { encryptKeystoreJson } from "ethers";
import { zeroAddress } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  createAuthToken,
  encodeReceiptHeader,
  parseAuthToken,
  parseReceiptHeader,
  signReceipt,
} from "../../protocol/agent-api.js";
import { marketDomain, verifySessionAuth, verifyUsageReceipt } from "../../protocol/index.js";
import { SESSION_RECORD_VERSION, type SessionRecord } from "../src/store/session-record.js";
import { SessionStore } from "../src/store/session-store.js";
import { accountFromEnv, decryptKeystore, encryptKeystore } from "../src/index.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "client-unit-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const user = privateKeyToAccount(generatePrivateKey());

function record(sessionKey: SessionRecord["sessionKey"]): SessionRecord {
  return {
    version: SESSION_RECORD_VERSION,
    chainId: 31337,
    sessionRouter: zeroAddress,
    user: user.address,
    sessionKey,
    bidId: `0x${"11".repeat(32)}`,
    provider: zeroAddress,
    modelId: `0x${"22".repeat(32)}`,
    endpoint: "http://127.0.0.1:1",
    prices: { perSecond: "1", perInputToken: "2", perOutputToken: "3" },
    createdAt: Date.now(),
    fromBlock: "7",
    phase: "opening",
    deposit: "1000",
    receipts: { acknowledgedSeq: "0", statistics: { ttftSamples: 0, ttftMsTotal: 0, tpsSamples: 0, tpsX1000Total: 0 } },
  };
}

void describe("session store", () => {
  void test("a sealed session key round-trips, and no file holds it in clear", async () => {
    const storeDir = join(dir, "wallet-signature");
    const signature = await user.signMessage({ message: "unlock" });
    const store = new SessionStore({
      dir: storeDir,
      user: user.address,
      secret: () => Promise.resolve({ kind: "wallet-signature", signature }),
    });
    const privateKey = generatePrivateKey();
    const created = await store.create(record(await store.sealSessionKey(privateKey)));
    assert.equal(created.sessionKey.address, privateKeyToAccount(privateKey).address);
    // A second process (a new store object) unseals it.
    const again = new SessionStore({
      dir: storeDir,
      user: user.address,
      secret: () => Promise.resolve({ kind: "wallet-signature", signature }),
    });
    const [read] = await again.list();
    assert.ok(read);
    assert.equal(await again.unsealSessionKey(read), privateKey);
    for (const name of ["store.json", `sessions/${created.sessionKey.address}.json`]) {
      const text = await readFile(join(store.root, name), "utf8");
      assert.ok(!text.toLowerCase().includes(privateKey.slice(2)), `${name} holds the key`);
    }
    // Atomic writes leave no temporary files behind.
    await again.update(created.sessionKey.address, (current) => ({ ...current, phase: "failed", failure: "test" }));
    assert.deepEqual(await readdir(join(store.root, "sessions")), [`${created.sessionKey.address}.json`]);
  });

  void test("a wrong password, or the other kind of secret, is told apart from a damaged file", async () => {
    const storeDir = join(dir, "password");
    const secret = (password: string) => () => Promise.resolve({ kind: "password" as const, password });
    const store = new SessionStore({ dir: storeDir, user: user.address, secret: secret("correct horse") });
    const saved = await store.create(record(await store.sealSessionKey(generatePrivateKey())));
    const wrong = new SessionStore({ dir: storeDir, user: user.address, secret: secret("battery staple") });
    await assert.rejects(wrong.unsealSessionKey(saved), { name: "SessionStoreError", message: /wrong key/ });
    const signature = await user.signMessage({ message: "unlock" });
    const otherKind = new SessionStore({
      dir: storeDir,
      user: user.address,
      secret: () => Promise.resolve({ kind: "wallet-signature", signature }),
    });
    await assert.rejects(otherKind.unsealSessionKey(saved), (error: Error & { hint?: string }) => {
      assert.match(error.message, /encrypted with a password/);
      assert.match(error.hint ?? "", /MARKET_STORE_PASSWORD/);
      return true;
    });
    // A record whose sealed key was swapped for another record's fails authentication.
    const other = await store.sealSessionKey(generatePrivateKey());
    await assert.rejects(
      store.unsealSessionKey({ ...saved, sessionKey: { ...saved.sessionKey, sealed: other.sealed } }),
      {
        name: "SessionStoreError",
      },
    );
    await writeFile(join(store.root, "sessions", `${saved.sessionKey.address}.json`), "{ not json");
    await assert.rejects(store.list(), { name: "SessionStoreError", message: /is not a valid session record/ });
  });
});

void describe("wallet keys", () => {
  void test("V3 keystores: ours and ethers' decrypt; a wrong password says so", async () => {
    const privateKey = generatePrivateKey();
    assert.equal(decryptKeystore(encryptKeystore(privateKey, "pw", 1 << 10), "pw"), privateKey);
    const ethersKeystore = await encryptKeystoreJson(
      { address: privateKeyToAccount(privateKey).address, privateKey },
      "pw",
      { scrypt: { N: 1 << 10 } },
    );
    assert.equal(decryptKeystore(ethersKeystore, "pw"), privateKey);
    assert.throws(() => decryptKeystore(ethersKeystore, "nope"), { name: "WalletKeyError", message: /wrong password/ });
    assert.throws(() => decryptKeystore(ethersKeystore, "nope", "my.json"), {
      message: "my.json: wrong password (the keystore's MAC does not match)",
      hint: "set MARKET_KEYSTORE_PASSWORD to the keystore's password",
    });
    assert.throws(() => decryptKeystore("{ not json", "pw", "my.json"), {
      name: "WalletKeyError",
      message: /^my\.json: the keystore is not JSON/,
      hint: /V3 keystore file/,
    });
  });

  void test("keys come from MARKET_PRIVATE_KEY or MARKET_KEYSTORE, one of them, well formed", async () => {
    const privateKey = generatePrivateKey();
    const path = join(dir, "keystore.json");
    await writeFile(path, encryptKeystore(privateKey, "pw", 1 << 10));
    const expected = privateKeyToAccount(privateKey).address;
    assert.equal(accountFromEnv({ MARKET_PRIVATE_KEY: privateKey })?.address, expected);
    assert.equal(accountFromEnv({ MARKET_KEYSTORE: path, MARKET_KEYSTORE_PASSWORD: "pw" })?.address, expected);
    assert.equal(accountFromEnv({}), undefined);
    assert.throws(() => accountFromEnv({ MARKET_PRIVATE_KEY: privateKey, MARKET_KEYSTORE: path }), /both/);
    assert.throws(() => accountFromEnv({ MARKET_KEYSTORE: path }), /MARKET_KEYSTORE_PASSWORD is not/);
    assert.throws(() => accountFromEnv({ MARKET_PRIVATE_KEY: "0x12" }), /not a private key/);
  });
});

void describe("wire formats through the agent's parsers", () => {
  const domain = marketDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
  const sessionKey = privateKeyToAccount(generatePrivateKey());
  const sessionId = `0x${"ab".repeat(32)}` as const;

  void test("the bearer token parses back and verifies against the session key", async () => {
    const token = await createAuthToken(sessionKey, domain, sessionId, 1_900_000_000n);
    const { auth, signature } = parseAuthToken(token);
    assert.deepEqual(auth, { sessionId, expiresAt: 1_900_000_000n });
    assert.equal(await verifySessionAuth(domain, auth, signature, sessionKey.address), true);
    assert.equal(await verifySessionAuth(domain, auth, signature, user.address), false);
  });

  void test("a receipt header parses back to the signed receipt", async () => {
    const receipt = {
      sessionId,
      seq: 3n,
      inputTokens: 120n,
      outputTokens: 48n,
      requests: 3,
      ttftMsAvg: 41,
      tpsX1000Avg: 250_000,
    };
    const signed = await signReceipt(sessionKey, domain, receipt);
    const parsed = parseReceiptHeader(encodeReceiptHeader(signed));
    assert.deepEqual(parsed, signed);
    assert.equal(await verifyUsageReceipt(domain, parsed.receipt, parsed.signature, [sessionKey.address]), true);
  });
});
