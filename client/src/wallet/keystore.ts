/**
 * Ethereum V3 keystore files (the JSON that geth, ethers, Foundry's `cast wallet` and MetaMask
 * export). protocol/keystore.ts does the work (shared with the provider agent); this names the
 * keystore in each message and turns its `KeystoreError` into a `WalletKeyError` with a hint.
 */
import type { Hex } from "viem";
import {
  KeystoreError,
  type KeystoreErrorReason,
  decryptKeystore as decryptV3Keystore,
  encryptKeystore as encryptV3Keystore,
} from "../../../protocol/index.js";
import { WalletKeyError } from "../errors.js";

const V3_FILE_HINT = "MARKET_KEYSTORE must name a V3 keystore file (geth, ethers, cast wallet)";
const DECRYPT_HINTS: Record<KeystoreErrorReason, string> = {
  malformed: V3_FILE_HINT,
  unsupported: V3_FILE_HINT,
  "wrong-password": "set MARKET_KEYSTORE_PASSWORD to the keystore's password",
  "address-mismatch": "the keystore file is damaged or was edited: export the key again",
};

function walletKeyError(error: unknown, source: string, hints?: Record<KeystoreErrorReason, string>): unknown {
  if (!(error instanceof KeystoreError)) return error;
  return new WalletKeyError(`${source}: ${error.message}`, { hint: hints?.[error.reason], cause: error });
}

/** The private key in a V3 keystore; a wrong password is a `WalletKeyError` that says so. */
export function decryptKeystore(json: string, password: string, source = "keystore"): Hex {
  try {
    return decryptV3Keystore(json, password);
  } catch (error) {
    throw walletKeyError(error, source, DECRYPT_HINTS);
  }
}

/** A V3 keystore of `privateKey` (scrypt). `scryptN` lower than the default only for tests. */
export function encryptKeystore(privateKey: Hex, password: string, scryptN = 1 << 17): string {
  try {
    return encryptV3Keystore(privateKey, password, scryptN);
  } catch (error) {
    throw walletKeyError(error, "encryptKeystore");
  }
}
