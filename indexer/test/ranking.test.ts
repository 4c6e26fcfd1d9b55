/**
 * providerRankings against values computed here, independently, from the chain's own record (the
 * SessionSettled and Staked events, the bids as posted) for a scripted history: fast and slow
 * providers, failed and unrated sessions, stake and price differences, a wash trader (one
 * consumer paying for many perfect sessions, and a session with its own operator), a newcomer and
 * a time-priced bid; availability from real health probes. The formula implemented below is
 * docs/ranking.md, written again without the indexer's code.
 */
import assert from "node:assert/strict";
import { type Server, createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { type Address, type Hex, type PrivateKeyAccount, parseEventLogs } from "viem";
import { sessionRouterAbi, stakingAbi } from "../../protocol/index.js";
import { type OpenedSession, E18, MarketDriver, type Prices, type ReceiptStats } from "./helpers/market.js";
import { backends } from "./helpers/databases.js";
import { type TestIndexer, startTestIndexer } from "./helpers/indexer.js";
import { query } from "./helpers/graphql.js";
import { waitFor } from "./helpers/wait.js";

/* THE FORMULA, INDEPENDENTLY (docs/ranking.md) */

const WEIGHTS = {
  throughput: 0.15,
  latency: 0.1,
  consistency: 0.05,
  success: 0.15,
  volume: 0.05,
  duration: 0.05,
  consumers: 0.1,
  stake: 0.05,
  price: 0.2,
  availability: 0.1,
};
type Part = keyof typeof WEIGHTS;
const PRIOR_STRENGTH = 2;
const DEFAULT_TPS = 20;

interface SettledSession {
  provider: Address;
  user: Address;
  cost: bigint;
  elapsed: number;
  seq: bigint;
  outputTokens: bigint;
  ttft: number;
  tps: number;
}

interface Candidate {
  provider: Address;
  operator: Address | null;
  prices: Prices;
  stake: bigint;
  uptime: number | null;
}

function expectedRanking(candidates: Candidate[], sessions: SettledSession[]) {
  const rows = candidates.map((candidate) => {
    const counted = sessions.filter(
      (s) => s.provider === candidate.provider && s.cost > 0n && s.user !== s.provider && s.user !== candidate.operator,
    );
    const weight = (s: SettledSession) => Number(s.cost);
    const sum = (list: SettledSession[], f: (s: SettledSession) => number) => list.reduce((t, s) => t + f(s), 0);
    const rated = counted.filter((s) => s.seq > 0n);
    const good = rated.filter((s) => s.outputTokens > 0n);
    const paid = sum(counted, weight);
    const goodPaid = sum(good, weight);
    const moments = (f: (s: SettledSession) => number) => {
      if (goodPaid === 0) return { mean: null, sd: null };
      const mean = sum(good, (s) => weight(s) * f(s)) / goodPaid;
      return { mean, sd: Math.sqrt(Math.max(0, sum(good, (s) => weight(s) * f(s) ** 2) / goodPaid - mean * mean)) };
    };
    const tps = moments((s) => s.tps);
    const ttft = moments((s) => s.ttft);
    const cvs = [tps, ttft].filter((m) => m.mean !== null && m.mean > 0).map((m) => m.sd! / m.mean!);
    const byConsumer = new Map<string, number>();
    for (const s of counted) byConsumer.set(s.user, (byConsumer.get(s.user) ?? 0) + weight(s));
    const squares = [...byConsumer.values()].reduce((t, p) => t + p * p, 0);
    const evidence = squares > 0 ? (paid * paid) / squares : 0;
    return {
      candidate,
      goodPaid,
      successRate: rated.length > 0 ? goodPaid / sum(rated, weight) : null,
      tps: tps.mean,
      ttft: ttft.mean,
      variation: cvs.length > 0 ? cvs.reduce((a, b) => a + b, 0) / cvs.length : null,
      paid,
      served: sum(counted, (s) => s.elapsed),
      evidence,
      credibility: evidence / (evidence + PRIOR_STRENGTH),
    };
  });
  const middle = (values: number[]) => {
    const sorted = [...values].sort((x, y) => x - y);
    const half = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
  };
  // The model's typical speed (median of providers' speeds) prices everyone's time alike.
  const speeds = rows.filter((r) => r.tps !== null && r.tps > 0).map((r) => r.tps!);
  const modelTps = speeds.length > 0 ? middle(speeds) : DEFAULT_TPS;
  const price = (r: (typeof rows)[number]) =>
    1000 * Number(r.candidate.prices.perOutputToken) +
    1000 * Number(r.candidate.prices.perInputToken) +
    (1000 / modelTps) * Number(r.candidate.prices.perSecond);
  const metric: Record<Part, [(r: (typeof rows)[number]) => number | null, 1 | -1, boolean]> = {
    throughput: [(r) => r.tps, 1, true],
    latency: [(r) => r.ttft, -1, true],
    consistency: [(r) => r.variation, -1, true],
    success: [(r) => r.successRate, 1, true],
    volume: [(r) => Math.log1p(r.paid), 1, false],
    duration: [(r) => Math.log1p(r.served), 1, false],
    consumers: [(r) => Math.log1p(r.evidence), 1, false],
    stake: [(r) => Math.log1p(Number(r.candidate.stake)), 1, false],
    price: [(r) => Math.log1p(price(r)), -1, false],
    availability: [(r) => r.candidate.uptime, 1, false],
  };
  const parts = rows.map(() => ({}) as Record<Part, number>);
  for (const [part, [value, direction, shrunk]] of Object.entries(metric) as [Part, (typeof metric)[Part]][]) {
    // Robust z: distance from the median in scaled median absolute deviations (standard
    // deviations when half the values are equal), clipped to ±3.
    const values = rows.map(value);
    const known = values.filter((v): v is number => v !== null);
    const center = known.length > 0 ? middle(known) : 0;
    let spread = known.length > 0 ? 1.4826 * middle(known.map((v) => Math.abs(v - center))) : 0;
    if (spread === 0 && known.length > 0) {
      const mean = known.reduce((a, b) => a + b, 0) / known.length;
      spread = Math.sqrt(known.reduce((t, v) => t + (v - mean) ** 2, 0) / known.length);
    }
    values.forEach((v, i) => {
      const z = v === null || known.length < 2 || spread === 0 ? 0 : Math.max(-3, Math.min(3, (v - center) / spread));
      parts[i]![part] = 1 / (1 + Math.exp(-direction * z * (shrunk ? rows[i]!.credibility : 1)));
    });
  }
  const totalWeight = Object.values(WEIGHTS).reduce((a, b) => a + b, 0);
  return rows.map((row, i) => ({
    provider: row.candidate.provider,
    parts: parts[i]!,
    score: (Object.keys(WEIGHTS) as Part[]).reduce((t, p) => t + WEIGHTS[p] * parts[i]![p], 0) / totalWeight,
    credibility: row.credibility,
    evidence: row.evidence,
  }));
}

/* THE SCRIPTED HISTORY */

const STATS = (tpsX1000Avg: number, ttftMsAvg: number, outputTokens = 800n): ReceiptStats => ({
  inputTokens: 1_000n,
  outputTokens,
  tpsX1000Avg,
  ttftMsAvg,
});

interface Actors {
  fast: PrivateKeyAccount;
  slow: PrivateKeyAccount;
  flaky: PrivateKeyAccount;
  staked: PrivateKeyAccount;
  wash: PrivateKeyAccount;
  newcomer: PrivateKeyAccount;
  timed: PrivateKeyAccount;
  washOperator: PrivateKeyAccount;
}

interface Scripted {
  modelId: Hex;
  actors: Actors;
  bids: Map<Address, Prices>;
}

async function scriptHistory(market: MarketDriver, healthUrl: string): Promise<Scripted> {
  const a = market.accounts;
  const owner = a[1]!;
  const actors: Actors = {
    fast: a[2]!,
    slow: a[3]!,
    flaky: a[4]!,
    staked: a[5]!,
    wash: a[6]!,
    newcomer: a[7]!,
    timed: a[8]!,
    washOperator: a[14]!,
  };
  const [user1, user2, user3, user4, accomplice] = [a[9]!, a[10]!, a[11]!, a[12]!, a[13]!];
  for (const account of [user2, user3, user4, accomplice, actors.washOperator]) await market.fund(account.address);

  const modelId = await market.registerModel(owner, { name: "ranked", royaltyBps: 500 });
  const prices: Record<keyof Actors, Prices> = {
    fast: { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 2n * 10n ** 9n },
    slow: { perSecond: 2n * 10n ** 12n, perInputToken: 2n * 10n ** 9n, perOutputToken: 6n * 10n ** 9n },
    flaky: { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 3n * 10n ** 9n },
    staked: { perSecond: 15n * 10n ** 11n, perInputToken: 10n ** 9n, perOutputToken: 4n * 10n ** 9n },
    wash: { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 3n * 10n ** 9n },
    newcomer: { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 3n * 10n ** 9n },
    timed: { perSecond: 5n * 10n ** 12n, perInputToken: 0n, perOutputToken: 0n },
    washOperator: { perSecond: 0n, perInputToken: 0n, perOutputToken: 0n },
  };
  const bids = new Map<Address, Prices>();
  const bidOf = new Map<Address, Hex>();
  for (const name of ["fast", "slow", "flaky", "staked", "wash", "newcomer", "timed"] as const) {
    const provider = actors[name];
    await market.registerProvider(provider, {
      endpoint: `${healthUrl}/${name}`,
      stake: name === "staked" ? 500n * E18 : 100n * E18,
      operator: name === "wash" ? actors.washOperator.address : undefined,
    });
    bidOf.set(provider.address, await market.postBid(provider, modelId, prices[name]));
    bids.set(provider.address, prices[name]);
  }

  const open = (provider: PrivateKeyAccount, user: PrivateKeyAccount) =>
    market.openSession({ user, bidId: bidOf.get(provider.address)!, signer: provider, deposit: 10n * E18 });
  const plan: [PrivateKeyAccount, PrivateKeyAccount, ReceiptStats | null][] = [
    [actors.fast, user1, STATS(80_000, 100)],
    [actors.fast, user2, STATS(84_000, 110)],
    [actors.fast, user3, STATS(78_000, 95)],
    [actors.slow, user1, STATS(15_000, 900)],
    [actors.slow, user2, STATS(12_000, 1_100)],
    [actors.flaky, user1, STATS(40_000, 300)],
    [actors.flaky, user2, STATS(0, 0, 0n)],
    [actors.flaky, user3, null],
    [actors.staked, user4, STATS(30_000, 400)],
    [actors.timed, user1, STATS(60_000, 200)],
    [actors.timed, user4, STATS(64_000, 180)],
    ...Array.from({ length: 5 }, (): [PrivateKeyAccount, PrivateKeyAccount, ReceiptStats] => [
      actors.wash,
      accomplice,
      STATS(999_000, 5),
    ]),
    [actors.wash, actors.washOperator, STATS(999_000, 5)],
  ];
  const opened: [OpenedSession, PrivateKeyAccount, ReceiptStats | null][] = [];
  for (const [provider, user, stats] of plan) opened.push([await open(provider, user), provider, stats]);
  await market.increaseTime(300);
  for (const [session, provider, stats] of opened) {
    const closer = provider.address === actors.wash.address ? actors.washOperator : provider;
    await market.settleByProvider(session, closer, stats);
  }
  return { modelId, actors, bids };
}

/** What the chain says: every settlement, and each provider's stake. */
async function chainRecord(market: MarketDriver) {
  const logs = await market.public.getLogs({ address: market.addresses.sessionRouter, fromBlock: 0n });
  const settled = parseEventLogs({ abi: sessionRouterAbi, logs, eventName: "SessionSettled" }).map(
    ({ args }): SettledSession => ({
      provider: args.provider,
      user: args.user,
      cost: args.settlement.cost,
      elapsed: Number(args.settlement.elapsedSeconds),
      seq: args.receipt.seq,
      outputTokens: args.receipt.outputTokens,
      ttft: args.receipt.ttftMsAvg,
      tps: args.receipt.tpsX1000Avg / 1000,
    }),
  );
  const stakeLogs = await market.public.getLogs({ address: market.addresses.staking, fromBlock: 0n });
  const stakes = new Map<Address, bigint>();
  for (const { args } of parseEventLogs({ abi: stakingAbi, logs: stakeLogs, eventName: "Staked" })) {
    stakes.set(args.account, args.staked);
  }
  return { settled, stakes };
}

const RANKING_FIELDS = `rank score providerAddress bidId
  parts { throughput latency consistency success volume duration consumers stake price availability }
  metrics { sessions ratedSessions successfulSessions successRate tpsMean ttftMsMean servedSeconds consumers evidence credibility uptime probes pricePer1kTokens }`;

interface RankingJson {
  rank: number;
  score: number;
  providerAddress: Address;
  parts: Record<Part, number>;
  metrics: {
    sessions: number;
    evidence: number;
    credibility: number;
    uptime: number | null;
    probes: number;
    tpsMean: number | null;
  };
}

let market: MarketDriver;
let health: Server;
let scripted: Scripted;

before(async () => {
  // Provider endpoints: everyone is up except the slow provider, whose /health answers 500.
  health = createServer((request, response) => {
    response.statusCode = request.url?.startsWith("/slow") ? 500 : 200;
    response.end("ok");
  });
  await new Promise<void>((resolve) => health.listen(0, "127.0.0.1", resolve));
  const address = health.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  market = await MarketDriver.start();
  scripted = await scriptHistory(market, `http://127.0.0.1:${address.port}`);
});

after(async () => {
  await market.stop();
  await new Promise((resolve) => health.close(resolve));
});

for (const backend of backends) {
  void describe(`providerRankings on ${backend}`, () => {
    let indexer: TestIndexer;
    const rankings = async (window?: number) =>
      (
        await query<{ providerRankings: RankingJson[] }>(
          indexer.url,
          `query ($model: String!, $window: Int) { providerRankings(modelId: $model, first: 20, window: $window) { ${RANKING_FIELDS} } }`,
          { model: scripted.modelId, window },
        )
      ).providerRankings;

    before(async () => {
      indexer = await startTestIndexer(market, backend, {
        probes: { enabled: true, intervalMs: 100, timeoutMs: 2_000 },
      });
      await indexer.caughtUp();
      // Probes run at once; their round makes the writer refresh the stored rankings.
      await waitFor("every provider to be probed", async () => (await rankings()).every((r) => r.metrics.probes > 0));
    });

    after(async () => {
      await indexer.dispose();
    });

    void test("the score and every part equal the formula computed independently from the chain's record", async () => {
      const { settled, stakes } = await chainRecord(market);
      const ranked = await rankings();
      const { actors } = scripted;
      const candidates: Candidate[] = [...scripted.bids].map(([provider, prices]) => ({
        provider,
        operator: provider === actors.wash.address ? actors.washOperator.address : null,
        prices,
        stake: stakes.get(provider)!,
        uptime: ranked.find((r) => r.providerAddress === provider)!.metrics.uptime,
      }));
      assert.deepEqual(
        candidates.map((c) => c.uptime),
        candidates.map((c) => (c.provider === actors.slow.address ? 0 : 1)),
        "the slow provider's /health fails, everyone else's answers",
      );
      const expected = expectedRanking(candidates, settled).sort((a, b) => b.score - a.score);
      assert.deepEqual(
        ranked.map((r) => r.providerAddress),
        expected.map((e) => e.provider),
        "the order",
      );
      for (const [index, entry] of expected.entries()) {
        const actual = ranked[index]!;
        assert.equal(actual.rank, index + 1);
        assert.ok(
          Math.abs(actual.score - entry.score) < 1e-9,
          `score of ${entry.provider}: ${actual.score} vs ${entry.score}`,
        );
        for (const part of Object.keys(WEIGHTS) as Part[]) {
          assert.ok(
            Math.abs(actual.parts[part] - entry.parts[part]) < 1e-9,
            `${part} of ${entry.provider}: ${actual.parts[part]} vs ${entry.parts[part]}`,
          );
        }
        assert.ok(Math.abs(actual.metrics.credibility - entry.credibility) < 1e-9);
      }
    });

    void test("what the formula is for: the cheap fast provider beats the slow pricey one; faking volume does not pay", async () => {
      const ranked = await rankings();
      const { actors } = scripted;
      const position = (account: PrivateKeyAccount) => ranked.findIndex((r) => r.providerAddress === account.address);
      const entry = (account: PrivateKeyAccount) => ranked[position(account)]!;
      assert.equal(position(actors.fast), 0, "the cheap, fast provider paid by three consumers is first");
      assert.ok(position(actors.fast) < position(actors.slow));
      assert.equal(position(actors.slow), ranked.length - 1, "slow, pricey and down is last");
      // The wash trader: five perfect sessions from one paying account (and one with its own operator,
      // not counted) count as one independent payer, so its claimed speed barely moves its parts.
      const wash = entry(actors.wash);
      assert.equal(wash.metrics.sessions, 5, "the operator's own session is not counted");
      assert.ok(Math.abs(wash.metrics.evidence - 1) < 1e-9);
      // However fast it claims to be, one payer's word moves a quality part by at most the clipped
      // z-score (3) times its credibility (1 / (1 + priorStrength)).
      assert.ok(Math.abs(wash.metrics.credibility - 1 / 3) < 1e-9);
      assert.ok(wash.parts.throughput <= 1 / (1 + Math.exp(-1)) + 1e-12);
      assert.ok(wash.parts.consumers < entry(actors.fast).parts.consumers);
      assert.ok(position(actors.wash) > position(actors.fast));
      // The newcomer is neither zero nor top: the model's mean on every quality part.
      const newcomer = entry(actors.newcomer);
      for (const part of ["throughput", "latency", "consistency", "success"] as const)
        assert.equal(newcomer.parts[part], 0.5);
      assert.ok(position(actors.newcomer) > 0 && position(actors.newcomer) < ranked.length - 1);
    });

    void test("another window is computed on the spot and agrees with the stored ranking", async () => {
      const stored = await rankings();
      const computed = await rankings(30 * 86_400 + 60);
      assert.deepEqual(
        computed.map((r) => r.providerAddress),
        stored.map((r) => r.providerAddress),
      );
      computed.forEach((r, i) => assert.ok(Math.abs(r.score - stored[i]!.score) < 1e-9));
    });

    void test("the ranking follows new settlements", async () => {
      const before = await rankings();
      const snapshot = await market.snapshot();
      try {
        const { actors } = scripted;
        const bidId = market.bidIdOf(actors.newcomer.address, scripted.modelId);
        const session = await market.openSession({
          user: market.accounts[9]!,
          bidId,
          signer: actors.newcomer,
          deposit: 10n * E18,
        });
        await market.increaseTime(60);
        await market.settleByProvider(session, actors.newcomer, STATS(120_000, 50));
        await indexer.caughtUp();
        const after = await rankings();
        const newcomer = after.find((r) => r.providerAddress === actors.newcomer.address)!;
        assert.equal(newcomer.metrics.sessions, 1);
        assert.equal(newcomer.metrics.tpsMean, 120);
        assert.ok(newcomer.parts.throughput > 0.5);
        assert.notDeepEqual(
          after.map((r) => r.score),
          before.map((r) => r.score),
        );
      } finally {
        await market.revert(snapshot);
        await indexer.caughtUp();
      }
    });
  });
}
