/**
 * Reads an Ethereum JSON keystore (Web3 secret storage v3), as written by geth, ethers
 * (`Wallet.encrypt`) or Foundry's `cast wallet`. protocol/keystore.ts decrypts it (shared with the
 * client); this reads the file and reports every failure as a `KeyError` naming the file.
 */
import { readFile } from "node:fs/promises";
import type { Hex } from "viem";
import { KeystoreError, decryptKeystore as decryptV3Keystore } from "../../../protocol/index.js";
import { KeyError } from "./errors.js";

/** The private key inside the keystore at `path`. Throws `KeyError` on a wrong password or a bad file. */
export async function decryptKeystore(path: string, password: string): Promise<Hex> {
  let json: string;
  try {
    json = await readFile(path, "utf8");
  } catch (error) {
    throw new KeyError(path, `cannot read the keystore: ${(error as Error).message}`);
  }
  try {
    return decryptV3Keystore(json, password);
  } catch (error) {
    if (error instanceof KeystoreError) throw new KeyError(path, error.message);
    throw error;
  }
}
