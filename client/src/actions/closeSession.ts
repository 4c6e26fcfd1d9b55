/**
 * Closing a session. The honest path settles at once: the agent countersigns the latest receipt
 * (`POST /v1/sessions/:id/close`) and the user's `closeSession` carries both signatures. When the
 * agent cannot or will not countersign, the user closes alone with the latest receipt, which opens
 * the challenge window; `finalizeSession` (or `closeSession` again) settles it after the window.
 * A session already closing is finalized when its window has passed; one settled by the provider
 * is recorded as such.
 */
import { type Hex, isAddressEqual, parseEventLogs, zeroAddress } from "viem";
import { type SignedUsageReceipt, signedReceiptFromJson } from "../../../protocol/agent-api.js";
import {
  emptyReceipt,
  providerRegistryAbi,
  receiptFromJson,
  receiptToJson,
  recoverSessionSigner,
  sessionRouterAbi,
} from "../../../protocol/index.js";
import { getAgentSessionStatus, requestCountersignature } from "../agent/agent-client.js";
import { chainNow } from "../chain/clock.js";
import { sendContractCall } from "../chain/send.js";
import type { MarketContext } from "../context.js";
import {
  AgentRequestError,
  ChallengeWindowOpenError,
  ContractRevertError,
  MarketError,
  SessionStateError,
} from "../errors.js";
import { dropLiveSession, findSessionRecord, liveSession } from "../session/live-registry.js";
import type { SessionRef } from "../session/market-session.js";
import {
  SESSION_STATUS,
  type SettlementRecord,
  findCloseRequest,
  findSettlement,
  readSessionState,
  settlementFromLogs,
} from "../session/session-events.js";
import { type SessionRecord, termsFromJson } from "../store/session-record.js";
import { requireStore } from "./openSession.js";

export type CloseResult =
  | {
      outcome: "settled";
      sessionId: Hex;
      settlement: SettlementRecord;
      /** True when the agent's countersignature settled it at once. */
      cooperative: boolean;
      txHash: Hex | undefined;
    }
  | {
      outcome: "closing";
      sessionId: Hex;
      /** Unix seconds after which `finalizeSession` settles it. */
      challengeEndsAt: number;
      /** Why the cooperative close did not happen. */
      reason: string;
      txHash: Hex;
    };

export interface CloseOptions {
  /** Ask the agent to countersign (default true); false closes alone (challenge window). */
  cooperative?: boolean;
}

function openTerms(record: SessionRecord) {
  if (!record.sessionId || !record.terms) {
    throw new SessionStateError(`the session of key ${record.sessionKey.address} never opened (${record.phase})`);
  }
  return { sessionId: record.sessionId, terms: termsFromJson(record.terms) };
}

async function markSettled(ctx: MarketContext, record: SessionRecord, settlement: SettlementRecord) {
  dropLiveSession(ctx, record.sessionId!);
  return requireStore(ctx).update(record.sessionKey.address, (current) => ({
    ...current,
    phase: "settled",
    settlement,
  }));
}

