/**
 * Versioned migrations, applied in order by Kysely's Migrator (which records them in
 * `kysely_migration` and takes a lock, so two writers starting at once cannot both migrate).
 * A migration is never edited once released: a change is a new entry.
 */
import { type Kysely, type Migration, Migrator, sql } from "kysely";
import { IndexerError } from "../errors.js";
import type { Database } from "./tables.js";

export class MigrationError extends IndexerError {}

const migrations: Record<string, Migration> = {
  "0001_market": {
    async up(db: Kysely<unknown>) {
      await sql`
        CREATE TABLE chain_state (
          id int4 PRIMARY KEY CHECK (id = 1),
          chain_id int8 NOT NULL,
          deployment_address text NOT NULL,
          deployment_block int8 NOT NULL,
          deployment_block_hash text NOT NULL,
          indexed_number int8 NOT NULL,
          indexed_hash text NOT NULL,
          indexed_timestamp int8 NOT NULL,
          finalized_number int8 NOT NULL,
          head_number int8 NOT NULL,
          realtime bool NOT NULL,
          updated_at int8 NOT NULL
        );
        CREATE TABLE blocks (
          number int8 PRIMARY KEY,
          hash text NOT NULL,
          parent_hash text NOT NULL,
          timestamp int8 NOT NULL
        );
        CREATE TABLE journal (
          id bigserial PRIMARY KEY,
          block_number int8 NOT NULL,
          table_name text NOT NULL,
          key text NOT NULL,
          before text
        );
        CREATE INDEX journal_block ON journal (block_number);
        CREATE TABLE feed (
          seq bigserial PRIMARY KEY,
          block_number int8 NOT NULL,
          block_hash text NOT NULL,
          kind text NOT NULL,
          removed bool NOT NULL,
          retracted bool NOT NULL DEFAULT false,
          payload jsonb NOT NULL,
          created_at int8 NOT NULL
        );
        CREATE INDEX feed_block ON feed (block_number);
        CREATE TABLE probes (
          provider text NOT NULL,
          day int8 NOT NULL,
          ok int8 NOT NULL,
          total int8 NOT NULL,
          last_probe_at int8 NOT NULL,
          last_ok bool NOT NULL,
          last_latency_ms int8,
          last_error text,
          PRIMARY KEY (provider, day)
        );

        CREATE TABLE stakes (
          account text PRIMARY KEY,
          staked numeric NOT NULL,
          unbonding numeric NOT NULL,
          unlock_at int8 NOT NULL,
          withdrawn numeric NOT NULL,
          updated_block int8 NOT NULL
        );
        CREATE TABLE providers (
          address text PRIMARY KEY,
          operator text,
          endpoint text NOT NULL,
          metadata_uri text NOT NULL,
          active bool NOT NULL,
          registered_block int8 NOT NULL,
          updated_block int8 NOT NULL
        );
        CREATE TABLE models (
          id text PRIMARY KEY,
          owner text NOT NULL,
          base_model_id text,
          content_hash text NOT NULL,
          royalty_bps int4 NOT NULL,
          name text NOT NULL,
          uri text NOT NULL,
          tags jsonb NOT NULL,
          active bool NOT NULL,
          registered_block int8 NOT NULL,
          updated_block int8 NOT NULL
        );
        CREATE INDEX models_owner ON models (owner);
        CREATE INDEX models_base ON models (base_model_id);
        CREATE TABLE bids (
          id text PRIMARY KEY,
          provider text NOT NULL,
          model_id text NOT NULL,
          price_per_second numeric NOT NULL,
          price_per_input_token numeric NOT NULL,
          price_per_output_token numeric NOT NULL,
          active bool NOT NULL,
          fees_paid numeric NOT NULL,
          posted_block int8 NOT NULL,
          updated_block int8 NOT NULL
        );
        CREATE INDEX bids_model ON bids (model_id, active);
        CREATE INDEX bids_provider ON bids (provider);
        CREATE TABLE sessions (
          id text PRIMARY KEY,
          user_address text NOT NULL,
          provider text NOT NULL,
          bid_id text NOT NULL,
          model_id text NOT NULL,
          nonce numeric NOT NULL,
          session_key text,
          price_per_second numeric NOT NULL,
          price_per_input_token numeric NOT NULL,
          price_per_output_token numeric NOT NULL,
          royalty_recipient text NOT NULL,
          royalty_bps int4 NOT NULL,
          fee_bps int4 NOT NULL,
          challenge_window int8 NOT NULL,
          max_deposit numeric NOT NULL,
          opened_at int8 NOT NULL,
          max_ends_at int8 NOT NULL,
          status text NOT NULL,
          deposit numeric NOT NULL,
          topped_up numeric NOT NULL,
          ends_at int8 NOT NULL,
          opened_block int8 NOT NULL,
          opened_tx text NOT NULL,
          close_requested_by text,
          close_requested_at int8,
          challenge_ends_at int8,
          pending_receipt jsonb,
          cost numeric,
          provider_amount numeric,
          royalty_amount numeric,
          fee_amount numeric,
          refund numeric,
          elapsed_seconds int8,
          treasury text,
          receipt_seq numeric,
          input_tokens numeric,
          output_tokens numeric,
          requests int8,
          ttft_ms_avg int8,
          tps_x1000_avg int8,
          closed_by text,
          challenged bool,
          outcome text,
          settled_at int8,
          settled_block int8,
          settled_tx text
        );
        CREATE INDEX sessions_user ON sessions (user_address, opened_at);
        CREATE INDEX sessions_provider ON sessions (provider, opened_at);
        CREATE INDEX sessions_model ON sessions (model_id, opened_at);
        CREATE INDEX sessions_opened ON sessions (opened_at, id);
        CREATE TABLE balances (
          account text NOT NULL,
          role text NOT NULL,
          earned numeric NOT NULL,
          claimed numeric NOT NULL,
          PRIMARY KEY (account, role)
        );
        CREATE TABLE parameters (
          contract text NOT NULL,
          name text NOT NULL,
          value text NOT NULL,
          updated_block int8 NOT NULL,
          PRIMARY KEY (contract, name)
        );
        CREATE TABLE provider_days (
          model_id text NOT NULL,
          provider text NOT NULL,
          day int8 NOT NULL,
          sessions int8 NOT NULL,
          rated_sessions int8 NOT NULL,
          successful_sessions int8 NOT NULL,
          paid float8 NOT NULL,
          rated_paid float8 NOT NULL,
          successful_paid float8 NOT NULL,
          tps_sum float8 NOT NULL,
          tps_square_sum float8 NOT NULL,
          ttft_sum float8 NOT NULL,
          ttft_square_sum float8 NOT NULL,
          served_seconds int8 NOT NULL,
          PRIMARY KEY (model_id, provider, day)
        );
        CREATE INDEX provider_days_window ON provider_days (model_id, day);
        CREATE TABLE consumer_days (
          model_id text NOT NULL,
          provider text NOT NULL,
          consumer text NOT NULL,
          day int8 NOT NULL,
          sessions int8 NOT NULL,
          paid float8 NOT NULL,
          PRIMARY KEY (model_id, provider, consumer, day)
        );
        CREATE INDEX consumer_days_window ON consumer_days (model_id, day);

        CREATE TABLE ranking_models (
          model_id text PRIMARY KEY,
          settings text NOT NULL,
          window_end int8 NOT NULL,
          computed_block int8 NOT NULL,
          stale bool NOT NULL
        );
        CREATE TABLE rankings (
          model_id text NOT NULL,
          rank int4 NOT NULL,
          provider text NOT NULL,
          bid_id text NOT NULL,
          score float8 NOT NULL,
          parts jsonb NOT NULL,
          metrics jsonb NOT NULL,
          PRIMARY KEY (model_id, rank)
        );
      `.execute(db);
    },
  },
};

