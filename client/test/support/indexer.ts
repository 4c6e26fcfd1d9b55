/**
 * A real indexer for the client's tests: the `indexer start` command as a child process (embedded
 * PGlite in a temp dir) following a test market, its GraphQL API on a free port. A child process
 * keeps the indexer's own dependencies out of the client's type-checked program.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createPublicClient, http } from "viem";
import { freePort, stopProcess } from "../../../scripts/local-chain.js";
import { type LocalMarket, waitFor } from "./local-market.js";

const INDEXER_BIN = fileURLToPath(new URL("../../../indexer/bin/indexer.mjs", import.meta.url));

export interface TestIndexer {
  graphqlUrl: string;
  process: ChildProcess;
  /** Waits until the indexer has applied the chain's current block. */
  caughtUp(): Promise<void>;
  stop(): Promise<void>;
}

async function query<T>(url: string, text: string): Promise<T | undefined> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: text }),
    });
    const body = (await response.json()) as { data?: T };
    return body.data ?? undefined;
  } catch {
    return undefined;
  }
}

export async function startTestIndexer(market: LocalMarket): Promise<TestIndexer> {
  const dataDir = await mkdtemp(join(tmpdir(), "client-indexer-"));
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      INDEXER_BIN,
      "start",
      "--rpc",
      market.rpcUrl,
      "--deployment-file",
      join(market.deploymentDir, "deployed_addresses.json"),
      "--start-block",
      String(market.deploymentBlock),
      "--finality-depth",
      "2",
      "--data-dir",
      dataDir,
      "--port",
      String(port),
    ],
    { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, INDEXER_LOG_LEVEL: "error" } },
  );
  const graphqlUrl = `http://127.0.0.1:${port}/graphql`;
  const caughtUp = async () => {
    const head = Number(await createPublicClient({ transport: http(market.rpcUrl) }).getBlockNumber());
    await waitFor(
      `the indexer to reach block ${head}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`the indexer exited with ${child.exitCode}`);
        const data = await query<{ _meta: { block: { number: number } | null } }>(
          graphqlUrl,
          "{ _meta { block { number } } }",
        );
        return (data?._meta.block?.number ?? -1) >= head;
      },
      60_000,
    );
  };
  return {
    graphqlUrl,
    process: child,
    caughtUp,
    stop: async () => {
      await stopProcess(child);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
