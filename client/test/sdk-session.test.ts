/**
 * The SDK's session life against a real local market and a real provider agent: open (through the
 * ranking, with failover past bad and dead providers), chat through the `openai` package (streamed
 * and not), receipts, top-up, status, cooperative close, close alone + finalize, claim.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { usageCost } from "../../protocol/index.js";
import { type MarketClient, createMarketClient } from "../src/index.js";
import { type StubProvider, type TestAgent, startStubProvider, startTestAgent } from "./support/agents.js";
import { type TestIndexer, startTestIndexer } from "./support/indexer.js";
import {
  CHALLENGE_WINDOW_SECONDS,
  type LocalMarket,
  advanceTime,
  devKey,
  startTestMarket,
} from "./support/local-market.js";

const E18 = 10n ** 18n;
const AGENT_PRICES = { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 4n * 10n ** 9n };
const CONSUMER = 9;

let market: LocalMarket;
let agent: TestAgent;
let storeDir: string;
let consumer: MarketClient;
let indexer: TestIndexer;
/** What `after` stops, in reverse order of start (a failed `before` leaves some out). */
const cleanups: (() => Promise<unknown>)[] = [];
const stubs: StubProvider[] = [];

before(async () => {
  market = await startTestMarket();
  cleanups.push(() => market.stop());
  [agent, indexer] = await Promise.all([
    startTestAgent(market, { providerIndex: 1, operatorIndex: 2, prices: AGENT_PRICES }),
    startTestIndexer(market),
  ]);
  cleanups.push(
    () => agent.stop(),
    () => indexer.stop(),
  );
  storeDir = await mkdtemp(join(tmpdir(), "client-store-"));
  cleanups.push(() => rm(storeDir, { recursive: true, force: true }));
  consumer = await createMarketClient({
    rpcUrl: market.rpcUrl,
    account: privateKeyToAccount(devKey(market, CONSUMER)),
    addresses: market.addresses,
    store: { dir: storeDir },
    pollingInterval: 100,
  });
});

after(async () => {
  await Promise.all(stubs.map((stub) => stub.stop()));
  for (const cleanup of cleanups.reverse()) await cleanup();
});

