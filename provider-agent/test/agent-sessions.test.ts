/**
 * Sessions through the agent's HTTP API on a real chain: approvals, auth, the credit rule, receipts
 * (route and header), the cooperative close, and every refusal with its code.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { type Hex, keccak256, toHex } from "viem";
import {
  RECEIPT_HEADER,
  bidIdOf,
  encodeAuthToken,
  encodeReceiptHeader,
  signSessionApproval,
  signSessionAuth,
} from "../../protocol/index.js";
import { ADAPTER_PRICES, PRICES, type TestAgent, startTestAgent, testConfig, tinyIds } from "./support/agent.js";
import { TestConsumer } from "./support/consumer.js";
import {
  Teardown,
  type TestMarket,
  advanceTime,
  secondProviderBid,
  settledEvent,
  startTestMarket,
} from "./support/market.js";

const DEPOSIT = 10n ** 20n;
/** Worth of 200 output tokens of the base model. */
const CREDIT_LIMIT = 200n * PRICES.pricePerOutputToken;
const BODY_LIMIT = 64 * 1024;

let market: TestMarket;
let agent: TestAgent;
let ids: Awaited<ReturnType<typeof tinyIds>>;
const messages = [{ role: "user" as const, content: "Hello" }];

const teardown = new Teardown();

before(async () => {
  market = await startTestMarket();
  teardown.add(() => market.stop());
  const config = await testConfig(market, {
    sessions: {
      creditLimit: CREDIT_LIMIT.toString(),
      maxDeposit: (10n ** 21n).toString(),
      maxDuration: 7_200,
      maxOpenSessions: 40,
    },
    server: {
      host: "127.0.0.1",
      port: 0,
      bodyLimitBytes: BODY_LIMIT,
      rateLimitPerSession: 30,
      shutdownGraceSeconds: 5,
    },
  });
  agent = await startTestAgent(market, { config });
  teardown.add(() => agent.stop());
  ids = await tinyIds(market);
});

after(() => teardown.run());

interface ErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${agent.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as ErrorBody & Record<string, unknown>,
  };
}

function chatBody(model: Hex, extra: Record<string, unknown> = {}) {
  return { model, messages, max_tokens: 4, temperature: 0, ...extra };
}

function assertRefused(result: { status: number; body: ErrorBody }, code: string, status: number): void {
  assert.equal(result.body.error.code, code, JSON.stringify(result.body));
  assert.equal(result.status, status);
  assert.equal(typeof result.body.error.message, "string");
  assert.ok(result.body.error.message.length > 0);
}

void describe("approvals", () => {
  void it("signs an approval the router accepts; its nonce is journaled before it is returned", async () => {
    const consumer = new TestConsumer(market, market.accounts.user);
    const approved = await consumer.requestApproval(agent.url, ids.bidId, DEPOSIT);
    assert.equal(approved.signer, market.accounts.operator.address);
    assert.equal(approved.approval.maxRoyaltyBps, 100);
    assert.equal(approved.approval.maxFeeBps, 250);
    assert.equal(approved.prices.perOutputToken, PRICES.pricePerOutputToken);
    const journal = await readFile(join(agent.config.dataDir, "journal.jsonl"), "utf8");
    assert.match(journal, new RegExp(`"type":"approval","nonce":"${approved.approval.nonce}"`));
    const opened = await consumer.openWith(approved, DEPOSIT);
    assert.equal(opened.terms.nonce, approved.approval.nonce);
  });

  void it("refuses a bid of another provider, an inactive bid, a deposit or duration above the caps", async () => {
    const consumer = new TestConsumer(market, market.accounts.user);
    const body = {
      bidId: ids.bidId,
      user: market.accounts.user.address,
      deposit: DEPOSIT.toString(),
      maxDuration: 600,
    };
    const refused = async (overrides: Record<string, unknown>) => {
      const response = await consumer.approvalResponse(agent.url, { ...body, ...overrides });
      return { status: response.status, body: (await response.json()) as ErrorBody };
    };
    assertRefused(
      await refused({ bidId: bidIdOf(market.accounts.stranger.address, ids.modelId) }),
      "not_this_provider",
      403,
    );
    assertRefused(
      await refused({ bidId: bidIdOf(market.accounts.provider.address, keccak256(toHex("no model"))) }),
      "bid_not_active",
      409,
    );
    assertRefused(await refused({ deposit: (10n ** 22n).toString() }), "deposit_too_large", 400);
    assertRefused(await refused({ maxDuration: 7_201 }), "duration_too_long", 400);
    assertRefused(await refused({ deposit: "0" }), "invalid_request", 400);
    assertRefused(await refused({ user: "0x1234" }), "invalid_request", 400);
  });
});

