/**
 * Ethereum V3 keystores (Web3 secret storage: the JSON that geth, ethers' `Wallet.encrypt`, Foundry's
 * `cast wallet` and MetaMask export): scrypt or PBKDF2-HMAC-SHA256, AES-128-CTR, a keccak256 MAC. The
 * one implementation behind the client's `decryptKeystore`/`encryptKeystore` and the provider agent's
 * keystore loader; node:crypto does the work, so neither needs a wallet library at run time.
 *
 * Every failure is a `KeystoreError` whose message says what is wrong without naming the file (the
 * caller knows where the JSON came from and prefixes it) and never shows the key or the password.
 */
import {
  createCipheriv,
  createDecipheriv,
  pbkdf2Sync,
  randomBytes,
  randomUUID,
  scryptSync,
  timingSafeEqual,
} from "node:crypto";
import { type Address, type Hex, getAddress, isAddress, keccak256 } from "viem";
import { privateKeyToAddress } from "viem/accounts";

/** What went wrong, for a caller that words its own advice: a bad file, a wrong password, ... */
export type KeystoreErrorReason = "malformed" | "unsupported" | "wrong-password" | "address-mismatch";

/** A keystore that cannot be decrypted (or a key that cannot be encrypted). */
export class KeystoreError extends Error {
  constructor(
    readonly reason: KeystoreErrorReason,
    message: string,
  ) {
    super(message);
    this.name = "KeystoreError";
  }
}

/** The most memory a keystore's scrypt parameters may ask for (geth's "standard" N = 2^18, r = 8 is 256 MiB). */
const SCRYPT_MAX_MEMORY = 1024 * 1024 * 1024;
const HEX = /^(0x)?([0-9a-fA-F]{2})+$/;
const PRIVATE_KEY = /^0x[0-9a-fA-F]{64}$/;

function malformed(message: string): KeystoreError {
  return new KeystoreError("malformed", message);
}

function object(field: string, value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw malformed(`keystore field ${field} is not an object`);
  }
  return value as Record<string, unknown>;
}

function hexBytes(field: string, value: unknown, length?: number): Buffer {
  if (typeof value !== "string" || !HEX.test(value)) throw malformed(`keystore field ${field} is not hex`);
  const bytes = Buffer.from(value.replace(/^0x/, ""), "hex");
  if (length !== undefined && bytes.length !== length) {
    throw malformed(`keystore field ${field} is not ${length} bytes (it is ${bytes.length})`);
  }
  return bytes;
}

function positiveInteger(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw malformed(`keystore field ${field} is not a positive integer`);
  }
  return value;
}

function passwordBytes(password: string): Buffer {
  return Buffer.from(password.normalize("NFKC"), "utf8");
}

function scrypt(password: Buffer, salt: Buffer, length: number, N: number, r: number, p: number): Buffer {
  // scrypt needs 128·N·r bytes for its table and 128·r·p for its blocks; node refuses above maxmem.
  const needed = 128 * N * r + 128 * r * p;
  if (needed > SCRYPT_MAX_MEMORY) {
    throw new KeystoreError(
      "unsupported",
      `keystore scrypt parameters n=${N}, r=${r}, p=${p} need ${Math.ceil(needed / 2 ** 20)} MiB, ` +
        `more than the ${SCRYPT_MAX_MEMORY / 2 ** 20} MiB allowed`,
    );
  }
  try {
    return scryptSync(password, salt, length, { N, r, p, maxmem: needed + 32 * 1024 * 1024 });
  } catch (error) {
    throw new KeystoreError("unsupported", `keystore scrypt parameters are refused: ${(error as Error).message}`);
  }
}

function deriveKey(crypto: Record<string, unknown>, password: string): Buffer {
  const kdf = crypto.kdf;
  const params = object("kdfparams", crypto.kdfparams);
  const salt = hexBytes("kdfparams.salt", params.salt);
  const length = positiveInteger("kdfparams.dklen", params.dklen);
  if (length < 32) throw malformed(`keystore field kdfparams.dklen is ${length}, below 32`);
  if (kdf === "scrypt") {
    const N = positiveInteger("kdfparams.n", params.n);
    if (N < 2 || (N & (N - 1)) !== 0) throw malformed("keystore field kdfparams.n is not a power of two above 1");
    const r = positiveInteger("kdfparams.r", params.r);
    const p = positiveInteger("kdfparams.p", params.p);
    // RFC 7914 requires N < 2^(128·r/8); OpenSSL refuses more (calling it a memory limit).
    if (16 * r < 53 && N >= 2 ** (16 * r)) {
      throw malformed(`keystore field kdfparams.n (${N}) is not below 2^(16·r) = 2^${16 * r}, scrypt's limit`);
    }
    return scrypt(passwordBytes(password), salt, length, N, r, p);
  }
  if (kdf === "pbkdf2") {
    if (params.prf !== "hmac-sha256") {
      throw new KeystoreError(
        "unsupported",
        `keystore PBKDF2 prf ${JSON.stringify(params.prf)} is not supported (hmac-sha256)`,
      );
    }
    const iterations = positiveInteger("kdfparams.c", params.c);
    return pbkdf2Sync(passwordBytes(password), salt, iterations, length, "sha256");
  }
  throw new KeystoreError("unsupported", `keystore kdf ${JSON.stringify(kdf)} is not supported (scrypt or pbkdf2)`);
}

