/**
 * The one place that says what each market event does to the tables. Every event of every
 * followed ABI has an entry — a handler or an explicit `ignore` — so an event added to the
 * contracts fails the type check here until someone decides what it means.
 *
 * Handlers read rows through the change set (`rows.get`), write whole new rows (`rows.put`), and
 * never call the chain: each event carries what it means. `prefetch` names the rows a handler will
 * read, so a batch loads them in a few set-wise queries instead of one query per event.
 */
import type { Address, Hex } from "viem";
import { type UsageReceipt, receiptToJson } from "../../../protocol/index.js";
import type { ChangeSet } from "../store/changeSet.js";
import type { FeedKind } from "../store/feed.js";
import { type BidRow, type ReceiptJson, type SessionRow, emptyStake } from "../store/tables.js";
import { type ContractName, type EventName, type LogPosition, type MarketEvent, addressOrNull } from "./decode.js";
import { recordSettlement } from "../ranking/aggregates.js";

export interface HandlerContext {
  readonly rows: ChangeSet;
  /** The event's block timestamp, for handlers that declare `needsTimestamp`. */
  readonly blockTimestamp: number;
  readonly publish: (kind: FeedKind, payload: Record<string, unknown>) => void;
  readonly warn: (message: string, context: Record<string, unknown>) => void;
}

export interface EventHandler<C extends ContractName, N extends EventName<C>> {
  /** The handler reads its block's timestamp: the fetcher must get that block's header. */
  needsTimestamp?: boolean;
  /**
   * Names the rows `apply` will read (`rows.want`), or loads them itself (returning the promise)
   * when what to load depends on a loaded row. `blockTimestamp` is the block's time for handlers
   * that declare `needsTimestamp`.
   */
  prefetch?(event: MarketEvent<C, N>, rows: ChangeSet, blockTimestamp: number): unknown;
  apply(event: MarketEvent<C, N>, context: HandlerContext): Promise<void>;
}

/** An event that changes nothing the indexer serves (role changes, EIP-712 domain notices). */
export const ignore = "ignore";

export type HandlerTable = {
  [C in ContractName]: { [N in EventName<C>]: EventHandler<C, N> | typeof ignore };
};

export type EarningsRole = "provider" | "model_owner" | "treasury" | "refund";
export const EARNINGS_ROLES: readonly EarningsRole[] = ["provider", "model_owner", "treasury", "refund"];

const add = (a: string, b: bigint): string => (BigInt(a) + b).toString();

/** A governance setter: the value lands in `parameters` as text. */
function parameter<C extends ContractName, N extends EventName<C>>(
  contract: C,
  name: string,
  value: (event: MarketEvent<C, N>) => bigint | number | string,
): EventHandler<C, N> {
  return {
    prefetch: (_event, rows) => rows.want("parameters", [contract, name]),
    async apply(event, { rows }) {
      await rows.get("parameters", [contract, name]);
      rows.put("parameters", { contract, name, value: String(value(event)), updated_block: event.blockNumber });
    },
  };
}

function credit(rows: ChangeSet, account: Address, role: EarningsRole, amount: bigint): void {
  if (amount === 0n) return;
  rows.increment("balances", { account, role, earned: "0", claimed: "0" }, { earned: amount });
}

async function stakeOf(rows: ChangeSet, account: Address) {
  return (await rows.get("stakes", [account])) ?? emptyStake(account);
}

function bidPayload(change: "POSTED" | "UPDATED" | "DELETED", bid: BidRow, event: LogPosition) {
  return { change, bid, transactionHash: event.transactionHash, logIndex: event.logIndex };
}

function sessionPayload(session: SessionRow, event: LogPosition) {
  return { session, transactionHash: event.transactionHash, logIndex: event.logIndex };
}

/** The session key while the terms may or may not carry one (the contracts gain it in issue 5). */
function sessionKeyOf(terms: object): Address | null {
  return "sessionKey" in terms && typeof terms.sessionKey === "string" ? (terms.sessionKey as Address) : null;
}

