/**
 * Settlement on a real chain: the agent closes its expired sessions with the best receipt it holds,
 * challenges a user's close made with a stale receipt, finalizes closes after the challenge window,
 * and claims its earnings on demand (`provider-agent claim`) and on a schedule.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Hex } from "viem";
import { stringify } from "yaml";
import { sessionCost } from "../../protocol/index.js";
import { parseConfig } from "../src/config/load.js";
import { runClaim } from "../src/main.js";
import { type TestAgent, rawTestConfig, startTestAgent, tinyIds } from "./support/agent.js";
import { TestConsumer } from "./support/consumer.js";
import {
  Teardown,
  type TestMarket,
  advanceTime,
  escrowBalance,
  settledEvent,
  startTestMarket,
  tokenBalance,
  waitFor,
} from "./support/market.js";

const DEPOSIT = 10n ** 20n;
const CHALLENGE_WINDOW = 60;
const messages = [{ role: "user" as const, content: "Hello" }];

const teardown = new Teardown();
let market: TestMarket;
let agent: TestAgent;
let raw: Record<string, unknown>;
let ids: Awaited<ReturnType<typeof tinyIds>>;

before(async () => {
  market = await startTestMarket({ challengeWindow: CHALLENGE_WINDOW });
  teardown.add(() => market.stop());
  raw = await rawTestConfig(market);
  // New blocks heard over the node's websocket too (reads and transactions go over http, first in the list).
  (raw.chain as { rpcUrls: string[] }).rpcUrls.push(market.chain.wsUrl);
  agent = await startTestAgent(market, { config: parseConfig(raw, "/") });
  teardown.add(() => agent.stop());
  ids = await tinyIds(market);
});

after(() => teardown.run());

/** Opens a session, asks `requests` questions of `tokens` tokens each; returns the served usage. */
async function sessionWithUsage(consumer: TestConsumer, requests: number, tokens: number, maxDuration = 3_600) {
  const opened = await consumer.open(agent.url, ids.bidId, DEPOSIT, maxDuration);
  const client = await consumer.openai(agent.url, opened.sessionId);
  let inputTokens = 0n;
  for (let index = 0; index < requests; index++) {
    const answer = await client.chat.completions.create({
      model: ids.modelId,
      messages,
      max_completion_tokens: tokens,
      temperature: 0,
    });
    inputTokens += BigInt(answer.usage!.prompt_tokens);
  }
  return { ...opened, usage: { inputTokens, outputTokens: BigInt(requests * tokens), requests } };
}

function settled(sessionId: Hex) {
  return waitFor(`session ${sessionId} to settle`, () => settledEvent(market, sessionId), 30_000);
}

void describe("settlement", () => {
  void it("closes an expired session with the best receipt held; the provider's close settles at once", async () => {
    const consumer = new TestConsumer(market, market.accounts.user);
    const session = await sessionWithUsage(consumer, 1, 8, 120);
    const receipt = await consumer.receipt(session.sessionId, session.usage);
    assert.equal((await consumer.postReceipt(agent.url, receipt)).status, 200);
    await advanceTime(market, 121);
    const event = await settled(session.sessionId);
    assert.equal(event.args.closedBy, market.accounts.operator.address);
    assert.equal(event.args.challenged, false);
    const settledReceipt = event.args.receipt;
    assert.ok(settledReceipt);
    assert.equal(settledReceipt.seq, 1n);
    assert.equal(settledReceipt.outputTokens, 8n);
    // Time is charged up to the session's end: 120 s.
    assert.equal(
      event.args.settlement?.cost,
      sessionCost(session.terms, 120n, { inputTokens: session.usage.inputTokens, outputTokens: 8n }, session.deposit),
    );
  });

  void it("challenges a user's close made with a stale receipt; the session settles at the higher cost", async () => {
    const consumer = new TestConsumer(market, market.accounts.user2);
    const first = await sessionWithUsage(consumer, 1, 4);
    const stale = await consumer.receipt(first.sessionId, first.usage);
    assert.equal((await consumer.postReceipt(agent.url, stale)).status, 200);
    const client = await consumer.openai(agent.url, first.sessionId);
    const more = await client.chat.completions.create({
      model: ids.modelId,
      messages,
      max_completion_tokens: 12,
      temperature: 0,
    });
    const best = await consumer.receipt(first.sessionId, {
      inputTokens: first.usage.inputTokens + BigInt(more.usage!.prompt_tokens),
      outputTokens: 16n,
      requests: 2,
    });
    assert.equal((await consumer.postReceipt(agent.url, best)).status, 200);

    await consumer.closeOnChain(first.terms, stale);
    const event = await settled(first.sessionId);
    assert.equal(event.args.challenged, true);
    const settledReceipt = event.args.receipt;
    assert.ok(settledReceipt);
    assert.equal(settledReceipt.seq, best.receipt.seq);
    assert.equal(settledReceipt.outputTokens, 16n);
    assert.equal(event.args.closedBy, market.accounts.operator.address);
  });

  void it("finalizes a user's close after the challenge window when its receipt is the best", async () => {
    const consumer = new TestConsumer(market, market.accounts.stranger);
    const session = await sessionWithUsage(consumer, 1, 6);
    const receipt = await consumer.receipt(session.sessionId, session.usage);
    assert.equal((await consumer.postReceipt(agent.url, receipt)).status, 200);
    await consumer.closeOnChain(session.terms, receipt);
    await waitFor("the agent to see the close", async () => {
      const account = await agent.parts.sessions.resolve(session.sessionId);
      return account?.chain.phase === "closing";
    });
    assert.equal(await settledEvent(market, session.sessionId), undefined);
    await advanceTime(market, CHALLENGE_WINDOW + 1);
    const event = await settled(session.sessionId);
    assert.equal(event.args.challenged, false);
    const settledReceipt = event.args.receipt;
    assert.ok(settledReceipt);
    assert.equal(settledReceipt.seq, 1n);
    assert.equal(event.args.closedBy, market.accounts.operator.address);
  });

  void it("claims the provider's earnings on demand (provider-agent claim)", async () => {
    const provider = market.accounts.provider.address;
    const owed = await escrowBalance(market, provider);
    assert.ok(owed > 0n);
    const before = await tokenBalance(market, provider);
    const path = join(String(raw.dataDir), "claim.yaml");
    await writeFile(path, stringify({ ...raw, log: { level: "warn" } }));
    const code = await runClaim(path, {
      PROVIDER_PRIVATE_KEY: market.privateKeyOf(market.accounts.provider),
    });
    assert.equal(code, 0);
    assert.equal(await escrowBalance(market, provider), 0n);
    assert.equal(await tokenBalance(market, provider), before + owed);
  });

  void it("claims on a schedule (after a restart on the same journal)", async () => {
    const consumer = new TestConsumer(market, market.accounts.user);
    const session = await sessionWithUsage(consumer, 1, 4, 60);
    await advanceTime(market, 61);
    await settled(session.sessionId);
    assert.ok((await escrowBalance(market, market.accounts.provider.address)) > 0n);
    await agent.stop();
    const scheduled = parseConfig({ ...raw, settlement: { checkIntervalSeconds: 1, claimIntervalSeconds: 1 } }, "/");
    agent = await startTestAgent(market, { config: scheduled });
    await waitFor(
      "the scheduled claim",
      async () => (await escrowBalance(market, market.accounts.provider.address)) === 0n,
    );
    assert.match(await (await fetch(`${agent.url}/metrics`)).text(), /agent_claimed_total [1-9]/);
  });
});