export async function closeSession(
  ctx: MarketContext,
  ref: SessionRef,
  options: CloseOptions = {},
): Promise<CloseResult> {
  const record = await findSessionRecord(ctx, ref);
  const { sessionId, terms } = openTerms(record);
  if (record.phase === "settled" && record.settlement) {
    return {
      outcome: "settled",
      sessionId,
      settlement: record.settlement,
      cooperative: false,
      txHash: record.settlement.txHash,
    };
  }
  const state = await readSessionState(ctx, sessionId);
  if (state.status === SESSION_STATUS.none) {
    const settlement = await findSettlement(ctx, sessionId, BigInt(record.fromBlock));
    if (!settlement) throw new SessionStateError(`session ${sessionId} is not on this chain`);
    await markSettled(ctx, record, settlement);
    return { outcome: "settled", sessionId, settlement, cooperative: false, txHash: settlement.txHash };
  }
  if (state.status === SESSION_STATUS.closing) return finalizeSession(ctx, ref);

  const store = requireStore(ctx);
  let reason = "asked to close without the agent";
  if (record.sessionKey.sealed !== undefined) {
    const live = await liveSession(ctx, sessionId);
    await live.flush();
    let signed = live.latestReceipt();
    if (signed && options.cooperative !== false) {
      try {
        let countersigned;
        try {
          countersigned = await ctx.progress.step(
            `asking ${record.endpoint} to countersign the final receipt`,
            async () => requestCountersignature(live.agent, await live.authToken(), signed!),
          );
        } catch (error) {
          // The agent holds a receipt that charges more (ours was lost): its best one is ours too.
          if (!(error instanceof AgentRequestError && error.code === "receipt_below_best")) throw error;
          const status = await getAgentSessionStatus(live.agent, await live.authToken(), sessionId);
          if (!status.bestReceipt) throw error;
          const best = signedReceiptFromJson(status.bestReceipt, "bestReceipt");
          const signer = await recoverSessionSigner(ctx.domain, "UsageReceipt", best.receipt, best.signature);
          if (
            !isAddressEqual(signer, terms.sessionKey) ||
            best.receipt.sessionId.toLowerCase() !== sessionId.toLowerCase()
          ) {
            throw error;
          }
          signed = best;
          countersigned = await requestCountersignature(live.agent, await live.authToken(), signed);
        }
        const signer = await recoverSessionSigner(
          ctx.domain,
          "UsageReceipt",
          signed.receipt,
          countersigned.providerSignature,
        );
        const operator = await ctx.publicClient.readContract({
          address: ctx.addresses.providerRegistry,
          abi: providerRegistryAbi,
          functionName: "operatorOf",
          args: [terms.provider],
        });
        if (
          !isAddressEqual(signer, terms.provider) &&
          (isAddressEqual(operator, zeroAddress) || !isAddressEqual(signer, operator))
        ) {
          throw new AgentRequestError(
            record.endpoint,
            "POST close",
            200,
            "bad_countersignature",
            `signed by ${signer}`,
          );
        }
        const final = signed;
        await store.update(record.sessionKey.address, (current) => ({
          ...current,
          close: {
            receipt: receiptToJson(final.receipt),
            userSignature: final.signature,
            providerSignature: countersigned.providerSignature,
          },
        }));
        const receipt = await sendContractCall(ctx, ctx.progress, `closing session ${sessionId}`, {
          address: ctx.addresses.sessionRouter,
          abi: sessionRouterAbi,
          functionName: "closeSession",
          args: [terms, final.receipt, final.signature, countersigned.providerSignature],
        });
        const settlement = settlementFromLogs(receipt.logs, sessionId);
        if (!settlement) throw new Error(`close ${receipt.transactionHash} did not settle session ${sessionId}`);
        await markSettled(ctx, record, settlement);
        return { outcome: "settled", sessionId, settlement, cooperative: true, txHash: receipt.transactionHash };
      } catch (error) {
        if (!(error instanceof MarketError) || error instanceof SessionStateError) throw error;
        reason = error.message;
      }
    } else if (!signed) {
      reason = "no receipt to countersign (the session was not used): closing on time only";
    }
  } else {
    reason = "the session key is not in the store: closing on time only";
  }
  return closeAlone(ctx, record, reason);
}

