/**
 * Encryption of session keys at rest: AES-256-GCM under a key derived with scrypt from a secret.
 * The secret is either a password (`MARKET_STORE_PASSWORD`) or the wallet's signature of a fixed
 * message (`storeUnlockMessage`): EIP-191 signatures by a local key are deterministic (RFC 6979),
 * so the same wallet derives the same key in every process without another secret to keep.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCallback, timingSafeEqual } from "node:crypto";
import type { Address, Hex } from "viem";

export interface ScryptParameters {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
  /** Hex. */
  salt: string;
}

/** 2^15 × 8 × 128 bytes = 32 MiB and ~0.1 s here: once per process, for the store's key. */
export const DEFAULT_SCRYPT: Omit<ScryptParameters, "salt"> = { N: 1 << 15, r: 8, p: 1 };

export interface SealedBox {
  /** 12-byte GCM nonce, hex. */
  iv: string;
  ciphertext: string;
  /** 16-byte GCM tag, hex. */
  tag: string;
}

export function newScryptParameters(): ScryptParameters {
  return { ...DEFAULT_SCRYPT, salt: randomBytes(16).toString("hex") };
}

export function deriveStoreKey(secret: string | Uint8Array, parameters: ScryptParameters): Promise<Buffer> {
  const { N, r, p } = parameters;
  return new Promise((resolve, reject) => {
    scryptCallback(
      secret,
      Buffer.from(parameters.salt, "hex"),
      32,
      { N, r, p, maxmem: 256 * N * r + 1024 * 1024 },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}

/** Encrypts `plaintext`; `associatedData` is authenticated but not encrypted (what the box belongs to). */
export function seal(key: Buffer, plaintext: Uint8Array, associatedData: string): SealedBox {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(associatedData, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv: iv.toString("hex"), ciphertext: ciphertext.toString("hex"), tag: cipher.getAuthTag().toString("hex") };
}

/** Decrypts a box; throws when the key is wrong or the box (or its associated data) was altered. */
export function open(key: Buffer, box: SealedBox, associatedData: string): Buffer {
  const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(box.iv, "hex"));
  decipher.setAAD(Buffer.from(associatedData, "utf8"));
  decipher.setAuthTag(Buffer.from(box.tag, "hex"));
  return Buffer.concat([decipher.update(Buffer.from(box.ciphertext, "hex")), decipher.final()]);
}

/** Constant-time comparison of two byte strings. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** What a wallet signs to unlock its session store (no transaction, no approval of anything). */
export function storeUnlockMessage(user: Address): string {
  return (
    "Inference Market: unlock the local session store\n\n" +
    `Account: ${user}\n\n` +
    "This signature derives the key that encrypts your session keys on this machine. " +
    "It sends no transaction and approves nothing."
  );
}

export type StoreSecret = { kind: "password"; password: string } | { kind: "wallet-signature"; signature: Hex };