/** The keystore's `address` (hex, with or without 0x), checksummed; undefined when it states none. */
function statedAddress(value: unknown): Address | undefined {
  if (value === undefined || value === "") return undefined;
  const address = typeof value === "string" && !value.startsWith("0x") ? `0x${value}` : value;
  if (typeof address !== "string" || !isAddress(address, { strict: false })) {
    throw malformed("keystore field address is not an address");
  }
  return getAddress(address);
}

function macOf(derived: Buffer, ciphertext: Buffer): Buffer {
  return Buffer.from(keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])).slice(2), "hex");
}

/**
 * The private key in the V3 keystore `json` (its text), decrypted with `password`. Checks every field
 * it uses, the MAC (in constant time: a mismatch is a wrong password), that the key is 32 bytes, and,
 * when the keystore states an `address`, that the key is that address's. Throws `KeystoreError`.
 */
export function decryptKeystore(json: string, password: string): Hex {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw malformed(`the keystore is not JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw malformed("the keystore is not a JSON object");
  }
  const record = parsed as Record<string, unknown>;
  const cryptoField = record.crypto ?? record.Crypto;
  if (record.version !== 3 || typeof cryptoField !== "object" || cryptoField === null) {
    throw malformed("not a version 3 keystore (a `crypto` object and `version: 3` expected)");
  }
  const crypto = cryptoField as Record<string, unknown>;
  if (crypto.cipher !== "aes-128-ctr") {
    throw new KeystoreError(
      "unsupported",
      `keystore cipher ${JSON.stringify(crypto.cipher)} is not supported (aes-128-ctr)`,
    );
  }
  const ciphertext = hexBytes("ciphertext", crypto.ciphertext);
  const iv = hexBytes("cipherparams.iv", object("cipherparams", crypto.cipherparams).iv, 16);
  const mac = hexBytes("mac", crypto.mac, 32);
  const stated = statedAddress(record.address);

  const derived = deriveKey(crypto, password);
  if (!timingSafeEqual(macOf(derived, ciphertext), mac)) {
    throw new KeystoreError("wrong-password", "wrong password (the keystore's MAC does not match)");
  }
  const decipher = createDecipheriv("aes-128-ctr", derived.subarray(0, 16), iv);
  const key = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  if (key.length !== 32) throw malformed(`the keystore holds ${key.length} bytes, not a 32-byte private key`);
  const privateKey: Hex = `0x${key.toString("hex")}`;
  if (stated !== undefined) {
    let actual: Address;
    try {
      actual = privateKeyToAddress(privateKey);
    } catch {
      throw malformed("the keystore does not hold a valid secp256k1 private key");
    }
    if (actual !== stated) {
      throw new KeystoreError("address-mismatch", `the decrypted key is not the keystore's address ${stated}`);
    }
  }
  return privateKey;
}

/**
 * A V3 keystore (its JSON text) of `privateKey`, encrypted with `password` by scrypt (r = 8, p = 1).
 * `scryptN` lower than the default (2^17, as ethers) only for tests.
 */
export function encryptKeystore(privateKey: Hex, password: string, scryptN = 1 << 17): string {
  if (!PRIVATE_KEY.test(privateKey)) throw malformed("the private key is not 0x followed by 64 hex digits");
  if (!Number.isSafeInteger(scryptN) || scryptN < 2 || (scryptN & (scryptN - 1)) !== 0) {
    throw malformed(`scrypt N ${scryptN} is not a power of two above 1`);
  }
  let address: string;
  try {
    address = privateKeyToAddress(privateKey);
  } catch {
    throw malformed("the private key is not a valid secp256k1 private key");
  }
  const salt = randomBytes(32);
  const iv = randomBytes(16);
  const derived = scrypt(passwordBytes(password), salt, 32, scryptN, 8, 1);
  const cipher = createCipheriv("aes-128-ctr", derived.subarray(0, 16), iv);
  const ciphertext = Buffer.concat([cipher.update(Buffer.from(privateKey.slice(2), "hex")), cipher.final()]);
  return JSON.stringify({
    version: 3,
    id: randomUUID(),
    address: address.slice(2).toLowerCase(),
    crypto: {
      cipher: "aes-128-ctr",
      ciphertext: ciphertext.toString("hex"),
      cipherparams: { iv: iv.toString("hex") },
      kdf: "scrypt",
      kdfparams: { dklen: 32, salt: salt.toString("hex"), n: scryptN, r: 8, p: 1 },
      mac: macOf(derived, ciphertext).toString("hex"),
    },
  });
}