void describe("auth", () => {
  let consumer: TestConsumer;
  let sessionId: Hex;

  before(async () => {
    // The session key is not the user's wallet: only it may sign tokens and receipts.
    consumer = new TestConsumer(market, market.accounts.user, market.accounts.stranger);
    ({ sessionId } = await consumer.open(agent.url, ids.bidId, DEPOSIT));
  });

  const call = (token: string | undefined, body: unknown = chatBody(ids.modelId)) =>
    post("/v1/chat/completions", body, token === undefined ? {} : { authorization: `Bearer ${token}` });

  void it("serves a token signed by the session key", async () => {
    const result = await call(await consumer.token(sessionId));
    assert.equal(result.status, 200, JSON.stringify(result.body));
  });

  void it("refuses a missing or malformed token, or one signed by the user's wallet instead of the session key", async () => {
    assertRefused(await call(undefined), "auth_required", 401);
    assertRefused(await call("not-a-token"), "auth_required", 401);
    const byUser = new TestConsumer(market, market.accounts.user);
    assertRefused(await call(await byUser.token(sessionId)), "bad_signature", 401);
  });

  void it("refuses an expired token and one that lives too long", async () => {
    assertRefused(await call(await consumer.token(sessionId, -10)), "auth_expired", 401);
    assertRefused(await call(await consumer.token(sessionId, 10 * 86_400)), "auth_expired", 401);
  });

  void it("refuses an unknown session and another provider's session", async () => {
    const unknown = keccak256(toHex("no such session"));
    const expiresAt = BigInt(Math.floor(Date.now() / 1000) + 600);
    const signature = await signSessionAuth(market.accounts.stranger, market.domain, { sessionId: unknown, expiresAt });
    assertRefused(
      await call(encodeAuthToken({ auth: { sessionId: unknown, expiresAt }, signature })),
      "session_not_found",
      404,
    );

    const other = await secondProviderBid(market, ids.modelId, {
      perSecond: PRICES.pricePerSecond,
      perInputToken: PRICES.pricePerInputToken,
      perOutputToken: PRICES.pricePerOutputToken,
    });
    const approval = {
      bidId: other.bidId,
      user: market.accounts.user2.address,
      maxDeposit: DEPOSIT,
      maxDuration: 600n,
      deadline: BigInt(Math.floor(Date.now() / 1000) + 600),
      nonce: 0n,
      maxRoyaltyBps: 10_000,
      maxFeeBps: 10_000,
    };
    const theirs = new TestConsumer(market, market.accounts.user2);
    const opened = await theirs.openWith(
      {
        approval,
        signature: await signSessionApproval(other.provider, market.domain, approval),
        signer: other.provider.address,
        provider: other.provider.address,
        modelId: ids.modelId,
        prices: {
          perSecond: PRICES.pricePerSecond,
          perInputToken: PRICES.pricePerInputToken,
          perOutputToken: PRICES.pricePerOutputToken,
        },
        chainId: market.chain.chainId,
        sessionRouter: market.addresses.sessionRouter,
      },
      DEPOSIT,
    );
    assertRefused(await call(await theirs.token(opened.sessionId)), "not_this_provider", 403);
  });

  void it("limits requests per session: 429 rate_limited with Retry-After", async () => {
    const limited = new TestConsumer(market, market.accounts.user2);
    const opened = await limited.open(agent.url, ids.bidId, DEPOSIT);
    const token = await limited.token(opened.sessionId);
    const unknownModel = chatBody(keccak256(toHex("unknown model")));
    const statuses: number[] = [];
    let refusal: Awaited<ReturnType<typeof call>> | undefined;
    for (let index = 0; index < 35 && !refusal; index++) {
      const result = await call(token, unknownModel);
      statuses.push(result.status);
      if (result.status === 429) refusal = result;
    }
    assert.ok(refusal, `no 429 in ${statuses.join(",")}`);
    assertRefused(refusal, "rate_limited", 429);
    assert.ok(Number(refusal.headers.get("retry-after")) >= 1);
    // Every request counts, refused ones too: 30 a minute, then 429.
    assert.equal(statuses.filter((status) => status === 404).length, 30);
  });
});

