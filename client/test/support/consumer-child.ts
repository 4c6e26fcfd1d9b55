/**
 * A consumer process for the restart test: opens a session on BID_ID, chats once, prints the session
 * id as a JSON line, and then stays alive until it is killed (as a crash would kill it).
 */
import { privateKeyToAccount } from "viem/accounts";
import type { Hex } from "viem";
import type { MarketAddresses } from "../../../protocol/index.js";
import { createMarketClient } from "../../src/index.js";

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const market = await createMarketClient({
  rpcUrl: env("CHILD_RPC_URL"),
  account: privateKeyToAccount(env("CHILD_KEY") as Hex),
  addresses: JSON.parse(env("CHILD_ADDRESSES")) as MarketAddresses,
  store: { dir: env("CHILD_STORE_DIR") },
  pollingInterval: 100,
});
const { session } = await market.openSession({
  bidId: env("CHILD_BID_ID") as Hex,
  deposit: 10n ** 18n,
  maxDuration: 3600,
});
const openai = market.chat(session);
await openai.chat.completions.create({
  model: env("CHILD_MODEL_ID"),
  messages: [{ role: "user", content: "Hello" }],
  max_completion_tokens: 6,
});
await market.flushReceipts(session);
process.stdout.write(`${JSON.stringify({ sessionId: session.id })}\n`);
setInterval(() => undefined, 60_000);
