import type { Address } from "viem";
import { escrowAbi, marketTokenAbi, stakingAbi } from "../../../protocol/index.js";
import type { MarketContext } from "../context.js";
import { InvalidArgumentError } from "../errors.js";

export interface Balance {
  account: Address;
  /** Market tokens in the wallet. */
  wallet: bigint;
  /** Claimable in escrow (earnings, royalties, fees, credited refunds). */
  claimable: bigint;
  staked: bigint;
  unbonding: bigint;
  /** Unix seconds; 0 when nothing unbonds. */
  unlockAt: number;
  /** Native coin, for gas. */
  gas: bigint;
}

/** What an account holds in the market: wallet tokens, escrow balance, stake, gas. */
export async function getBalance(ctx: MarketContext, account?: Address): Promise<Balance> {
  const address = account ?? ctx.account?.address;
  if (!address) throw new InvalidArgumentError("account", "no account given and no wallet key configured");
  const [wallet, claimable, stake, gas] = await Promise.all([
    ctx.publicClient.readContract({
      address: ctx.addresses.token,
      abi: marketTokenAbi,
      functionName: "balanceOf",
      args: [address],
    }),
    ctx.publicClient.readContract({
      address: ctx.addresses.escrow,
      abi: escrowAbi,
      functionName: "balanceOf",
      args: [address],
    }),
    ctx.publicClient.readContract({
      address: ctx.addresses.staking,
      abi: stakingAbi,
      functionName: "stakeAccount",
      args: [address],
    }),
    ctx.publicClient.getBalance({ address }),
  ]);
  return {
    account: address,
    wallet,
    claimable,
    staked: stake.staked,
    unbonding: stake.unbonding,
    unlockAt: Number(stake.unlockAt),
    gas,
  };
}
