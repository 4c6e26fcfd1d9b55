/**
 * Checks a user's `UsageReceipt` before the agent keeps it: for this session, signed by the
 * session's key (plain ECDSA, as the router checks it), `seq` above the last one accepted, and
 * claiming no more tokens or requests than the agent served. A bad receipt changes nothing.
 */
import type { Hex } from "viem";
import { type MarketDomain, type SignedUsageReceipt, verifyUsageReceipt } from "../../../protocol/index.js";
import { Refusal } from "../refusal.js";
import type { SessionAccount } from "./session-account.js";

/** Checks that do not depend on order: the session, the fields, the signature. */
export async function checkReceiptSignature(
  domain: MarketDomain,
  account: SessionAccount,
  signed: SignedUsageReceipt,
  param = "receipt",
): Promise<void> {
  const { receipt } = signed;
  if (receipt.sessionId.toLowerCase() !== account.id.toLowerCase()) {
    throw new Refusal("invalid_receipt", `the receipt is for session ${receipt.sessionId}, not ${account.id}`, {
      param: `${param}.sessionId`,
    });
  }
  if (receipt.seq === 0n) {
    throw new Refusal("invalid_receipt", 'seq 0 means "no receipt"; receipts start at seq 1', {
      param: `${param}.seq`,
    });
  }
  if (!(await verifyUsageReceipt(domain, receipt, signed.signature, [account.terms.sessionKey]))) {
    throw new Refusal("bad_signature", `the receipt is not signed by the session key ${account.terms.sessionKey}`, {
      param: "signature",
    });
  }
}

/** Whether the receipt claims no more than was served (tokens streamed by requests in flight count). */
export function checkReceiptWithinServed(account: SessionAccount, signed: SignedUsageReceipt, param = "receipt") {
  const served = account.servedNow();
  const { receipt } = signed;
  const over: string[] = [];
  if (receipt.inputTokens > served.inputTokens) over.push(`inputTokens ${receipt.inputTokens} > ${served.inputTokens}`);
  if (receipt.outputTokens > served.outputTokens) {
    over.push(`outputTokens ${receipt.outputTokens} > ${served.outputTokens}`);
  }
  if (receipt.requests > served.requests) over.push(`requests ${receipt.requests} > ${served.requests}`);
  if (over.length > 0) {
    throw new Refusal("receipt_exceeds_usage", `the receipt claims more than was served: ${over.join(", ")}`, {
      param,
    });
  }
}

/** Every check of a new receipt (call inside `account.exclusive`, so `seq` is compared with the latest). */
export async function checkNewReceipt(
  domain: MarketDomain,
  account: SessionAccount,
  signed: SignedUsageReceipt,
  param = "receipt",
): Promise<void> {
  await checkReceiptSignature(domain, account, signed, param);
  if (signed.receipt.seq <= account.lastSeq) {
    throw new Refusal(
      "receipt_stale",
      `receipt seq ${signed.receipt.seq} is not above the last accepted (${account.lastSeq})`,
      { param: `${param}.seq` },
    );
  }
  checkReceiptWithinServed(account, signed, param);
}

/** Whether two signed receipts are the same. */
export function sameReceipt(a: SignedUsageReceipt, b: SignedUsageReceipt): boolean {
  const x = a.receipt;
  const y = b.receipt;
  return (
    x.sessionId.toLowerCase() === y.sessionId.toLowerCase() &&
    x.seq === y.seq &&
    x.inputTokens === y.inputTokens &&
    x.outputTokens === y.outputTokens &&
    x.requests === y.requests &&
    x.ttftMsAvg === y.ttftMsAvg &&
    x.tpsX1000Avg === y.tpsX1000Avg &&
    (a.signature.toLowerCase() as Hex) === (b.signature.toLowerCase() as Hex)
  );
}
