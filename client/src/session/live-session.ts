/**
 * A session in use by this process: its decrypted session key, its bearer token (renewed before it
 * expires), and its receipts — one cumulative `UsageReceipt` signed after each response, written to
 * the store, then posted to the agent. Receipts are made one at a time, so `seq` only rises.
 */
import type { Hex, LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { type SignedUsageReceipt, createAuthToken, signReceipt } from "../../../protocol/agent-api.js";
import { type UsageReceipt, emptyReceipt, receiptFromJson, receiptToJson } from "../../../protocol/index.js";
import { postReceipt } from "../agent/agent-client.js";
import { chainNow } from "../chain/clock.js";
import type { MarketContext } from "../context.js";
import { SessionNotFoundError } from "../errors.js";
import type { SessionRecord } from "../store/session-record.js";
import type { SessionStore } from "../store/session-store.js";
import { type MarketSession, sessionFromRecord } from "./market-session.js";

/** What one response reports: its own token counts, and the agent's session totals when it adds them. */
export interface ResponseUsage {
  inputTokens: bigint;
  outputTokens: bigint;
  /** The agent's cumulative served totals (`session_usage`), a ceiling for what is signed. */
  sessionTotals?: { inputTokens: bigint; outputTokens: bigint; requests: number };
  /** Time to first token, ms (streamed responses only). */
  ttftMs?: number;
  /** Output tokens per second. */
  tokensPerSecond?: number;
}

const UINT32_MAX = 0xffffffff;
const TOKEN_RENEW_MARGIN_SECONDS = 60;

const clampUint32 = (value: number) => Math.max(0, Math.min(UINT32_MAX, Math.round(value)));
const min = (a: bigint, b: bigint) => (a < b ? a : b);
const max = (a: bigint, b: bigint) => (a > b ? a : b);

export class LiveSession {
  readonly session: MarketSession;
  private token: { value: string; expiresAt: number } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private acknowledgedSeq: bigint;
  /** The last failure to post a receipt, if the latest post failed. */
  lastPostError: Error | undefined;

  private constructor(
    private readonly ctx: MarketContext,
    private readonly store: SessionStore,
    private record: SessionRecord,
    readonly sessionKey: LocalAccount,
  ) {
    this.session = sessionFromRecord(record);
    this.acknowledgedSeq = BigInt(record.receipts.acknowledgedSeq);
  }

  static async load(ctx: MarketContext, store: SessionStore, record: SessionRecord): Promise<LiveSession> {
    return new LiveSession(ctx, store, record, privateKeyToAccount(await store.unsealSessionKey(record)));
  }

  get id(): Hex {
    return this.session.id;
  }

  get agent() {
    return { endpoint: this.session.endpoint, fetch: this.ctx.fetch, timeoutMs: this.ctx.settings.agentTimeoutMs };
  }

  /** A bearer token valid for at least another minute. */
  async authToken(): Promise<string> {
    const now = await chainNow(this.ctx);
    if (this.token && this.token.expiresAt - now > TOKEN_RENEW_MARGIN_SECONDS) return this.token.value;
    const expiresAt = Math.floor(now) + this.ctx.settings.authLifetimeSeconds;
    const value = await createAuthToken(this.sessionKey, this.ctx.domain, this.id, BigInt(expiresAt));
    this.token = { value, expiresAt };
    return value;
  }

  /** Forgets the token (the agent said it expired: clocks differ). */
  invalidateToken(): void {
    this.token = undefined;
  }

  /** The latest signed receipt, if any. */
  latestReceipt(): SignedUsageReceipt | undefined {
    const latest = this.record.receipts.latest;
    return latest && { receipt: receiptFromJson(latest.receipt), signature: latest.signature };
  }

  /** The latest receipt if the agent has not acknowledged it (it then rides on the next request). */
  unacknowledgedReceipt(): SignedUsageReceipt | undefined {
    const latest = this.latestReceipt();
    return latest && latest.receipt.seq > this.acknowledgedSeq ? latest : undefined;
  }

  /** Counts a response: signs the next cumulative receipt, stores it, posts it (queued, in order). */
  recordResponse(usage: ResponseUsage): Promise<SignedUsageReceipt> {
    const signed = this.enqueue(() => this.signNext(usage));
    void this.enqueue(async () => this.post(await signed));
    return signed;
  }

  /** Resolves once every receipt so far is signed, stored and posted (or its post failed). */
  async flush(): Promise<void> {
    await this.queue;
  }

  /** The store's current record of this session. */
  async reload(): Promise<SessionRecord> {
    await this.flush();
    const record = await this.store.get(this.session.sessionKey);
    if (!record) throw new SessionNotFoundError(this.id, "in the store");
    this.record = record;
    return record;
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async signNext(usage: ResponseUsage): Promise<SignedUsageReceipt> {
    const previous = this.latestReceipt()?.receipt ?? emptyReceipt(this.id);
    let inputTokens = previous.inputTokens + usage.inputTokens;
    let outputTokens = previous.outputTokens + usage.outputTokens;
    let requests = previous.requests + 1;
    const totals = usage.sessionTotals;
    if (totals) {
      // Never sign for more than the agent says it served, and never less than signed before.
      inputTokens = max(previous.inputTokens, min(inputTokens, totals.inputTokens));
      outputTokens = max(previous.outputTokens, min(outputTokens, totals.outputTokens));
      requests = Math.max(previous.requests, Math.min(requests, totals.requests));
    }
    const statistics = { ...this.record.receipts.statistics };
    if (usage.ttftMs !== undefined) {
      statistics.ttftSamples += 1;
      statistics.ttftMsTotal += clampUint32(usage.ttftMs);
    }
    if (usage.tokensPerSecond !== undefined && Number.isFinite(usage.tokensPerSecond)) {
      statistics.tpsSamples += 1;
      statistics.tpsX1000Total += clampUint32(usage.tokensPerSecond * 1000);
    }
    const receipt: UsageReceipt = {
      sessionId: this.id,
      seq: previous.seq + 1n,
      inputTokens,
      outputTokens,
      requests: Math.min(requests, UINT32_MAX),
      ttftMsAvg: statistics.ttftSamples ? clampUint32(statistics.ttftMsTotal / statistics.ttftSamples) : 0,
      tpsX1000Avg: statistics.tpsSamples ? clampUint32(statistics.tpsX1000Total / statistics.tpsSamples) : 0,
    };
    const signed = await signReceipt(this.sessionKey, this.ctx.domain, receipt);
    this.record = await this.store.update(this.session.sessionKey, (current) => ({
      ...current,
      receipts: {
        latest: { receipt: receiptToJson(receipt), signature: signed.signature },
        acknowledgedSeq: this.acknowledgedSeq.toString(),
        statistics,
      },
    }));
    return signed;
  }

  private async post(signed: SignedUsageReceipt): Promise<void> {
    try {
      await postReceipt(this.agent, await this.authToken(), signed);
      if (signed.receipt.seq > this.acknowledgedSeq) this.acknowledgedSeq = signed.receipt.seq;
      this.lastPostError = undefined;
    } catch (error) {
      // Kept: the receipt rides on the next request's header, and the close hands it over anyway.
      this.lastPostError = error as Error;
    }
  }
}
