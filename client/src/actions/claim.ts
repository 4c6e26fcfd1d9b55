import type { Hex } from "viem";
import { escrowAbi } from "../../../protocol/index.js";
import { formatAmount } from "../chain/amounts.js";
import { requireWallet, sendContractCall } from "../chain/send.js";
import type { MarketContext } from "../context.js";
import { NothingToClaimError } from "../errors.js";

export interface ClaimResult {
  amount: bigint;
  txHash: Hex;
}

/** Takes the wallet's whole escrow balance (earnings, royalties, credited refunds) in one call. */
export async function claim(ctx: MarketContext): Promise<ClaimResult> {
  const account = requireWallet(ctx).account.address;
  const amount = await ctx.publicClient.readContract({
    address: ctx.addresses.escrow,
    abi: escrowAbi,
    functionName: "balanceOf",
    args: [account],
  });
  if (amount === 0n) throw new NothingToClaimError(account);
  const receipt = await sendContractCall(ctx, ctx.progress, `claiming ${formatAmount(amount, ctx.token)}`, {
    address: ctx.addresses.escrow,
    abi: escrowAbi,
    functionName: "claim",
    args: [],
  });
  return { amount, txHash: receipt.transactionHash };
}
