/**
 * Where the market is deployed. Ignition writes `ignition/deployments/chain-<id>/deployed_addresses.json`;
 * this reads it (or any file of the same shape) into typed addresses.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Address, getAddress, isAddress } from "viem";

export interface MarketAddresses {
  token: Address;
  staking: Address;
  providerRegistry: Address;
  modelRegistry: Address;
  marketplace: Address;
  sessionRouter: Address;
  escrow: Address;
}

/**
 * Ignition names each address `<module>#<future id>`; the future id is the contract's name (the
 * token of a real network is the `token` future of the InferenceMarket module).
 */
const FUTURE_IDS: Record<keyof MarketAddresses, readonly string[]> = {
  token: ["MarketToken", "token"],
  staking: ["Staking"],
  providerRegistry: ["ProviderRegistry"],
  modelRegistry: ["ModelRegistry"],
  marketplace: ["Marketplace"],
  sessionRouter: ["SessionRouter"],
  escrow: ["Escrow"],
};

export class DeploymentNotFoundError extends Error {
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    super(`no deployment at ${path}: run \`npm start\` (local) or deploy with Ignition first`, { cause });
    this.name = "DeploymentNotFoundError";
  }
}

export class InvalidDeploymentError extends Error {
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(`deployment file ${path} is invalid: ${detail}`);
    this.name = "InvalidDeploymentError";
  }
}

/** The path of Ignition's address file for `chainId` under `projectRoot`. */
export function deploymentFile(projectRoot: string, chainId: number): string {
  return join(projectRoot, "ignition", "deployments", `chain-${chainId}`, "deployed_addresses.json");
}

/** Turns Ignition's `{ "<module>#<contract>": address }` map into `MarketAddresses`, or says what is missing. */
export function parseDeployedAddresses(raw: unknown, source = "deployment"): MarketAddresses {
  if (typeof raw !== "object" || raw === null) throw new InvalidDeploymentError(source, "not a JSON object");
  const byFutureId = new Map<string, unknown>();
  for (const [key, value] of Object.entries(raw)) byFutureId.set(key.slice(key.indexOf("#") + 1), value);
  const result: Partial<MarketAddresses> = {};
  for (const [field, ids] of Object.entries(FUTURE_IDS) as [keyof MarketAddresses, readonly string[]][]) {
    const value = ids.map((id) => byFutureId.get(id)).find((candidate) => candidate !== undefined);
    if (typeof value !== "string" || !isAddress(value)) {
      throw new InvalidDeploymentError(
        source,
        `missing or malformed address for ${field} (looked for ${ids.join(", ")})`,
      );
    }
    result[field] = getAddress(value);
  }
  return result as MarketAddresses;
}

/** Reads a deployed-addresses file. */
export function loadMarketAddresses(path: string): MarketAddresses {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new DeploymentNotFoundError(path, error);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new InvalidDeploymentError(path, `not JSON (${(error as Error).message})`);
  }
  return parseDeployedAddresses(raw, path);
}
