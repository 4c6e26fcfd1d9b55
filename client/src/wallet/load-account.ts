/**
 * The wallet's key, from the environment only — never from a command-line flag, where it would land
 * in shell history and in every `ps` listing:
 *
 *   MARKET_PRIVATE_KEY=0x…                               a raw key, or
 *   MARKET_KEYSTORE=path MARKET_KEYSTORE_PASSWORD=…      a V3 keystore file and its password.
 */
import { readFileSync } from "node:fs";
import type { LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { WalletKeyError } from "../errors.js";
import { decryptKeystore } from "./keystore.js";

const PRIVATE_KEY = /^0x[0-9a-fA-F]{64}$/;

export const WALLET_ENV_HELP =
  "set MARKET_PRIVATE_KEY=0x… (64 hex digits), or MARKET_KEYSTORE=<path of a V3 keystore> with MARKET_KEYSTORE_PASSWORD";

/** The account the environment configures, or undefined when it configures none. */
export function accountFromEnv(env: NodeJS.ProcessEnv = process.env): LocalAccount | undefined {
  const privateKey = env.MARKET_PRIVATE_KEY?.trim();
  const keystore = env.MARKET_KEYSTORE?.trim();
  if (privateKey && keystore) {
    throw new WalletKeyError("both MARKET_PRIVATE_KEY and MARKET_KEYSTORE are set", { hint: "keep one of them" });
  }
  if (privateKey) {
    if (!PRIVATE_KEY.test(privateKey)) {
      throw new WalletKeyError("MARKET_PRIVATE_KEY is not a private key (expected 0x followed by 64 hex digits)", {
        hint: WALLET_ENV_HELP,
      });
    }
    return privateKeyToAccount(privateKey as `0x${string}`);
  }
  if (keystore) {
    const password = env.MARKET_KEYSTORE_PASSWORD;
    if (password === undefined) {
      throw new WalletKeyError("MARKET_KEYSTORE is set but MARKET_KEYSTORE_PASSWORD is not", {
        hint: "set MARKET_KEYSTORE_PASSWORD to the keystore's password",
      });
    }
    let json: string;
    try {
      json = readFileSync(keystore, "utf8");
    } catch (error) {
      throw new WalletKeyError(`cannot read the keystore ${keystore}: ${(error as Error).message}`, {
        hint: "MARKET_KEYSTORE must be the path of a V3 keystore file",
      });
    }
    return privateKeyToAccount(decryptKeystore(json, password, keystore));
  }
  return undefined;
}

/** The configured account; a `WalletKeyError` naming the env vars when there is none. */
export function requireAccountFromEnv(env: NodeJS.ProcessEnv = process.env): LocalAccount {
  const account = accountFromEnv(env);
  if (!account) throw new WalletKeyError("no wallet key configured", { hint: WALLET_ENV_HELP });
  return account;
}
