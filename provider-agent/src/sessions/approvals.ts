/**
 * `POST /v1/sessions/approvals`: the agent's consent to one session with one user. Checks the bid
 * (ours, active, a model served here), the deposit and duration caps and the agent's capacity, binds
 * the highest royalty and protocol fee it accepts, takes a fresh nonce (journaled first) and signs.
 */
import type { Address, Hex, LocalAccount } from "viem";
import {
  type ApprovalResponseBody,
  type MarketDomain,
  type Prices,
  type SessionApproval,
  approvalToJson,
  pricesToJson,
  providerOfBid,
  signSessionApproval,
} from "../../../protocol/index.js";
import { Refusal } from "../refusal.js";
import type { ApprovalLedger } from "./approval-ledger.js";

/** What approvals need to read from the chain, fresh for each request. */
export interface ApprovalChainView {
  bid(bidId: Hex): Promise<{ modelId: Hex; active: boolean; prices: Prices }>;
  /** The model's effective royalty now (`ModelRegistry.royaltyOf`). */
  royaltyBps(modelId: Hex): Promise<number>;
  protocolFeeBps(): Promise<number>;
  maxSessionDuration(): Promise<number>;
}

export interface ApprovalDeskOptions {
  ledger: ApprovalLedger;
  chain: ApprovalChainView;
  domain: MarketDomain;
  provider: Address;
  signer: LocalAccount;
  /** Model ids served here (bases and adapters). */
  servedModels: () => ReadonlySet<string>;
  /** Sessions open or closing now. */
  unsettledSessions: () => number;
  maxDeposit: bigint;
  maxDuration: number;
  maxOpenSessions: number;
  approvalTtlSeconds: number;
  maxRoyaltyBps?: number | undefined;
  maxFeeBps?: number | undefined;
  now: () => number;
}

export interface ApprovalRequest {
  bidId: Hex;
  user: Address;
  deposit: bigint;
  maxDuration: number;
}

export class ApprovalDesk {
  constructor(private readonly options: ApprovalDeskOptions) {}

  async approve(request: ApprovalRequest): Promise<ApprovalResponseBody> {
    const options = this.options;
    if (providerOfBid(request.bidId).toLowerCase() !== options.provider.toLowerCase()) {
      throw new Refusal(
        "not_this_provider",
        `bid ${request.bidId} belongs to provider ${providerOfBid(request.bidId)}`,
        {
          param: "bidId",
        },
      );
    }
    if (request.deposit === 0n)
      throw new Refusal("invalid_request", "the deposit must be above 0", { param: "deposit" });
    if (request.deposit > options.maxDeposit) {
      throw new Refusal("deposit_too_large", `this agent takes deposits up to ${options.maxDeposit}`, {
        param: "deposit",
      });
    }
    if (request.maxDuration < 1) {
      throw new Refusal("invalid_request", "maxDuration must be at least 1 second", { param: "maxDuration" });
    }
    const [bid, marketMaxDuration] = await Promise.all([
      options.chain.bid(request.bidId),
      options.chain.maxSessionDuration(),
    ]);
    if (!bid.active) throw new Refusal("bid_not_active", `bid ${request.bidId} is not active`, { param: "bidId" });
    if (!options.servedModels().has(bid.modelId.toLowerCase())) {
      throw new Refusal("bid_not_active", `bid ${request.bidId} is for model ${bid.modelId}, not served here now`, {
        param: "bidId",
      });
    }
    const longest = Math.min(options.maxDuration, marketMaxDuration);
    if (request.maxDuration > longest) {
      throw new Refusal("duration_too_long", `sessions here last at most ${longest} s`, { param: "maxDuration" });
    }
    if (bid.prices.perSecond > 0n && request.deposit < bid.prices.perSecond) {
      throw new Refusal(
        "invalid_request",
        `a deposit of ${request.deposit} does not pay one second (${bid.prices.perSecond})`,
        { param: "deposit" },
      );
    }
    const now = Math.floor(options.now());
    const committed = options.unsettledSessions() + options.ledger.outstandingCount(now);
    if (committed >= options.maxOpenSessions) {
      throw new Refusal(
        "capacity_exceeded",
        `this agent has ${committed} sessions open or approved (at most ${options.maxOpenSessions})`,
        { retryAfterSeconds: 60 },
      );
    }
    const [royaltyBps, feeBps] = await Promise.all([
      options.maxRoyaltyBps ?? options.chain.royaltyBps(bid.modelId),
      options.maxFeeBps ?? options.chain.protocolFeeBps(),
    ]);
    const deadline = now + options.approvalTtlSeconds;
    const nonce = await options.ledger.issue({
      bidId: request.bidId,
      user: request.user,
      deadline,
      maxDeposit: options.maxDeposit,
    });
    const approval: SessionApproval = {
      bidId: request.bidId,
      user: request.user,
      maxDeposit: options.maxDeposit,
      maxDuration: BigInt(request.maxDuration),
      deadline: BigInt(deadline),
      nonce,
      maxRoyaltyBps: royaltyBps,
      maxFeeBps: feeBps,
    };
    const signature = await signSessionApproval(options.signer, options.domain, approval);
    return {
      approval: approvalToJson(approval),
      signature,
      signer: options.signer.address,
      provider: options.provider,
      modelId: bid.modelId,
      prices: pricesToJson(bid.prices),
      chainId: options.domain.chainId,
      sessionRouter: options.domain.verifyingContract,
    };
  }
}
