/**
 * The market end to end, every part a real process: a `hardhat node` with LocalMarket, the indexer
 * (`indexer start`, PGlite), two provider agents (`provider-agent start`) serving the same tiny model
 * at different prices and speeds, consumers through the client SDK and the `openai` package (in
 * this process, and as a process of their own), and the `market` CLI.
 *
 * Agent A is the cheaper and the faster. Agent B asks twice A's prices and sits behind a paced link
 * (one server-sent event per LINK_INTERVAL_MS), so its speed as consumers measure it is bounded
 * whatever the machine's load. The tests run in order and build on each other's sessions.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  escrowAbi,
  marketDomain,
  marketTokenAbi,
  receiptFromJson,
  sessionRouterAbi,
  verifyUsageReceipt,
} from "../../protocol/index.js";
import { TINY_SHAPE, writeLlamaTestModel } from "../../provider-agent/src/models/gguf/test-llama.js";
import { freePort } from "../../scripts/local-chain.js";
import { tinyModelServing } from "../../scripts/market/models.js";
import { waitUntil } from "../../scripts/market/wait.js";
import { type MarketClient, createMarketClient } from "../../client/src/index.js";
import { AGENT_BIN, type AgentProcess, E2eMarket, MARKET_CLI, ROOT } from "./support/market.js";
import { PacedLink } from "./support/paced-link.js";

const E18 = 10n ** 18n;
const PRICES_A = { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 4n * 10n ** 9n };
const PRICES_B = { perSecond: 2n * 10n ** 12n, perInputToken: 2n * 10n ** 9n, perOutputToken: 8n * 10n ** 9n };
const LINK_INTERVAL_MS = 40;
/** Dev accounts: A's provider and operator, B's, the consumer in this process, the consumer process. */
const ACCOUNTS = { providerA: 1, operatorA: 2, consumer: 3, restartedConsumer: 4, providerB: 5, operatorB: 6 };
const CONSUMER_PROCESS = fileURLToPath(new URL("./support/consumer-process.ts", import.meta.url));

interface Ranking {
  rank: number;
  bidId: string;
  providerAddress: string;
  parts: { throughput: number; latency: number; price: number };
  metrics: { sessions: number; tpsMean: number | null; ttftMsMean: number | null };
}

let market: E2eMarket;
let agentA: AgentProcess;
let agentB: AgentProcess;
let link: PacedLink;
let modelId: Hex;
let consumer: MarketClient;
let storeDir: string;
/** What `after` undoes, in reverse order of start (a failed `before` leaves some out). */
const cleanups: (() => Promise<unknown>)[] = [];

const bidA = () => market.bidIdOf(agentA, modelId);
const bidB = () => market.bidIdOf(agentB, modelId);

async function rankings(): Promise<Ranking[]> {
  const data = await market.graphql<{ providerRankings: Ranking[] }>(
    `query ($modelId: String!) {
      providerRankings(modelId: $modelId) {
        rank bidId providerAddress
        parts { throughput latency price }
        metrics { sessions tpsMean ttftMsMean }
      }
    }`,
    { modelId },
  );
  return data.providerRankings;
}

/** Waits until the indexer's ranking satisfies `ready`, and returns it. */
function rankingWhen(what: string, ready: (ranking: Ranking[]) => boolean): Promise<Ranking[]> {
  return waitUntil(
    what,
    async () => {
      const ranking = await rankings();
      return ready(ranking) ? ranking : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}

interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command (`node <args>`) to its end. */
function run(args: string[], env: Record<string, string>): Promise<CommandResult> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: "pipe" });
  child.stdin.end();
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, stdout, stderr })));
}

