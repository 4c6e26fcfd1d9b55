/**
 * Bids and models read from the chain's logs: what `rank` and `models` fall back to when no indexer
 * is configured (fine on a local chain; on a long chain prefer the indexer).
 */
import type { Address, Hex } from "viem";
import {
  marketplaceAbi,
  modelRegistryAbi,
  providerOfBid,
  providerRegistryAbi,
  type Prices,
} from "../../../protocol/index.js";
import type { MarketContext } from "../context.js";

export interface ChainModel {
  modelId: Hex;
  owner: Address;
  name: string;
  uri: string;
  tags: readonly string[];
  royaltyBps: number;
  baseModelId: Hex;
  active: boolean;
}

export interface ChainBid {
  bidId: Hex;
  provider: Address;
  modelId: Hex;
  prices: Prices;
  active: boolean;
}

/** Every model ever registered, with its latest name and tags, and whether it is active now. */
export async function listModelsFromChain(ctx: MarketContext): Promise<ChainModel[]> {
  const common = {
    address: ctx.addresses.modelRegistry,
    abi: modelRegistryAbi,
    fromBlock: ctx.settings.fromBlock,
  } as const;
  const [registered, updated] = await Promise.all([
    ctx.publicClient.getContractEvents({ ...common, eventName: "ModelRegistered" }),
    ctx.publicClient.getContractEvents({ ...common, eventName: "ModelUpdated" }),
  ]);
  const models = new Map<Hex, ChainModel>();
  for (const log of registered) {
    const a = log.args;
    if (!a.modelId || !a.owner) continue;
    models.set(a.modelId, {
      modelId: a.modelId,
      owner: a.owner,
      name: a.name ?? "",
      uri: a.uri ?? "",
      tags: a.tags ?? [],
      royaltyBps: a.royaltyBps ?? 0,
      baseModelId: a.baseModelId ?? "0x",
      active: true,
    });
  }
  for (const log of updated) {
    const model = log.args.modelId ? models.get(log.args.modelId) : undefined;
    if (!model) continue;
    model.name = log.args.name ?? model.name;
    model.uri = log.args.uri ?? model.uri;
    model.tags = log.args.tags ?? model.tags;
    model.royaltyBps = log.args.royaltyBps ?? model.royaltyBps;
  }
  const list = [...models.values()];
  const states = await Promise.all(
    list.map((model) =>
      ctx.publicClient.readContract({
        address: ctx.addresses.modelRegistry,
        abi: modelRegistryAbi,
        functionName: "getModel",
        args: [model.modelId],
      }),
    ),
  );
  list.forEach((model, index) => (model.active = states[index]!.active));
  return list;
}

/** Bids ever posted (for one model or one provider), with their state now. */
export async function listBidsFromChain(
  ctx: MarketContext,
  filter: { modelId?: Hex; provider?: Address },
): Promise<ChainBid[]> {
  const posted = await ctx.publicClient.getContractEvents({
    address: ctx.addresses.marketplace,
    abi: marketplaceAbi,
    eventName: "BidPosted",
    args: { modelId: filter.modelId, provider: filter.provider },
    fromBlock: ctx.settings.fromBlock,
  });
  const ids = [...new Set(posted.map((log) => log.args.bidId).filter((id): id is Hex => id !== undefined))];
  const bids = await Promise.all(
    ids.map(async (bidId) => {
      const bid = await ctx.publicClient.readContract({
        address: ctx.addresses.marketplace,
        abi: marketplaceAbi,
        functionName: "getBid",
        args: [bidId],
      });
      return {
        bidId,
        // A bid id starts with its provider's address (`Marketplace.providerOf` is pure): no call needed.
        provider: providerOfBid(bidId),
        modelId: bid.modelId,
        prices: {
          perSecond: bid.pricePerSecond,
          perInputToken: bid.pricePerInputToken,
          perOutputToken: bid.pricePerOutputToken,
        },
        active: bid.active,
      };
    }),
  );
  return bids;
}

/** A provider's registration: endpoint, operator, active. */
export async function readProvider(ctx: MarketContext, provider: Address) {
  return ctx.publicClient.readContract({
    address: ctx.addresses.providerRegistry,
    abi: providerRegistryAbi,
    functionName: "getProvider",
    args: [provider],
  });
}
