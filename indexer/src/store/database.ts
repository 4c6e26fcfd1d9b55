/**
 * Opens the database: embedded PGlite on disk by default, PostgreSQL when a URL is given. Both go
 * through node-postgres (`pg`) and Kysely's PostgreSQL dialect — PGlite ships a `pg` connection
 * adapter — so there is one dialect, one set of type parsers and one set of queries for both.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { createPgConfig } from "@electric-sql/pglite/node-postgres";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { IndexerError } from "../errors.js";
import type { Database } from "./tables.js";

export type Db = Kysely<Database>;

export type DatabaseTarget =
  { kind: "pglite"; dataDir: string } | { kind: "postgres"; url: string; schema: string; poolSize?: number };

export interface OpenOptions {
  /** API-only replicas open PostgreSQL read-only: every transaction refuses writes. */
  readOnly?: boolean;
}

export interface OpenDatabase {
  db: Db;
  target: DatabaseTarget;
  /** The PostgreSQL schema the tables live in (`public` on PGlite). */
  schema: string;
  /** A short description for logs (never the password). */
  description: string;
  /** PostgreSQL only: a client of its own for LISTEN (null on PGlite, where the API shares the process). */
  listenClient(): Promise<pg.Client | null>;
  /**
   * Makes this process the only writer of the data (PGlite: its lock file, taken at open;
   * PostgreSQL: a session advisory lock on the schema, held until `close`). Throws when taken.
   */
  lockWriter(): Promise<void>;
  close(): Promise<void>;
}

export class DatabaseError extends IndexerError {}

const INT8_OID = 20;
// pg types the OID as an enum of the types it knows; any OID is accepted at runtime.
const builtInParser = pg.types.getTypeParser.bind(pg.types) as (
  oid: number,
  format?: "text" | "binary",
) => (value: string) => unknown;

/**
 * int8 columns hold block numbers, timestamps and counts, all far below 2^53: parse them as numbers.
 * NUMERIC (amounts) stays a decimal string, exact.
 */
const typeParsers = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === INT8_OID) return (value: string) => Number(value);
    return builtInParser(oid, format);
  },
};

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Refuses a schema name that would need quoting: it is put in `search_path` and NOTIFY channels. */
export function checkSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new DatabaseError(`database schema "${schema}" must match ${SCHEMA_NAME.source}`, { schema });
  }
  return schema;
}

export async function openDatabase(target: DatabaseTarget, options: OpenOptions = {}): Promise<OpenDatabase> {
  return target.kind === "pglite" ? openPglite(target) : openPostgres(target, options);
}

async function openPglite(target: Extract<DatabaseTarget, { kind: "pglite" }>): Promise<OpenDatabase> {
  const dataDir = resolve(target.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const releaseLock = lockDataDir(dataDir);
  let pglite: PGlite;
  try {
    pglite = await PGlite.create(join(dataDir, "pgdata"));
  } catch (error) {
    releaseLock();
    throw new DatabaseError(`cannot open PGlite in ${dataDir}`, { dataDir }, { cause: error });
  }
  // One connection: PGlite is a single-user PostgreSQL; the pool queues queries behind a transaction.
  const pool = new pg.Pool(Object.assign(createPgConfig(pglite), { types: typeParsers }));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    target,
    schema: "public",
    description: `PGlite in ${dataDir}`,
    listenClient: () => Promise.resolve(null),
    lockWriter: () => Promise.resolve(),
    async close() {
      await db.destroy();
      await pglite.close();
      releaseLock();
    },
  };
}

async function openPostgres(
  target: Extract<DatabaseTarget, { kind: "postgres" }>,
  options: OpenOptions,
): Promise<OpenDatabase> {
  const schema = checkSchemaName(target.schema);
  const settings = [`-c search_path=${schema}`];
  if (options.readOnly) settings.push("-c default_transaction_read_only=on");
  const config: pg.PoolConfig = {
    connectionString: target.url,
    options: settings.join(" "),
    max: target.poolSize ?? 10,
    types: typeParsers,
  };
  const pool = new pg.Pool(config);
  // An idle client that loses its server must not crash the process: the next query reports it.
  pool.on("error", () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    if (!options.readOnly) await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(db);
    else await sql`SELECT 1`.execute(db);
  } catch (error) {
    await db.destroy();
    throw new DatabaseError(`cannot connect to PostgreSQL at ${redactUrl(target.url)}`, { schema }, { cause: error });
  }
  const connect = async () => {
    const client = new pg.Client({ connectionString: target.url, options: settings.join(" ") });
    client.on("error", () => undefined);
    await client.connect();
    return client;
  };
  let lockHolder: pg.Client | undefined;
  return {
    db,
    target,
    schema,
    description: `PostgreSQL ${redactUrl(target.url)} (schema ${schema})`,
    listenClient: connect,
    async lockWriter() {
      const client = await connect();
      const result = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock(hashtext($1)) AS locked", [
        `inference-market-indexer:${schema}`,
      ]);
      if (result.rows[0]?.locked !== true) {
        await client.end();
        throw new DatabaseError(
          `another indexer is writing to schema ${schema}: one writer per schema (run \`indexer serve\` for more API processes)`,
          { schema },
        );
      }
      lockHolder = client;
    },
    async close() {
      await lockHolder?.end();
      await db.destroy();
    },
  };
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}

/**
 * PGlite's files must have one writer: a lock file with our pid. A lock left by a process that no
 * longer runs (kill -9) is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  const lockFile = join(dataDir, "indexer.lock");
  try {
    writeFileSync(lockFile, String(process.pid), { flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const holder = Number(readFileSync(lockFile, "utf8").trim());
    // A lock left by a process that is gone (kill -9) is taken over; one of a live process,
    // this one included (a second open in the same process), is refused.
    if (Number.isInteger(holder) && isRunning(holder)) {
      throw new DatabaseError(
        `the data dir ${dataDir} is in use by process ${holder}: PGlite has one writer; run \`indexer serve\` against PostgreSQL for more readers`,
        { dataDir, pid: holder },
      );
    }
    writeFileSync(lockFile, String(process.pid));
  }
  return () => rmSync(lockFile, { force: true });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