/** The user's close without a countersignature: opens the challenge window. */
async function closeAlone(ctx: MarketContext, record: SessionRecord, reason: string): Promise<CloseResult> {
  const { sessionId, terms } = openTerms(record);
  let signed: SignedUsageReceipt = { receipt: emptyReceipt(sessionId), signature: "0x" };
  if (record.sessionKey.sealed !== undefined) {
    const latest = (await liveSession(ctx, sessionId).catch(() => undefined))?.latestReceipt();
    if (latest) signed = latest;
  }
  const store = requireStore(ctx);
  await store.update(record.sessionKey.address, (current) => ({
    ...current,
    close: { receipt: receiptToJson(signed.receipt), userSignature: signed.signature },
  }));
  const receipt = await sendContractCall(ctx, ctx.progress, `closing session ${sessionId} (challenge window)`, {
    address: ctx.addresses.sessionRouter,
    abi: sessionRouterAbi,
    functionName: "closeSession",
    args: [terms, signed.receipt, signed.signature, "0x"],
  });
  const [requested] = parseEventLogs({ abi: sessionRouterAbi, logs: receipt.logs, eventName: "SessionCloseRequested" });
  if (!requested) throw new Error(`close ${receipt.transactionHash} did not request a close of ${sessionId}`);
  dropLiveSession(ctx, sessionId);
  await store.update(record.sessionKey.address, (current) => ({
    ...current,
    phase: "closing",
    close: {
      receipt: receiptToJson(signed.receipt),
      userSignature: signed.signature,
      txHash: receipt.transactionHash,
      closedAt: requested.args.closedAt,
      challengeEndsAt: requested.args.challengeEndsAt,
    },
  }));
  return {
    outcome: "closing",
    sessionId,
    challengeEndsAt: requested.args.challengeEndsAt,
    reason,
    txHash: receipt.transactionHash,
  };
}

/** Settles a closing session once its challenge window has passed (anyone may; the user gets the refund). */
export async function finalizeSession(ctx: MarketContext, ref: SessionRef): Promise<CloseResult> {
  const record = await findSessionRecord(ctx, ref);
  const { sessionId, terms } = openTerms(record);
  const state = await readSessionState(ctx, sessionId);
  if (state.status === SESSION_STATUS.none) {
    const settlement = record.settlement ?? (await findSettlement(ctx, sessionId, BigInt(record.fromBlock)));
    if (!settlement) throw new SessionStateError(`session ${sessionId} is not on this chain`);
    await markSettled(ctx, record, settlement);
    return { outcome: "settled", sessionId, settlement, cooperative: false, txHash: settlement.txHash };
  }
  if (state.status !== SESSION_STATUS.closing) {
    throw new SessionStateError(`session ${sessionId} is open, not closing`, {
      hint: `close it first: market close ${sessionId}`,
    });
  }
  const request = await findCloseRequest(ctx, sessionId, BigInt(record.fromBlock));
  if (!request) throw new Error(`session ${sessionId} is closing but has no SessionCloseRequested log`);
  const now = await chainNow(ctx);
  if (now <= request.challengeEndsAt) {
    await requireStore(ctx).update(record.sessionKey.address, (current) => ({
      ...current,
      phase: "closing",
      close: {
        ...(current.close ?? { receipt: request.receipt, userSignature: "0x" }),
        closedAt: request.closedAt,
        challengeEndsAt: request.challengeEndsAt,
      },
    }));
    throw new ChallengeWindowOpenError(
      sessionId,
      request.challengeEndsAt,
      Math.ceil(request.challengeEndsAt - now + 1),
    );
  }
  let receipt;
  try {
    receipt = await sendContractCall(ctx, ctx.progress, `finalizing session ${sessionId}`, {
      address: ctx.addresses.sessionRouter,
      abi: sessionRouterAbi,
      functionName: "finalize",
      args: [terms, receiptFromJson(request.receipt)],
    });
  } catch (error) {
    // The provider challenged, or someone finalized, between our read and our call.
    if (!(error instanceof ContractRevertError && error.errorName === "SessionNotClosing")) throw error;
    const settlement = await findSettlement(ctx, sessionId, BigInt(record.fromBlock));
    if (!settlement) throw error;
    await markSettled(ctx, record, settlement);
    return { outcome: "settled", sessionId, settlement, cooperative: false, txHash: settlement.txHash };
  }
  const settlement = settlementFromLogs(receipt.logs, sessionId);
  if (!settlement) throw new Error(`finalize ${receipt.transactionHash} did not settle session ${sessionId}`);
  await markSettled(ctx, record, settlement);
  return { outcome: "settled", sessionId, settlement, cooperative: false, txHash: receipt.transactionHash };
}
