import type { Address } from "viem";
import { escrowAbi, providerRegistryAbi, sessionRouterAbi, stakingAbi } from "../../../../protocol/index.js";
import { type ChainBid, listBidsFromChain, readProvider } from "../../chain/market-logs.js";
import type { MarketContext } from "../../context.js";
import { InvalidArgumentError } from "../../errors.js";

export interface ProviderStatus {
  provider: Address;
  registered: boolean;
  active: boolean;
  endpoint: string;
  operator: Address;
  staked: bigint;
  unbonding: bigint;
  unlockAt: number;
  minimumStake: bigint;
  openSessions: bigint;
  claimable: bigint;
  bids: ChainBid[];
}

/** A provider's standing: registration, stake against the minimum, bids, open sessions, claimable. */
export async function getProviderStatus(ctx: MarketContext, provider?: Address): Promise<ProviderStatus> {
  const address = provider ?? ctx.account?.address;
  if (!address) throw new InvalidArgumentError("provider", "no address given and no wallet key configured");
  const [record, stake, minimumStake, openSessions, claimable, bids] = await Promise.all([
    readProvider(ctx, address),
    ctx.publicClient.readContract({
      address: ctx.addresses.staking,
      abi: stakingAbi,
      functionName: "stakeAccount",
      args: [address],
    }),
    ctx.publicClient.readContract({
      address: ctx.addresses.providerRegistry,
      abi: providerRegistryAbi,
      functionName: "providerMinStake",
    }),
    ctx.publicClient.readContract({
      address: ctx.addresses.sessionRouter,
      abi: sessionRouterAbi,
      functionName: "openSessionCount",
      args: [address],
    }),
    ctx.publicClient.readContract({
      address: ctx.addresses.escrow,
      abi: escrowAbi,
      functionName: "balanceOf",
      args: [address],
    }),
    listBidsFromChain(ctx, { provider: address }),
  ]);
  return {
    provider: address,
    registered: record.registeredAt !== 0,
    active: record.active,
    endpoint: record.endpoint,
    operator: record.operator,
    staked: stake.staked,
    unbonding: stake.unbonding,
    unlockAt: Number(stake.unlockAt),
    minimumStake,
    openSessions,
    claimable,
    bids,
  };
}
