/**
 * Approval nonces: the agent hands out rising nonces (the router accepts any unused one within 127
 * of the highest used, in any order), each journaled before its approval leaves the agent, so a
 * restart never issues a nonce twice. Also counts approvals still outstanding (unexpired, not yet
 * opened) toward the agent's capacity.
 */
import type { Address, Hex } from "viem";
import type { Journal, JournalRecord } from "./journal.js";

interface Outstanding {
  nonce: bigint;
  deadline: number;
  record: Extract<JournalRecord, { type: "approval" }>;
}

export class ApprovalLedger {
  /** The highest nonce ever issued (from the journal), or undefined. */
  private highestIssued: bigint | undefined;
  private next = 0n;
  private readonly outstanding = new Map<bigint, Outstanding>();
  private highestRecord: Extract<JournalRecord, { type: "approval" }> | undefined;

  constructor(private readonly journal: Journal) {}

  replay(records: readonly JournalRecord[]): void {
    for (const record of records) {
      if (record.type !== "approval") continue;
      const nonce = BigInt(record.nonce);
      this.outstanding.set(nonce, { nonce, deadline: record.deadline, record });
      if (this.highestIssued === undefined || nonce > this.highestIssued) {
        this.highestIssued = nonce;
        this.highestRecord = record;
      }
    }
  }

  /** Sets the next nonce from the chain's `nextApprovalNonce(provider)` and what the journal issued. */
  initialize(chainNext: bigint): void {
    const fromJournal = this.highestIssued === undefined ? 0n : this.highestIssued + 1n;
    this.next = chainNext > fromJournal ? chainNext : fromJournal;
  }

  /** Takes the next nonce and journals the approval (fsync'd) before it is returned. */
  async issue(approval: { bidId: Hex; user: Address; deadline: number; maxDeposit: bigint }): Promise<bigint> {
    const nonce = this.next;
    this.next += 1n;
    const record: Extract<JournalRecord, { type: "approval" }> = {
      type: "approval",
      nonce: nonce.toString(),
      bidId: approval.bidId,
      user: approval.user,
      deadline: approval.deadline,
      maxDeposit: approval.maxDeposit.toString(),
    };
    await this.journal.append(record);
    this.outstanding.set(nonce, { nonce, deadline: approval.deadline, record });
    this.highestIssued = nonce;
    this.highestRecord = record;
    return nonce;
  }

  /** A session opened with `nonce`: its approval no longer counts as outstanding. */
  used(nonce: bigint): void {
    this.outstanding.delete(nonce);
  }

  /** Approvals issued, not yet opened and not past their deadline. */
  outstandingCount(now: number): number {
    let count = 0;
    for (const [nonce, item] of this.outstanding) {
      if (item.deadline < now) this.outstanding.delete(nonce);
      else count += 1;
    }
    return count;
  }

  /** What compaction keeps: the outstanding approvals and the highest nonce issued. */
  compactRecords(now: number): JournalRecord[] {
    this.outstandingCount(now);
    const records = [...this.outstanding.values()].map((item) => item.record);
    if (this.highestRecord && !records.includes(this.highestRecord)) records.push(this.highestRecord);
    return records.sort((a, b) => (BigInt(a.nonce) < BigInt(b.nonce) ? -1 : 1));
  }
}
