/**
 * Ethereum V3 keystore files (the JSON that geth, ethers, Foundry's `cast wallet` and MetaMask
 * export): scrypt or PBKDF2-HMAC-SHA256, AES-128-CTR, keccak256 MAC. node:crypto does the work.
 */
import { createCipheriv, createDecipheriv, pbkdf2Sync, randomBytes, randomUUID, scryptSync } from "node:crypto";
import { type Hex, getAddress, keccak256 } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { WalletKeyError } from "../errors.js";
import { sameBytes } from "../store/encryption.js";

interface KeystoreCrypto {
  cipher: string;
  ciphertext: string;
  cipherparams: { iv: string };
  kdf: string;
  kdfparams: Record<string, unknown>;
  mac: string;
}

function kdfKey(crypto: KeystoreCrypto, password: string, source: string): Buffer {
  const params = crypto.kdfparams;
  const salt = Buffer.from(String(params.salt).replace(/^0x/, ""), "hex");
  const dklen = Number(params.dklen ?? 32);
  if (crypto.kdf === "scrypt") {
    const N = Number(params.n);
    const r = Number(params.r);
    const p = Number(params.p);
    return scryptSync(Buffer.from(password.normalize("NFKC")), salt, dklen, {
      N,
      r,
      p,
      maxmem: 256 * N * r + (1 << 20),
    });
  }
  if (crypto.kdf === "pbkdf2") {
    if (params.prf !== "hmac-sha256")
      throw new WalletKeyError(`${source}: unsupported PBKDF2 prf ${String(params.prf)}`);
    return pbkdf2Sync(Buffer.from(password.normalize("NFKC")), salt, Number(params.c), dklen, "sha256");
  }
  throw new WalletKeyError(`${source}: unsupported keystore kdf ${crypto.kdf} (expected scrypt or pbkdf2)`);
}

/** The private key in a V3 keystore; a wrong password is a `WalletKeyError` that says so. */
export function decryptKeystore(json: string, password: string, source = "keystore"): Hex {
  let parsed: { version?: number; address?: string; crypto?: KeystoreCrypto; Crypto?: KeystoreCrypto };
  try {
    parsed = JSON.parse(json) as typeof parsed;
  } catch (error) {
    throw new WalletKeyError(`${source} is not JSON (${(error as Error).message})`, {
      hint: "MARKET_KEYSTORE must name a V3 keystore file (geth, ethers, cast wallet)",
    });
  }
  const crypto = parsed.crypto ?? parsed.Crypto;
  if (parsed.version !== 3 || crypto === undefined) {
    throw new WalletKeyError(`${source} is not a version 3 keystore`);
  }
  if (crypto.cipher !== "aes-128-ctr") throw new WalletKeyError(`${source}: unsupported cipher ${crypto.cipher}`);
  const derived = kdfKey(crypto, password, source);
  const ciphertext = Buffer.from(crypto.ciphertext.replace(/^0x/, ""), "hex");
  const mac = Buffer.from(keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])).slice(2), "hex");
  if (!sameBytes(mac, Buffer.from(crypto.mac.replace(/^0x/, ""), "hex"))) {
    throw new WalletKeyError(`wrong password for ${source} (the keystore's MAC does not match)`, {
      hint: "set MARKET_KEYSTORE_PASSWORD to the keystore's password",
    });
  }
  const decipher = createDecipheriv(
    "aes-128-ctr",
    derived.subarray(0, 16),
    Buffer.from(crypto.cipherparams.iv.replace(/^0x/, ""), "hex"),
  );
  const privateKey: Hex = `0x${Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString("hex")}`;
  if (parsed.address !== undefined && parsed.address !== "") {
    const stated = getAddress(parsed.address.startsWith("0x") ? parsed.address : `0x${parsed.address}`);
    if (privateKeyToAccount(privateKey).address !== stated) {
      throw new WalletKeyError(`${source}: the decrypted key is not the keystore's address ${stated}`);
    }
  }
  return privateKey;
}

/** A V3 keystore of `privateKey` (scrypt). `scryptN` lower than the default only for tests. */
export function encryptKeystore(privateKey: Hex, password: string, scryptN = 1 << 17): string {
  const salt = randomBytes(32);
  const iv = randomBytes(16);
  const derived = scryptSync(Buffer.from(password.normalize("NFKC")), salt, 32, {
    N: scryptN,
    r: 8,
    p: 1,
    maxmem: 256 * scryptN * 8 + (1 << 20),
  });
  const cipher = createCipheriv("aes-128-ctr", derived.subarray(0, 16), iv);
  const ciphertext = Buffer.concat([cipher.update(Buffer.from(privateKey.slice(2), "hex")), cipher.final()]);
  const mac = keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])).slice(2);
  return JSON.stringify({
    version: 3,
    id: randomUUID(),
    address: privateKeyToAccount(privateKey).address.slice(2).toLowerCase(),
    crypto: {
      cipher: "aes-128-ctr",
      ciphertext: ciphertext.toString("hex"),
      cipherparams: { iv: iv.toString("hex") },
      kdf: "scrypt",
      kdfparams: { dklen: 32, salt: salt.toString("hex"), n: scryptN, r: 8, p: 1 },
      mac,
    },
  });
}
