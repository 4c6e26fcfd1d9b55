/** Adds to an open session's deposit, which also extends its end (never past the terms' `maxEndsAt`). */
import { type Hex, parseEventLogs } from "viem";
import { sessionRouterAbi } from "../../../protocol/index.js";
import { ensureAllowance } from "../chain/allowance.js";
import { formatAmount } from "../chain/amounts.js";
import { sendContractCall } from "../chain/send.js";
import type { MarketContext } from "../context.js";
import { InvalidArgumentError, SessionStateError } from "../errors.js";
import { findSessionRecord } from "../session/live-registry.js";
import type { SessionRef } from "../session/market-session.js";
import { termsFromJson } from "../store/session-record.js";
import { requireStore } from "./openSession.js";

export interface TopUpResult {
  deposit: bigint;
  endsAt: number;
  txHash: Hex;
}

export async function topUp(ctx: MarketContext, ref: SessionRef, amount: bigint): Promise<TopUpResult> {
  if (amount <= 0n) throw new InvalidArgumentError("amount", "must be above zero");
  const record = await findSessionRecord(ctx, ref);
  if (record.phase !== "open" || !record.terms || !record.sessionId) {
    throw new SessionStateError(`session ${record.sessionId ?? record.sessionKey.address} is ${record.phase}`);
  }
  const terms = termsFromJson(record.terms);
  const room = terms.maxDeposit - BigInt(record.deposit);
  if (amount > room) {
    throw new InvalidArgumentError("amount", `${formatAmount(amount, ctx.token)} is above what the session takes`, {
      hint: `top up at most ${formatAmount(room, ctx.token)} (the approval capped the deposit at ${formatAmount(terms.maxDeposit, ctx.token)})`,
    });
  }
  await ensureAllowance(ctx, ctx.addresses.sessionRouter, amount, "the top-up");
  const receipt = await sendContractCall(
    ctx,
    ctx.progress,
    `topping up session ${record.sessionId} by ${formatAmount(amount, ctx.token)}`,
    {
      address: ctx.addresses.sessionRouter,
      abi: sessionRouterAbi,
      functionName: "topUp",
      args: [terms, amount],
    },
  );
  const [event] = parseEventLogs({ abi: sessionRouterAbi, logs: receipt.logs, eventName: "SessionToppedUp" });
  if (!event) throw new Error(`top-up ${receipt.transactionHash} emitted no SessionToppedUp`);
  await requireStore(ctx).update(record.sessionKey.address, (current) => ({
    ...current,
    deposit: event.args.deposit.toString(),
    endsAt: event.args.endsAt,
  }));
  return { deposit: event.args.deposit, endsAt: event.args.endsAt, txHash: receipt.transactionHash };
}
