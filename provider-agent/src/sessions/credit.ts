/**
 * The credit rule, as pure arithmetic on a session's numbers:
 *
 * - cost so far = min(deposit, elapsed × pricePerSecond + served tokens × token prices), exactly
 *   `sessionCost` of protocol/session.ts with the tokens the agent served (and has reserved for
 *   requests in flight);
 * - the agent never serves past the deposit: elapsed × pricePerSecond + usage cost ≤ deposit;
 * - nor more than `creditLimit` of token cost past the best receipt it holds:
 *   usageCost(served + reserved) − usageCost(best receipt) ≤ creditLimit.
 *
 * Time needs no receipt (a close with none still charges it), so credit counts tokens only.
 */
import { type SessionTerms, type Usage, sessionCost, usageCost } from "../../../protocol/index.js";

export interface CreditInputs {
  terms: SessionTerms;
  deposit: bigint;
  endsAt: number;
  /** Unix seconds (chain time). */
  now: number;
  served: Usage;
  /** Token cost reserved for requests in flight (their prompt and most output). */
  reservedCost: bigint;
  /** The tokens of the best receipt held (zero without one). */
  receipted: Usage;
  creditLimit: bigint;
}

export interface CreditPosition {
  elapsedSeconds: bigint;
  /** `sessionCost` with the served tokens. */
  cost: bigint;
  /** `sessionCost` with the best receipt's tokens: what a close with it would charge now. */
  receiptCost: bigint;
  /** What the deposit still pays for: deposit − time − usage − reserved (never below 0). */
  depositLeft: bigint;
  /** Token cost still served on credit: creditLimit − (usage + reserved − receipted usage), never below 0. */
  creditLeft: bigint;
  /** min(depositLeft, creditLeft), and which of the two binds. */
  budget: bigint;
  limitedBy: "deposit" | "credit";
}

export function elapsedSeconds(terms: Pick<SessionTerms, "openedAt">, endsAt: number, now: number): bigint {
  const end = Math.min(now, endsAt);
  return BigInt(Math.max(0, Math.floor(end) - terms.openedAt));
}

const nonNegative = (value: bigint) => (value > 0n ? value : 0n);

export function creditPosition(inputs: CreditInputs): CreditPosition {
  const elapsed = elapsedSeconds(inputs.terms, inputs.endsAt, inputs.now);
  const servedCost = usageCost(inputs.terms, inputs.served);
  const receiptedCost = usageCost(inputs.terms, inputs.receipted);
  const depositLeft = nonNegative(
    inputs.deposit - elapsed * inputs.terms.pricePerSecond - servedCost - inputs.reservedCost,
  );
  const creditLeft = nonNegative(inputs.creditLimit - (servedCost + inputs.reservedCost - receiptedCost));
  return {
    elapsedSeconds: elapsed,
    cost: sessionCost(inputs.terms, elapsed, inputs.served, inputs.deposit),
    receiptCost: sessionCost(inputs.terms, elapsed, inputs.receipted, inputs.deposit),
    depositLeft,
    creditLeft,
    budget: depositLeft < creditLeft ? depositLeft : creditLeft,
    limitedBy: depositLeft <= creditLeft ? "deposit" : "credit",
  };
}

/**
 * The most output tokens `budget` pays for after a prompt of `inputTokens`; `undefined` when output
 * is free (no token limit from money), a negative budget for the prompt gives 0.
 */
export function affordableOutputTokens(
  terms: Pick<SessionTerms, "pricePerInputToken" | "pricePerOutputToken">,
  budget: bigint,
  inputTokens: number,
): number | undefined {
  const left = budget - BigInt(inputTokens) * terms.pricePerInputToken;
  if (left < 0n) return 0;
  if (terms.pricePerOutputToken === 0n) return undefined;
  const tokens = left / terms.pricePerOutputToken;
  return tokens > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(tokens);
}

/** Whether the prompt alone is affordable. */
export function promptAffordable(
  terms: Pick<SessionTerms, "pricePerInputToken">,
  budget: bigint,
  inputTokens: number,
): boolean {
  return BigInt(inputTokens) * terms.pricePerInputToken <= budget;
}
