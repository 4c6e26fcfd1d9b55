/**
 * The accounting of one inference request in a session: the credit it reserves when admitted, the
 * tokens it streams (counted as they come, so receipts may claim them at once), and what it leaves
 * in the session's served usage when it ends.
 */
import { usageCost } from "../../../protocol/index.js";
import { elapsedSeconds } from "./credit.js";
import type { SessionAccount } from "./session-account.js";

export class RequestMeter {
  private outputTokens = 0n;
  private admitted = false;
  private finished = false;
  /** What is still reserved: shrinks as the prompt is admitted and as tokens stream (they count as served). */
  private reserved: bigint;

  constructor(
    readonly account: SessionAccount,
    /** Prompt tokens counted before admission (the reservation's basis). */
    readonly promptTokens: number,
    /** The output cap the request runs with. */
    readonly maxTokens: number,
  ) {
    const { pricePerInputToken, pricePerOutputToken } = account.terms;
    this.reserved = BigInt(promptTokens) * pricePerInputToken + BigInt(maxTokens) * pricePerOutputToken;
    account.reservedCost += this.reserved;
    account.inFlightRequests += 1;
  }

  private release(cost: bigint): void {
    const released = cost < this.reserved ? cost : this.reserved;
    this.reserved -= released;
    this.account.reservedCost -= released;
  }

  /** The backend took the request: its prompt and the request count join the served usage. */
  admit(inputTokens: number): void {
    if (this.admitted || this.finished) return;
    this.admitted = true;
    this.release(BigInt(this.promptTokens) * this.account.terms.pricePerInputToken);
    this.account.local.served.inputTokens += BigInt(inputTokens);
    this.account.local.served.requests += 1;
  }

  /**
   * Records the output so far; false when one more token would take the session's cost past its
   * deposit (time keeps running while a stream is generated): the caller stops the stream.
   */
  progress(outputTokens: number, now: number): boolean {
    const tokens = BigInt(outputTokens);
    if (tokens > this.outputTokens) {
      const added = tokens - this.outputTokens;
      this.account.inFlightOutputTokens += added;
      this.outputTokens = tokens;
      this.release(added * this.account.terms.pricePerOutputToken);
    }
    const { terms, deposit, endsAt } = this.account.chain;
    const next = this.account.servedNow();
    const cost =
      elapsedSeconds(terms, endsAt, now) * terms.pricePerSecond +
      usageCost(terms, { inputTokens: next.inputTokens, outputTokens: next.outputTokens + 1n });
    return cost <= deposit;
  }

  /** Releases the reservation and moves the streamed tokens into the served usage. Idempotent. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.release(this.reserved);
    this.account.inFlightRequests -= 1;
    this.account.inFlightOutputTokens -= this.outputTokens;
    if (this.admitted) this.account.local.served.outputTokens += this.outputTokens;
  }

  get streamedTokens(): number {
    return Number(this.outputTokens);
  }
}