/** The treasury a settlement credited: in the event once the contracts carry it, else the router's at the time. */
async function treasuryOf(rows: ChangeSet, settlement: object): Promise<Address | null> {
  if ("treasury" in settlement && typeof settlement.treasury === "string") return settlement.treasury as Address;
  const parameterRow = await rows.get("parameters", ["sessionRouter", "treasury"]);
  return (parameterRow?.value as Address | undefined) ?? null;
}

export const handlers: HandlerTable = {
  staking: {
    Staked: {
      prefetch: (event, rows) => rows.want("stakes", [event.args.account]),
      async apply({ args, blockNumber }, { rows }) {
        const stake = await stakeOf(rows, args.account);
        rows.put("stakes", { ...stake, staked: args.staked.toString(), updated_block: blockNumber });
      },
    },
    UnstakeRequested: {
      prefetch: (event, rows) => rows.want("stakes", [event.args.account]),
      async apply({ args, blockNumber }, { rows }) {
        const stake = await stakeOf(rows, args.account);
        rows.put("stakes", {
          ...stake,
          staked: args.staked.toString(),
          unbonding: args.unbonding.toString(),
          unlock_at: Number(args.unlockAt),
          updated_block: blockNumber,
        });
      },
    },
    Withdrawn: {
      prefetch: (event, rows) => rows.want("stakes", [event.args.account]),
      async apply({ args, blockNumber }, { rows }) {
        const stake = await stakeOf(rows, args.account);
        rows.put("stakes", {
          ...stake,
          unbonding: add(stake.unbonding, -args.amount),
          withdrawn: add(stake.withdrawn, args.amount),
          updated_block: blockNumber,
        });
      },
    },
    UnbondingPeriodSet: parameter("staking", "unbondingPeriod", (event) => event.args.unbondingPeriod),
    RoleAdminChanged: ignore,
    RoleGranted: ignore,
    RoleRevoked: ignore,
  },

  providerRegistry: {
    ProviderRegistered: {
      prefetch: (event, rows) => rows.want("providers", [event.args.provider]),
      async apply({ args, blockNumber }, { rows }) {
        const existing = await rows.get("providers", [args.provider]);
        rows.put("providers", {
          address: args.provider,
          operator: addressOrNull(args.operator),
          endpoint: args.endpoint,
          metadata_uri: args.metadataURI,
          active: true,
          registered_block: existing?.registered_block ?? blockNumber,
          updated_block: blockNumber,
        });
      },
    },
    ProviderUpdated: {
      prefetch: (event, rows) => rows.want("providers", [event.args.provider]),
      async apply({ args, blockNumber }, { rows, warn }) {
        const provider = await rows.get("providers", [args.provider]);
        if (!provider) {
          warn("ProviderUpdated for an unknown provider", { provider: args.provider });
          return;
        }
        rows.put("providers", {
          ...provider,
          endpoint: args.endpoint,
          metadata_uri: args.metadataURI,
          updated_block: blockNumber,
        });
      },
    },
    OperatorSet: {
      prefetch: (event, rows) => rows.want("providers", [event.args.provider]),
      async apply({ args, blockNumber }, { rows, warn }) {
        const provider = await rows.get("providers", [args.provider]);
        if (!provider) {
          warn("OperatorSet for an unknown provider", { provider: args.provider });
          return;
        }
        rows.put("providers", { ...provider, operator: addressOrNull(args.operator), updated_block: blockNumber });
      },
    },
    ProviderDeregistered: {
      prefetch: (event, rows) => rows.want("providers", [event.args.provider]),
      async apply({ args, blockNumber }, { rows, warn }) {
        const provider = await rows.get("providers", [args.provider]);
        if (!provider) {
          warn("ProviderDeregistered for an unknown provider", { provider: args.provider });
          return;
        }
        rows.put("providers", { ...provider, active: false, operator: null, updated_block: blockNumber });
      },
    },
    ProviderMinStakeSet: parameter("providerRegistry", "providerMinStake", (event) => event.args.providerMinStake),
    SessionRouterSet: parameter("providerRegistry", "sessionRouter", (event) => event.args.sessionRouter),
    RoleAdminChanged: ignore,
    RoleGranted: ignore,
    RoleRevoked: ignore,
  },

  modelRegistry: {
    ModelRegistered: {
      prefetch: (event, rows) => rows.want("models", [event.args.modelId]),
      async apply({ args, blockNumber }, { rows }) {
        const existing = await rows.get("models", [args.modelId]);
        rows.put("models", {
          id: args.modelId,
          owner: args.owner,
          base_model_id: BigInt(args.baseModelId) === 0n ? null : args.baseModelId,
          content_hash: args.contentHash,
          royalty_bps: args.royaltyBps,
          name: args.name,
          uri: args.uri,
          tags: [...args.tags],
          active: true,
          registered_block: existing?.registered_block ?? blockNumber,
          updated_block: blockNumber,
        });
      },
    },
    ModelUpdated: {
      prefetch: (event, rows) => rows.want("models", [event.args.modelId]),
      async apply({ args, blockNumber }, { rows, warn }) {
        const model = await rows.get("models", [args.modelId]);
        if (!model) {
          warn("ModelUpdated for an unknown model", { modelId: args.modelId });
          return;
        }
        rows.put("models", {
          ...model,
          royalty_bps: args.royaltyBps,
          name: args.name,
          uri: args.uri,
          tags: [...args.tags],
          updated_block: blockNumber,
        });
      },
    },
    ModelDeregistered: {
      prefetch: (event, rows) => rows.want("models", [event.args.modelId]),
      async apply({ args, blockNumber }, { rows, warn }) {
        const model = await rows.get("models", [args.modelId]);
        if (!model) {
          warn("ModelDeregistered for an unknown model", { modelId: args.modelId });
          return;
        }
        rows.put("models", { ...model, active: false, updated_block: blockNumber });
      },
    },
    ModelMinStakeSet: parameter("modelRegistry", "modelMinStake", (event) => event.args.modelMinStake),
    MaxRoyaltySet: parameter("modelRegistry", "maxRoyaltyBps", (event) => event.args.maxRoyaltyBps),
    RoleAdminChanged: ignore,
    RoleGranted: ignore,
    RoleRevoked: ignore,
  },

  marketplace: {
    BidPosted: {
      prefetch: (event, rows) => rows.want("bids", [event.args.bidId]),
      async apply(event, { rows, publish }) {
        const { args, blockNumber } = event;
        const existing = await rows.get("bids", [args.bidId]);
        const bid: BidRow = {
          id: args.bidId,
          provider: args.provider,
          model_id: args.modelId,
          price_per_second: args.prices.perSecond.toString(),
          price_per_input_token: args.prices.perInputToken.toString(),
          price_per_output_token: args.prices.perOutputToken.toString(),
          active: true,
          fees_paid: add(existing?.fees_paid ?? "0", args.fee),
          posted_block: blockNumber,
          updated_block: blockNumber,
        };
        rows.put("bids", bid);
        publish("bidChanged", bidPayload("POSTED", bid, event));
      },
    },
    BidUpdated: {
      prefetch: (event, rows) => rows.want("bids", [event.args.bidId]),
      async apply(event, { rows, publish, warn }) {
        const { args, blockNumber } = event;
        const existing = await rows.get("bids", [args.bidId]);
        if (!existing) {
          warn("BidUpdated for an unknown bid", { bidId: args.bidId });
          return;
        }
        const bid: BidRow = {
          ...existing,
          price_per_second: args.prices.perSecond.toString(),
          price_per_input_token: args.prices.perInputToken.toString(),
          price_per_output_token: args.prices.perOutputToken.toString(),
          updated_block: blockNumber,
        };
        rows.put("bids", bid);
        publish("bidChanged", bidPayload("UPDATED", bid, event));
      },
    },
    BidDeleted: {
      prefetch: (event, rows) => rows.want("bids", [event.args.bidId]),
      async apply(event, { rows, publish, warn }) {
        const { args, blockNumber } = event;
        const existing = await rows.get("bids", [args.bidId]);
        if (!existing) {
          warn("BidDeleted for an unknown bid", { bidId: args.bidId });
          return;
        }
        const bid: BidRow = { ...existing, active: false, updated_block: blockNumber };
        rows.put("bids", bid);
        publish("bidChanged", bidPayload("DELETED", bid, event));
      },
    },
    BidFeeSet: parameter("marketplace", "bidFee", (event) => event.args.bidFee),
    TreasurySet: parameter("marketplace", "treasury", (event) => event.args.treasury),
    RoleAdminChanged: ignore,
    RoleGranted: ignore,
    RoleRevoked: ignore,
  },

  sessionRouter: {
    SessionOpened: {
      prefetch: (event, rows) => rows.want("sessions", [event.args.sessionId]),
      async apply(event, { rows, publish, warn }) {
        const { args, blockNumber, transactionHash } = event;
        const { terms } = args;
        if (await rows.get("sessions", [args.sessionId])) {
          warn("SessionOpened for a session already indexed", { sessionId: args.sessionId });
          return;
        }
        const session: SessionRow = {
          id: args.sessionId,
          user_address: args.user,
          provider: args.provider,
          bid_id: args.bidId,
          model_id: terms.modelId,
          nonce: terms.nonce.toString(),
          session_key: sessionKeyOf(terms),
          price_per_second: terms.pricePerSecond.toString(),
          price_per_input_token: terms.pricePerInputToken.toString(),
          price_per_output_token: terms.pricePerOutputToken.toString(),
          royalty_recipient: terms.royaltyRecipient,
          royalty_bps: terms.royaltyBps,
          fee_bps: terms.feeBps,
          challenge_window: terms.challengeWindow,
          max_deposit: terms.maxDeposit.toString(),
          opened_at: terms.openedAt,
          max_ends_at: terms.maxEndsAt,
          status: "open",
          deposit: args.deposit.toString(),
          topped_up: "0",
          ends_at: args.endsAt,
          opened_block: blockNumber,
          opened_tx: transactionHash,
          close_requested_by: null,
          close_requested_at: null,
          challenge_ends_at: null,
          pending_receipt: null,
          cost: null,
          provider_amount: null,
          royalty_amount: null,
          fee_amount: null,
          refund: null,
          elapsed_seconds: null,
          treasury: null,
          receipt_seq: null,
          input_tokens: null,
          output_tokens: null,
          requests: null,
          ttft_ms_avg: null,
          tps_x1000_avg: null,
          closed_by: null,
          challenged: null,
          outcome: null,
          settled_at: null,
          settled_block: null,
          settled_tx: null,
        };
        rows.put("sessions", session);
        publish("sessionOpened", sessionPayload(session, event));
      },
    },
    SessionToppedUp: {
      prefetch: (event, rows) => rows.want("sessions", [event.args.sessionId]),
      async apply({ args }, { rows, warn }) {
        const session = await rows.get("sessions", [args.sessionId]);
        if (!session) {
          warn("SessionToppedUp for an unknown session", { sessionId: args.sessionId });
          return;
        }
        rows.put("sessions", {
          ...session,
          deposit: args.deposit.toString(),
          topped_up: add(session.topped_up, args.amount),
          ends_at: args.endsAt,
        });
      },
    },
    SessionCloseRequested: {
      prefetch: (event, rows) => rows.want("sessions", [event.args.sessionId]),
      async apply({ args }, { rows, warn }) {
        const session = await rows.get("sessions", [args.sessionId]);
        if (!session) {
          warn("SessionCloseRequested for an unknown session", { sessionId: args.sessionId });
          return;
        }
        rows.put("sessions", {
          ...session,
          status: "closing",
          close_requested_by: args.closedBy,
          close_requested_at: args.closedAt,
          challenge_ends_at: args.challengeEndsAt,
          pending_receipt: receiptJson(args.receipt),
        });
      },
    },
    SessionSettled: {
      needsTimestamp: true,
      prefetch(event, rows) {
        rows.want("sessions", [event.args.sessionId]);
        rows.want("providers", [event.args.provider]);
        rows.want("parameters", ["sessionRouter", "treasury"]);
      },
      async apply(event, context) {
        const { args, blockNumber, transactionHash } = event;
        const { rows, publish, warn, blockTimestamp } = context;
        const session = await rows.get("sessions", [args.sessionId]);
        if (!session) {
          warn("SessionSettled for an unknown session", { sessionId: args.sessionId });
          return;
        }
        const { settlement, receipt } = args;
        const treasury = await treasuryOf(rows, settlement);
        const rated = receipt.seq > 0n;
        const settled: SessionRow = {
          ...session,
          status: "settled",
          cost: settlement.cost.toString(),
          provider_amount: settlement.providerAmount.toString(),
          royalty_amount: settlement.royaltyAmount.toString(),
          fee_amount: settlement.feeAmount.toString(),
          refund: settlement.refund.toString(),
          elapsed_seconds: Number(settlement.elapsedSeconds),
          treasury,
          receipt_seq: receipt.seq.toString(),
          input_tokens: receipt.inputTokens.toString(),
          output_tokens: receipt.outputTokens.toString(),
          requests: receipt.requests,
          ttft_ms_avg: receipt.ttftMsAvg,
          tps_x1000_avg: receipt.tpsX1000Avg,
          closed_by: args.closedBy,
          challenged: args.challenged,
          outcome: !rated ? "unrated" : receipt.outputTokens > 0n ? "success" : "failure",
          settled_at: blockTimestamp,
          settled_block: blockNumber,
          settled_tx: transactionHash,
        };
        rows.put("sessions", settled);
        credit(rows, args.provider, "provider", settlement.providerAmount);
        credit(rows, session.royalty_recipient as Address, "model_owner", settlement.royaltyAmount);
        if (treasury !== null) credit(rows, treasury, "treasury", settlement.feeAmount);
        else if (settlement.feeAmount > 0n)
          warn("a fee was paid to an unknown treasury", { sessionId: args.sessionId });
        await recordSettlement(rows, settled);
        publish("sessionSettled", sessionPayload(settled, event));
      },
    },
    ProtocolFeeSet: parameter("sessionRouter", "protocolFeeBps", (event) => event.args.protocolFeeBps),
    MaxSessionDurationSet: parameter("sessionRouter", "maxSessionDuration", (event) => event.args.maxSessionDuration),
    ChallengeWindowSet: parameter("sessionRouter", "challengeWindow", (event) => event.args.challengeWindow),
    TreasurySet: parameter("sessionRouter", "treasury", (event) => event.args.treasury),
    EIP712DomainChanged: ignore,
    RoleAdminChanged: ignore,
    RoleGranted: ignore,
    RoleRevoked: ignore,
  },

  escrow: {
    Claimed: {
      prefetch: (event, rows) => {
        for (const role of EARNINGS_ROLES) rows.want("balances", [event.args.account, role]);
      },
      async apply({ args }, { rows, warn }) {
        // A claim always takes the whole balance, so it empties every role's part of it.
        let claimable = 0n;
        for (const role of EARNINGS_ROLES) {
          const balance = await rows.get("balances", [args.account, role]);
          if (!balance) continue;
          claimable += BigInt(balance.earned) - BigInt(balance.claimed);
          rows.put("balances", { ...balance, claimed: balance.earned });
        }
        if (claimable !== args.amount) {
          warn("a claim differs from the indexed balance", {
            account: args.account,
            claimed: args.amount.toString(),
            indexed: claimable.toString(),
          });
        }
      },
    },
    RefundCredited: {
      apply({ args }, { rows }) {
        credit(rows, args.user, "refund", args.amount);
        return Promise.resolve();
      },
    },
  },
};

/** The receipt as stored: protocol's JSON form, less the session id the row already has. */
function receiptJson(receipt: UsageReceipt): ReceiptJson {
  const { sessionId: _sessionId, ...stored } = receiptToJson(receipt);
  return stored;
}

/** The handler of an event, or undefined when the event is ignored on purpose. */
export function handlerOf(event: MarketEvent): EventHandler<ContractName, EventName<ContractName>> | undefined {
  const table = handlers[event.contract] as Record<
    string,
    EventHandler<ContractName, EventName<ContractName>> | "ignore"
  >;
  const handler = table[event.name];
  return handler === ignore ? undefined : handler;
}

export type { Hex };
