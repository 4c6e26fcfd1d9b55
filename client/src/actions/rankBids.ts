/**
 * The bids of a model, best first: the indexer's `providerRankings` (score and its parts) when an
 * indexer is configured; otherwise the active bids from the chain's logs, cheapest first.
 */
import type { Address, Hex } from "viem";
import type { Prices } from "../../../protocol/index.js";
import { listBidsFromChain, readProvider } from "../chain/market-logs.js";
import type { MarketContext } from "../context.js";
import { fetchProviderRankings } from "../indexer/queries.js";

export interface RankedBid {
  bidId: Hex;
  provider: Address;
  modelId: Hex;
  endpoint: string;
  prices: Prices;
  /** The indexer's score in [0, 1]; undefined when ranked from the chain (by price). */
  score: number | undefined;
  /** The score's parts (tps, ttft, success, price…), as the indexer returns them. */
  scoreParts: Record<string, number>;
  sessions: number | undefined;
  source: "indexer" | "chain";
}

/** What an hour and 1,000 output tokens cost: the chain fallback's order. */
export function referenceCost(prices: Prices): bigint {
  return prices.perSecond * 3600n + prices.perOutputToken * 1000n + prices.perInputToken * 1000n;
}

export async function rankBids(
  ctx: MarketContext,
  modelId: Hex,
  options: { first?: number } = {},
): Promise<RankedBid[]> {
  const first = options.first ?? 20;
  if (ctx.indexer) return fetchProviderRankings(ctx.indexer, modelId, first);
  const bids = (await listBidsFromChain(ctx, { modelId })).filter((bid) => bid.active);
  const ranked = await Promise.all(
    bids.map(async (bid): Promise<RankedBid | undefined> => {
      const provider = await readProvider(ctx, bid.provider);
      if (!provider.active) return undefined;
      return {
        ...bid,
        endpoint: provider.endpoint,
        score: undefined,
        scoreParts: {},
        sessions: undefined,
        source: "chain",
      };
    }),
  );
  return ranked
    .filter((bid): bid is RankedBid => bid !== undefined)
    .sort((a, b) => {
      const difference = referenceCost(a.prices) - referenceCost(b.prices);
      return difference < 0n ? -1 : difference > 0n ? 1 : 0;
    })
    .slice(0, first);
}