/** The latest migration's name: what a read-only replica expects to find applied. */
export const LATEST_MIGRATION = Object.keys(migrations).sort().at(-1)!;

/**
 * `schema` is where the data lives (the connection's search_path): the migrator's own tables go
 * there too, named explicitly, because Kysely looks for them across every schema otherwise.
 */
function migrator(db: Kysely<Database>, schema: string) {
  return new Migrator({
    db,
    migrationTableSchema: schema,
    provider: { getMigrations: () => Promise.resolve(migrations) },
  });
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Kysely<Database>, schema: string): Promise<void> {
  const { error, results } = await migrator(db, schema).migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === "Error")?.migrationName ?? "(unknown)";
    throw new MigrationError(`migration ${failed} failed`, { migration: failed }, { cause: error });
  }
}

/** For read-only replicas: the schema must already be at the latest version (the writer migrates). */
export async function assertMigrated(db: Kysely<Database>, schema: string): Promise<void> {
  const applied = await migrator(db, schema).getMigrations();
  const pending = applied.filter((migration) => migration.executedAt === undefined).map((m) => m.name);
  if (pending.length > 0) {
    throw new MigrationError(
      `the database is missing migrations ${pending.join(", ")}: start the writer (\`indexer start\`) with this database first`,
      { pending },
    );
  }
}
