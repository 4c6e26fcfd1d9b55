/**
 * Every table the indexer writes, and the row types the rest of the code reads. Entity tables are
 * what events build (and what a reorg rolls back); system tables hold the checkpoint, the reorg
 * journal and the subscription feed. The DDL is in `migrations.ts`.
 */
import type { ColumnType, Generated } from "kysely";
import type { UsageReceiptJson } from "../../../protocol/index.js";
import { type RowOf, bool, float8, int4, int8, jsonb, nullable, numeric, table, text } from "./columns.js";

/** A usage receipt as stored in JSON (uint64 fields as decimal strings), without its session id. */
export type ReceiptJson = Omit<UsageReceiptJson, "sessionId">;

/* ENTITY TABLES: written only through a ChangeSet, so every change is journaled. */

/** Stake of any account (providers and model owners), as `Staking` reports it in its events. */
export const stakes = table("stakes", ["account"], {
  account: text(),
  staked: numeric(),
  unbonding: numeric(),
  unlock_at: int8(),
  withdrawn: numeric(),
  updated_block: int8(),
});

/** An account's stake before `Staking` has said anything about it: zero everywhere. */
export function emptyStake(account: string): StakeRow {
  return { account, staked: "0", unbonding: "0", unlock_at: 0, withdrawn: "0", updated_block: 0 };
}

export const providers = table("providers", ["address"], {
  address: text(),
  operator: nullable(text()),
  endpoint: text(),
  metadata_uri: text(),
  active: bool(),
  registered_block: int8(),
  updated_block: int8(),
});

export const models = table("models", ["id"], {
  id: text(),
  owner: text(),
  /** Null for a base model; the base model's id for a LoRA adapter. */
  base_model_id: nullable(text()),
  content_hash: text(),
  royalty_bps: int4(),
  name: text(),
  uri: text(),
  tags: jsonb<string[]>(),
  active: bool(),
  registered_block: int8(),
  updated_block: int8(),
});

export const bids = table("bids", ["id"], {
  id: text(),
  provider: text(),
  model_id: text(),
  price_per_second: numeric(),
  price_per_input_token: numeric(),
  price_per_output_token: numeric(),
  active: bool(),
  fees_paid: numeric(),
  posted_block: int8(),
  updated_block: int8(),
});

/** A session: its terms (fixed at open), what changes while open, and its settlement. */
export const sessions = table("sessions", ["id"], {
  id: text(),
  user_address: text(),
  provider: text(),
  bid_id: text(),
  model_id: text(),
  // Terms, exactly as `SessionOpened` carried them: a client needs them to close the session.
  nonce: numeric(),
  /** Null while the contracts' terms carry no session key. */
  session_key: nullable(text()),
  price_per_second: numeric(),
  price_per_input_token: numeric(),
  price_per_output_token: numeric(),
  royalty_recipient: text(),
  royalty_bps: int4(),
  fee_bps: int4(),
  challenge_window: int8(),
  max_deposit: numeric(),
  opened_at: int8(),
  max_ends_at: int8(),
  // State.
  status: text(),
  deposit: numeric(),
  topped_up: numeric(),
  ends_at: int8(),
  opened_block: int8(),
  opened_tx: text(),
  close_requested_by: nullable(text()),
  close_requested_at: nullable(int8()),
  challenge_ends_at: nullable(int8()),
  /** The receipt a pending close carried: `finalize` and `challenge` take it back. */
  pending_receipt: nullable(jsonb<ReceiptJson>()),
  // Settlement (null until settled).
  cost: nullable(numeric()),
  provider_amount: nullable(numeric()),
  royalty_amount: nullable(numeric()),
  fee_amount: nullable(numeric()),
  refund: nullable(numeric()),
  elapsed_seconds: nullable(int8()),
  treasury: nullable(text()),
  receipt_seq: nullable(numeric()),
  input_tokens: nullable(numeric()),
  output_tokens: nullable(numeric()),
  requests: nullable(int8()),
  ttft_ms_avg: nullable(int8()),
  tps_x1000_avg: nullable(int8()),
  closed_by: nullable(text()),
  challenged: nullable(bool()),
  /** "success" | "failure" | "unrated" once settled. */
  outcome: nullable(text()),
  settled_at: nullable(int8()),
  settled_block: nullable(int8()),
  settled_tx: nullable(text()),
});

/** Escrow balances by account and role: credited by settlements, emptied by each claim. */
export const balances = table("balances", ["account", "role"], {
  account: text(),
  role: text(),
  earned: numeric(),
  claimed: numeric(),
});

/** Governance parameters as their setters emitted them (`contract`.`name` = value). */
export const parameters = table("parameters", ["contract", "name"], {
  contract: text(),
  name: text(),
  value: text(),
  updated_block: int8(),
});

