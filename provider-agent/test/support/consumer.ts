/**
 * A consumer as the agent sees one, through the wire formats of protocol/agent-api.ts: ask for an
 * approval, open the session on chain (with a session key), call the agent with the `openai` SDK
 * and a bearer token, sign receipts, close. The client engineer's SDK does this for real; this is
 * the minimum the agent's tests need, written against the same protocol helpers.
 */
import OpenAI from "openai";
import { type Hex, type LocalAccount, maxUint256, parseEventLogs } from "viem";
import {
  type ApprovalRequestBody,
  type CloseResponseBody,
  type SessionTerms,
  type SignedUsageReceipt,
  type UsageReceipt,
  createAuthToken,
  marketTokenAbi,
  parseApprovalResponse,
  sessionRouterAbi,
  signReceipt,
  signedReceiptToJson,
} from "../../../protocol/index.js";
import type { TestMarket } from "./market.js";

export interface OpenedSession {
  sessionId: Hex;
  terms: SessionTerms;
  deposit: bigint;
  endsAt: number;
}

export class TestConsumer {
  private seq = 0n;

  constructor(
    readonly market: TestMarket,
    readonly user: LocalAccount,
    /** Signs auth tokens and receipts; the user itself unless a test names another key. */
    readonly sessionKey: LocalAccount = user,
  ) {}

  /** POST /v1/sessions/approvals (raw response, for tests of its refusals). */
  approvalResponse(agentUrl: string, body: Partial<ApprovalRequestBody> & Record<string, unknown>) {
    return fetch(`${agentUrl}/v1/sessions/approvals`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  async requestApproval(agentUrl: string, bidId: Hex, deposit: bigint, maxDuration = 3_600) {
    const response = await this.approvalResponse(agentUrl, {
      bidId,
      user: this.user.address,
      deposit: deposit.toString(),
      maxDuration,
    });
    const body: unknown = await response.json();
    if (response.status !== 200) throw new Error(`approval refused (${response.status}): ${JSON.stringify(body)}`);
    return parseApprovalResponse(body);
  }

  /** Approval from the agent, then `openSession` from the user's wallet. */
  async open(agentUrl: string, bidId: Hex, deposit: bigint, maxDuration = 3_600): Promise<OpenedSession> {
    const approved = await this.requestApproval(agentUrl, bidId, deposit, maxDuration);
    return this.openWith(approved, deposit);
  }

  async openWith(approved: Awaited<ReturnType<TestConsumer["requestApproval"]>>, deposit: bigint) {
    const { market } = this;
    const wallet = market.wallet(this.user);
    const allowance = await market.publicClient.readContract({
      address: market.addresses.token,
      abi: marketTokenAbi,
      functionName: "allowance",
      args: [this.user.address, market.addresses.sessionRouter],
    });
    if (allowance < deposit) {
      const hash = await wallet.writeContract({
        address: market.addresses.token,
        abi: marketTokenAbi,
        functionName: "approve",
        args: [market.addresses.sessionRouter, maxUint256],
      });
      await market.publicClient.waitForTransactionReceipt({ hash });
    }
    const hash = await wallet.writeContract({
      address: market.addresses.sessionRouter,
      abi: sessionRouterAbi,
      functionName: "openSession",
      args: [approved.approval, approved.signature, deposit, approved.prices, this.sessionKey.address],
    });
    const receipt = await market.publicClient.waitForTransactionReceipt({ hash });
    const [opened] = parseEventLogs({ abi: sessionRouterAbi, eventName: "SessionOpened", logs: receipt.logs });
    if (!opened) throw new Error("openSession emitted no SessionOpened");
    this.seq = 0n;
    return {
      sessionId: opened.args.sessionId,
      terms: opened.args.terms,
      deposit: opened.args.deposit,
      endsAt: opened.args.endsAt,
    };
  }

  /** A bearer token valid for `ttlSeconds` of chain time (the chain may run ahead of the wall clock). */
  async token(sessionId: Hex, ttlSeconds = 3_600): Promise<string> {
    const block = await this.market.publicClient.getBlock({ blockTag: "latest" });
    const now = Math.max(Math.floor(Date.now() / 1000), Number(block.timestamp));
    return createAuthToken(this.sessionKey, this.market.domain, sessionId, BigInt(now + ttlSeconds));
  }

  async openai(agentUrl: string, sessionId: Hex, headers: Record<string, string> = {}): Promise<OpenAI> {
    return new OpenAI({
      baseURL: `${agentUrl}/v1`,
      apiKey: await this.token(sessionId),
      maxRetries: 0,
      timeout: 60_000,
      defaultHeaders: headers,
    });
  }

  /** A receipt with the next seq for the given cumulative usage, signed by the session key. */
  async receipt(
    sessionId: Hex,
    usage: { inputTokens: bigint; outputTokens: bigint; requests: number },
    seq?: bigint,
  ): Promise<SignedUsageReceipt> {
    this.seq = seq ?? this.seq + 1n;
    const receipt: UsageReceipt = {
      sessionId,
      seq: this.seq,
      inputTokens: usage.inputTokens,
      outputTokens: usage.outputTokens,
      requests: usage.requests,
      ttftMsAvg: 10,
      tpsX1000Avg: 100_000,
    };
    return signReceipt(this.sessionKey, this.market.domain, receipt);
  }

  postReceipt(agentUrl: string, signed: SignedUsageReceipt): Promise<Response> {
    return fetch(`${agentUrl}/v1/sessions/${signed.receipt.sessionId}/receipts`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(signedReceiptToJson(signed)),
    });
  }

  /** The agent's countersignature of `signed` (POST /v1/sessions/:id/close). */
  async countersignature(agentUrl: string, signed: SignedUsageReceipt): Promise<CloseResponseBody> {
    const response = await fetch(`${agentUrl}/v1/sessions/${signed.receipt.sessionId}/close`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(signedReceiptToJson(signed)),
    });
    const body = (await response.json()) as CloseResponseBody;
    if (response.status !== 200) throw new Error(`close refused (${response.status}): ${JSON.stringify(body)}`);
    return body;
  }

  /** `closeSession` from the user's wallet, with or without the agent's countersignature. */
  async closeOnChain(terms: SessionTerms, signed: SignedUsageReceipt, providerSignature: Hex = "0x") {
    const wallet = this.market.wallet(this.user);
    const hash = await wallet.writeContract({
      address: this.market.addresses.sessionRouter,
      abi: sessionRouterAbi,
      functionName: "closeSession",
      args: [terms, signed.receipt, signed.signature, providerSignature],
    });
    return this.market.publicClient.waitForTransactionReceipt({ hash });
  }

  /** GET /v1/sessions/:id with the bearer token. */
  async status(agentUrl: string, sessionId: Hex) {
    const response = await fetch(`${agentUrl}/v1/sessions/${sessionId}`, {
      headers: { authorization: `Bearer ${await this.token(sessionId)}` },
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }
}
