/**
 * The credit rule and receipts without a chain: a session's numbers as the chain would give them,
 * the wire formats of protocol/agent-api.ts, and the session service's refusals.
 */
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  type SessionTerms,
  type UsageReceipt,
  createAuthToken,
  encodeAuthToken,
  encodeReceiptHeader,
  marketDomain,
  parseAuthToken,
  parseReceiptHeader,
  receiptFromJson,
  receiptToJson,
  sessionCost,
  sessionIdOf,
  signReceipt,
} from "../../protocol/index.js";
import { Logger } from "../src/log/logger.js";
import { Refusal } from "../src/refusal.js";
import { affordableOutputTokens, creditPosition } from "../src/sessions/credit.js";
import { Journal } from "../src/sessions/journal.js";
import { SessionBook } from "../src/sessions/session-book.js";
import { SessionService } from "../src/sessions/session-service.js";

const sessionKey = privateKeyToAccount(`0x${"4".repeat(64)}`);
const stranger = privateKeyToAccount(`0x${"5".repeat(64)}`);
const provider = privateKeyToAccount(`0x${"6".repeat(64)}`);
const domain = marketDomain(31337, "0x0000000000000000000000000000000000000abc");
const OPENED_AT = 1_000_000;

function termsOf(overrides: Partial<SessionTerms> = {}): SessionTerms {
  return {
    user: stranger.address,
    sessionKey: sessionKey.address,
    provider: provider.address,
    modelId: `0x${"01".repeat(32)}`,
    nonce: 1n,
    pricePerSecond: 10n,
    pricePerInputToken: 2n,
    pricePerOutputToken: 5n,
    royaltyRecipient: provider.address,
    royaltyBps: 0,
    feeBps: 0,
    challengeWindow: 60,
    maxDeposit: 10n ** 20n,
    openedAt: OPENED_AT,
    maxEndsAt: OPENED_AT + 86_400,
    ...overrides,
  };
}

async function serviceWith(options: { deposit: bigint; creditLimit: bigint; terms?: SessionTerms; now?: number }) {
  const terms = options.terms ?? termsOf();
  const sessionId = sessionIdOf(terms);
  const { journal } = await Journal.open(
    await mkdtemp(join(tmpdir(), "agent-credit-")),
    Logger.create({ level: "silent" }),
  );
  const book = new SessionBook(journal);
  const clock = { now: options.now ?? OPENED_AT + 100 };
  const service = new SessionService({
    book,
    lookup: () => Promise.resolve(undefined),
    domain,
    provider: provider.address,
    signer: provider,
    creditLimit: options.creditLimit,
    maxAuthLifetimeSeconds: 3_600,
    now: () => clock.now,
  });
  const account = book.upsertChain({
    sessionId,
    terms,
    bidId: sessionId,
    deposit: options.deposit,
    endsAt: terms.maxEndsAt,
    phase: "open",
    openedBlock: 1n,
  });
  return { service, account, sessionId, clock, journal, terms };
}

function receipt(sessionId: Hex, seq: bigint, inputTokens: bigint, outputTokens: bigint, requests = 1): UsageReceipt {
  return { sessionId, seq, inputTokens, outputTokens, requests, ttftMsAvg: 20, tpsX1000Avg: 1000 };
}

function refusalCode(error: unknown): string {
  assert.ok(error instanceof Refusal, String(error));
  return error.code;
}

void describe("credit rule", () => {
  void it("matches sessionCost and binds on the smaller of deposit and credit", () => {
    const terms = termsOf();
    const position = creditPosition({
      terms,
      deposit: 10_000n,
      endsAt: terms.maxEndsAt,
      now: OPENED_AT + 100,
      served: { inputTokens: 100n, outputTokens: 200n },
      reservedCost: 50n,
      receipted: { inputTokens: 100n, outputTokens: 100n },
      creditLimit: 1_000n,
    });
    // time 100 s × 10 = 1000; usage 100×2 + 200×5 = 1200
    assert.equal(position.cost, sessionCost(terms, 100n, { inputTokens: 100n, outputTokens: 200n }, 10_000n));
    assert.equal(position.cost, 2_200n);
    assert.equal(position.depositLeft, 10_000n - 1_000n - 1_200n - 50n);
    // credit: 1000 − (1200 + 50 − (200 + 500))
    assert.equal(position.creditLeft, 450n);
    assert.equal(position.limitedBy, "credit");
    assert.equal(affordableOutputTokens(terms, position.budget, 25), 80); // (450 − 50) / 5
    assert.equal(affordableOutputTokens({ ...terms, pricePerOutputToken: 0n }, 10n, 1), undefined);
    assert.equal(affordableOutputTokens(terms, 10n, 6), 0);
  });

  void it("caps max_tokens by what is left, reserves it, and refuses when nothing is left", async () => {
    const { service, account } = await serviceWith({ deposit: 1_000n + 2n * 10n + 5n * 20n, creditLimit: 10n ** 18n });
    // deposit − 100 s × 10 leaves 120: a 10-token prompt (20) and 20 output tokens (100).
    const meter = service.admit(account, 10, 1_000);
    assert.equal(meter.maxTokens, 20);
    assert.throws(
      () => service.admit(account, 10, 1_000),
      (error: unknown) => refusalCode(error) === "deposit_exhausted",
    );
    meter.admit(10);
    assert.equal(meter.progress(3, OPENED_AT + 100), true);
    await service.finish(meter);
    assert.equal(account.local.served.outputTokens, 3n);
    assert.equal(account.reservedCost, 0n);
    // 120 − 20 − 15 = 85 left: 17 output tokens after a 0-token prompt.
    assert.equal(service.admit(account, 0, 1_000).maxTokens, 17);
  });

  void it("asks for a receipt past the credit limit, and serves again once it has one", async () => {
    const { service, account, sessionId } = await serviceWith({ deposit: 10n ** 18n, creditLimit: 100n });
    const meter = service.admit(account, 10, 16); // 20 + 80 = 100 of credit
    meter.admit(10);
    meter.progress(16, OPENED_AT + 100);
    await service.finish(meter);
    assert.throws(
      () => service.admit(account, 1, 1),
      (error: unknown) => refusalCode(error) === "receipt_required",
    );
    await service.submitReceipt(sessionId, await signReceipt(sessionKey, domain, receipt(sessionId, 1n, 10n, 16n)));
    assert.equal(service.admit(account, 10, 16).maxTokens, 16);
  });

  void it("stops a stream when time would take the cost past the deposit", async () => {
    const { service, account, clock } = await serviceWith({ deposit: 1_000n + 100n, creditLimit: 10n ** 18n });
    const meter = service.admit(account, 0, 10);
    meter.admit(0);
    assert.equal(meter.progress(1, clock.now), true);
    clock.now += 10; // 100 more of time
    assert.equal(meter.progress(2, clock.now), false);
    meter.finish();
  });
});

