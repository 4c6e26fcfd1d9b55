/**
 * What every action works with: the connected chain, how progress is shown, and — for the
 * consumer's session actions — the local store, the indexer and the agent's HTTP settings.
 * `createMarketClient` builds one; actions take it as their first argument (viem's shape).
 */
import type { MarketChain } from "./chain/connect.js";
import type { Progress } from "./chain/progress.js";
import type { IndexerClient } from "./indexer/indexer-client.js";
import type { SessionStore } from "./store/session-store.js";

export interface MarketContext extends MarketChain {
  progress: Progress;
  /** Undefined without a wallet (read-only use). */
  store: SessionStore | undefined;
  /** Undefined when no indexer URL is configured: rankings then come from the chain's logs. */
  indexer: IndexerClient | undefined;
  /** Used for every request to agents (tests inject failures through it). */
  fetch: typeof fetch;
  settings: ClientSettings;
}

export interface ClientSettings {
  /** How long an agent may take to answer an approval, ms. */
  agentTimeoutMs: number;
  /** Lifetime of a bearer token, seconds (renewed a minute before it ends). */
  authLifetimeSeconds: number;
  /** An approval must stay valid at least this long after it arrives, seconds. */
  minApprovalValiditySeconds: number;
  /** First block scanned when logs are read from the chain (no indexer). */
  fromBlock: bigint;
}

export const DEFAULT_SETTINGS: ClientSettings = {
  agentTimeoutMs: 10_000,
  authLifetimeSeconds: 600,
  minApprovalValiditySeconds: 30,
  fromBlock: 0n,
};
