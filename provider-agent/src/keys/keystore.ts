/**
 * Decrypts an Ethereum JSON keystore (Web3 secret storage v3: scrypt or pbkdf2, aes-128-ctr, a
 * keccak256 MAC), as written by geth, ethers (`Wallet.encrypt`) or Foundry's `cast wallet`.
 * node:crypto does the work, so the agent needs no wallet library at run time.
 */
import { createDecipheriv, pbkdf2, scrypt } from "node:crypto";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { type Hex, bytesToHex, concatBytes, hexToBytes, keccak256 } from "viem";
import { KeyError } from "./errors.js";

const scryptAsync = promisify(scrypt) as (
  password: Buffer,
  salt: Buffer,
  keyLength: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;
const pbkdf2Async = promisify(pbkdf2);

interface KeystoreCrypto {
  cipher: string;
  ciphertext: string;
  cipherparams: { iv: string };
  kdf: string;
  kdfparams: Record<string, unknown>;
  mac: string;
}

function hexBytes(source: string, field: string, value: unknown): Uint8Array {
  if (typeof value !== "string" || !/^(0x)?([0-9a-fA-F]{2})+$/.test(value)) {
    throw new KeyError(source, `keystore field ${field} is not hex`);
  }
  return hexToBytes((value.startsWith("0x") ? value : `0x${value}`) as Hex);
}

function positiveInteger(source: string, field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new KeyError(source, `keystore field ${field} is not a positive integer`);
  }
  return value;
}

async function deriveKey(source: string, crypto: KeystoreCrypto, password: string): Promise<Uint8Array> {
  const params = crypto.kdfparams;
  const salt = Buffer.from(hexBytes(source, "kdfparams.salt", params.salt));
  const length = positiveInteger(source, "kdfparams.dklen", params.dklen);
  if (length < 32) throw new KeyError(source, "keystore kdfparams.dklen is below 32");
  const secret = Buffer.from(password.normalize("NFKC"), "utf8");
  if (crypto.kdf === "scrypt") {
    const N = positiveInteger(source, "kdfparams.n", params.n);
    const r = positiveInteger(source, "kdfparams.r", params.r);
    const p = positiveInteger(source, "kdfparams.p", params.p);
    return scryptAsync(secret, salt, length, { N, r, p, maxmem: 256 * N * r + 32 * 1024 * 1024 });
  }
  if (crypto.kdf === "pbkdf2") {
    if (params.prf !== "hmac-sha256") throw new KeyError(source, `keystore prf ${String(params.prf)} is not supported`);
    const iterations = positiveInteger(source, "kdfparams.c", params.c);
    return pbkdf2Async(secret, salt, iterations, length, "sha256");
  }
  throw new KeyError(source, `keystore kdf ${crypto.kdf} is not supported (scrypt or pbkdf2)`);
}

/** The private key inside the keystore at `path`. Throws `KeyError` on a wrong password or a bad file. */
export async function decryptKeystore(path: string, password: string): Promise<Hex> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new KeyError(path, `cannot read the keystore: ${(error as Error).message}`);
  }
  if (typeof json !== "object" || json === null) throw new KeyError(path, "the keystore is not a JSON object");
  const record = json as Record<string, unknown>;
  const crypto = (record.crypto ?? record.Crypto) as KeystoreCrypto | undefined;
  if (record.version !== 3 || typeof crypto !== "object") {
    throw new KeyError(path, "not a version 3 keystore (a `crypto` object and `version: 3` expected)");
  }
  if (crypto.cipher !== "aes-128-ctr") throw new KeyError(path, `keystore cipher ${crypto.cipher} is not supported`);
  const ciphertext = hexBytes(path, "ciphertext", crypto.ciphertext);
  const iv = hexBytes(path, "cipherparams.iv", crypto.cipherparams.iv);
  const derived = await deriveKey(path, crypto, password);
  const mac = keccak256(concatBytes([derived.slice(16, 32), ciphertext]));
  if (
    mac.slice(2).toLowerCase() !==
    bytesToHex(hexBytes(path, "mac", crypto.mac))
      .slice(2)
      .toLowerCase()
  ) {
    throw new KeyError(path, "wrong password (the keystore's MAC does not match)");
  }
  const decipher = createDecipheriv("aes-128-ctr", derived.slice(0, 16), iv);
  const key = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  if (key.length !== 32) throw new KeyError(path, "the keystore does not hold a 32-byte private key");
  return bytesToHex(key);
}