void describe("requests", () => {
  let consumer: TestConsumer;
  let sessionId: Hex;
  let token: string;

  before(async () => {
    consumer = new TestConsumer(market, market.accounts.user);
    ({ sessionId } = await consumer.open(agent.url, ids.bidId, DEPOSIT));
    token = await consumer.token(sessionId);
  });

  const call = (body: unknown, path = "/v1/chat/completions") => post(path, body, { authorization: `Bearer ${token}` });

  void it("refuses malformed JSON, a missing field, unsupported options, an unknown route, each as JSON", async () => {
    assertRefused(await call("{not json"), "invalid_request", 400);
    assertRefused(await call({ model: ids.modelId }), "invalid_request", 400);
    const twoChoices = await call(chatBody(ids.modelId, { n: 2 }));
    assertRefused(twoChoices, "invalid_request", 400);
    assert.equal(twoChoices.body.error.param, "n");
    assertRefused(
      await call({ ...chatBody(ids.modelId), messages: [{ role: "tool", content: "x" }] }),
      "invalid_request",
      400,
    );
    assertRefused(await call({}, "/v1/nothing-here"), "route_not_found", 404);
  });

  void it("refuses an oversize body with 413", async () => {
    assertRefused(
      await call(chatBody(ids.modelId, { messages: [{ role: "user", content: "x".repeat(BODY_LIMIT) }] })),
      "body_too_large",
      413,
    );
  });

  void it("refuses an unknown model, another model than the session's, a prompt too long, max_tokens above the cap", async () => {
    assertRefused(await call(chatBody(keccak256(toHex("unknown model")))), "model_not_found", 404);
    assertRefused(await call(chatBody(ids.adapterId)), "model_not_in_session", 400);
    assertRefused(
      await call({ ...chatBody(ids.modelId), messages: [{ role: "user", content: "long ".repeat(400) }] }),
      "prompt_too_long",
      400,
    );
    const tooMany = await call(chatBody(ids.modelId, { max_tokens: 100_000 }));
    assertRefused(tooMany, "max_tokens_too_large", 400);
    assert.equal(tooMany.body.error.param, "max_tokens");
    assertRefused(await call(chatBody(ids.modelId, { max_completion_tokens: 257 })), "max_tokens_too_large", 400);
  });

  void it("surfaces refusals through the openai SDK with their code", async () => {
    const client = new OpenAI({ baseURL: `${agent.url}/v1`, apiKey: token, maxRetries: 0 });
    await assert.rejects(
      client.chat.completions.create({ model: ids.modelId, messages, max_completion_tokens: 100_000 }),
      (error: unknown) =>
        error instanceof OpenAI.APIError && error.status === 400 && error.code === "max_tokens_too_large",
    );
  });
});