/**
 * Ranking aggregates, one row per model, provider and UTC day of settlement, maintained as
 * sessions settle so that a ranking reads a few thousand rows. Weights are what sessions paid.
 */
export const providerDays = table("provider_days", ["model_id", "provider", "day"], {
  model_id: text(),
  provider: text(),
  day: int8(),
  sessions: int8(),
  rated_sessions: int8(),
  successful_sessions: int8(),
  paid: float8(),
  rated_paid: float8(),
  successful_paid: float8(),
  tps_sum: float8(),
  tps_square_sum: float8(),
  ttft_sum: float8(),
  ttft_square_sum: float8(),
  served_seconds: int8(),
});

/** What each consumer paid each provider for a model per day: distinct payers and their shares. */
export const consumerDays = table("consumer_days", ["model_id", "provider", "consumer", "day"], {
  model_id: text(),
  provider: text(),
  consumer: text(),
  day: int8(),
  sessions: int8(),
  paid: float8(),
});

export const entityTables = {
  stakes,
  providers,
  models,
  bids,
  sessions,
  balances,
  parameters,
  provider_days: providerDays,
  consumer_days: consumerDays,
} as const;

export type EntityTables = typeof entityTables;
export type EntityName = keyof EntityTables;
export type EntityRow<N extends EntityName> = RowOf<EntityTables[N]>;

export type StakeRow = EntityRow<"stakes">;
export type ProviderRow = EntityRow<"providers">;
export type ModelRow = EntityRow<"models">;
export type BidRow = EntityRow<"bids">;
export type SessionRow = EntityRow<"sessions">;
export type BalanceRow = EntityRow<"balances">;

/* SYSTEM TABLES: written directly by the sync engine. */

/** The single row saying which chain and deployment the data belongs to, and how far it goes. */
export interface ChainStateTable {
  id: number;
  chain_id: number;
  /** The SessionRouter address: the deployment the rows were built from. */
  deployment_address: string;
  deployment_block: number;
  deployment_block_hash: string;
  /** Last block whose events are all in the tables (the checkpoint). */
  indexed_number: number;
  indexed_hash: string;
  indexed_timestamp: number;
  /** Blocks at or below this are final: their journal is gone and a reorg below it is fatal. */
  finalized_number: number;
  /** The chain head the writer last saw (for `_meta.lag` in API-only replicas). */
  head_number: number;
  /** True once the backfill reached the head: the realtime follower owns the checkpoint. */
  realtime: boolean;
  updated_at: number;
}

/** Unfinalized blocks the indexer applied, for reorg detection. */
export interface BlocksTable {
  number: number;
  hash: string;
  parent_hash: string;
  timestamp: number;
}

/** Before-images of entity rows, one per (block, table, key) first touched in that block. */
export interface JournalTable {
  id: Generated<number>;
  block_number: number;
  table_name: string;
  /** JSON array of the key's values. */
  key: string;
  /** The row before the block changed it, as JSON; null when the block created it. */
  before: string | null;
}

/** Live events for subscriptions, retractions included; pruned as blocks finalize. */
export interface FeedTable {
  seq: Generated<number>;
  block_number: number;
  block_hash: string;
  kind: string;
  removed: boolean;
  /** An event a later reorg retracted (its retraction is a row of its own, `removed`). */
  retracted: Generated<boolean>;
  payload: ColumnType<Record<string, unknown>, string, string>;
  created_at: number;
}

/** Health probes of provider endpoints, per provider and UTC day (wall clock, not chain time). */
export interface ProbesTable {
  provider: string;
  day: number;
  ok: number;
  total: number;
  last_probe_at: number;
  last_ok: boolean;
  last_latency_ms: number | null;
  last_error: string | null;
}

/**
 * Rankings with the configured window and weights, computed by the writer whenever their inputs
 * change, so `providerRankings` reads `first` rows instead of aggregating a model's history.
 */
export interface RankingModelsTable {
  model_id: string;
  /** Hash of the ranking settings the rows were computed with: another API config recomputes. */
  settings: string;
  /** Chain time the window ended at. */
  window_end: number;
  computed_block: number;
  /** Inputs changed since (during backfill): serve by computing, until the writer refreshes. */
  stale: boolean;
}

export interface RankingsTable {
  model_id: string;
  rank: number;
  provider: string;
  bid_id: string;
  score: number;
  parts: ColumnType<Record<string, number>, string, string>;
  metrics: ColumnType<Record<string, number | null>, string, string>;
}

export type EntityDatabase = { [N in EntityName]: EntityRow<N> };

/** The database as Kysely sees it. */
export interface Database extends EntityDatabase {
  chain_state: ChainStateTable;
  blocks: BlocksTable;
  journal: JournalTable;
  feed: FeedTable;
  probes: ProbesTable;
  ranking_models: RankingModelsTable;
  rankings: RankingsTable;
}
