/**
 * Connects to the market: RPC clients, the chain id, the deployed addresses (given, or Ignition's
 * file for the chain), a check that every contract is really there (a wrong RPC URL or a
 * restarted hardhat node otherwise fails later and obscurely), the token's name and decimals.
 */
import { fileURLToPath } from "node:url";
import {
  type Address,
  type Chain,
  type LocalAccount,
  type PublicClient,
  type Transport,
  type WalletClient,
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  webSocket,
} from "viem";
import {
  type MarketAddresses,
  type MarketDomain,
  deploymentFile,
  loadMarketAddresses,
  marketDomain,
  marketTokenAbi,
} from "../../../protocol/index.js";
import { ConfigError, MarketError, MarketNotDeployedError } from "../errors.js";
import type { TokenInfo } from "./amounts.js";

/** The repository root, where Ignition keeps `ignition/deployments/`. */
export const PROJECT_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export type MarketWalletClient = WalletClient<Transport, Chain, LocalAccount>;

export interface MarketChain {
  rpcUrl: string;
  chainId: number;
  chain: Chain;
  publicClient: PublicClient;
  walletClient: MarketWalletClient | undefined;
  account: LocalAccount | undefined;
  addresses: MarketAddresses;
  /** Where the addresses came from (a file path, or "options"). */
  deploymentSource: string;
  domain: MarketDomain;
  token: TokenInfo;
}

export interface ConnectOptions {
  rpcUrl: string;
  /** The market's addresses; default: read from `deploymentPath`. */
  addresses?: MarketAddresses;
  /** A deployed_addresses.json; default: `ignition/deployments/chain-<id>/deployed_addresses.json`. */
  deploymentPath?: string;
  account?: LocalAccount;
  /** Polling interval of the clients, ms (tests use less). */
  pollingInterval?: number;
}

export class RpcUnreachableError extends MarketError {
  constructor(
    readonly rpcUrl: string,
    cause: unknown,
  ) {
    super(`cannot reach the chain at ${rpcUrl}: ${(cause as Error).message.split("\n")[0] ?? ""}`, {
      cause,
      hint: "check --rpc-url (MARKET_RPC_URL) and that the node is running (`npm start` starts one on 127.0.0.1:8545)",
    });
  }
}

export async function connectMarket(options: ConnectOptions): Promise<MarketChain> {
  const transport = /^wss?:/.test(options.rpcUrl) ? webSocket(options.rpcUrl) : http(options.rpcUrl);
  const probe = createPublicClient({ transport });
  let chainId: number;
  try {
    chainId = await probe.getChainId();
  } catch (error) {
    throw new RpcUnreachableError(options.rpcUrl, error);
  }
  const chain = defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [options.rpcUrl] } },
  });
  const publicClient = createPublicClient({
    chain,
    transport,
    pollingInterval: options.pollingInterval ?? 1_000,
  }) as PublicClient;

  let addresses: MarketAddresses;
  let deploymentSource: string;
  if (options.addresses) {
    addresses = options.addresses;
    deploymentSource = "the addresses option";
  } else {
    deploymentSource = options.deploymentPath ?? deploymentFile(PROJECT_ROOT, chainId);
    try {
      addresses = loadMarketAddresses(deploymentSource);
    } catch (error) {
      throw new ConfigError("deployment", (error as Error).message, {
        cause: error,
        hint:
          options.deploymentPath === undefined
            ? `no deployment for chain ${chainId} in this checkout: set --deployment (MARKET_DEPLOYMENT) to the market's deployed_addresses.json, or deploy (npm start)`
            : "check --deployment (MARKET_DEPLOYMENT)",
      });
    }
  }
  const codes = await Promise.all(
    (Object.entries(addresses) as [keyof MarketAddresses, Address][]).map(async ([name, address]) => ({
      name,
      address,
      code: await publicClient.getCode({ address }),
    })),
  );
  const missing = codes.find((entry) => entry.code === undefined || entry.code === "0x");
  if (missing) {
    throw new MarketNotDeployedError(chainId, options.rpcUrl, missing.name, missing.address, deploymentSource);
  }
  const [name, symbol, decimals] = await Promise.all([
    publicClient.readContract({ address: addresses.token, abi: marketTokenAbi, functionName: "name" }),
    publicClient.readContract({ address: addresses.token, abi: marketTokenAbi, functionName: "symbol" }),
    publicClient.readContract({ address: addresses.token, abi: marketTokenAbi, functionName: "decimals" }),
  ]);
  const walletClient = options.account
    ? createWalletClient({ account: options.account, chain, transport, pollingInterval: options.pollingInterval })
    : undefined;
  return {
    rpcUrl: options.rpcUrl,
    chainId,
    chain,
    publicClient,
    walletClient,
    account: options.account,
    addresses,
    deploymentSource,
    domain: marketDomain(chainId, addresses.sessionRouter),
    token: { name, symbol, decimals },
  };
}
