/**
 * `npm start`: a local market, from a fresh clone after `npm ci`.
 *
 * 1. compiles the contracts (a no-op when nothing changed);
 * 2. starts `hardhat node` on 127.0.0.1:8545 (its log goes to cache/hardhat-node.log);
 * 3. deploys LocalMarket with Ignition and ignition/parameters/localhost.json, after wiping
 *    ignition/deployments/chain-31337: a started node is a new chain with the same chain id;
 * 4. seeds it (scripts/seed.ts): a staked provider with an operator, a model and a bid;
 * 5. prints the addresses and what to do next, and keeps the node running until Ctrl-C.
 *
 * The provider agent, the indexer and the consumer client are not part of the project yet: this
 * starts the chain and the contracts only, and says so.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join, relative } from "node:path";
import { type Address, createPublicClient, getAddress, http } from "viem";
import { marketplaceAbi } from "../protocol/abis";
import { deploymentFile, loadMarketAddresses } from "../protocol/addresses";

const ROOT = join(__dirname, "..");
const HOST = "127.0.0.1";
const PORT = 8545;
const RPC_URL = `http://${HOST}:${PORT}`;
const CHAIN_ID = 31337;
const HARDHAT_CLI = require.resolve("hardhat/internal/cli/bootstrap.js");
const NODE_LOG = join(ROOT, "cache", "hardhat-node.log");
const NODE_READY_TIMEOUT_MS = 60_000;
const CHILD_EXIT_GRACE_MS = 5_000;

const running = new Set<ChildProcess>();
let stopping = false;
/** Read through a function: a signal handler sets `stopping` while `main` awaits. */
const stopRequested = () => stopping;

class StartError extends Error {}

function hardhat(args: string[], stdio: "inherit" | ["ignore", number, number] = "inherit"): ChildProcess {
  const child = spawn(process.execPath, [HARDHAT_CLI, ...args], { cwd: ROOT, env: process.env, stdio });
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

/** Runs one hardhat command to its end; throws when it fails. */
async function step(title: string, args: string[]): Promise<void> {
  console.log(`\n== ${title}: hardhat ${args.join(" ")}`);
  const child = hardhat(args);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (exitCode) => resolve(exitCode));
  });
  if (stopRequested()) return;
  if (code !== 0) throw new StartError(`${title} failed (hardhat ${args[0] ?? ""} exited with ${code ?? "a signal"})`);
}

/** Fails clearly when something already listens on the port (another node, most likely). */
async function assertPortFree(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new StartError(
              `port ${PORT} on ${HOST} is already in use: is another \`hardhat node\` (or \`npm start\`) running? ` +
                `Stop it (\`lsof -i :${PORT}\` names the process) and run \`npm start\` again.`,
            )
          : error,
      ),
    );
    probe.listen(PORT, HOST, () => {
      probe.close(() => {
        resolve();
      });
    });
  });
}

async function rpc<T>(method: string, params: unknown[] = []): Promise<T> {
  const response = await fetch(RPC_URL, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = (await response.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

function logTail(lines = 20): string {
  try {
    return readFileSync(NODE_LOG, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Starts `hardhat node` and waits until it answers on the RPC port. */
async function startNode(): Promise<ChildProcess> {
  console.log(`\n== starting hardhat node on ${RPC_URL} (log: ${relative(ROOT, NODE_LOG)})`);
  const log = openSync(NODE_LOG, "w");
  const node = hardhat(["node", "--hostname", HOST, "--port", String(PORT)], ["ignore", log, log]);
  closeSync(log);
  let exited: number | null | undefined;
  node.once("exit", (code) => (exited = code));
  const deadline = Date.now() + NODE_READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited !== undefined)
      throw new StartError(`hardhat node exited (${exited ?? "signal"}) before it was ready:\n${logTail()}`);
    try {
      const chainId = Number(await rpc<string>("eth_chainId"));
      if (chainId !== CHAIN_ID) throw new StartError(`the node on ${RPC_URL} has chain id ${chainId}, not ${CHAIN_ID}`);
      return node;
    } catch (error) {
      if (error instanceof StartError) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  throw new StartError(
    `hardhat node did not answer on ${RPC_URL} within ${NODE_READY_TIMEOUT_MS / 1000} s:\n${logTail()}`,
  );
}

/** Stops every child (the node last) and waits for them, killing any that lingers. */
async function stopAll(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            resolve();
            return;
          }
          const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_EXIT_GRACE_MS);
          child.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill("SIGTERM");
        }),
    ),
  );
}

