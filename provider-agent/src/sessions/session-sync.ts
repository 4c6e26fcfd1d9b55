/**
 * Applies the market's events to what the agent knows: sessions opened, topped up, closing and
 * settled, approvals used, bids changed. The chain follower calls it in chain order.
 */
import type { Hex } from "viem";
import type { MarketEvent } from "../chain/market-events.js";
import type { Logger } from "../log/logger.js";
import type { ApprovalLedger } from "./approval-ledger.js";
import type { SessionBook } from "./session-book.js";
import type { SessionService } from "./session-service.js";

export interface SessionSyncHooks {
  /** A session of ours started closing (the settler decides whether to challenge). */
  onCloseRequested?: (sessionId: Hex) => void;
  /** A session of ours settled, paying the provider `providerAmount`. */
  onSettled?: (sessionId: Hex, providerAmount: bigint) => void;
  /** A bid of ours changed. */
  onBidChanged?: (event: Extract<MarketEvent, { kind: "bid" }>) => void;
}

export class SessionSync {
  constructor(
    private readonly book: SessionBook,
    private readonly service: SessionService,
    private readonly ledger: ApprovalLedger,
    private readonly logger: Logger,
    private readonly hooks: SessionSyncHooks = {},
  ) {}

  async apply(events: readonly MarketEvent[]): Promise<void> {
    for (const event of events) {
      switch (event.kind) {
        case "opened": {
          const known = this.book.get(event.session.sessionId);
          if (!known) this.book.upsertChain(event.session);
          this.ledger.used(event.session.terms.nonce);
          this.logger.info(
            { sessionId: event.session.sessionId, user: event.session.terms.user, deposit: event.session.deposit },
            "session opened",
          );
          break;
        }
        case "toppedUp": {
          const account = this.book.get(event.sessionId);
          if (!account) break;
          account.chain = { ...account.chain, deposit: event.deposit, endsAt: event.endsAt };
          this.logger.info(
            { sessionId: event.sessionId, deposit: event.deposit, endsAt: event.endsAt },
            "session topped up",
          );
          break;
        }
        case "closeRequested": {
          const account = this.book.get(event.sessionId);
          if (!account) break;
          account.chain = {
            ...account.chain,
            phase: "closing",
            closing: {
              closedAt: event.closedAt,
              challengeEndsAt: event.challengeEndsAt,
              receipt: event.receipt,
              closedBy: event.closedBy,
            },
          };
          this.service.stopRequests(event.sessionId, "the session is closing");
          this.logger.info(
            {
              sessionId: event.sessionId,
              closedBy: event.closedBy,
              seq: event.receipt.seq,
              challengeEndsAt: event.challengeEndsAt,
            },
            "session close requested",
          );
          this.hooks.onCloseRequested?.(event.sessionId);
          break;
        }
        case "settled": {
          const account = this.book.get(event.sessionId);
          await this.book.markSettled(event.sessionId);
          this.service.stopRequests(event.sessionId, "the session settled");
          if (account) {
            this.logger.info(
              {
                sessionId: event.sessionId,
                cost: event.cost,
                providerAmount: event.providerAmount,
                seq: event.receipt.seq,
                challenged: event.challenged,
              },
              "session settled",
            );
            this.hooks.onSettled?.(event.sessionId, event.providerAmount);
          }
          break;
        }
        case "bid":
          this.hooks.onBidChanged?.(event);
          break;
      }
    }
  }
}
