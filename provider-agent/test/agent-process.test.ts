/**
 * The agent as a process (`provider-agent start`): acknowledged receipts survive SIGKILL and settle
 * the session on chain after a restart; SIGTERM lets a stream finish and exits 0; no key ever reaches
 * its output; config mistakes stop it with their path and exit code 1.
 */
import assert from "node:assert/strict";
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { freePort } from "../../scripts/local-chain.js";
import { rawTestConfig, tinyIds } from "./support/agent.js";
import { type ChildAgent, runAgentCommand, startChildAgent, writeYamlConfig } from "./support/child-agent.js";
import { TestConsumer } from "./support/consumer.js";
import { Teardown, type TestMarket, advanceTime, settledEvent, startTestMarket, waitFor } from "./support/market.js";

const DEPOSIT = 10n ** 20n;
const messages = [{ role: "user" as const, content: "Hello" }];

const teardown = new Teardown();
let market: TestMarket;
let ids: Awaited<ReturnType<typeof tinyIds>>;
let raw: Record<string, unknown>;
let configPath: string;
let url: string;
let env: Record<string, string>;
const agents: ChildAgent[] = [];

before(async () => {
  market = await startTestMarket();
  teardown.add(() => market.stop());
  ids = await tinyIds(market);
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  raw = await rawTestConfig(market, {
    server: { host: "127.0.0.1", port, shutdownGraceSeconds: 10 },
    settlement: { checkIntervalSeconds: 1, claimIntervalSeconds: 0 },
  });
  configPath = await writeYamlConfig(join(String(raw.dataDir), "agent.yaml"), raw);
  env = {
    PROVIDER_PRIVATE_KEY: market.privateKeyOf(market.accounts.provider),
    OPERATOR_PRIVATE_KEY: market.privateKeyOf(market.accounts.operator),
  };
});

after(() => teardown.run());

function track(agent: ChildAgent): ChildAgent {
  agents.push(agent);
  teardown.add(async () => {
    if (agent.process.exitCode === null && agent.process.signalCode === null) agent.process.kill("SIGKILL");
    await agent.exited;
  });
  return agent;
}

void describe("the agent process", () => {
  void it("keeps acknowledged receipts through SIGKILL and settles the session with them after a restart", async () => {
    const first = track(await startChildAgent(configPath, url, env));
    const consumer = new TestConsumer(market, market.accounts.user);
    const { sessionId } = await consumer.open(url, ids.bidId, DEPOSIT, 120);
    const client = await consumer.openai(url, sessionId);
    let inputTokens = 0n;
    for (const round of [1, 2]) {
      const answer = await client.chat.completions.create({
        model: ids.modelId,
        messages,
        max_completion_tokens: 5 * round,
        temperature: 0,
      });
      inputTokens += BigInt(answer.usage!.prompt_tokens);
      const signed = await consumer.receipt(sessionId, {
        inputTokens,
        outputTokens: round === 1 ? 5n : 15n,
        requests: round,
      });
      assert.equal((await consumer.postReceipt(url, signed)).status, 200);
    }

    first.process.kill("SIGKILL");
    assert.equal(await first.exited, null);
    // A crash in the middle of an append leaves a torn line: the restart drops it, it does not stop.
    await appendFile(join(String(raw.dataDir), "journal.jsonl"), '0123456789abcdef {"type":"rece');

    const second = track(await startChildAgent(configPath, url, env));
    const status = await consumer.status(url, sessionId);
    assert.equal(status.status, 200);
    const best = status.body.bestReceipt as { receipt: { seq: string; outputTokens: string } };
    assert.equal(best.receipt.seq, "2");
    assert.equal((status.body.usage as { served: { requests: number } }).served.requests, 2);

    await advanceTime(market, 121);
    const event = await waitFor("the session to settle", () => settledEvent(market, sessionId), 30_000);
    const settledReceipt = event.args.receipt;
    assert.ok(settledReceipt);
    assert.equal(settledReceipt.seq, 2n);
    assert.equal(settledReceipt.outputTokens, 15n);
    assert.equal(event.args.closedBy, market.accounts.operator.address);
    assert.match(second.output(), /torn line/);
    second.process.kill("SIGTERM");
    assert.equal(await second.exited, 0);
  });

  void it("on SIGTERM finishes the stream in flight, stops accepting, and exits 0", async () => {
    const agent = track(await startChildAgent(configPath, url, env));
    const consumer = new TestConsumer(market, market.accounts.user2);
    const { sessionId } = await consumer.open(url, ids.bidId, DEPOSIT);
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${await consumer.token(sessionId)}` },
      body: JSON.stringify({ model: ids.modelId, messages, max_tokens: 200, stream: true }),
    });
    assert.equal(response.status, 200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = new TextDecoder().decode((await reader.read()).value);
    agent.process.kill("SIGTERM");
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    assert.ok(text.trimEnd().endsWith("data: [DONE]"), text.slice(-200));
    assert.equal(await agent.exited, 0);
    await assert.rejects(fetch(`${url}/health`));
    assert.match(agent.output(), /shutting down/);
    assert.match(agent.output(), /"msg":"stopped"/);
  });

  void it("never prints a key: start-up, requests, receipts and shutdown", () => {
    const keys = [env.PROVIDER_PRIVATE_KEY!, env.OPERATOR_PRIVATE_KEY!].map((key) => key.slice(2).toLowerCase());
    const all = agents
      .map((agent) => agent.output())
      .join("\n")
      .toLowerCase();
    assert.ok(all.length > 1_000, "the agents printed their logs");
    for (const key of keys) assert.ok(!all.includes(key), "a private key appears in the agent's output");
  });

  void it("stops at a config mistake with its path and exit code 1; `check` names the keys' addresses only", async () => {
    const bad = join(String(raw.dataDir), "bad.yaml");
    await writeFile(bad, (await readFile(configPath, "utf8")).replace("confirmations: 0", "confirmations: -3"));
    // Three short processes, run side by side.
    const failed = runAgentCommand(["start", "--config", bad], env);
    const check = runAgentCommand(["check", "--config", configPath], env);
    const usage = runAgentCommand(["start"], env);
    assert.equal(await failed.exited, 1);
    assert.match(failed.output(), /chain\.confirmations/);

    assert.equal(await check.exited, 0);
    const summary = JSON.parse(check.output().trim().split("\n").at(-1)!) as {
      provider: string;
      operator: string;
      mode: string;
    };
    assert.equal(summary.provider, market.accounts.provider.address);
    assert.equal(summary.operator, market.accounts.operator.address);
    assert.equal(summary.mode, "manage");

    assert.equal(await usage.exited, 2);
    assert.match(usage.output(), /--config is required/);
  });
});