async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopRequested()) return;
  stopping = true;
  console.log(`\n${signal}: stopping the hardhat node (its chain goes with it)`);
  await stopAll();
  console.log("stopped");
  process.exit(0);
}

/** What is deployed and seeded, read back from the chain. */
async function summary(): Promise<string> {
  const addresses = loadMarketAddresses(deploymentFile(ROOT, CHAIN_ID));
  const accounts = (await rpc<Address[]>("eth_accounts")).map((account) => getAddress(account));
  const client = createPublicClient({ transport: http(RPC_URL) });
  const bids = await client.getContractEvents({
    address: addresses.marketplace,
    abi: marketplaceAbi,
    eventName: "BidPosted",
    fromBlock: 0n,
  });
  const width = Math.max(...Object.keys(addresses).map((name) => name.length)) + 2;
  return [
    "",
    "== the market is running on a local chain",
    `RPC          ${RPC_URL} (chain id ${CHAIN_ID})`,
    "contracts    (ignition/deployments/chain-31337/deployed_addresses.json)",
    ...Object.entries(addresses).map(([name, address]) => `  ${name.padEnd(width)}${address}`),
    "accounts     (Hardhat's well-known dev keys, printed in the node log; never use them on a real network)",
    `  0 governance, treasury  ${accounts[0]}`,
    `  1 provider              ${accounts[1]}`,
    `  2 its operator          ${accounts[2]}`,
    `  3 to 9 consumers        ${accounts[3]} … ${accounts[9]}`,
    "  (accounts 0 to 9 each hold the LocalMarket funding, 1,000,000 INFER with localhost.json)",
    ...bids.map((bid) => `bid          ${bid.args.bidId} (model ${bid.args.modelId})`),
    "",
    "next",
    `  npx hardhat --network localhost market:provider --address ${accounts[1]}`,
    ...bids.map((bid) => `  npx hardhat --network localhost market:bid --id ${bid.args.bidId}`),
    "  npx hardhat --network localhost market:session --id <session id>",
    "",
    "Not here yet: the provider agent, the indexer and the consumer client come in later issues, so",
    "nothing serves the provider's endpoint and no session is opened. Ctrl-C stops the node.",
  ].join("\n");
}

async function main(): Promise<void> {
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));

  await assertPortFree();
  await step("compiling the contracts", ["compile"]);
  if (stopRequested()) return;
  const node = await startNode();
  node.once("exit", (code) => {
    if (stopRequested()) return;
    console.error(`\nhardhat node exited unexpectedly (${code ?? "signal"}):\n${logTail()}`);
    void stopAll().then(() => process.exit(1));
  });

  rmSync(join(ROOT, "ignition", "deployments", `chain-${CHAIN_ID}`), { recursive: true, force: true });
  await step("deploying LocalMarket with Ignition", [
    "ignition",
    "deploy",
    "ignition/modules/LocalMarket.ts",
    "--network",
    "localhost",
    "--parameters",
    "ignition/parameters/localhost.json",
  ]);
  if (stopRequested()) return;
  await step("seeding a provider, a model and a bid", ["run", "--network", "localhost", "scripts/seed.ts"]);
  if (stopRequested()) return;
  console.log(await summary());
}

main().catch(async (error: unknown) => {
  console.error(`\nnpm start failed: ${error instanceof StartError ? error.message : String(error)}`);
  if (!(error instanceof StartError) && error instanceof Error && error.stack) console.error(error.stack);
  stopping = true;
  await stopAll();
  process.exit(1);
});
