/**
 * The consumer's side of `npm start`, once, through the client SDK (client/src): rank the model's
 * bids (the indexer's ranking), open a session on the best, chat with the answer streamed to the
 * terminal (the `openai` package, receipts signed by the session key), close cooperatively, and
 * show the settlement and the ranking the indexer now computes. Exits 0 once the session settled.
 *
 *   MARKET_PRIVATE_KEY=0x… node --import tsx scripts/consumer/demo.ts \
 *     --rpc-url http://127.0.0.1:8545 --indexer-url http://127.0.0.1:42069/graphql \
 *     --deployment ignition/deployments/chain-31337/deployed_addresses.json \
 *     --store-dir cache/market/consumer --model 0x…
 */
import { parseArgs } from "node:util";
import { APIError } from "openai";
import type { Hex } from "viem";
import {
  type MarketClient,
  MarketError,
  type RankedBid,
  createMarketClient,
  formatAmount,
  requireAccountFromEnv,
} from "../../client/src/index.js";

const DEPOSIT = 10n ** 18n; // 1 token: the session's cap; the unused part is refunded at close
const MAX_DURATION_SECONDS = 600;
const RANKING_TIMEOUT_MS = 60_000;

class DemoError extends Error {}

function options() {
  const { values } = parseArgs({
    options: {
      "rpc-url": { type: "string" },
      "indexer-url": { type: "string" },
      deployment: { type: "string" },
      "store-dir": { type: "string" },
      model: { type: "string" },
      prompt: { type: "string", default: "Hello! Who are you, and what can you do?" },
      "max-tokens": { type: "string", default: "48" },
    },
  });
  const required = (name: keyof typeof values): string => {
    const value = values[name];
    if (typeof value !== "string" || value === "") throw new DemoError(`--${name} is required`);
    return value;
  };
  return {
    rpcUrl: required("rpc-url"),
    indexerUrl: required("indexer-url"),
    deployment: required("deployment"),
    storeDir: required("store-dir"),
    modelId: required("model") as Hex,
    prompt: required("prompt"),
    maxTokens: Number(required("max-tokens")),
  };
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const short = (hex: string) => `${hex.slice(0, 10)}…`;

/**
 * A random-weight test model emits arbitrary bytes: control characters (an escape sequence would
 * drive the terminal) are shown as "·".
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
const printable = (text: string) => text.replace(CONTROL_CHARACTERS, "·");

async function waitForValue<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new DemoError(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function showRanking(market: MarketClient, ranking: readonly RankedBid[]): void {
  ranking.forEach((bid, index) => {
    const perHour = formatAmount(bid.prices.perSecond * 3600n, market.token);
    const perKiloOutput = formatAmount(bid.prices.perOutputToken * 1000n, market.token);
    const score = bid.score === undefined ? "" : `score ${bid.score.toFixed(3)}, `;
    const sessions = bid.sessions === undefined ? "" : `${bid.sessions} settled session(s), `;
    say(
      `  ${index + 1}. provider ${bid.provider}  ${score}${sessions}${perHour}/hour + ${perKiloOutput}/1k output tokens  ${bid.endpoint}`,
    );
  });
}

/** The session as the indexer's GraphQL API shows it. */
async function indexedStatus(indexerUrl: string, sessionId: Hex): Promise<string | undefined> {
  const response = await fetch(indexerUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: `{ session(id: "${sessionId}") { status } }` }),
  });
  const body = (await response.json()) as { data?: { session: { status: string } | null } };
  return body.data?.session?.status;
}

async function main(): Promise<void> {
  const settings = options();
  const market = await createMarketClient({
    rpcUrl: settings.rpcUrl,
    indexerUrl: settings.indexerUrl,
    deploymentPath: settings.deployment,
    account: requireAccountFromEnv(),
    store: { dir: settings.storeDir },
    pollingInterval: 250,
  });
  say(`consumer ${market.account?.address ?? "?"}, model ${settings.modelId}`);

  const ranking = await waitForValue(
    "the indexer to rank the model's bids",
    async () => {
      const bids = await market.rankBids(settings.modelId);
      return bids.length > 0 ? bids : undefined;
    },
    RANKING_TIMEOUT_MS,
  );
  say("ranking (the indexer's providerRankings, best first):");
  showRanking(market, ranking);

  say(`opening a session on the best bid (deposit ${formatAmount(DEPOSIT, market.token)}, ${MAX_DURATION_SECONDS} s)…`);
  const { session, skipped, txHash } = await market.openSession({
    modelId: settings.modelId,
    deposit: DEPOSIT,
    maxDuration: MAX_DURATION_SECONDS,
  });
  for (const attempt of skipped) say(`  skipped: ${JSON.stringify(attempt)}`);
  say(`opened session ${session.id} with ${session.provider} at ${session.endpoint} (tx ${short(txHash)})`);

  say(`> ${settings.prompt}`);
  const openai = market.chat(session);
  const stream = await openai.chat.completions.create({
    model: settings.modelId,
    messages: [{ role: "user", content: settings.prompt }],
    max_completion_tokens: settings.maxTokens,
    stream: true,
  });
  for await (const chunk of stream) process.stdout.write(printable(chunk.choices[0]?.delta.content ?? ""));
  process.stdout.write("\n");
  await market.flushReceipts(session);
  const receipt = (await market.status(session)).record.receipts.latest?.receipt;
  if (receipt) {
    say(
      `receipt #${receipt.seq} signed by the session key: ${receipt.inputTokens} input + ${receipt.outputTokens} output tokens, ` +
        `time to first token ${receipt.ttftMsAvg} ms, ${(receipt.tpsX1000Avg / 1000).toFixed(0)} tokens/s`,
    );
  }

  const closed = await market.closeSession(session);
  if (closed.outcome !== "settled") {
    throw new DemoError(`the session did not settle at once: ${closed.reason}`);
  }
  const { settlement } = closed;
  const amount = (value: string) => formatAmount(BigInt(value), market.token);
  say(
    `closed ${closed.cooperative ? "cooperatively (the agent countersigned the last receipt)" : "alone"}: ` +
      `cost ${amount(settlement.cost)} = provider ${amount(settlement.providerAmount)} + royalty ${amount(settlement.royaltyAmount)} ` +
      `+ protocol fee ${amount(settlement.feeAmount)}; refund ${amount(settlement.refund)}`,
  );

  await waitForValue(
    "the indexer to show the session settled",
    async () => ((await indexedStatus(settings.indexerUrl, session.id)) === "SETTLED" ? true : undefined),
    RANKING_TIMEOUT_MS,
  );
  const updated = await waitForValue(
    "the indexer's ranking to count the session",
    async () => {
      const bids = await market.rankBids(settings.modelId);
      return bids.some((bid) => (bid.sessions ?? 0) > 0) ? bids : undefined;
    },
    RANKING_TIMEOUT_MS,
  );
  say("the indexer shows the session settled; the ranking now:");
  showRanking(market, updated);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    if (error instanceof DemoError || error instanceof MarketError || error instanceof APIError) {
      const hint = error instanceof MarketError && error.hint ? ` (${error.hint})` : "";
      process.stderr.write(`the consumer failed: ${error.message}${hint}\n`);
    } else {
      process.stderr.write(
        `the consumer failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    process.exit(1);
  },
);