void describe("open, chat, close", { timeout: 300_000 }, () => {
  void test("opens on a bid, chats without streaming, posts a receipt within the usage, and closes cooperatively", async () => {
    const { session } = await consumer.openSession({ bidId: agent.bidId, deposit: 10n * E18, maxDuration: 3600 });
    assert.equal(session.provider, agent.provider);
    const openai = consumer.chat(session, { timeout: 60_000 });
    const completion = await openai.chat.completions.create({
      model: agent.modelId,
      messages: [{ role: "user", content: "Say hello" }],
      max_completion_tokens: 12,
    });
    assert.ok(completion.usage);
    await consumer.flushReceipts(session);
    const status = await consumer.status(session);
    const latest = status.record.receipts.latest;
    assert.ok(latest);
    assert.equal(latest.receipt.seq, "1");
    assert.equal(latest.receipt.outputTokens, String(completion.usage.completion_tokens));
    assert.equal(latest.receipt.inputTokens, String(completion.usage.prompt_tokens));
    assert.equal(status.agent?.bestReceipt?.receipt.seq, "1");

    const before = await consumer.balance();
    const closed = await consumer.closeSession(session);
    assert.equal(closed.outcome, "settled");
    assert.ok(closed.cooperative);
    const after = await consumer.balance();
    assert.equal(after.wallet - before.wallet, BigInt(closed.settlement.refund));
    assert.ok(
      BigInt(closed.settlement.cost) >=
        usageCost(session.terms, {
          inputTokens: BigInt(latest.receipt.inputTokens),
          outputTokens: BigInt(latest.receipt.outputTokens),
        }),
    );
  });

  void test("streams through the openai package: the caller's stream is untouched and the receipt counts its usage", async () => {
    // A deposit that pays for 1,000 of the 3,600 seconds: the top-up below extends the session.
    const { session } = await consumer.openSession({ bidId: agent.bidId, deposit: 10n ** 15n, maxDuration: 3600 });
    assert.equal(session.endsAt, session.terms.openedAt + 1000);
    const openai = consumer.chat(session, { timeout: 60_000 });
    const stream = await openai.chat.completions.create({
      model: agent.modelId,
      messages: [{ role: "user", content: "Count to five" }],
      max_completion_tokens: 24,
      stream: true,
    });
    let text = "";
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      // The client asked for the usage chunk itself: the caller, who did not, never sees it.
      assert.ok(chunk.choices.length > 0, "a usage-only chunk reached the caller");
      assert.equal(chunk.usage ?? undefined, undefined);
      text += chunk.choices[0]?.delta.content ?? "";
    }
    assert.ok(chunks > 0);
    await consumer.flushReceipts(session);
    const first = await consumer.status(session);
    const receipt = first.record.receipts.latest?.receipt;
    assert.ok(receipt);
    assert.equal(receipt.seq, "1");
    const served = first.agent?.usage.served;
    assert.ok(served);
    // Never more than served: exactly what the agent counted for this one response.
    assert.equal(receipt.outputTokens, served.outputTokens);
    assert.equal(receipt.inputTokens, served.inputTokens);
    assert.ok(BigInt(receipt.outputTokens) > 0n);
    assert.ok(receipt.ttftMsAvg >= 0);
    assert.ok(text.length >= 0);

    // Asked for explicitly, the usage chunk reaches the caller, and the next receipt adds exactly it.
    const second = await openai.chat.completions.create({
      model: agent.modelId,
      messages: [{ role: "user", content: "Again" }],
      max_completion_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    for await (const chunk of second) if (chunk.usage) usage = chunk.usage;
    assert.ok(usage);
    await consumer.flushReceipts(session);
    const next = (await consumer.status(session)).record.receipts.latest?.receipt;
    assert.ok(next);
    assert.equal(next.seq, "2");
    assert.equal(BigInt(next.outputTokens) - BigInt(receipt.outputTokens), BigInt(usage.completion_tokens));
    assert.equal(BigInt(next.inputTokens) - BigInt(receipt.inputTokens), BigInt(usage.prompt_tokens));
    assert.equal(next.requests, 2);

    const topped = await consumer.topUp(session, 10n ** 15n);
    assert.equal(topped.deposit, 2n * 10n ** 15n);
    assert.equal(topped.endsAt, session.endsAt + 1000);

    const closed = await consumer.closeSession(session);
    assert.equal(closed.outcome, "settled");
  });

  void test("a close without the agent opens the challenge window; after it, the close finalizes and refunds", async () => {
    const { session } = await consumer.openSession({ bidId: agent.bidId, deposit: 3n * E18, maxDuration: 3600 });
    const openai = consumer.chat(session, { timeout: 60_000 });
    await openai.chat.completions.create({
      model: agent.modelId,
      messages: [{ role: "user", content: "Hi" }],
      max_completion_tokens: 4,
    });
    await consumer.flushReceipts(session);
    const closing = await consumer.closeSession(session, { cooperative: false });
    assert.equal(closing.outcome, "closing");
    await assert.rejects(consumer.finalizeSession(session), { name: "ChallengeWindowOpenError" });
    const before = await consumer.balance();
    await advanceTime(market, CHALLENGE_WINDOW_SECONDS + 1);
    const settled = await consumer.closeSession(session);
    assert.equal(settled.outcome, "settled");
    assert.ok(!settled.cooperative);
    const after = await consumer.balance();
    assert.equal(after.wallet - before.wallet, BigInt(settled.settlement.refund));
    assert.ok(BigInt(settled.settlement.refund) > 0n);
    const record = (await consumer.sessions()).find((entry) => entry.sessionId === session.id);
    assert.equal(record?.phase, "settled");
  });

  void test("claim: nothing for the consumer; the provider's earnings for the provider", async () => {
    await assert.rejects(consumer.claim(), { name: "NothingToClaimError" });
    const provider = await createMarketClient({
      rpcUrl: market.rpcUrl,
      account: privateKeyToAccount(devKey(market, 1)),
      addresses: market.addresses,
      store: { dir: storeDir },
      pollingInterval: 100,
    });
    const status = await provider.providerStatus();
    assert.ok(status.claimable > 0n);
    assert.equal(status.bids.length, 1);
    const claimed = await provider.claim();
    assert.equal(claimed.amount, status.claimable);
  });

  void test("the session key is encrypted at rest: its file holds no key in clear", async () => {
    const records = await consumer.sessions({ sync: false });
    assert.ok(records.length > 0);
    const store = consumer.context.store!;
    for (const record of records) {
      const privateKey = await store.unsealSessionKey(record);
      const file = await readFile(join(store.root, "sessions", `${record.sessionKey.address}.json`), "utf8");
      assert.ok(!file.toLowerCase().includes(privateKey.slice(2).toLowerCase()));
      assert.equal(privateKeyToAccount(privateKey).address, record.sessionKey.address);
    }
    const names = await readdir(store.root);
    assert.deepEqual(names.sort(), ["sessions", "store.json"]);
  });
});

void describe("failover", { timeout: 300_000 }, () => {
  void test("skips a wrong signer, a wrong user, a raised price and a dead provider for the next ranked bid", async () => {
    const cheap = { perSecond: 10n ** 11n, perInputToken: 10n ** 8n, perOutputToken: 10n ** 8n };
    const behaviours = ["wrong-signer", "wrong-user", "raised-price", "down"] as const;
    for (const [index, behaviour] of behaviours.entries()) {
      // Each stand-in a little cheaper than the agent, so the ranking tries them first, in this order.
      const prices = { ...cheap, perSecond: cheap.perSecond + BigInt(index) };
      stubs.push(
        await startStubProvider(market, { providerIndex: 3 + index, modelId: agent.modelId, prices, behaviour }),
      );
    }
    const ranked = await consumer.rankBids(agent.modelId);
    assert.deepEqual(
      ranked.map((bid) => bid.bidId),
      [...stubs.map((stub) => stub.bidId), agent.bidId],
    );
    const { session, skipped } = await consumer.openSession({ modelId: agent.modelId, deposit: E18, maxDuration: 600 });
    assert.equal(session.provider, agent.provider);
    assert.equal(skipped.length, 4);
    assert.match(skipped[0]!.reason, /signed by 0x[0-9a-fA-F]{40}, neither the provider nor its operator/);
    assert.match(skipped[1]!.reason, /names another user/);
    assert.match(skipped[2]!.reason, /price was raised/);
    assert.match(skipped[3]!.reason, /agent_unreachable/);
    // Nothing was sent for the refused approvals: only the agent's session exists.
    const opening = (await consumer.sessions()).filter((record) => record.phase === "opening");
    assert.equal(opening.length, 0);
    await consumer.closeSession(session);
  });
});

void describe("sessions survive the process", { timeout: 300_000 }, () => {
  void test("a consumer killed mid-session closes it cooperatively after a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "client-restart-"));
    const key = devKey(market, 7);
    const child = spawn(
      process.execPath,
      ["--import", "tsx", fileURLToPath(new URL("./support/consumer-child.ts", import.meta.url))],
      {
        env: {
          ...process.env,
          CHILD_RPC_URL: market.rpcUrl,
          CHILD_KEY: key,
          CHILD_ADDRESSES: JSON.stringify(market.addresses),
          CHILD_STORE_DIR: dir,
          CHILD_BID_ID: agent.bidId,
          CHILD_MODEL_ID: agent.modelId,
        },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const exited = once(child, "exit");
    const [line] = (await Promise.race([
      once(createInterface({ input: child.stdout }), "line"),
      exited.then(([code]) => {
        throw new Error(`the consumer exited (${String(code)}) before it opened`);
      }),
    ])) as [string];
    const { sessionId } = JSON.parse(line) as { sessionId: Hex };
    child.kill("SIGKILL");
    await exited;

    const restarted = await createMarketClient({
      rpcUrl: market.rpcUrl,
      account: privateKeyToAccount(key),
      addresses: market.addresses,
      store: { dir },
      pollingInterval: 100,
    });
    const [record] = await restarted.sessions();
    assert.ok(record);
    assert.equal(record.sessionId, sessionId);
    assert.equal(record.phase, "open");
    assert.equal(record.receipts.latest?.receipt.seq, "1");
    const closed = await restarted.closeSession(sessionId);
    assert.equal(closed.outcome, "settled");
    assert.ok(closed.cooperative);
    assert.equal(BigInt(closed.settlement.cost) > 0n, true);
    await rm(dir, { recursive: true, force: true });
  });

  void test("with the store deleted, the session is rebuilt from the chain and closed on time", async () => {
    const lostDir = await mkdtemp(join(tmpdir(), "client-lost-"));
    const key = devKey(market, 8);
    const first = await createMarketClient({
      rpcUrl: market.rpcUrl,
      account: privateKeyToAccount(key),
      addresses: market.addresses,
      store: { dir: lostDir },
      pollingInterval: 100,
    });
    const { session } = await first.openSession({ bidId: agent.bidId, deposit: E18, maxDuration: 3600 });
    await first.chat(session).chat.completions.create({
      model: agent.modelId,
      messages: [{ role: "user", content: "x" }],
      max_completion_tokens: 4,
    });
    await first.flushReceipts(session);
    await rm(lostDir, { recursive: true, force: true });

    const freshDir = await mkdtemp(join(tmpdir(), "client-fresh-"));
    const second = await createMarketClient({
      rpcUrl: market.rpcUrl,
      account: privateKeyToAccount(key),
      addresses: market.addresses,
      store: { dir: freshDir },
      pollingInterval: 100,
    });
    await assert.rejects(second.closeSession(session.id), { name: "SessionNotFoundError" });
    const rebuilt = await second.rebuildSession(session.id);
    assert.deepEqual(rebuilt.terms, session.terms);
    assert.equal(rebuilt.phase, "open");
    const closing = await second.closeSession(session.id);
    assert.equal(closing.outcome, "closing");
    await advanceTime(market, CHALLENGE_WINDOW_SECONDS + 1);
    const settled = await second.closeSession(session.id);
    assert.equal(settled.outcome, "settled");
    await rm(freshDir, { recursive: true, force: true });
  });
});

void describe("through the indexer", { timeout: 300_000 }, () => {
  void test("ranks the model's bids with the indexer's score and its parts, and rebuilds a lost session's terms", async () => {
    const dir = await mkdtemp(join(tmpdir(), "client-indexed-"));
    const key = devKey(market, 6);
    const options = {
      rpcUrl: market.rpcUrl,
      account: privateKeyToAccount(key),
      addresses: market.addresses,
      pollingInterval: 100,
    };
    const indexed = await createMarketClient({ ...options, indexerUrl: indexer.graphqlUrl, store: { dir } });
    await indexer.caughtUp();
    const ranked = await indexed.rankBids(agent.modelId);
    const ours = ranked.find((bid) => bid.bidId === agent.bidId);
    assert.ok(ours, "the agent's bid is ranked");
    assert.equal(ours.source, "indexer");
    assert.equal(ours.endpoint, agent.url);
    assert.ok(ours.score !== undefined && ours.score > 0 && ours.score < 1);
    assert.ok("price" in ours.scoreParts && "throughput" in ours.scoreParts);
    assert.ok((ours.sessions ?? 0) > 0, "the settled sessions of the tests above count");

    const lostDir = await mkdtemp(join(tmpdir(), "client-lost-"));
    const first = await createMarketClient({ ...options, store: { dir: lostDir } });
    const { session } = await first.openSession({ bidId: agent.bidId, deposit: E18, maxDuration: 600 });
    await rm(lostDir, { recursive: true, force: true });
    await indexer.caughtUp();
    const rebuilt = await indexed.rebuildSession(session.id);
    assert.deepEqual(rebuilt.terms, session.terms);
    assert.equal(rebuilt.endpoint, agent.url);
    const closing = await indexed.closeSession(session.id);
    assert.equal(closing.outcome, "closing");
    await rm(dir, { recursive: true, force: true });
  });
});
