/**
 * `chat(session)`: an `openai` SDK client pointed at the session's provider agent. Its bearer token
 * is the session key's signed `SessionAuth`, renewed before it expires; after each response the
 * session signs and posts the next cumulative usage receipt by itself (see session/metered-fetch.ts).
 */
import OpenAI, { type ClientOptions } from "openai";
import { agentBaseUrl } from "../agent/agent-client.js";
import type { MarketContext } from "../context.js";
import { liveSession } from "../session/live-registry.js";
import type { MarketSession } from "../session/market-session.js";
import { createMeteredFetch } from "../session/metered-fetch.js";

export type ChatClientOptions = Omit<ClientOptions, "baseURL" | "apiKey" | "fetch">;

export function chat(ctx: MarketContext, session: MarketSession, options: ChatClientOptions = {}): OpenAI {
  let live: ReturnType<typeof liveSession> | undefined;
  const load = () => (live ??= liveSession(ctx, session));
  return new OpenAI({
    maxRetries: 1,
    ...options,
    baseURL: `${agentBaseUrl(session.endpoint)}/v1`,
    apiKey: async () => (await load()).authToken(),
    fetch: createMeteredFetch(load, ctx.fetch),
  });
}

/** Resolves once every receipt of the session's responses so far is signed, stored and posted. */
export async function flushReceipts(ctx: MarketContext, session: MarketSession): Promise<void> {
  await (await liveSession(ctx, session)).flush();
}
