/**
 * viem clients for the configured RPC endpoints: one public client over all of them (viem's
 * `fallback` tries them in order), wallet clients for the agent's keys, and a websocket client for
 * new-block notifications when a ws(s):// endpoint is configured.
 */
import {
  type Chain,
  type LocalAccount,
  type PublicClient,
  type Transport,
  type WalletClient,
  createPublicClient,
  createWalletClient,
  defineChain,
  fallback,
  http,
  webSocket,
} from "viem";

export interface ChainClients {
  publicClient: PublicClient;
  /** Subscribes to new heads, when a websocket endpoint is configured. */
  wsClient: PublicClient | undefined;
  chain: Chain;
  walletFor(account: LocalAccount): WalletClient<Transport, Chain, LocalAccount>;
  close(): Promise<void>;
}

const isWebSocket = (url: string) => /^wss?:\/\//.test(url);

function transportFor(url: string): Transport {
  // Few retries: the agent's own loops back off and retry; a slow failure only delays them.
  return isWebSocket(url)
    ? webSocket(url, { retryCount: 1, timeout: 10_000, reconnect: { attempts: 1_000_000, delay: 1_000 } })
    : http(url, { retryCount: 1, timeout: 10_000 });
}

/** A chain description for viem: id and RPC URLs (viem needs one to sign transactions). */
export function chainOf(chainId: number, rpcUrls: readonly string[]): Chain {
  return defineChain({
    id: chainId,
    name: `chain-${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: rpcUrls.filter((url) => !isWebSocket(url)) } },
  });
}

/** Asks the first endpoint that answers for its chain id. */
export async function fetchChainId(rpcUrls: readonly string[]): Promise<number> {
  const client = createPublicClient({ transport: fallback(rpcUrls.map(transportFor)) });
  return client.getChainId();
}

export function createChainClients(chainId: number, rpcUrls: readonly string[], pollIntervalMs: number): ChainClients {
  const chain = chainOf(chainId, rpcUrls);
  const transport = rpcUrls.length === 1 ? transportFor(rpcUrls[0]!) : fallback(rpcUrls.map(transportFor));
  const publicClient = createPublicClient({ chain, transport, pollingInterval: pollIntervalMs });
  const wsUrl = rpcUrls.find(isWebSocket);
  const wsClient = wsUrl ? createPublicClient({ chain, transport: transportFor(wsUrl) }) : undefined;
  const wallets = new Map<string, WalletClient<Transport, Chain, LocalAccount>>();
  return {
    publicClient,
    wsClient,
    chain,
    walletFor(account) {
      let wallet = wallets.get(account.address);
      if (!wallet) {
        wallet = createWalletClient({ account, chain, transport });
        wallets.set(account.address, wallet);
      }
      return wallet;
    },
    async close() {
      // viem keeps websocket sockets in a shared cache; closing them lets the process exit.
      for (const client of [wsClient, publicClient]) {
        const socket = client?.transport as { getRpcClient?: () => Promise<{ close(): void }> } | undefined;
        if (socket?.getRpcClient) (await socket.getRpcClient().catch(() => undefined))?.close();
      }
    },
  };
}
