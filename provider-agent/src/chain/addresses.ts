/**
 * Where the market is: the addresses in the config's `deployment`, else the Ignition file it names,
 * else Ignition's own file for the chain (`ignition/deployments/chain-<id>/deployed_addresses.json`
 * in this project), read with protocol/addresses.ts.
 */
import { fileURLToPath } from "node:url";
import {
  type MarketAddresses,
  deploymentFile,
  loadMarketAddresses,
  parseDeployedAddresses,
} from "../../../protocol/index.js";
import type { AgentConfig } from "../config/load.js";

const PROJECT_ROOT = fileURLToPath(new URL("../../..", import.meta.url));

const FUTURE_IDS: Record<keyof MarketAddresses, string> = {
  token: "MarketToken",
  staking: "Staking",
  providerRegistry: "ProviderRegistry",
  modelRegistry: "ModelRegistry",
  marketplace: "Marketplace",
  sessionRouter: "SessionRouter",
  escrow: "Escrow",
};

export function resolveAddresses(config: Pick<AgentConfig, "deployment">, chainId: number): MarketAddresses {
  const { addressesFile, ...explicit } = config.deployment;
  const given = Object.entries(explicit).filter(([, value]) => Boolean(value));
  if (given.length > 0) {
    // The same checks as a deployment file: every address present and well formed.
    return parseDeployedAddresses(
      Object.fromEntries(
        given.map(([field, value]) => [`config#${FUTURE_IDS[field as keyof MarketAddresses]}`, value]),
      ),
      "deployment (config)",
    );
  }
  return loadMarketAddresses(addressesFile ?? deploymentFile(PROJECT_ROOT, chainId));
}
