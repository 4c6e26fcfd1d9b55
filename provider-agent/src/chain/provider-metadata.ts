/**
 * The provider's metadata URI as last registered or updated: it lives in events only
 * (`ProviderRegistered`, `ProviderUpdated`), so start-up reads the newest of them to decide whether
 * `update` is needed.
 */
import { type Address, type PublicClient, type RpcLog, parseEventLogs, toEventSelector } from "viem";
import { type MarketAddresses, providerRegistryAbi } from "../../../protocol/index.js";
import { LogScanner, addressTopic, byChainOrder } from "./log-scanner.js";

const EVENTS = providerRegistryAbi.filter(
  (item) => item.type === "event" && (item.name === "ProviderRegistered" || item.name === "ProviderUpdated"),
);

/** The newest metadata URI of `provider` from `fromBlock` on, or undefined when there is none. */
export async function latestProviderMetadata(
  client: PublicClient,
  addresses: MarketAddresses,
  provider: Address,
  fromBlock: bigint,
  chunkBlocks: bigint,
): Promise<string | undefined> {
  const head = await client.getBlockNumber({ cacheTime: 0 });
  if (head < fromBlock) return undefined;
  const selectors = EVENTS.map((event) => toEventSelector(event));
  const logs: RpcLog[] = await new LogScanner(client, chunkBlocks).findLatest(
    { address: addresses.providerRegistry, topics: [selectors, addressTopic(provider)] },
    fromBlock,
    head,
  );
  const decoded = parseEventLogs({
    abi: providerRegistryAbi,
    eventName: ["ProviderRegistered", "ProviderUpdated"],
    logs: logs.sort(byChainOrder),
  });
  return decoded.at(-1)?.args.metadataURI;
}