/** The `market` CLI with --json, as the restarted consumer (its own wallet and store). */
async function marketCli(args: string[], storeDirectory: string): Promise<unknown> {
  const result = await run([MARKET_CLI, ...args, "--json"], {
    MARKET_RPC_URL: market.chain.rpcUrl,
    MARKET_INDEXER_URL: market.graphqlUrl,
    MARKET_DEPLOYMENT: market.deploymentFile,
    MARKET_STORE_DIR: storeDirectory,
    MARKET_PRIVATE_KEY: market.devKey(ACCOUNTS.restartedConsumer),
  });
  assert.equal(result.code, 0, `market ${args.join(" ")} failed:\n${result.stderr}`);
  return JSON.parse(result.stdout) as unknown;
}

let settledA:
  | {
      sessionId: Hex;
      cost: bigint;
      providerAmount: bigint;
      claimed: bigint;
      receipt: ReturnType<typeof receiptFromJson>;
    }
  | undefined;

function escrowBalance(owner: Address): Promise<bigint> {
  return market.publicClient.readContract({
    address: market.chain.addresses.escrow,
    abi: escrowAbi,
    functionName: "balanceOf",
    args: [owner],
  });
}

function tokenBalance(owner: Address): Promise<bigint> {
  return market.publicClient.readContract({
    address: market.chain.addresses.token,
    abi: marketTokenAbi,
    functionName: "balanceOf",
    args: [owner],
  });
}

/** The session's SessionSettled event: receipt, elapsed time, whether it was challenged. */
async function settledEvent(sessionId: Hex) {
  const [event] = await market.publicClient.getContractEvents({
    address: market.chain.addresses.sessionRouter,
    abi: sessionRouterAbi,
    eventName: "SessionSettled",
    args: { sessionId },
    fromBlock: market.chain.deploymentBlock,
  });
  assert.ok(event, `session ${sessionId} settled on chain`);
  return event.args as Required<typeof event.args>;
}

/** The consumer process's progress lines, until it says it is mid-stream (or exits, a failure). */
async function readUntilStreaming(child: ChildProcess): Promise<{ opened: Hex; receipt: string }> {
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const progress: Record<string, unknown> = {};
  const lines = createInterface({ input: child.stdout! });
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`the consumer process exited (${String(code)}) early:\n${stderr}`))),
  );
  exited.catch(() => undefined);
  const streaming = (async () => {
    for await (const line of lines) {
      Object.assign(progress, JSON.parse(line) as Record<string, unknown>);
      if (progress.streaming === true) return;
    }
  })();
  await Promise.race([streaming, exited]);
  return { opened: progress.opened as Hex, receipt: String(progress.receipt) };
}

before(async () => {
  market = await E2eMarket.start();
  cleanups.push(() => market.stop());
  const modelDir = await mkdtemp(join(tmpdir(), "market-e2e-model-"));
  const model = await writeLlamaTestModel(join(modelDir, "tiny.gguf"), { shape: TINY_SHAPE, seed: 1 });
  const [indexerPort, portA, portB] = [await freePort(), await freePort(), await freePort()];
  try {
    [, agentA] = await Promise.all([
      market.startIndexer(indexerPort),
      market.startAgent({
        name: "agent-a",
        providerIndex: ACCOUNTS.providerA,
        operatorIndex: ACCOUNTS.operatorA,
        prices: PRICES_A,
        model: { ...tinyModelServing(model.path), parallel: 4 },
        port: portA,
      }),
    ]);
    const listed = (await (await fetch(`${agentA.url}/v1/models`)).json()) as { data: { id: Hex }[] };
    modelId = listed.data[0]!.id;
    link = new PacedLink({ host: "127.0.0.1", port: portB }, LINK_INTERVAL_MS);
    await link.start();
    cleanups.push(() => link.stop());
    agentB = await market.startAgent({
      name: "agent-b",
      providerIndex: ACCOUNTS.providerB,
      operatorIndex: ACCOUNTS.operatorB,
      prices: PRICES_B,
      // The same file, served under A's registration of it: both bid on one model.
      model: { ...tinyModelServing(model.path), ownership: { id: modelId }, parallel: 1 },
      port: portB,
      publicEndpoint: link.url,
    });
  } finally {
    await rm(modelDir, { recursive: true, force: true }).catch(() => undefined);
  }
  storeDir = await mkdtemp(join(tmpdir(), "market-e2e-store-"));
  cleanups.push(() => rm(storeDir, { recursive: true, force: true }));
  consumer = await createMarketClient({
    rpcUrl: market.chain.rpcUrl,
    indexerUrl: market.graphqlUrl,
    deploymentPath: market.deploymentFile,
    account: privateKeyToAccount(market.devKey(ACCOUNTS.consumer)),
    store: { dir: storeDir },
    pollingInterval: 100,
  });
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => console.error("cleanup:", error));
});

