/**
 * Bringing the store up to date with the chain after a restart or a loss:
 * - `resumeOpens`: a record left `opening` (the process died around the open transaction) becomes
 *   `open` if its session exists on chain (found by tx hash, or by its session key in the user's
 *   SessionOpened logs), or `failed` once its approval has expired unused;
 * - `syncSessions`: sessions the provider settled or closed are marked so;
 * - `rebuildSession`: a session missing from the store (the store was lost) is rebuilt from its
 *   terms — from the indexer's `session(id)`, or from its SessionOpened log. Its key is gone, so it
 *   can only be closed on time (the provider may still charge the receipts it holds).
 */
import { type Hex, getAddress, isAddressEqual, parseEventLogs } from "viem";
import { providerRegistryAbi, sessionRouterAbi } from "../../../protocol/index.js";
import { chainNow } from "../chain/clock.js";
import type { MarketContext } from "../context.js";
import { SessionNotFoundError } from "../errors.js";
import { fetchSessionTerms } from "../indexer/queries.js";
import { type MarketSession, sessionFromRecord } from "../session/market-session.js";
import { SESSION_STATUS, findSessionOpened, findSettlement, readSessionState } from "../session/session-events.js";
import { SESSION_RECORD_VERSION, type SessionRecord, termsToJson } from "../store/session-record.js";
import { requireStore } from "./openSession.js";

type OpenedLog = ReturnType<typeof parseEventLogs<typeof sessionRouterAbi, true, "SessionOpened">>[number];

function opened(record: SessionRecord, log: OpenedLog): SessionRecord {
  return {
    ...record,
    phase: "open",
    sessionId: log.args.sessionId,
    terms: termsToJson(log.args.terms),
    deposit: log.args.deposit.toString(),
    endsAt: log.args.endsAt,
  };
}

/** Settles the fate of records left `opening`; returns the records it changed. */
export async function resumeOpens(ctx: MarketContext): Promise<SessionRecord[]> {
  const store = requireStore(ctx);
  const changed: SessionRecord[] = [];
  for (const record of await store.list()) {
    if (record.phase !== "opening" || record.chainId !== ctx.chainId) continue;
    let log: OpenedLog | undefined;
    if (record.openTxHash) {
      const receipt = await ctx.publicClient.getTransactionReceipt({ hash: record.openTxHash }).catch(() => undefined);
      if (receipt?.status === "success") {
        log = parseEventLogs({ abi: sessionRouterAbi, logs: receipt.logs, eventName: "SessionOpened" })[0];
      } else if (receipt?.status === "reverted") {
        changed.push(
          await store.update(record.sessionKey.address, (r) => ({
            ...r,
            phase: "failed",
            failure: "the open transaction reverted",
          })),
        );
        continue;
      }
    }
    if (!log) {
      const logs = await ctx.publicClient.getContractEvents({
        address: ctx.addresses.sessionRouter,
        abi: sessionRouterAbi,
        eventName: "SessionOpened",
        args: { user: record.user, provider: record.provider },
        fromBlock: BigInt(record.fromBlock),
      });
      log = (logs as unknown as OpenedLog[]).find((entry) =>
        isAddressEqual(entry.args.terms.sessionKey, record.sessionKey.address),
      );
    }
    if (log) {
      const found = log;
      changed.push(await store.update(record.sessionKey.address, (r) => opened(r, found)));
    } else if (record.approval && (await chainNow(ctx)) > Number(record.approval.deadline)) {
      changed.push(
        await store.update(record.sessionKey.address, (r) => ({
          ...r,
          phase: "failed",
          failure: "never opened; its approval expired",
        })),
      );
    }
  }
  return changed;
}

