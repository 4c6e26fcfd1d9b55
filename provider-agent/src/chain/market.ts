/**
 * The market's contracts as the agent reads them: one typed method per view it needs, so the rest
 * of the agent never spells an ABI or a function name.
 */
import { type Address, type Hex, type PublicClient, zeroAddress } from "viem";
import {
  type MarketAddresses,
  type Prices,
  escrowAbi,
  marketTokenAbi,
  marketplaceAbi,
  modelRegistryAbi,
  providerRegistryAbi,
  sessionRouterAbi,
  stakingAbi,
} from "../../../protocol/index.js";
import type { ApprovalChainView } from "../sessions/approvals.js";

export type SessionStatusOnChain = "none" | "open" | "closing";

export interface SessionStateOnChain {
  deposit: bigint;
  endsAt: number;
  closedAt: number;
  status: SessionStatusOnChain;
  pendingSeq: bigint;
}

export interface ModelOnChain {
  owner: Address;
  royaltyBps: number;
  active: boolean;
  registered: boolean;
  contentHash: Hex;
  baseModelId: Hex;
}

export interface BidOnChain {
  modelId: Hex;
  active: boolean;
  prices: Prices;
}

export interface ProviderOnChain {
  registered: boolean;
  active: boolean;
  operator: Address;
  endpoint: string;
}

const STATUS: readonly SessionStatusOnChain[] = ["none", "open", "closing"];

export class MarketReader implements ApprovalChainView {
  constructor(
    readonly client: PublicClient,
    readonly addresses: MarketAddresses,
  ) {}

  async sessionState(sessionId: Hex): Promise<SessionStateOnChain> {
    const state = await this.client.readContract({
      address: this.addresses.sessionRouter,
      abi: sessionRouterAbi,
      functionName: "getSessionState",
      args: [sessionId],
    });
    return {
      deposit: state.deposit,
      endsAt: state.endsAt,
      closedAt: state.closedAt,
      status: STATUS[state.status] ?? "none",
      pendingSeq: state.pendingSeq,
    };
  }

  async bid(bidId: Hex): Promise<BidOnChain> {
    const bid = await this.client.readContract({
      address: this.addresses.marketplace,
      abi: marketplaceAbi,
      functionName: "getBid",
      args: [bidId],
    });
    return {
      modelId: bid.modelId,
      active: bid.active,
      prices: {
        perSecond: bid.pricePerSecond,
        perInputToken: bid.pricePerInputToken,
        perOutputToken: bid.pricePerOutputToken,
      },
    };
  }

  async model(modelId: Hex): Promise<ModelOnChain> {
    const model = await this.client.readContract({
      address: this.addresses.modelRegistry,
      abi: modelRegistryAbi,
      functionName: "getModel",
      args: [modelId],
    });
    return {
      owner: model.owner,
      royaltyBps: model.royaltyBps,
      active: model.active,
      registered: model.owner !== zeroAddress,
      contentHash: model.contentHash,
      baseModelId: model.baseModelId,
    };
  }

  async royaltyBps(modelId: Hex): Promise<number> {
    const [, , royaltyBps] = await this.client.readContract({
      address: this.addresses.modelRegistry,
      abi: modelRegistryAbi,
      functionName: "royaltyOf",
      args: [modelId],
    });
    return royaltyBps;
  }

  async provider(provider: Address): Promise<ProviderOnChain> {
    const record = await this.client.readContract({
      address: this.addresses.providerRegistry,
      abi: providerRegistryAbi,
      functionName: "getProvider",
      args: [provider],
    });
    return {
      registered: record.registeredAt !== 0,
      active: record.active,
      operator: record.operator,
      endpoint: record.endpoint,
    };
  }

  providerMinStake(): Promise<bigint> {
    return this.client.readContract({
      address: this.addresses.providerRegistry,
      abi: providerRegistryAbi,
      functionName: "providerMinStake",
    });
  }

  stakeOf(account: Address): Promise<bigint> {
    return this.client.readContract({
      address: this.addresses.staking,
      abi: stakingAbi,
      functionName: "stakeOf",
      args: [account],
    });
  }

  tokenBalance(account: Address): Promise<bigint> {
    return this.client.readContract({
      address: this.addresses.token,
      abi: marketTokenAbi,
      functionName: "balanceOf",
      args: [account],
    });
  }

  allowance(owner: Address, spender: Address): Promise<bigint> {
    return this.client.readContract({
      address: this.addresses.token,
      abi: marketTokenAbi,
      functionName: "allowance",
      args: [owner, spender],
    });
  }

  bidFee(): Promise<bigint> {
    return this.client.readContract({
      address: this.addresses.marketplace,
      abi: marketplaceAbi,
      functionName: "bidFee",
    });
  }

  protocolFeeBps(): Promise<number> {
    return this.client.readContract({
      address: this.addresses.sessionRouter,
      abi: sessionRouterAbi,
      functionName: "protocolFeeBps",
    });
  }

  async maxSessionDuration(): Promise<number> {
    return Number(
      await this.client.readContract({
        address: this.addresses.sessionRouter,
        abi: sessionRouterAbi,
        functionName: "maxSessionDuration",
      }),
    );
  }

  /** 0 when the provider used no approval nonce yet, else the highest used + 1. */
  nextApprovalNonce(provider: Address): Promise<bigint> {
    return this.client.readContract({
      address: this.addresses.sessionRouter,
      abi: sessionRouterAbi,
      functionName: "nextApprovalNonce",
      args: [provider],
    });
  }

  escrowBalance(account: Address): Promise<bigint> {
    return this.client.readContract({
      address: this.addresses.escrow,
      abi: escrowAbi,
      functionName: "balanceOf",
      args: [account],
    });
  }
}
