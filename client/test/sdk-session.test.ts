/**
 * The SDK's session life against a real local market and a real provider agent: open (through the
 * ranking, with failover past bad and dead providers), chat through the `openai` package (streamed
 * and not), receipts, top-up, status, cooperative close, close alone + finalize, claim.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { privateKeyToAccount } from "viem/accounts";
import { usageCost } from "../../protocol/index.js";
import { type MarketClient, createMarketClient } from "../src/index.js";
import { type StubProvider, type TestAgent, startStubProvider, startTestAgent } from "./support/agents.js";
import { CHALLENGE_WINDOW_SECONDS, type LocalMarket, advanceTime, devKey, startTestMarket } from "./support/local-market.js";

const E18 = 10n ** 18n;
const AGENT_PRICES = { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 4n * 10n ** 9n };
const CONSUMER = 9;

let market: LocalMarket;
let agent: TestAgent;
let storeDir: string;
let consumer: MarketClient;
const stubs: StubProvider[] = [];

before(async () => {
  market = await startTestMarket();
  agent = await startTestAgent(market, { providerIndex: 1, operatorIndex: 2, prices: AGENT_PRICES });
  storeDir = await mkdtemp(join(tmpdir(), "client-store-"));
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
  await agent?.stop();
  await market?.stop();
  await rm(storeDir, { recursive: true, force: true });
});

describe("open, chat, close", () => {
  test("opens on a bid, chats without streaming, posts a receipt within the usage, and closes cooperatively", async () => {
    const { session } = await consumer.openSession({ bidId: agent.bidId, deposit: 10n * E18, maxDuration: 3600 });
    assert.equal(session.provider, agent.provider);
    const openai = consumer.chat(session);
    const completion = await openai.chat.completions.create({
      model: agent.modelId,
      messages: [{ role: "user", content: "Say hello" }],
      max_tokens: 12,
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
    assert.ok(closed.outcome === "settled" && closed.cooperative);
    const after = await consumer.balance();
    assert.equal(after.wallet - before.wallet, BigInt(closed.settlement.refund));
    assert.ok(BigInt(closed.settlement.cost) >= usageCost(session.terms, { inputTokens: BigInt(latest.receipt.inputTokens), outputTokens: BigInt(latest.receipt.outputTokens) }));
  });
});
