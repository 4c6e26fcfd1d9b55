/**
 * The `market` command line as a child process (client/bin/market.mjs) against a real local market
 * and a real provider agent: each command's --json output parsed, human output readable, expected
 * errors with a next step and no stack trace, keys never from flags.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { privateKeyToAccount } from "viem/accounts";
import { type TestAgent, startTestAgent } from "./support/agents.js";
import { type LocalMarket, devKey, startTestMarket } from "./support/local-market.js";

const LAUNCHER = fileURLToPath(new URL("../bin/market.mjs", import.meta.url));
const CLI_SOURCE = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const PRICES = { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 4n * 10n ** 9n };

let market: LocalMarket;
let agent: TestAgent;
let storeDir: string;
let baseEnv: NodeJS.ProcessEnv;
/** What `after` stops, in reverse order of start (a failed `before` leaves some out). */
const cleanups: (() => Promise<unknown>)[] = [];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}, entry: string[] = [LAUNCHER]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...entry, ...args],
      { env: { ...baseEnv, ...env }, timeout: 120_000, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function json<T>(args: string[], env: NodeJS.ProcessEnv = {}): Promise<T> {
  const result = await run([...args, "--json"], env);
  assert.equal(result.code, 0, `market ${args.join(" ")} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** An expected failure: its exit code, a message, a next step, and never a stack trace. */
function assertExpectedError(result: Run, code: number, message: RegExp) {
  assert.equal(result.code, code, `expected exit ${code}: ${result.stderr}`);
  assert.match(result.stderr, message);
  assert.match(result.stderr, /\n {2}→ /, "no next step printed");
  assert.doesNotMatch(result.stderr, /\n\s+at /, "a stack trace was printed");
}

before(async () => {
  market = await startTestMarket();
  cleanups.push(() => market.stop());
  agent = await startTestAgent(market, { providerIndex: 1, operatorIndex: 2, prices: PRICES });
  cleanups.push(() => agent.stop());
  storeDir = await mkdtemp(join(tmpdir(), "client-cli-"));
  cleanups.push(() => rm(storeDir, { recursive: true, force: true }));
  baseEnv = {
    PATH: process.env.PATH,
    HOME: storeDir,
    MARKET_RPC_URL: market.rpcUrl,
    MARKET_DEPLOYMENT: join(market.deploymentDir, "deployed_addresses.json"),
    MARKET_STORE_DIR: join(storeDir, "sessions"),
    MARKET_PRIVATE_KEY: devKey(market, 9),
  };
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

void describe("market (consumer)", { timeout: 600_000 }, () => {
  void test("--help lists the commands, through the launcher and through tsx", async () => {
    const launcher = await run(["--help"]);
    assert.equal(launcher.code, 0);
    for (const command of [
      "models",
      "rank <model>",
      "chat <model> <prompt>",
      "sessions",
      "close <session id>",
      "claim",
      "balance",
      "provider status",
      "bid post",
      "stake <amount>",
      "unstake",
    ]) {
      assert.ok(launcher.stdout.includes(command), `help lacks ${command}`);
    }
    const viaTsx = await run(["--help"], {}, ["--import", "tsx", CLI_SOURCE]);
    assert.equal(viaTsx.code, 0);
    assert.equal(viaTsx.stdout, launcher.stdout);
  });

  void test("models and rank, as JSON and as text", async () => {
    const models = await json<{ name: string; modelId: string }[]>(["models"]);
    assert.deepEqual(
      models.map((model) => [model.name, model.modelId]),
      [["tiny", agent.modelId]],
    );
    const text = await run(["models"]);
    assert.match(text.stdout, /^name\s+id\s+royalty\s+active\s+tags\ntiny\s+0x[0-9a-f]{64}\s+5%\s+yes\s+test\n$/);
    const ranked = await json<{ modelId: string; bids: { bidId: string; endpoint: string }[] }>(["rank", "tiny"]);
    const [best] = ranked.bids;
    assert.ok(best);
    assert.equal(best.bidId, agent.bidId);
    assert.equal(best.endpoint, agent.url);
    const rankText = await run(["rank", agent.modelId]);
    assert.match(rankText.stdout, /per hour/);
    assert.match(rankText.stdout, /0\.0036 INFER/);
  });

  void test("chat streams an answer, reuses the open session, and close settles it", async () => {
    const first = await run(["chat", "tiny", "Hello there", "--max-tokens", "16"]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /opened session 0x[0-9a-f]{64} with 1 INFER/);
    assert.ok(first.stdout.length > 1);
    const second = await json<{ sessionId: string; reused: boolean; receipt: { seq: string; outputTokens: string } }>([
      "chat",
      "tiny",
      "And again",
      "--max-tokens",
      "8",
    ]);
    assert.equal(second.reused, true);
    assert.equal(second.receipt.seq, "2");
    const sessions = await json<{ sessionId: string; phase: string }[]>(["sessions"]);
    assert.deepEqual(
      sessions.map((session) => [session.sessionId, session.phase]),
      [[second.sessionId, "open"]],
    );
    const sessionsText = await run(["sessions"]);
    assert.match(sessionsText.stdout, new RegExp(`${second.sessionId}\\s+open\\s+1 INFER`));
    const closed = await json<{ outcome: string; cooperative: boolean; settlement: { refund: string } }>([
      "close",
      second.sessionId,
    ]);
    assert.equal(closed.outcome, "settled");
    assert.equal(closed.cooperative, true);
    assert.ok(BigInt(closed.settlement.refund) > 0n);
  });

  void test("balance and claim: JSON amounts, and nothing to claim says so", async () => {
    const balance = await json<{ account: string; wallet: string; claimable: string }>(["balance"]);
    assert.equal(balance.account, privateKeyToAccount(devKey(market, 9)).address);
    assert.ok(BigInt(balance.wallet) > 0n);
    const text = await run(["balance"]);
    assert.match(text.stdout, /wallet\s+\d[\d.]* INFER/);
    assertExpectedError(await run(["claim"]), 1, /error: 0x[0-9a-fA-F]{40} has nothing to claim in escrow/);
  });

  void test("expected errors: insufficient balance, wrong network, bad settings, bad checksum, keys in flags", async () => {
    const wrongDeployment = join(storeDir, "other-chain.json");
    const futureIds: Record<string, string> = { token: "MarketToken" };
    const addresses: Record<string, string> = { ...market.addresses };
    const futures = Object.entries(addresses).map(([name, address]): [string, string] => [
      `LocalMarket#${futureIds[name] ?? name[0]!.toUpperCase() + name.slice(1)}`,
      name === "staking" ? "0x000000000000000000000000000000000000dEaD" : address,
    ]);
    await writeFile(wrongDeployment, JSON.stringify(Object.fromEntries(futures)));
    // Independent child processes: run side by side.
    const cases: [string[], NodeJS.ProcessEnv, number, RegExp][] = [
      // Account 15 has gas but no market tokens.
      [
        ["chat", "tiny", "hi", "--deposit", "5"],
        { MARKET_PRIVATE_KEY: devKey(market, 15) },
        1,
        /holds 0 INFER; the deposit needs 5 INFER/,
      ],
      [
        ["balance"],
        { MARKET_DEPLOYMENT: wrongDeployment },
        1,
        /no staking contract at 0x000000000000000000000000000000000000dEaD on chain 31337/,
      ],
      [["balance"], { MARKET_RPC_URL: "http://127.0.0.1:1" }, 1, /cannot reach the chain at http:\/\/127\.0\.0\.1:1/],
      [
        ["balance"],
        { MARKET_RPC_URL: "localhost:8545" },
        2,
        /MARKET_RPC_URL: "localhost:8545": expected an http\(s\):\/\/ or ws\(s\):\/\/ URL/,
      ],
      [["balance", "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266"], {}, 2, /wrong checksum/],
      ...["--private-key", "--key=0x01", "--mnemonic", "--password"].map(
        (flag): [string[], NodeJS.ProcessEnv, number, RegExp] => [
          ["balance", flag, "0x01"],
          {},
          2,
          /never taken from flags/,
        ],
      ),
      [["chat", "tiny", "hi"], { MARKET_PRIVATE_KEY: "" }, 2, /no wallet key configured/],
      [["chat", "tiny", "hi"], { MARKET_PRIVATE_KEY: "0x1234" }, 2, /MARKET_PRIVATE_KEY is not a private key/],
      [
        ["chat", "tiny", "hi", "--max-duration", "2d"],
        {},
        2,
        /172800 s is out of range: a session lasts from 1 to 86400 s/,
      ],
      [["frobnicate"], {}, 2, /unknown command "frobnicate"/],
      [["rank"], {}, 2, /expected <model>/],
      [["chat", "tiny", "hi", "--max-duration", "forever"], {}, 2, /--max-duration: "forever" is not a duration/],
    ];
    const results = await Promise.all(cases.map(([args, env]) => run(args, env)));
    results.forEach((result, index) => {
      const [, , code, message] = cases[index]!;
      assertExpectedError(result, code, message);
    });
  });
});

