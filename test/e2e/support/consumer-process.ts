/**
 * A consumer as its own process, for the test that kills one mid-session: opens a session on the
 * model through the indexer's ranking, chats once (a signed, acknowledged receipt), then starts a
 * second streamed answer and, after its first chunk, stops reading and waits to be killed. It says
 * how far it got in JSON lines on stdout: {"opened": id}, {"receipt": seq}, {"streaming": true}.
 *
 *   MARKET_PRIVATE_KEY=0x… node --import tsx test/e2e/support/consumer-process.ts
 *     (with E2E_RPC_URL, E2E_INDEXER_URL, E2E_DEPLOYMENT, E2E_STORE_DIR, E2E_MODEL_ID)
 */
import type { Hex } from "viem";
import { createMarketClient, requireAccountFromEnv } from "../../../client/src/index.js";

const setting = (name: string): string => {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
};
const report = (fields: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(fields)}\n`);

const modelId = setting("E2E_MODEL_ID") as Hex;
const market = await createMarketClient({
  rpcUrl: setting("E2E_RPC_URL"),
  indexerUrl: setting("E2E_INDEXER_URL"),
  deploymentPath: setting("E2E_DEPLOYMENT"),
  account: requireAccountFromEnv(),
  store: { dir: setting("E2E_STORE_DIR") },
  pollingInterval: 100,
});
const { session } = await market.openSession({ modelId, deposit: 10n ** 18n, maxDuration: 3600 });
report({ opened: session.id, provider: session.provider });

const openai = market.chat(session);
await openai.chat.completions.create({
  model: modelId,
  messages: [{ role: "user", content: "First question" }],
  max_completion_tokens: 8,
});
await market.flushReceipts(session);
const status = await market.status(session);
report({ receipt: status.record.receipts.latest?.receipt.seq, acknowledged: status.record.receipts.acknowledgedSeq });

const stream = await openai.chat.completions.create({
  model: modelId,
  messages: [{ role: "user", content: "Second question, never finished" }],
  max_completion_tokens: 200,
  stream: true,
});
const reader = stream[Symbol.asyncIterator]();
await reader.next();
report({ streaming: true });
// Mid-answer: read no further and wait for the SIGKILL.
setInterval(() => undefined, 60_000);
