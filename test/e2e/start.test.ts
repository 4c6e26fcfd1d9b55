/**
 * `npm start` itself, run through npm as a user runs it: the whole market comes up (a consumer's
 * session settles), a busy port is replaced and said so, `--once` exits 0, a SIGTERM to the npm
 * process alone stops everything, and a process that dies stops everything with a non-zero exit.
 * Every process npm start started is checked to be gone afterwards. Ports are the OS's picks.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { type Server, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { NpmStart } from "./support/npm-start.js";
import { canListProcesses } from "./support/process-tree.js";

/** A cold start compiles the contracts first (a minute or two); a warm one takes well under a minute. */
const READY_TIMEOUT_MS = 5 * 60_000;
const RUNNING = "Ctrl-C (or SIGTERM) stops everything.";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => console.error("cleanup:", error));
});

async function runDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "npm-start-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function launch(args: string[]): NpmStart {
  const started = NpmStart.launch(args);
  cleanups.push(() => {
    started.cleanUp();
    return Promise.resolve();
  });
  return started;
}

/** Listens on a free port (something else using "the agent's port"). */
async function occupiedPort(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as { port: number }).port;
}

const anyPorts = ["--rpc-port", "0", "--indexer-port", "0"];

void describe("npm start", { skip: !canListProcesses && "needs /proc to find the processes", timeout: 900_000 }, () => {
  void test("--once: the market comes up, a consumer's session settles, a busy port is replaced, exit 0", async () => {
    const busy = await occupiedPort();
    const start = launch(["--once", ...anyPorts, "--agent-port", String(busy), "--run-dir", await runDir()]);
    await start.waitForOutput("--once: the session settled", READY_TIMEOUT_MS);
    const { code } = await start.exited;
    const output = start.output();
    assert.equal(code, 0, output);
    assert.match(output, new RegExp(`port ${busy} is busy .*: the provider agent uses \\d+ instead`));
    assert.match(output, /closed cooperatively/);
    assert.match(output, /the indexer shows the session settled/);
    for (const where of ["RPC ", "GraphQL ", "API docs ", "metrics ", "npx market chat", "MARKET_PRIVATE_KEY="]) {
      assert.ok(output.includes(where), `the summary names ${where.trim()}`);
    }
    await start.allGone();
  });

  void test("a SIGTERM to the npm process alone stops every process npm start started", async () => {
    const start = launch([...anyPorts, "--agent-port", "0", "--run-dir", await runDir()]);
    await start.waitForOutput(RUNNING, READY_TIMEOUT_MS);
    const names = [...start.seen.values()].join("\n");
    for (const part of ["hardhat/internal/cli/bootstrap.js node", "indexer.mjs start", "provider-agent.mjs start"]) {
      assert.ok(names.includes(part), `running: ${part}`);
    }
    process.kill(start.pid, "SIGTERM");
    await start.allGone();
    assert.match(start.output(), /exited: stopping/);
  });

  void test("a process that dies stops everything, says which, and exits non-zero", async () => {
    const start = launch([...anyPorts, "--agent-port", "0", "--run-dir", await runDir()]);
    await start.waitForOutput(RUNNING, READY_TIMEOUT_MS);
    const [agentPid] = [...start.seen].find(([, command]) => command.includes("provider-agent.mjs start")) ?? [];
    assert.ok(agentPid !== undefined, "the agent is running");
    process.kill(agentPid, "SIGKILL");
    const { code } = await start.exited;
    assert.equal(code, 1);
    assert.match(start.output(), /npm start failed: agent exited unexpectedly \(killed by SIGKILL\)/);
    await start.allGone();
  });
});