void describe("credit and receipts", () => {
  void it("serves credit past the best receipt, then asks for a receipt, then serves again", async () => {
    const consumer = new TestConsumer(market, market.accounts.user);
    const { sessionId } = await consumer.open(agent.url, ids.bidId, DEPOSIT);
    const client = await consumer.openai(agent.url, sessionId);
    // 200 output tokens of credit: the prompt's cost takes some, so max_tokens is capped below 200.
    const first = await client.chat.completions.create({
      model: ids.modelId,
      messages,
      max_completion_tokens: 256,
      temperature: 0,
    });
    assert.equal(first.choices[0]!.finish_reason, "length");
    assert.ok(first.usage!.completion_tokens < 200);
    const refused = await post("/v1/chat/completions", chatBody(ids.modelId), {
      authorization: `Bearer ${await consumer.token(sessionId)}`,
    });
    assertRefused(refused, "receipt_required", 402);

    const usage = {
      inputTokens: BigInt(first.usage!.prompt_tokens),
      outputTokens: BigInt(first.usage!.completion_tokens),
      requests: 1,
    };
    const response = await consumer.postReceipt(agent.url, await consumer.receipt(sessionId, usage));
    assert.equal(response.status, 200, await response.clone().text());
    const again = await client.chat.completions.create({
      model: ids.modelId,
      messages,
      max_completion_tokens: 4,
      temperature: 0,
    });
    assert.equal(again.usage?.completion_tokens, 4);
  });

  void it("takes a receipt riding in the header of the next request", async () => {
    const consumer = new TestConsumer(market, market.accounts.user);
    const { sessionId } = await consumer.open(agent.url, ids.bidId, DEPOSIT);
    const client = await consumer.openai(agent.url, sessionId);
    const first = await client.chat.completions.create({
      model: ids.modelId,
      messages,
      max_completion_tokens: 5,
      temperature: 0,
    });
    const signed = await consumer.receipt(sessionId, {
      inputTokens: BigInt(first.usage!.prompt_tokens),
      outputTokens: 5n,
      requests: 1,
    });
    const withReceipt = await consumer.openai(agent.url, sessionId, { [RECEIPT_HEADER]: encodeReceiptHeader(signed) });
    await withReceipt.chat.completions.create({ model: ids.modelId, messages, max_completion_tokens: 2 });
    const status = await consumer.status(agent.url, sessionId);
    assert.equal(status.status, 200);
    assert.equal((status.body.bestReceipt as { receipt: { seq: string } }).receipt.seq, "1");
    assert.equal((status.body.usage as { served: { requests: number } }).served.requests, 2);
    // A bad receipt in the header refuses the request, with the receipt's code.
    const greedy = await consumer.receipt(sessionId, { inputTokens: 1n, outputTokens: 10_000n, requests: 1 });
    const refused = await post("/v1/chat/completions", chatBody(ids.modelId), {
      authorization: `Bearer ${await consumer.token(sessionId)}`,
      [RECEIPT_HEADER]: encodeReceiptHeader(greedy),
    });
    assertRefused(refused, "receipt_exceeds_usage", 409);
  });

  void it("refuses receipts that claim too much, repeat a seq, are signed by another key or for another session", async () => {
    const consumer = new TestConsumer(market, market.accounts.user);
    const { sessionId } = await consumer.open(agent.url, ids.bidId, DEPOSIT);
    const client = await consumer.openai(agent.url, sessionId);
    const answer = await client.chat.completions.create({
      model: ids.modelId,
      messages,
      max_completion_tokens: 6,
      temperature: 0,
    });
    const served = { inputTokens: BigInt(answer.usage!.prompt_tokens), outputTokens: 6n, requests: 1 };
    const postReceipt = async (signed: Awaited<ReturnType<TestConsumer["receipt"]>>, path = sessionId) => {
      const response = await fetch(`${agent.url}/v1/sessions/${path}/receipts`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          receipt: {
            ...signed.receipt,
            seq: signed.receipt.seq.toString(),
            inputTokens: signed.receipt.inputTokens.toString(),
            outputTokens: signed.receipt.outputTokens.toString(),
          },
          signature: signed.signature,
        }),
      });
      return { status: response.status, body: (await response.json()) as ErrorBody };
    };
    assertRefused(
      await postReceipt(await consumer.receipt(sessionId, { ...served, outputTokens: 7n }, 1n)),
      "receipt_exceeds_usage",
      409,
    );
    assertRefused(
      await postReceipt(await consumer.receipt(sessionId, { ...served, requests: 2 }, 1n)),
      "receipt_exceeds_usage",
      409,
    );
    const good = await consumer.receipt(sessionId, served, 2n);
    assert.equal((await postReceipt(good)).status, 200);
    assertRefused(await postReceipt(await consumer.receipt(sessionId, served, 2n)), "receipt_stale", 409);
    assertRefused(await postReceipt(await consumer.receipt(sessionId, served, 1n)), "receipt_stale", 409);
    const forger = new TestConsumer(market, market.accounts.user, market.accounts.user2);
    assertRefused(await postReceipt(await forger.receipt(sessionId, served, 3n)), "bad_signature", 401);
    const elsewhere = keccak256(toHex("elsewhere"));
    assertRefused(await postReceipt(await consumer.receipt(elsewhere, served, 3n), sessionId), "invalid_receipt", 400);
  });

  void it("caps max_tokens by the deposit, and refuses once the deposit is spent", async () => {
    const consumer = new TestConsumer(market, market.accounts.user);
    // The adapter's bid prices tokens only: a deposit for the prompt and 10 output tokens.
    const client0 = await consumer.requestApproval(agent.url, ids.adapterBidId, 1n);
    assert.equal(client0.prices.perSecond, 0n);
    const probe = await consumer.open(agent.url, ids.adapterBidId, DEPOSIT);
    const probeClient = await consumer.openai(agent.url, probe.sessionId);
    const promptTokens = (
      await probeClient.chat.completions.create({ model: ids.adapterId, messages, max_completion_tokens: 1 })
    ).usage!.prompt_tokens;
    const deposit = BigInt(promptTokens) * ADAPTER_PRICES.pricePerInputToken + 10n * ADAPTER_PRICES.pricePerOutputToken;
    const { sessionId } = await consumer.open(agent.url, ids.adapterBidId, deposit);
    const client = await consumer.openai(agent.url, sessionId);
    const capped = await client.chat.completions.create({
      model: ids.adapterId,
      messages,
      max_completion_tokens: 100,
      temperature: 0,
    });
    assert.equal(capped.usage?.completion_tokens, 10);
    assert.equal(capped.choices[0]!.finish_reason, "length");
    const refused = await post("/v1/chat/completions", chatBody(ids.adapterId), {
      authorization: `Bearer ${await consumer.token(sessionId)}`,
    });
    assertRefused(refused, "deposit_exhausted", 402);
  });
});

