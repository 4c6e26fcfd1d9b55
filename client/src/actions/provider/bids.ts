/** A provider's bids: post (paying the bid fee), update prices (no fee), delete. */
import type { Hex } from "viem";
import { type Prices, bidIdOf, marketplaceAbi } from "../../../../protocol/index.js";
import { ensureAllowance } from "../../chain/allowance.js";
import { requireWallet, sendContractCall } from "../../chain/send.js";
import type { MarketContext } from "../../context.js";
import { InvalidArgumentError } from "../../errors.js";

/** Bid prices are uint80 in the contract. */
export const MAX_BID_PRICE = (1n << 80n) - 1n;

function checkPrices(prices: Prices): void {
  for (const [name, price] of Object.entries(prices) as [keyof Prices, bigint][]) {
    if (price < 0n || price > MAX_BID_PRICE) {
      throw new InvalidArgumentError(
        `prices.${name}`,
        `${price} is out of range: a price is from 0 to ${MAX_BID_PRICE} base units (uint80)`,
        {
          hint: `give --price-${name === "perSecond" ? "per-second" : name === "perInputToken" ? "per-input-token" : "per-output-token"} from 0 to ${MAX_BID_PRICE}`,
        },
      );
    }
  }
}

export async function postBid(ctx: MarketContext, params: { modelId: Hex; prices: Prices }) {
  checkPrices(params.prices);
  const provider = requireWallet(ctx).account.address;
  const fee = await ctx.publicClient.readContract({
    address: ctx.addresses.marketplace,
    abi: marketplaceAbi,
    functionName: "bidFee",
  });
  if (fee > 0n) await ensureAllowance(ctx, ctx.addresses.marketplace, fee, "the bid fee");
  const receipt = await sendContractCall(ctx, ctx.progress, `posting a bid on model ${params.modelId}`, {
    address: ctx.addresses.marketplace,
    abi: marketplaceAbi,
    functionName: "postBid",
    args: [params.modelId, params.prices],
  });
  return { bidId: bidIdOf(provider, params.modelId), fee, txHash: receipt.transactionHash };
}

export async function updateBid(ctx: MarketContext, params: { bidId: Hex; prices: Prices }) {
  checkPrices(params.prices);
  const receipt = await sendContractCall(ctx, ctx.progress, `updating bid ${params.bidId}`, {
    address: ctx.addresses.marketplace,
    abi: marketplaceAbi,
    functionName: "updateBid",
    args: [params.bidId, params.prices],
  });
  return { bidId: params.bidId, txHash: receipt.transactionHash };
}

export async function deleteBid(ctx: MarketContext, bidId: Hex) {
  const receipt = await sendContractCall(ctx, ctx.progress, `deleting bid ${bidId}`, {
    address: ctx.addresses.marketplace,
    abi: marketplaceAbi,
    functionName: "deleteBid",
    args: [bidId],
  });
  return { bidId, txHash: receipt.transactionHash };
}
