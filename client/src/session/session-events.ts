/** Reading a session's fate from the chain: its state slot and its SessionSettled / CloseRequested logs. */
import { type Hex, type Log, parseEventLogs } from "viem";
import { receiptToJson, sessionRouterAbi } from "../../../protocol/index.js";
import type { MarketContext } from "../context.js";
import type { SessionRecord } from "../store/session-record.js";

export const SESSION_STATUS = { none: 0, open: 1, closing: 2 } as const;

export async function readSessionState(ctx: MarketContext, sessionId: Hex) {
  return ctx.publicClient.readContract({
    address: ctx.addresses.sessionRouter,
    abi: sessionRouterAbi,
    functionName: "getSessionState",
    args: [sessionId],
  });
}

export type SettlementRecord = NonNullable<SessionRecord["settlement"]>;

export function settlementFromLogs(logs: Log[], sessionId: Hex): SettlementRecord | undefined {
  const settled = parseEventLogs({ abi: sessionRouterAbi, logs, eventName: "SessionSettled" }).find(
    (log) => log.args.sessionId.toLowerCase() === sessionId.toLowerCase(),
  );
  if (!settled) return undefined;
  const { settlement } = settled.args;
  return {
    cost: settlement.cost.toString(),
    refund: settlement.refund.toString(),
    providerAmount: settlement.providerAmount.toString(),
    royaltyAmount: settlement.royaltyAmount.toString(),
    feeAmount: settlement.feeAmount.toString(),
    challenged: settled.args.challenged,
    closedBy: settled.args.closedBy,
    txHash: settled.transactionHash,
  };
}

/** The SessionSettled log of a session, searched from the record's first block. */
export async function findSettlement(ctx: MarketContext, sessionId: Hex, fromBlock: bigint) {
  const logs = await ctx.publicClient.getContractEvents({
    address: ctx.addresses.sessionRouter,
    abi: sessionRouterAbi,
    eventName: "SessionSettled",
    args: { sessionId },
    fromBlock,
  });
  return settlementFromLogs(logs, sessionId);
}

/** The close request of a closing session: the receipt it carried and when its window ends. */
export async function findCloseRequest(ctx: MarketContext, sessionId: Hex, fromBlock: bigint) {
  const logs = await ctx.publicClient.getContractEvents({
    address: ctx.addresses.sessionRouter,
    abi: sessionRouterAbi,
    eventName: "SessionCloseRequested",
    args: { sessionId },
    fromBlock,
  });
  const last = logs.at(-1);
  if (!last) return undefined;
  return {
    receipt: receiptToJson(last.args.receipt!),
    closedAt: last.args.closedAt!,
    challengeEndsAt: last.args.challengeEndsAt!,
    txHash: last.transactionHash,
  };
}

/** The SessionOpened log of a session id: its terms, as emitted. */
export async function findSessionOpened(ctx: MarketContext, sessionId: Hex) {
  const logs = await ctx.publicClient.getContractEvents({
    address: ctx.addresses.sessionRouter,
    abi: sessionRouterAbi,
    eventName: "SessionOpened",
    args: { sessionId },
    fromBlock: ctx.settings.fromBlock,
  });
  return logs.at(-1);
}