void describe("the market, end to end", { timeout: 600_000 }, () => {
  void test("the ranking orders the two providers by their prices before any session", async () => {
    const ranking = await rankingWhen("both bids in the ranking", (entries) => entries.length === 2);
    assert.deepEqual(
      ranking.map((entry) => entry.bidId),
      [bidA(), bidB()],
      "the cheaper provider first",
    );
    assert.ok(ranking[0]!.parts.price > ranking[1]!.parts.price);
    const viaCli = (await marketCli(["rank", modelId], storeDir)) as { bids: { bidId: string }[] };
    assert.deepEqual(
      viaCli.bids.map((bid) => bid.bidId),
      [bidA(), bidB()],
      "the CLI shows the indexer's order",
    );
  });

  void test("a session opened through the ranking streams, signs receipts and closes cooperatively; the claim pays exactly the settlement", async () => {
    const { session, skipped } = await consumer.openSession({ modelId, deposit: E18, maxDuration: 600 });
    assert.deepEqual(skipped, []);
    assert.equal(session.bidId, bidA(), "the first-ranked bid");
    assert.equal(session.endpoint, agentA.endpoint);

    const openai = consumer.chat(session, { timeout: 60_000 });
    const stream = await openai.chat.completions.create({
      model: modelId,
      messages: [{ role: "user", content: "Stream me an answer" }],
      max_completion_tokens: 24,
      stream: true,
    });
    let chunks = 0;
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content) chunks += 1;
    assert.ok(chunks > 1, "the answer arrives in pieces");
    const whole = await openai.chat.completions.create({
      model: modelId,
      messages: [{ role: "user", content: "And one more, whole" }],
      max_completion_tokens: 8,
    });
    assert.ok(whole.usage && whole.usage.completion_tokens > 0);
    await consumer.flushReceipts(session);

    const status = await consumer.status(session);
    const latest = status.record.receipts.latest;
    assert.ok(latest, "a receipt was signed");
    assert.equal(latest.receipt.seq, "2", "one receipt per response");
    const domain = marketDomain(consumer.chainId, consumer.addresses.sessionRouter);
    const receipt = receiptFromJson(latest.receipt);
    assert.ok(
      await verifyUsageReceipt(domain, receipt, latest.signature, [session.sessionKey]),
      "signed by the session key",
    );
    assert.equal(status.agent?.bestReceipt?.receipt.seq, "2", "the agent holds it as its best receipt");

    const escrowBefore = await escrowBalance(agentA.provider);
    assert.equal(escrowBefore, 0n);
    const closed = await consumer.closeSession(session);
    assert.equal(closed.outcome, "settled");
    assert.ok(closed.cooperative, "settled at once with the agent's countersignature");
    const settlement = closed.settlement;
    const [cost, providerAmount, royaltyAmount, feeAmount, refund] = [
      settlement.cost,
      settlement.providerAmount,
      settlement.royaltyAmount,
      settlement.feeAmount,
      settlement.refund,
    ].map(BigInt) as [bigint, bigint, bigint, bigint, bigint];
    assert.equal(cost + refund, E18, "the deposit is the cost plus the refund");
    assert.equal(providerAmount + royaltyAmount + feeAmount, cost, "the cost is split without remainder");
    const settled = await settledEvent(session.id);
    assert.equal(settled.receipt.seq, receipt.seq, "settled with the last receipt");
    const elapsed = settled.settlement.elapsedSeconds;
    assert.equal(
      cost,
      elapsed * PRICES_A.perSecond +
        receipt.inputTokens * PRICES_A.perInputToken +
        receipt.outputTokens * PRICES_A.perOutputToken,
      "time and tokens at the bid's prices",
    );

    // Agent A's provider also owns the model: the escrow holds its share and the royalty.
    const claimable = await escrowBalance(agentA.provider);
    assert.equal(claimable, providerAmount + royaltyAmount);
    const walletBefore = await tokenBalance(agentA.provider);
    const claim = await run([AGENT_BIN, "claim", "--config", agentA.configFile], agentA.env);
    assert.equal(claim.code, 0, `provider-agent claim failed:\n${claim.stderr}${claim.stdout}`);
    const claimed = JSON.parse(claim.stdout.trim().split("\n").at(-1)!) as { claimed: string; provider: Address };
    assert.equal(
      BigInt(claimed.claimed),
      providerAmount + royaltyAmount,
      "the claim pays exactly what the settlement credited",
    );
    assert.equal((await tokenBalance(agentA.provider)) - walletBefore, providerAmount + royaltyAmount);
    assert.equal(await escrowBalance(agentA.provider), 0n);
    settledA = { sessionId: session.id, cost, providerAmount, claimed: providerAmount + royaltyAmount, receipt };
  });

  void test("the indexer shows the settled session, the provider's earnings and the updated ranking", async () => {
    assert.ok(settledA, "needs the previous test's session");
    await market.indexerCaughtUp();
    const { session, earnings } = await market.graphql<{
      session: {
        status: string;
        providerAddress: string;
        settlement: { cost: string; providerAmount: string; receipt: { seq: string; outputTokens: string } };
      };
      earnings: { claimed: string; claimable: string };
    }>(
      `query ($id: String!, $provider: String!) {
        session(id: $id) { status providerAddress settlement { cost providerAmount receipt { seq outputTokens } } }
        earnings(address: $provider) { claimed claimable }
      }`,
      { id: settledA.sessionId, provider: agentA.provider },
    );
    assert.equal(session.status, "SETTLED");
    assert.equal(BigInt(session.settlement.cost), settledA.cost);
    assert.equal(BigInt(session.settlement.providerAmount), settledA.providerAmount);
    assert.equal(BigInt(session.settlement.receipt.seq), settledA.receipt.seq);
    assert.equal(BigInt(session.settlement.receipt.outputTokens), settledA.receipt.outputTokens);
    assert.equal(BigInt(earnings.claimed), settledA.claimed);
    assert.equal(BigInt(earnings.claimable), 0n);

    const ranking = await rankingWhen("the ranking to count A's session", (entries) =>
      entries.some((entry) => entry.bidId === bidA() && entry.metrics.sessions === 1),
    );
    const a = ranking.find((entry) => entry.bidId === bidA())!;
    assert.equal(a.rank, 1);
    assert.equal(a.metrics.tpsMean, settledA.receipt.tpsX1000Avg / 1000, "the speed its consumer measured");
  });

  void test("with a session measured on each, the ranking orders them as their prices and speeds say", async () => {
    const { session } = await consumer.openSession({ bidId: bidB(), deposit: E18, maxDuration: 600 });
    assert.equal(session.endpoint, link.url);
    const openai = consumer.chat(session, { timeout: 60_000 });
    const stream = await openai.chat.completions.create({
      model: modelId,
      messages: [{ role: "user", content: "Stream me an answer" }],
      max_completion_tokens: 24,
      stream: true,
    });
    for await (const _chunk of stream) {
      // read to the end: the receipt needs the usage chunk
    }
    await consumer.flushReceipts(session);
    const closed = await consumer.closeSession(session);
    assert.ok(closed.outcome === "settled" && closed.cooperative);

    const ranking = await rankingWhen("the ranking to count B's session", (entries) =>
      entries.some((entry) => entry.bidId === bidB() && entry.metrics.sessions === 1),
    );
    assert.deepEqual(
      ranking.map((entry) => entry.bidId),
      [bidA(), bidB()],
      "A first, B second",
    );
    const [a, b] = [ranking.find((entry) => entry.bidId === bidA()), ranking.find((entry) => entry.bidId === bidB())];
    assert.ok(a && b);
    // B's link lets one event through every LINK_INTERVAL_MS: it cannot beat that speed.
    assert.ok(
      b.metrics.tpsMean !== null && b.metrics.tpsMean <= 1000 / LINK_INTERVAL_MS + 1,
      `B measured ${b.metrics.tpsMean} tokens/s`,
    );
    assert.ok(a.metrics.tpsMean !== null && a.metrics.tpsMean > b.metrics.tpsMean, "A measured faster");
    assert.ok(a.parts.throughput > b.parts.throughput, "the throughput part follows the measured speed");
    assert.ok(a.parts.price > b.parts.price, "the price part follows the prices");
  });

  void test("a consumer process killed mid-session closes its session cooperatively after a restart (the market CLI)", async () => {
    const restartStore = await mkdtemp(join(tmpdir(), "market-e2e-restart-"));
    try {
      const child = spawn(process.execPath, ["--import", "tsx", CONSUMER_PROCESS], {
        cwd: ROOT,
        env: {
          ...process.env,
          MARKET_PRIVATE_KEY: market.devKey(ACCOUNTS.restartedConsumer),
          E2E_RPC_URL: market.chain.rpcUrl,
          E2E_INDEXER_URL: market.graphqlUrl,
          E2E_DEPLOYMENT: market.deploymentFile,
          E2E_STORE_DIR: restartStore,
          E2E_MODEL_ID: modelId,
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const progress = await readUntilStreaming(child);
      child.kill("SIGKILL");
      await new Promise((resolve) => child.once("exit", resolve));
      const sessionId = progress.opened;
      assert.equal(progress.receipt, "1");

      // The restart: the CLI finds the session in the store and closes it with the agent.
      const listed = (await marketCli(["sessions"], restartStore)) as { sessionId: string; phase: string }[];
      assert.deepEqual(
        listed.map((record) => [record.sessionId, record.phase]),
        [[sessionId, "open"]],
      );
      const closed = (await marketCli(["close", sessionId], restartStore)) as {
        outcome: string;
        cooperative: boolean;
        settlement: { challenged: boolean };
      };
      assert.equal(closed.outcome, "settled");
      assert.equal(closed.cooperative, true);
      const settled = await settledEvent(sessionId);
      assert.equal(settled.receipt.seq, 1n, "with the last receipt the killed process had signed");
      assert.equal(settled.challenged, false);
    } finally {
      await rm(restartStore, { recursive: true, force: true });
    }
  });

  void test("killing the first-ranked agent makes the client fail over to the second", async () => {
    agentA.process.child.kill("SIGKILL");
    await agentA.process.exited;
    const { session, skipped } = await consumer.openSession({ modelId, deposit: E18, maxDuration: 600 });
    assert.deepEqual(
      skipped.map((attempt) => attempt.bidId),
      [bidA()],
      "the dead first-ranked provider was tried and skipped",
    );
    assert.equal(session.bidId, bidB());
    const openai = consumer.chat(session, { timeout: 60_000 });
    const answer = await openai.chat.completions.create({
      model: modelId,
      messages: [{ role: "user", content: "Are you there?" }],
      max_completion_tokens: 6,
    });
    assert.ok(answer.usage && answer.usage.completion_tokens > 0);
    await consumer.flushReceipts(session);
    const closed = await consumer.closeSession(session);
    assert.ok(closed.outcome === "settled" && closed.cooperative);
    assert.deepEqual(market.exits, ["agent-a: killed by SIGKILL"], "no other process died");
  });
});
