/**
 * `createMarketClient`: the SDK's entry point. Connects to the chain, checks the deployment, opens
 * the local session store and binds every action to that context:
 *
 *   const market = await createMarketClient({ rpcUrl, account, indexerUrl, store: { dir } });
 *   const { session } = await market.openSession({ modelId, deposit, maxDuration: 3600 });
 *   const openai = market.chat(session);
 *   await openai.chat.completions.create({ model: "…", messages: [...], stream: true });
 *   await market.closeSession(session);
 */
import { homedir } from "node:os";
import { join } from "node:path";
import type { Hex, LocalAccount } from "viem";
import { z } from "zod";
import type { MarketAddresses, Prices } from "../../protocol/index.js";
import { type ChatClientOptions, chat, flushReceipts } from "./actions/chat.js";
import { claim } from "./actions/claim.js";
import { type CloseOptions, closeSession, finalizeSession } from "./actions/closeSession.js";
import { getBalance } from "./actions/getBalance.js";
import { getSessionStatus } from "./actions/getSessionStatus.js";
import { listSessions } from "./actions/listSessions.js";
import { type OpenSessionParams, openSession } from "./actions/openSession.js";
import { deleteBid, postBid, updateBid } from "./actions/provider/bids.js";
import { getProviderStatus } from "./actions/provider/getProviderStatus.js";
import { requestUnstake, stake, withdrawStake } from "./actions/provider/stake.js";
import { rankBids } from "./actions/rankBids.js";
import { rebuildSession, resumeOpens, syncSessions } from "./actions/recoverSessions.js";
import { topUp } from "./actions/topUp.js";
import { connectMarket } from "./chain/connect.js";
import { listModelsFromChain } from "./chain/market-logs.js";
import { type Progress, silentProgress } from "./chain/progress.js";
import { type ClientSettings, DEFAULT_SETTINGS, type MarketContext } from "./context.js";
import { ConfigError } from "./errors.js";
import { createIndexerClient } from "./indexer/indexer-client.js";
import type { MarketSession, SessionRef } from "./session/market-session.js";
import { storeUnlockMessage } from "./store/encryption.js";
import { SessionStore } from "./store/session-store.js";

export const DEFAULT_STORE_DIR = join(homedir(), ".inference-market", "sessions");

const urlSetting = (protocols: RegExp, what: string) =>
  z.string().refine((value) => {
    try {
      return protocols.test(new URL(value).protocol);
    } catch {
      return false;
    }
  }, `expected ${what}`);

const optionsSchema = z.object({
  rpcUrl: urlSetting(/^(https?|wss?):$/, "an http(s):// or ws(s):// URL"),
  indexerUrl: urlSetting(/^https?:$/, "an http(s):// URL of the indexer's GraphQL endpoint").optional(),
  deploymentPath: z.string().min(1).optional(),
  store: z.object({ dir: z.string().min(1), password: z.string().min(1).optional() }).optional(),
});

export interface MarketClientOptions {
  rpcUrl: string;
  /** The wallet; without one the client is read-only. */
  account?: LocalAccount;
  addresses?: MarketAddresses;
  deploymentPath?: string;
  /** The indexer's GraphQL URL (e.g. http://127.0.0.1:42069/graphql); without it, rankings come from the chain. */
  indexerUrl?: string;
  /**
   * The session store (default dir ~/.inference-market/sessions). Session keys are encrypted with a
   * key derived from `password` when given, else from the wallet's signature of a fixed message.
   */
  store?: { dir: string; password?: string };
  progress?: Progress;
  fetch?: typeof fetch;
  settings?: Partial<ClientSettings>;
  pollingInterval?: number;
}

export async function createMarketClient(options: MarketClientOptions) {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(issue.path.join(".") || "options", issue.message);
  }
  const chain = await connectMarket(options);
  const fetchImpl = options.fetch ?? fetch;
  const account = options.account;
  const storeOptions = options.store ?? { dir: DEFAULT_STORE_DIR };
  const store = account
    ? new SessionStore({
        dir: storeOptions.dir,
        user: account.address,
        secret: async () =>
          storeOptions.password !== undefined
            ? { kind: "password", password: storeOptions.password }
            : {
                kind: "wallet-signature",
                signature: await account.signMessage({ message: storeUnlockMessage(account.address) }),
              },
      })
    : undefined;
  const ctx: MarketContext = {
    ...chain,
    progress: options.progress ?? silentProgress,
    store,
    indexer: options.indexerUrl ? createIndexerClient(options.indexerUrl, fetchImpl) : undefined,
    fetch: fetchImpl,
    settings: { ...DEFAULT_SETTINGS, ...options.settings },
  };
  return {
    context: ctx,
    chainId: ctx.chainId,
    addresses: ctx.addresses,
    token: ctx.token,
    account,
    // consumer
    listModels: () => listModelsFromChain(ctx),
    rankBids: (modelId: Hex, rankOptions?: { first?: number }) => rankBids(ctx, modelId, rankOptions),
    openSession: (params: OpenSessionParams) => openSession(ctx, params),
    chat: (session: MarketSession, chatOptions?: ChatClientOptions) => chat(ctx, session, chatOptions),
    flushReceipts: (session: MarketSession) => flushReceipts(ctx, session),
    topUp: (session: SessionRef, amount: bigint) => topUp(ctx, session, amount),
    closeSession: (session: SessionRef, closeOptions?: CloseOptions) => closeSession(ctx, session, closeOptions),
    finalizeSession: (session: SessionRef) => finalizeSession(ctx, session),
    status: (session: SessionRef) => getSessionStatus(ctx, session),
    sessions: (listOptions?: { sync?: boolean }) => listSessions(ctx, listOptions),
    resumeOpens: () => resumeOpens(ctx),
    syncSessions: () => syncSessions(ctx),
    rebuildSession: (sessionId: Hex) => rebuildSession(ctx, sessionId),
    claim: () => claim(ctx),
    balance: (address?: Hex) => getBalance(ctx, address),
    // provider
    providerStatus: (provider?: Hex) => getProviderStatus(ctx, provider),
    stake: (amount: bigint) => stake(ctx, amount),
    requestUnstake: (amount: bigint) => requestUnstake(ctx, amount),
    withdrawStake: () => withdrawStake(ctx),
    postBid: (params: { modelId: Hex; prices: Prices }) => postBid(ctx, params),
    updateBid: (params: { bidId: Hex; prices: Prices }) => updateBid(ctx, params),
    deleteBid: (bidId: Hex) => deleteBid(ctx, bidId),
  };
}

export type MarketClient = Awaited<ReturnType<typeof createMarketClient>>;
