/**
 * Every session of this provider the agent knows, with its journal: what the chain says (added by
 * the chain layer) and what the agent recorded (replayed from the journal at start, appended as it
 * happens). Whatever is acknowledged to a client is written and fsync'd first.
 */
import type { Hex } from "viem";
import {
  type SignedUsageReceipt,
  receiptFromJson,
  receiptToJson,
  signedReceiptToJson,
} from "../../../protocol/index.js";
import type { Journal, JournalRecord } from "./journal.js";
import {
  type ChainSession,
  type LocalSessionState,
  SessionAccount,
  addToFrontier,
  emptyLocalState,
  isBetterReceipt,
} from "./session-account.js";

const key = (sessionId: Hex) => sessionId.toLowerCase() as Hex;

export class SessionBook {
  private readonly locals = new Map<Hex, LocalSessionState>();
  private readonly accounts = new Map<Hex, SessionAccount>();

  constructor(private readonly journal: Journal) {}

  /** Rebuilds what the agent recorded from journal records (start-up). */
  replay(records: readonly JournalRecord[]): void {
    for (const record of records) {
      if (record.type === "approval") continue;
      const local = this.localOf(record.sessionId);
      switch (record.type) {
        case "served": {
          // Totals are cumulative; the largest of each is the latest.
          const inputTokens = BigInt(record.inputTokens);
          const outputTokens = BigInt(record.outputTokens);
          if (inputTokens > local.served.inputTokens) local.served.inputTokens = inputTokens;
          if (outputTokens > local.served.outputTokens) local.served.outputTokens = outputTokens;
          if (record.requests > local.served.requests) local.served.requests = record.requests;
          break;
        }
        case "receipt": {
          const signed = { receipt: receiptFromJson(record.receipt), signature: record.signature };
          if (!local.last || signed.receipt.seq > local.last.receipt.seq) local.last = signed;
          local.frontier = addToFrontier(local.frontier, signed);
          break;
        }
        case "countersigned":
          local.countersigned = {
            receipt: receiptFromJson(record.receipt),
            userSignature: record.userSignature,
            providerSignature: record.providerSignature,
          };
          break;
        case "settled":
          local.settled = true;
          break;
        case "close-sent":
          break;
      }
    }
  }

  private localOf(sessionId: Hex): LocalSessionState {
    let local = this.locals.get(key(sessionId));
    if (!local) {
      local = emptyLocalState();
      this.locals.set(key(sessionId), local);
    }
    return local;
  }

  /** Adds a session seen on chain, or updates the chain part of a known one. */
  upsertChain(chain: ChainSession): SessionAccount {
    const existing = this.accounts.get(key(chain.sessionId));
    if (existing) {
      existing.chain = chain;
      return existing;
    }
    const local = this.localOf(chain.sessionId);
    // The prices are known now: the best replayed receipt is the frontier's most expensive.
    for (const signed of local.frontier) {
      if (isBetterReceipt(chain.terms, signed.receipt, local.best?.receipt)) local.best = signed;
    }
    local.frontier = [];
    const account = new SessionAccount(chain, local);
    this.accounts.set(key(chain.sessionId), account);
    return account;
  }

  get(sessionId: Hex): SessionAccount | undefined {
    return this.accounts.get(key(sessionId));
  }

  /** Sessions on chain that are open or closing. */
  unsettled(): SessionAccount[] {
    return [...this.accounts.values()].filter((account) => account.chain.phase !== "settled");
  }

  all(): SessionAccount[] {
    return [...this.accounts.values()];
  }

  /** Ids the journal knows but the chain layer has not (yet) added. */
  journalOnly(): Hex[] {
    return [...this.locals.entries()]
      .filter(([id, local]) => !local.settled && !this.accounts.has(id))
      .map(([id]) => id);
  }

  /** Journals the served totals of `account` (call after a request ends, before answering it). */
  async recordServed(account: SessionAccount): Promise<void> {
    const served = account.local.served;
    await this.journal.append({
      type: "served",
      sessionId: account.id,
      inputTokens: served.inputTokens.toString(),
      outputTokens: served.outputTokens.toString(),
      requests: served.requests,
    });
  }

  /** Journals an accepted receipt, then makes it the best if it charges more. Call inside `account.exclusive`. */
  async acceptReceipt(account: SessionAccount, signed: SignedUsageReceipt): Promise<void> {
    await this.journal.append({ type: "receipt", sessionId: account.id, ...signedReceiptToJson(signed) });
    const local = account.local;
    if (!local.last || signed.receipt.seq > local.last.receipt.seq) local.last = signed;
    if (isBetterReceipt(account.terms, signed.receipt, local.best?.receipt)) local.best = signed;
  }

  /** Journals the countersignature of a user's final receipt; from then on the session is not served. */
  async recordCountersigned(
    account: SessionAccount,
    signed: SignedUsageReceipt,
    providerSignature: Hex,
  ): Promise<void> {
    await this.journal.append({
      type: "countersigned",
      sessionId: account.id,
      receipt: receiptToJson(signed.receipt),
      userSignature: signed.signature,
      providerSignature,
    });
    account.local.countersigned = { receipt: signed.receipt, userSignature: signed.signature, providerSignature };
  }

  async recordCloseSent(sessionId: Hex, kind: "close" | "challenge" | "finalize", txHash: Hex): Promise<void> {
    await this.journal.append({ type: "close-sent", sessionId, kind, txHash });
  }

  /** The session settled on chain (or is gone from it): journaled, so compaction forgets it. */
  async markSettled(sessionId: Hex): Promise<void> {
    const local = this.localOf(sessionId);
    const account = this.accounts.get(key(sessionId));
    if (account) account.chain = { ...account.chain, phase: "settled" };
    if (local.settled) return;
    local.settled = true;
    await this.journal.append({ type: "settled", sessionId });
  }

  /** The records that carry everything still needed, for the journal's compaction. */
  compactRecords(): JournalRecord[] {
    const records: JournalRecord[] = [];
    for (const [sessionId, local] of this.locals) {
      if (local.settled) continue;
      const served = local.served;
      if (served.requests > 0 || served.inputTokens > 0n || served.outputTokens > 0n) {
        records.push({
          type: "served",
          sessionId,
          inputTokens: served.inputTokens.toString(),
          outputTokens: served.outputTokens.toString(),
          requests: served.requests,
        });
      }
      const kept = new Map<bigint, SignedUsageReceipt>();
      for (const signed of [
        ...local.frontier,
        ...(local.best ? [local.best] : []),
        ...(local.last ? [local.last] : []),
      ]) {
        kept.set(signed.receipt.seq, signed);
      }
      for (const signed of [...kept.values()].sort((a, b) => (a.receipt.seq < b.receipt.seq ? -1 : 1))) {
        records.push({ type: "receipt", sessionId, ...signedReceiptToJson(signed) });
      }
      if (local.countersigned) {
        records.push({
          type: "countersigned",
          sessionId,
          receipt: receiptToJson(local.countersigned.receipt),
          userSignature: local.countersigned.userSignature,
          providerSignature: local.countersigned.providerSignature,
        });
      }
    }
    return records;
  }
}