/** Marks open or closing sessions that were settled (or closed) by someone else; returns the changed ones. */
export async function syncSessions(ctx: MarketContext): Promise<SessionRecord[]> {
  const store = requireStore(ctx);
  const changed: SessionRecord[] = [];
  for (const record of await store.list()) {
    if (record.chainId !== ctx.chainId || !record.sessionId || (record.phase !== "open" && record.phase !== "closing"))
      continue;
    const state = await readSessionState(ctx, record.sessionId);
    if (state.status === SESSION_STATUS.none) {
      const settlement = await findSettlement(ctx, record.sessionId, BigInt(record.fromBlock));
      if (settlement)
        changed.push(await store.update(record.sessionKey.address, (r) => ({ ...r, phase: "settled", settlement })));
    } else if (state.status === SESSION_STATUS.closing && record.phase === "open") {
      changed.push(await store.update(record.sessionKey.address, (r) => ({ ...r, phase: "closing" })));
    } else if (state.status === SESSION_STATUS.open && BigInt(record.deposit) !== state.deposit) {
      changed.push(
        await store.update(record.sessionKey.address, (r) => ({
          ...r,
          deposit: state.deposit.toString(),
          endsAt: state.endsAt,
        })),
      );
    }
  }
  return changed;
}

/** Rebuilds a lost session's record from its terms (indexer, else the chain's SessionOpened log). */
export async function rebuildSession(ctx: MarketContext, sessionId: Hex): Promise<MarketSession> {
  const store = requireStore(ctx);
  const existing = await store.findBySessionId(sessionId);
  if (existing) return sessionFromRecord(existing);
  let terms;
  let bidId: Hex | undefined;
  let openedBlock = ctx.settings.fromBlock;
  if (ctx.indexer) {
    const found = await fetchSessionTerms(ctx.indexer, sessionId);
    if (found) {
      terms = found.terms;
      bidId = found.bidId;
      openedBlock = found.openedBlock ?? openedBlock;
    }
  }
  if (!terms) {
    const log = await findSessionOpened(ctx, sessionId);
    if (log) {
      terms = log.args.terms!;
      bidId = log.args.bidId;
      openedBlock = log.blockNumber;
    }
  }
  if (!terms || !bidId)
    throw new SessionNotFoundError(sessionId, ctx.indexer ? "on the indexer nor on chain" : "on chain");
  if (!isAddressEqual(terms.user, store.user)) {
    throw new SessionNotFoundError(sessionId, `of this wallet (it belongs to ${terms.user})`);
  }
  const state = await readSessionState(ctx, sessionId);
  const registration = await ctx.publicClient.readContract({
    address: ctx.addresses.providerRegistry,
    abi: providerRegistryAbi,
    functionName: "getProvider",
    args: [terms.provider],
  });
  const record: SessionRecord = {
    version: SESSION_RECORD_VERSION,
    chainId: ctx.chainId,
    sessionRouter: ctx.addresses.sessionRouter,
    user: getAddress(terms.user),
    sessionKey: { address: getAddress(terms.sessionKey) },
    bidId,
    provider: terms.provider,
    modelId: terms.modelId,
    endpoint: registration.endpoint,
    prices: {
      perSecond: terms.pricePerSecond.toString(),
      perInputToken: terms.pricePerInputToken.toString(),
      perOutputToken: terms.pricePerOutputToken.toString(),
    },
    createdAt: Date.now(),
    fromBlock: openedBlock.toString(),
    phase:
      state.status === SESSION_STATUS.open ? "open" : state.status === SESSION_STATUS.closing ? "closing" : "settled",
    sessionId,
    terms: termsToJson(terms),
    deposit: state.deposit.toString(),
    endsAt: state.endsAt,
    receipts: { acknowledgedSeq: "0", statistics: { ttftSamples: 0, ttftMsTotal: 0, tpsSamples: 0, tpsX1000Total: 0 } },
  };
  if (record.phase === "settled") {
    record.settlement = await findSettlement(ctx, sessionId, openedBlock);
  }
  await store.create(record);
  return sessionFromRecord(record);
}