void describe("market (provider)", { timeout: 600_000 }, () => {
  const provider = () => ({ MARKET_PRIVATE_KEY: devKey(market, 1) });

  void test("provider status shows stake, the bid, open sessions and claimable earnings", async () => {
    const status = await json<{
      registered: boolean;
      staked: string;
      minimumStake: string;
      bids: { bidId: string }[];
      openSessions: string;
      claimable: string;
    }>(["provider", "status"], provider());
    assert.equal(status.registered, true);
    assert.ok(BigInt(status.staked) >= BigInt(status.minimumStake));
    assert.deepEqual(
      status.bids.map((bid) => bid.bidId),
      [agent.bidId],
    );
    assert.equal(status.openSessions, "0");
    assert.ok(BigInt(status.claimable) > 0n, "the chat test's session paid the provider");
    const text = await run(["provider", "status", agent.provider.toLowerCase()]);
    assert.match(text.stdout, /registered\s+yes, active/);
    const claimed = await json<{ amount: string }>(["claim"], provider());
    assert.equal(claimed.amount, status.claimable);
  });

  void test("bid update, delete and post; a price out of range names the range", async () => {
    assertExpectedError(
      await run(["bid", "update", "tiny", "--price-per-second", (1n << 80n).toString()], provider()),
      2,
      /a price is from 0 to 1208925819614629174706175 base units/,
    );
    const updated = await json<{ bidId: string }>(
      ["bid", "update", "tiny", "--price-per-second", "2000000000000"],
      provider(),
    );
    assert.equal(updated.bidId, agent.bidId);
    await json(["bid", "delete", agent.bidId], provider());
    const posted = await json<{ bidId: string; fee: string }>(
      ["bid", "post", "tiny", "--price-per-second", "1000000000000", "--price-per-output-token", "4000000000"],
      provider(),
    );
    assert.equal(posted.bidId, agent.bidId);
    assert.ok(BigInt(posted.fee) > 0n);
    assertExpectedError(await run(["bid", "post", "tiny"], provider()), 1, /BidAlreadyActive/);
  });

  void test("stake, unstake and the unbonding bound", async () => {
    const staked = await json<{ amount: string }>(["stake", "2.5"], provider());
    assert.equal(staked.amount, (25n * 10n ** 17n).toString());
    const unstaking = await json<{ unlockAt: number }>(["unstake", "1"], provider());
    assert.ok(unstaking.unlockAt > Date.now() / 1000);
    assertExpectedError(await run(["unstake", "--withdraw"], provider()), 1, /StillUnbonding.*the stake unlocks at/s);
    assertExpectedError(await run(["unstake", "1000000"], provider()), 1, /unstake at most/);
    assertExpectedError(await run(["stake", "1.0000000000000000001"], provider()), 2, /more than 18 decimals/);
  });
});
