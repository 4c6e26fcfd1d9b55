/**
 * The market events the agent follows, decoded from raw logs into the agent's own shapes: a session
 * opened, topped up, asked to close, settled; a bid of this provider posted, updated or deleted.
 */
import { type Abi, type AbiEvent, type Address, type Hex, type RpcLog, parseEventLogs, toEventSelector } from "viem";
import {
  type MarketAddresses,
  type Prices,
  type SessionTerms,
  type UsageReceipt,
  marketplaceAbi,
  sessionRouterAbi,
} from "../../../protocol/index.js";
import type { ChainSession } from "../sessions/session-account.js";
import { type LogFilter, addressTopic } from "./log-scanner.js";

export type MarketEvent =
  | { kind: "opened"; session: ChainSession; block: bigint }
  | { kind: "toppedUp"; sessionId: Hex; deposit: bigint; endsAt: number; block: bigint }
  | {
      kind: "closeRequested";
      sessionId: Hex;
      closedBy: Address;
      receipt: UsageReceipt;
      closedAt: number;
      challengeEndsAt: number;
      block: bigint;
    }
  | {
      kind: "settled";
      sessionId: Hex;
      provider: Address;
      cost: bigint;
      providerAmount: bigint;
      receipt: UsageReceipt;
      closedBy: Address;
      challenged: boolean;
      block: bigint;
    }
  | { kind: "bid"; change: "posted" | "updated" | "deleted"; bidId: Hex; modelId: Hex; prices?: Prices; block: bigint };

function selector(abi: Abi, eventName: string): Hex {
  const event = abi.find((item): item is AbiEvent => item.type === "event" && item.name === eventName);
  if (!event) throw new Error(`no event ${eventName} in the ABI`);
  return toEventSelector(event);
}

export const SELECTORS = {
  opened: selector(sessionRouterAbi, "SessionOpened"),
  toppedUp: selector(sessionRouterAbi, "SessionToppedUp"),
  closeRequested: selector(sessionRouterAbi, "SessionCloseRequested"),
  settled: selector(sessionRouterAbi, "SessionSettled"),
  bidPosted: selector(marketplaceAbi, "BidPosted"),
  bidUpdated: selector(marketplaceAbi, "BidUpdated"),
  bidDeleted: selector(marketplaceAbi, "BidDeleted"),
};

/** The filters that cover every event the agent follows for `provider`. */
export function followFilters(addresses: MarketAddresses, provider: Address): LogFilter[] {
  const providerTopic = addressTopic(provider);
  return [
    // SessionOpened and SessionSettled index the provider third.
    { address: addresses.sessionRouter, topics: [[SELECTORS.opened, SELECTORS.settled], null, null, providerTopic] },
    // SessionToppedUp and SessionCloseRequested index only the session (filtered by id once decoded).
    { address: addresses.sessionRouter, topics: [[SELECTORS.toppedUp, SELECTORS.closeRequested]] },
    // Bids index the provider second.
    {
      address: addresses.marketplace,
      topics: [[SELECTORS.bidPosted, SELECTORS.bidUpdated, SELECTORS.bidDeleted], null, providerTopic],
    },
  ];
}

/** The filter for one session's `SessionOpened`, whoever its provider. */
export function openedFilter(addresses: MarketAddresses, sessionId: Hex): LogFilter {
  return { address: addresses.sessionRouter, topics: [SELECTORS.opened, sessionId] };
}

function blockOf(log: { blockNumber: bigint | null }): bigint {
  return log.blockNumber ?? 0n;
}

/** Decodes router and marketplace logs (others are skipped), keeping their order. */
export function decodeMarketEvents(logs: RpcLog[], addresses: MarketAddresses): MarketEvent[] {
  const router = addresses.sessionRouter.toLowerCase();
  const marketplace = addresses.marketplace.toLowerCase();
  const events: MarketEvent[] = [];
  for (const raw of logs) {
    const address = raw.address.toLowerCase();
    if (address === router) {
      const [log] = parseEventLogs({ abi: sessionRouterAbi, logs: [raw] });
      if (!log) continue;
      const block = blockOf(log);
      switch (log.eventName) {
        case "SessionOpened": {
          const terms: SessionTerms = log.args.terms;
          events.push({
            kind: "opened",
            block,
            session: {
              sessionId: log.args.sessionId,
              terms,
              bidId: log.args.bidId,
              deposit: log.args.deposit,
              endsAt: log.args.endsAt,
              phase: "open",
              openedBlock: block,
            },
          });
          break;
        }
        case "SessionToppedUp":
          events.push({
            kind: "toppedUp",
            block,
            sessionId: log.args.sessionId,
            deposit: log.args.deposit,
            endsAt: log.args.endsAt,
          });
          break;
        case "SessionCloseRequested":
          events.push({
            kind: "closeRequested",
            block,
            sessionId: log.args.sessionId,
            closedBy: log.args.closedBy,
            receipt: log.args.receipt,
            closedAt: log.args.closedAt,
            challengeEndsAt: log.args.challengeEndsAt,
          });
          break;
        case "SessionSettled":
          events.push({
            kind: "settled",
            block,
            sessionId: log.args.sessionId,
            provider: log.args.provider,
            cost: log.args.settlement.cost,
            providerAmount: log.args.settlement.providerAmount,
            receipt: log.args.receipt,
            closedBy: log.args.closedBy,
            challenged: log.args.challenged,
          });
          break;
        default:
          break;
      }
    } else if (address === marketplace) {
      const [log] = parseEventLogs({ abi: marketplaceAbi, logs: [raw] });
      if (!log) continue;
      const block = blockOf(log);
      if (log.eventName === "BidPosted" || log.eventName === "BidUpdated") {
        events.push({
          kind: "bid",
          change: log.eventName === "BidPosted" ? "posted" : "updated",
          bidId: log.args.bidId,
          modelId: log.args.modelId,
          prices: log.args.prices,
          block,
        });
      } else if (log.eventName === "BidDeleted") {
        events.push({ kind: "bid", change: "deleted", bidId: log.args.bidId, modelId: log.args.modelId, block });
      }
    }
  }
  return events;
}
