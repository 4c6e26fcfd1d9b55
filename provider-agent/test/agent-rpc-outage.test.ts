/**
 * The agent's RPC goes away and comes back (a TCP proxy between the agent and the node is cut, then
 * restored; the chain keeps its state): the agent says so in /health, refuses what needs the chain
 * with `chain_unavailable`, reconnects, processes the events it missed (here: a user's close with a
 * stale receipt, which it then challenges) and serves again.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type TestAgent, startTestAgent, testConfig, tinyIds } from "./support/agent.js";
import { TestConsumer } from "./support/consumer.js";
import { Teardown, type TestMarket, settledEvent, startTestMarket, waitFor } from "./support/market.js";
import { TcpProxy } from "./support/tcp-proxy.js";

const DEPOSIT = 10n ** 20n;
const messages = [{ role: "user" as const, content: "Hello" }];

const teardown = new Teardown();
let market: TestMarket;
let proxy: TcpProxy;
let agent: TestAgent;
let ids: Awaited<ReturnType<typeof tinyIds>>;

before(async () => {
  market = await startTestMarket();
  teardown.add(() => market.stop());
  proxy = new TcpProxy(market.chain.host, market.chain.port);
  await proxy.start();
  teardown.add(() => proxy.stop());
  agent = await startTestAgent(market, { config: await testConfig(market, { rpcUrl: proxy.url }) });
  teardown.add(() => agent.stop());
  ids = await tinyIds(market);
});

after(() => teardown.run());

async function chainStatus() {
  const health = (await (await fetch(`${agent.url}/health`)).json()) as { chain: { connected: boolean } };
  return health.chain;
}

void describe("RPC outage", () => {
  void it("recovers: processes the events it missed and serves again", async () => {
    const consumer = new TestConsumer(market, market.accounts.user);
    const { sessionId, terms } = await consumer.open(agent.url, ids.bidId, DEPOSIT);
    const client = await consumer.openai(agent.url, sessionId);
    const first = await client.chat.completions.create({ model: ids.modelId, messages, max_completion_tokens: 4 });
    const stale = await consumer.receipt(sessionId, {
      inputTokens: BigInt(first.usage!.prompt_tokens),
      outputTokens: 4n,
      requests: 1,
    });
    assert.equal((await consumer.postReceipt(agent.url, stale)).status, 200);
    const second = await client.chat.completions.create({ model: ids.modelId, messages, max_completion_tokens: 10 });
    const best = await consumer.receipt(sessionId, {
      inputTokens: BigInt(first.usage!.prompt_tokens + second.usage!.prompt_tokens),
      outputTokens: 14n,
      requests: 2,
    });
    assert.equal((await consumer.postReceipt(agent.url, best)).status, 200);
    // An approval for a session to open while the RPC is away.
    const other = new TestConsumer(market, market.accounts.user2);
    const approved = await other.requestApproval(agent.url, ids.bidId, DEPOSIT);

    await proxy.stop();
    await waitFor("the agent to notice the outage", async () => !(await chainStatus()).connected);
    // Meanwhile on chain: the user closes with the stale receipt; another session opens.
    await consumer.closeOnChain(terms, stale);
    const opened = await other.openWith(approved, DEPOSIT);
    const otherToken = await other.token(opened.sessionId);
    const refused = await fetch(`${agent.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${otherToken}` },
      body: JSON.stringify({ model: ids.modelId, messages, max_tokens: 2 }),
    });
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, "chain_unavailable");
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);

    await proxy.start();
    await waitFor("the agent to reconnect", async () => (await chainStatus()).connected);
    // The close it missed is challenged with the better receipt it holds.
    const event = await waitFor("the challenge to settle", () => settledEvent(market, sessionId), 30_000);
    assert.equal(event.args.challenged, true);
    const settledReceipt = event.args.receipt;
    assert.ok(settledReceipt);
    assert.equal(settledReceipt.outputTokens, 14n);
    // And the session opened during the outage is served.
    const otherClient = await other.openai(agent.url, opened.sessionId);
    const answer = await otherClient.chat.completions.create({
      model: ids.modelId,
      messages,
      max_completion_tokens: 3,
    });
    assert.equal(answer.usage?.completion_tokens, 3);
  });
});
