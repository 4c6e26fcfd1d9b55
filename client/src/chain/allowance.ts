/** Raises the wallet's token allowance for a market contract when it is short of `amount`. */
import type { Address } from "viem";
import { marketTokenAbi } from "../../../protocol/index.js";
import type { MarketContext } from "../context.js";
import { InsufficientBalanceError } from "../errors.js";
import { formatAmount } from "./amounts.js";
import { requireWallet, sendContractCall } from "./send.js";

export async function ensureAllowance(ctx: MarketContext, spender: Address, amount: bigint, what: string) {
  const wallet = requireWallet(ctx);
  const owner = wallet.account.address;
  await assertBalance(ctx, amount, what);
  const allowance = await ctx.publicClient.readContract({
    address: ctx.addresses.token,
    abi: marketTokenAbi,
    functionName: "allowance",
    args: [owner, spender],
  });
  if (allowance >= amount) return;
  await sendContractCall(ctx, ctx.progress, `approving ${formatAmount(amount, ctx.token)} for ${what}`, {
    address: ctx.addresses.token,
    abi: marketTokenAbi,
    functionName: "approve",
    args: [spender, amount],
  });
}

/** Fails before anything is sent when the wallet holds less than `amount`. */
export async function assertBalance(ctx: MarketContext, amount: bigint, what: string): Promise<void> {
  const owner = requireWallet(ctx).account.address;
  const balance = await ctx.publicClient.readContract({
    address: ctx.addresses.token,
    abi: marketTokenAbi,
    functionName: "balanceOf",
    args: [owner],
  });
  if (balance < amount) {
    throw new InsufficientBalanceError(owner, balance, amount, {
      balance: formatAmount(balance, ctx.token),
      needed: formatAmount(amount, ctx.token),
      what,
    });
  }
}
