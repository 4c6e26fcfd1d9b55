/**
 * Gets the provider paid. On a schedule (and when a close is requested) it looks at every unsettled
 * session and:
 * - closes an expired one with the best receipt held (a close by the provider or its operator
 *   settles at once);
 * - challenges a user's close whose receipt's tokens cost less than the best receipt held, within
 *   the challenge window (the session then settles at the higher cost);
 * - finalizes a close whose window has passed (anyone may; the agent does so to be paid).
 * It claims the provider's escrow balance on its own schedule, and on demand (`claim`).
 */
import type { Hex } from "viem";
import { emptyReceipt, sessionRouterAbi, usageCost } from "../../../protocol/index.js";
import type { MarketReader } from "../chain/market.js";
import { type TransactionSender, describeChainError } from "../chain/transactions.js";
import type { Logger } from "../log/logger.js";
import type { SessionAccount } from "../sessions/session-account.js";
import type { SessionBook } from "../sessions/session-book.js";
import { claimEarnings } from "./claim.js";

export interface SettlerOptions {
  book: SessionBook;
  reader: MarketReader;
  /** Sends closes, challenges and finalizes: the operator key, else the provider key. */
  sender: TransactionSender;
  /** Sends claims: the provider key (claims pay the caller); absent in operator-only mode. */
  claimSender: TransactionSender | undefined;
  now: () => number;
  logger: Logger;
  closeExpired: boolean;
  challenge: boolean;
  finalize: boolean;
  checkIntervalSeconds: number;
  claimIntervalSeconds: number;
  minClaim: bigint;
  /** Called with the amount of each claim. */
  onClaimed?: (amount: bigint) => void;
}

export type SettlementAction = "close" | "challenge" | "finalize";

export class Settler {
  private readonly busy = new Set<Hex>();
  private checkTimer: NodeJS.Timeout | undefined;
  private claimTimer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: SettlerOptions) {}

  start(): void {
    const { checkIntervalSeconds, claimIntervalSeconds } = this.options;
    this.checkTimer = setInterval(() => void this.check(), checkIntervalSeconds * 1000);
    this.checkTimer.unref();
    if (claimIntervalSeconds > 0 && this.options.claimSender) {
      this.claimTimer = setInterval(() => {
        this.claim().catch((error: unknown) =>
          this.options.logger.warn({ err: describeChainError(error) }, "scheduled claim failed"),
        );
      }, claimIntervalSeconds * 1000);
      this.claimTimer.unref();
    }
    void this.check();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.checkTimer);
    clearInterval(this.claimTimer);
    await this.checking;
  }

  /** What the settler would do for `account` now, if anything. */
  decide(account: SessionAccount): SettlementAction | undefined {
    const now = this.options.now();
    const { chain, local } = account;
    if (chain.phase === "open") {
      return this.options.closeExpired && now >= chain.endsAt ? "close" : undefined;
    }
    if (chain.phase !== "closing" || !chain.closing) return undefined;
    if (now <= chain.closing.challengeEndsAt) {
      if (!this.options.challenge || !local.best) return undefined;
      const held = usageCost(account.terms, local.best.receipt);
      const closing = usageCost(account.terms, chain.closing.receipt);
      return held > closing ? "challenge" : undefined;
    }
    return this.options.finalize ? "finalize" : undefined;
  }

  /** Looks at every unsettled session once (runs are never concurrent). */
  check(): Promise<void> {
    this.checking ??= this.checkAll().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async checkAll(): Promise<void> {
    for (const account of this.options.book.unsettled()) {
      if (this.stopped) return;
      const action = this.decide(account);
      if (action) await this.act(account, action);
    }
  }

  /** Acts on one session now (a close request is challenged at once, not at the next check). */
  async settle(sessionId: Hex): Promise<void> {
    const account = this.options.book.get(sessionId);
    if (!account) return;
    const action = this.decide(account);
    if (action) await this.act(account, action);
  }

  private async act(account: SessionAccount, action: SettlementAction): Promise<void> {
    if (this.busy.has(account.id)) return;
    this.busy.add(account.id);
    const { sender, reader, book, logger } = this.options;
    const router = reader.addresses.sessionRouter;
    try {
      const best = account.local.best;
      let call: Parameters<TransactionSender["send"]>[1];
      if (action === "close") {
        call = {
          address: router,
          abi: sessionRouterAbi,
          functionName: "closeSession",
          args: [account.terms, best?.receipt ?? emptyReceipt(account.id), best?.signature ?? "0x", "0x"],
        };
      } else if (action === "challenge") {
        call = {
          address: router,
          abi: sessionRouterAbi,
          functionName: "challenge",
          args: [account.terms, account.chain.closing!.receipt, best!.receipt, best!.signature],
        };
      } else {
        call = {
          address: router,
          abi: sessionRouterAbi,
          functionName: "finalize",
          args: [account.terms, account.chain.closing!.receipt],
        };
      }
      const receipt = await sender.send(`${action} session ${account.id}`, call);
      await book.recordCloseSent(account.id, action, receipt.transactionHash);
      await book.markSettled(account.id);
    } catch (error) {
      logger.warn({ sessionId: account.id, action, err: describeChainError(error) }, "settlement transaction failed");
      await this.refresh(account);
    } finally {
      this.busy.delete(account.id);
    }
  }

  /** After a failure: the chain may have moved on (the user closed first, someone finalized). */
  private async refresh(account: SessionAccount): Promise<void> {
    try {
      const state = await this.options.reader.sessionState(account.id);
      if (state.status === "none") await this.options.book.markSettled(account.id);
      else account.chain = { ...account.chain, deposit: state.deposit, endsAt: state.endsAt, phase: state.status };
    } catch (error) {
      this.options.logger.debug(
        { sessionId: account.id, err: describeChainError(error) },
        "cannot refresh session state",
      );
    }
  }

  /** Claims the provider's whole escrow balance when it is at least `minClaim`; returns the amount (0: none). */
  async claim(): Promise<bigint> {
    const { claimSender, reader, logger, minClaim } = this.options;
    if (!claimSender) throw new Error("claiming needs the provider key (escrow pays the caller's own balance)");
    const amount = await claimEarnings(reader, claimSender, minClaim, logger);
    if (amount > 0n) this.options.onClaimed?.(amount);
    return amount;
  }
}
