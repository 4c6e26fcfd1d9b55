/**
 * One session as the agent knows it: what the chain says (terms, deposit, end, phase) and what the
 * agent itself recorded (usage served, the best receipt, a countersignature), plus the in-memory
 * bookkeeping of requests in flight.
 */
import type { Hex } from "viem";
import type { SessionTerms, SignedUsageReceipt, Usage, UsageReceipt } from "../../../protocol/index.js";
import { usageCost } from "../../../protocol/index.js";

export type SessionPhase = "open" | "closing" | "settled";

/** The session on chain: `SessionOpened` plus what later events and `getSessionState` changed. */
export interface ChainSession {
  sessionId: Hex;
  terms: SessionTerms;
  bidId: Hex;
  deposit: bigint;
  endsAt: number;
  phase: SessionPhase;
  /** Block of `SessionOpened`. */
  openedBlock: bigint;
  /** Set while closing: when, and until when it may be challenged, with the receipt it carries. */
  closing?: { closedAt: number; challengeEndsAt: number; receipt: UsageReceipt; closedBy: Hex };
}

export interface ServedUsage {
  inputTokens: bigint;
  outputTokens: bigint;
  requests: number;
}

/** What the journal holds for a session. */
export interface LocalSessionState {
  served: ServedUsage;
  /** The receipt that charges most (ties: the later one), once the session's prices are known. */
  best?: SignedUsageReceipt;
  /**
   * Replayed receipts before the prices are known (start-up): those no other receipt beats in both
   * input and output tokens, one of which is the best at any prices.
   */
  frontier: SignedUsageReceipt[];
  /** The receipt with the highest `seq` accepted (the next must be above it). */
  last?: SignedUsageReceipt;
  /** Set once the agent countersigned the user's final receipt: the session is served no more. */
  countersigned?: { receipt: UsageReceipt; userSignature: Hex; providerSignature: Hex };
  /** The session is known settled (compaction forgets it). */
  settled: boolean;
}

export function emptyLocalState(): LocalSessionState {
  return { served: { inputTokens: 0n, outputTokens: 0n, requests: 0 }, frontier: [], settled: false };
}

export class SessionAccount {
  /** Token cost reserved by requests in flight (released when each ends). */
  reservedCost = 0n;
  /** Output tokens streamed by requests in flight and not yet added to `served`. */
  inFlightOutputTokens = 0n;
  inFlightRequests = 0;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    public chain: ChainSession,
    readonly local: LocalSessionState,
  ) {}

  get id(): Hex {
    return this.chain.sessionId;
  }

  get terms(): SessionTerms {
    return this.chain.terms;
  }

  /** Served usage, counting tokens already streamed by requests in flight. */
  servedNow(): Usage & { requests: number } {
    return {
      inputTokens: this.local.served.inputTokens,
      outputTokens: this.local.served.outputTokens + this.inFlightOutputTokens,
      requests: this.local.served.requests,
    };
  }

  get lastSeq(): bigint {
    return this.local.last?.receipt.seq ?? 0n;
  }

  receiptedUsage(): Usage {
    const best = this.local.best?.receipt;
    return { inputTokens: best?.inputTokens ?? 0n, outputTokens: best?.outputTokens ?? 0n };
  }

  /** Runs `task` after every earlier task of this session (receipts and closes are checked one at a time). */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task, task);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

/** Whether `candidate` should replace `best`: it charges more, or as much with a higher seq. */
export function isBetterReceipt(
  terms: Pick<SessionTerms, "pricePerInputToken" | "pricePerOutputToken">,
  candidate: UsageReceipt,
  best: UsageReceipt | undefined,
): boolean {
  if (!best) return true;
  const candidateCost = usageCost(terms, candidate);
  const bestCost = usageCost(terms, best);
  return candidateCost > bestCost || (candidateCost === bestCost && candidate.seq > best.seq);
}

/** Adds `signed` to a Pareto frontier of receipts (by input and output tokens; ties keep the higher seq). */
export function addToFrontier(frontier: SignedUsageReceipt[], signed: SignedUsageReceipt): SignedUsageReceipt[] {
  const dominates = (a: UsageReceipt, b: UsageReceipt) =>
    a.inputTokens >= b.inputTokens &&
    a.outputTokens >= b.outputTokens &&
    (a.inputTokens > b.inputTokens || a.outputTokens > b.outputTokens || a.seq >= b.seq);
  if (frontier.some((other) => dominates(other.receipt, signed.receipt))) return frontier;
  return [...frontier.filter((other) => !dominates(signed.receipt, other.receipt)), signed];
}
