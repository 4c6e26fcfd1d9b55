/**
 * The agent's two keys: the provider key (stakes, registers, bids, claims) and the operator key (the
 * hot key that signs approvals and countersignatures and sends closes and challenges). Each comes
 * from an environment variable or an encrypted keystore whose password is in the environment.
 * Either may be missing: with the operator key alone the agent serves and settles but only
 * verifies the on-chain setup; with the provider key alone, the provider key does everything.
 *
 * Keys live only inside viem accounts (which keep no readable copy); nothing here logs them and
 * every error names where a key was looked for, never its value.
 */
import { type Address, type Hex, type LocalAccount, getAddress, isAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { KeystoreConfig } from "../config/schema.js";
import { KeyError } from "./errors.js";
import { decryptKeystore } from "./keystore.js";

export interface AgentKeys {
  /** The provider's own key, when given. */
  provider?: LocalAccount;
  /** The operator (hot) key, when given. */
  operator?: LocalAccount;
  /** The provider's address: the provider key's, or `keys.providerAddress` in operator-only mode. */
  providerAddress: Address;
}

export interface KeySources {
  providerKeyEnv: string;
  operatorKeyEnv: string;
  providerKeystore?: KeystoreConfig;
  operatorKeystore?: KeystoreConfig;
  providerAddress?: Address;
}

function accountFromHex(source: string, value: string): LocalAccount {
  const text = value.trim();
  const hex = text.startsWith("0x") ? text : `0x${text}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) throw new KeyError(source, "expected a private key of 32 bytes in hex");
  try {
    return privateKeyToAccount(hex as Hex);
  } catch {
    throw new KeyError(source, "not a valid secp256k1 private key");
  }
}

async function loadOne(
  role: string,
  envName: string,
  keystore: KeystoreConfig | undefined,
  env: NodeJS.ProcessEnv,
): Promise<LocalAccount | undefined> {
  if (keystore) {
    const password = env[keystore.passwordEnv];
    if (password === undefined) {
      throw new KeyError(`${role} keystore ${keystore.path}`, `set its password in $${keystore.passwordEnv}`);
    }
    return accountFromHex(`${role} keystore ${keystore.path}`, await decryptKeystore(keystore.path, password));
  }
  const value = env[envName];
  if (value === undefined || value.trim() === "") return undefined;
  return accountFromHex(`$${envName}`, value);
}

/** Loads the keys named by `sources` from `env` (and keystore files). */
export async function loadKeys(sources: KeySources, env: NodeJS.ProcessEnv = process.env): Promise<AgentKeys> {
  const provider = await loadOne("provider", sources.providerKeyEnv, sources.providerKeystore, env);
  const operator = await loadOne("operator", sources.operatorKeyEnv, sources.operatorKeystore, env);
  return keysFromAccounts({ provider, operator, providerAddress: sources.providerAddress });
}

/** Checks a set of accounts (from `loadKeys`, or handed in by a program) and names the provider. */
export function keysFromAccounts(input: {
  provider?: LocalAccount | undefined;
  operator?: LocalAccount | undefined;
  providerAddress?: Address | undefined;
}): AgentKeys {
  const { provider, operator } = input;
  if (input.providerAddress !== undefined && !isAddress(input.providerAddress, { strict: false })) {
    throw new KeyError("keys.providerAddress", "not an address");
  }
  const configured = input.providerAddress ? getAddress(input.providerAddress) : undefined;
  if (!provider && !operator) {
    throw new KeyError(
      "keys",
      "no key: set $PROVIDER_PRIVATE_KEY (or $OPERATOR_PRIVATE_KEY with keys.providerAddress), or configure a keystore",
    );
  }
  if (provider && configured && provider.address !== configured) {
    throw new KeyError("keys.providerAddress", `is ${configured}, but the provider key is ${provider.address}`);
  }
  const providerAddress = provider?.address ?? configured;
  if (!providerAddress) {
    throw new KeyError("keys.providerAddress", "operator-only mode (no provider key) needs the provider's address");
  }
  return {
    ...(provider ? { provider } : {}),
    ...(operator ? { operator } : {}),
    providerAddress,
  };
}

/** The key that signs approvals and countersignatures and sends closes: the operator, else the provider. */
export function signingKey(keys: AgentKeys): LocalAccount {
  const key = keys.operator ?? keys.provider;
  if (!key) throw new KeyError("keys", "no key to sign with");
  return key;
}
