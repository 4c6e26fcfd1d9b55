/**
 * The storage backends every storage-touching test runs on: PGlite always, PostgreSQL when
 * TEST_DATABASE_URL names a server. Each test gets a fresh database: a new PGlite data dir, or a
 * new schema on the server (dropped afterwards).
 */
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { openDatabase } from "../../src/store/database.js";
import { LATEST_MIGRATION, migrateToLatest } from "../../src/store/migrations.js";

export type BackendName = "pglite" | "postgres";

export interface TestDatabase {
  backend: BackendName;
  /** The `database` section of an indexer config. */
  config: { url?: string; schema: string; dataDir: string };
  drop(): Promise<void>;
}

export const backends: BackendName[] = process.env.TEST_DATABASE_URL ? ["pglite", "postgres"] : ["pglite"];

let counter = 0;

const PGLITE_VERSION = (
  JSON.parse(
    readFileSync(new URL("../../../node_modules/@electric-sql/pglite/package.json", import.meta.url), "utf8"),
  ) as {
    version: string;
  }
).version;

/**
 * A migrated PGlite data dir to copy: initdb costs seconds (more on a busy machine), a copy
 * milliseconds. Kept in the temp dir across test runs, keyed by PGlite version and migrations.
 */
async function pgliteTemplate(): Promise<string> {
  const migrations = readFileSync(new URL("../../src/store/migrations.ts", import.meta.url), "utf8");
  const fingerprint = createHash("sha256").update(migrations).digest("hex").slice(0, 12);
  const template = join(tmpdir(), `indexer-pglite-template-${PGLITE_VERSION}-${LATEST_MIGRATION}-${fingerprint}`);
  if (existsSync(join(template, "pgdata"))) return template;
  const building = mkdtempSync(join(tmpdir(), "indexer-pglite-building-"));
  const database = await openDatabase({ kind: "pglite", dataDir: building });
  await migrateToLatest(database.db, database.schema);
  await database.close();
  try {
    renameSync(building, template);
  } catch {
    rmSync(building, { recursive: true, force: true }); // another process won the race: use theirs
  }
  return template;
}

export async function createTestDatabase(backend: BackendName): Promise<TestDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), "indexer-test-"));
  if (backend === "pglite") {
    cpSync(join(await pgliteTemplate(), "pgdata"), join(dataDir, "pgdata"), { recursive: true });
    return {
      backend,
      config: { schema: "public", dataDir },
      drop() {
        rmSync(dataDir, { recursive: true, force: true });
        return Promise.resolve();
      },
    };
  }
  const url = process.env.TEST_DATABASE_URL!;
  const schema = `test_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  return {
    backend,
    config: { url, schema, dataDir },
    async drop() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
