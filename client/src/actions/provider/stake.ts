import type { Hex } from "viem";
import { stakingAbi } from "../../../../protocol/index.js";
import { ensureAllowance } from "../../chain/allowance.js";
import { formatAmount } from "../../chain/amounts.js";
import { requireWallet, sendContractCall } from "../../chain/send.js";
import type { MarketContext } from "../../context.js";
import { InvalidArgumentError } from "../../errors.js";

/** Stakes `amount` (approving the staking contract first when needed). */
export async function stake(ctx: MarketContext, amount: bigint): Promise<{ txHash: Hex }> {
  if (amount <= 0n) throw new InvalidArgumentError("amount", "must be above zero");
  await ensureAllowance(ctx, ctx.addresses.staking, amount, "the stake");
  const receipt = await sendContractCall(ctx, ctx.progress, `staking ${formatAmount(amount, ctx.token)}`, {
    address: ctx.addresses.staking,
    abi: stakingAbi,
    functionName: "stake",
    args: [amount],
  });
  return { txHash: receipt.transactionHash };
}

/** Starts unbonding `amount` of the stake; `withdrawStake` takes it after the unbonding period. */
export async function requestUnstake(ctx: MarketContext, amount: bigint): Promise<{ txHash: Hex; unlockAt: number }> {
  if (amount <= 0n) throw new InvalidArgumentError("amount", "must be above zero");
  const receipt = await sendContractCall(
    ctx,
    ctx.progress,
    `requesting to unstake ${formatAmount(amount, ctx.token)}`,
    {
      address: ctx.addresses.staking,
      abi: stakingAbi,
      functionName: "requestUnstake",
      args: [amount],
    },
  );
  const account = await ctx.publicClient.readContract({
    address: ctx.addresses.staking,
    abi: stakingAbi,
    functionName: "stakeAccount",
    args: [receipt.from],
  });
  return { txHash: receipt.transactionHash, unlockAt: Number(account.unlockAt) };
}

/** Withdraws the unbonded stake to the wallet. */
export async function withdrawStake(ctx: MarketContext): Promise<{ txHash: Hex; amount: bigint }> {
  const wallet = requireWallet(ctx).account.address;
  const before = await ctx.publicClient.readContract({
    address: ctx.addresses.staking,
    abi: stakingAbi,
    functionName: "stakeAccount",
    args: [wallet],
  });
  const receipt = await sendContractCall(ctx, ctx.progress, "withdrawing the unbonded stake", {
    address: ctx.addresses.staking,
    abi: stakingAbi,
    functionName: "withdraw",
    args: [wallet],
  });
  return { txHash: receipt.transactionHash, amount: before.unbonding };
}