void describe("cooperative close", () => {
  void it("countersigns the final receipt; the user's close settles at once; the session is served no more", async () => {
    const consumer = new TestConsumer(market, market.accounts.user);
    const { sessionId, terms } = await consumer.open(agent.url, ids.bidId, DEPOSIT);
    const client = await consumer.openai(agent.url, sessionId);
    const answer = await client.chat.completions.create({
      model: ids.modelId,
      messages,
      max_completion_tokens: 8,
      temperature: 0,
    });
    const served = { inputTokens: BigInt(answer.usage!.prompt_tokens), outputTokens: 8n, requests: 1 };
    const best = await consumer.receipt(sessionId, served);
    assert.equal((await consumer.postReceipt(agent.url, best)).status, 200);

    const cheaper = await consumer.receipt(sessionId, { ...served, outputTokens: 1n });
    const below = await post(`/v1/sessions/${sessionId}/close`, {
      receipt: { ...cheaper.receipt, seq: "2", inputTokens: served.inputTokens.toString(), outputTokens: "1" },
      signature: cheaper.signature,
    });
    assertRefused(below, "receipt_below_best", 409);

    const countersigned = await consumer.countersignature(agent.url, best);
    assert.equal(countersigned.signer, market.accounts.operator.address);
    assertRefused(
      await post("/v1/chat/completions", chatBody(ids.modelId), {
        authorization: `Bearer ${await consumer.token(sessionId)}`,
      }),
      "session_closed",
      410,
    );
    await consumer.closeOnChain(terms, best, countersigned.providerSignature);
    const settled = await settledEvent(market, sessionId);
    assert.ok(settled);
    assert.equal(settled.args.challenged, false);
    assert.equal(settled.args.receipt?.outputTokens, 8n);
    assert.equal(settled.args.closedBy, market.accounts.user.address);
  });
});

void describe("capacity and expiry (last: they move the chain's clock and fill the agent)", () => {
  void it("refuses a session past its end with session_expired", async () => {
    const consumer = new TestConsumer(market, market.accounts.user2);
    const { sessionId, endsAt } = await consumer.open(agent.url, ids.bidId, DEPOSIT, 60);
    const token = await consumer.token(sessionId, 3_600);
    assert.equal(
      (await post("/v1/chat/completions", chatBody(ids.modelId), { authorization: `Bearer ${token}` })).status,
      200,
    );
    await advanceTime(market, 61);
    await agent.parts.follower.catchUp();
    assert.ok(agent.parts.clock.now() >= endsAt);
    assertRefused(
      await post("/v1/chat/completions", chatBody(ids.modelId), { authorization: `Bearer ${token}` }),
      "session_expired",
      410,
    );
  });

  void it("refuses approvals beyond its capacity (sessions open plus approvals outstanding)", async () => {
    const consumer = new TestConsumer(market, market.accounts.user);
    const statuses: number[] = [];
    let refusal: ErrorBody | undefined;
    for (let index = 0; index < 45 && !refusal; index++) {
      const response = await consumer.approvalResponse(agent.url, {
        bidId: ids.bidId,
        user: market.accounts.user.address,
        deposit: DEPOSIT.toString(),
        maxDuration: 600,
      });
      statuses.push(response.status);
      if (response.status !== 200) refusal = (await response.json()) as ErrorBody;
    }
    assert.equal(refusal?.error.code, "capacity_exceeded", statuses.join(","));
    assert.equal(statuses.at(-1), 503);
  });
});