void describe("receipts", () => {
  void it("accepts a receipt signed by the session key and refuses the others, each with its code", async () => {
    const { service, account, sessionId, journal } = await serviceWith({
      deposit: 10n ** 18n,
      creditLimit: 10n ** 18n,
    });
    const meter = service.admit(account, 10, 20);
    meter.admit(10);
    meter.progress(20, OPENED_AT + 100);
    await service.finish(meter);

    const code = async (promise: Promise<unknown>) => refusalCode(await promise.catch((error: unknown) => error));
    const good = await signReceipt(sessionKey, domain, receipt(sessionId, 2n, 10n, 20n));
    await service.submitReceipt(sessionId, good);
    assert.equal(account.local.best?.receipt.seq, 2n);

    assert.equal(await code(service.submitReceipt(sessionId, good)), "receipt_stale");
    const lower = await signReceipt(sessionKey, domain, receipt(sessionId, 1n, 1n, 1n));
    assert.equal(await code(service.submitReceipt(sessionId, lower)), "receipt_stale");
    const greedy = await signReceipt(sessionKey, domain, receipt(sessionId, 3n, 10n, 21n));
    assert.equal(await code(service.submitReceipt(sessionId, greedy)), "receipt_exceeds_usage");
    const forged = await signReceipt(stranger, domain, receipt(sessionId, 3n, 10n, 20n));
    assert.equal(await code(service.submitReceipt(sessionId, forged)), "bad_signature");
    const zero = await signReceipt(sessionKey, domain, receipt(sessionId, 0n, 0n, 0n));
    assert.equal(await code(service.submitReceipt(sessionId, zero)), "invalid_receipt");
    assert.equal(account.local.best.receipt.seq, 2n);
    await journal.close();
  });

  void it("countersigns a final receipt that charges at least the best held, once, then serves no more", async () => {
    const { service, account, sessionId } = await serviceWith({ deposit: 10n ** 18n, creditLimit: 10n ** 18n });
    const meter = service.admit(account, 10, 20);
    meter.admit(10);
    meter.progress(20, OPENED_AT + 100);
    await service.finish(meter);
    await service.submitReceipt(sessionId, await signReceipt(sessionKey, domain, receipt(sessionId, 1n, 10n, 20n)));

    const cheaper = await signReceipt(sessionKey, domain, receipt(sessionId, 2n, 10n, 10n));
    const error = await service.countersign(sessionId, cheaper).catch((caught: unknown) => caught);
    assert.equal(refusalCode(error), "receipt_below_best");

    const final = await signReceipt(sessionKey, domain, receipt(sessionId, 3n, 10n, 20n, 1));
    const { providerSignature } = await service.countersign(sessionId, final);
    assert.match(providerSignature, /^0x[0-9a-f]{130}$/);
    assert.equal((await service.countersign(sessionId, final)).providerSignature, providerSignature);
    assert.throws(
      () => service.admit(account, 1, 1),
      (caught: unknown) => refusalCode(caught) === "session_closed",
    );
  });
});

void describe("wire formats (protocol/agent-api.ts)", () => {
  void it("round-trips the bearer token and refuses malformed ones", async () => {
    const sessionId: Hex = `0x${"ab".repeat(32)}`;
    const token = await createAuthToken(sessionKey, domain, sessionId, 1_700_000_000n);
    const parsed = parseAuthToken(token);
    assert.equal(parsed.auth.sessionId, sessionId);
    assert.equal(parsed.auth.expiresAt, 1_700_000_000n);
    assert.equal(encodeAuthToken(parsed), token);
    for (const bad of [
      "",
      "a.b",
      `${sessionId}.x.0x00`,
      `0x12.1.${parsed.signature}`,
      `${sessionId}.-1.${parsed.signature}`,
    ]) {
      assert.throws(() => parseAuthToken(bad), /authorization/);
    }
  });

  void it("round-trips the receipt header and the receipt JSON", async () => {
    const sessionId: Hex = `0x${"cd".repeat(32)}`;
    const signed = await signReceipt(sessionKey, domain, receipt(sessionId, 5n, 123n, 456n, 7));
    assert.deepEqual(parseReceiptHeader(encodeReceiptHeader(signed)), signed);
    assert.deepEqual(receiptFromJson(receiptToJson(signed.receipt)), signed.receipt);
    assert.throws(() => parseReceiptHeader("1.2.3"), /x-usage-receipt/);
    assert.throws(() => receiptFromJson({ ...receiptToJson(signed.receipt), seq: "1e3" }), /receipt.seq/);
  });
});
