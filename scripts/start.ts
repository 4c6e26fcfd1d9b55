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
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createPublicClient, http } from "viem";
import { marketplaceAbi } from "../protocol/abis";
import { deploymentFile, loadMarketAddresses } from "../protocol/addresses";
import {
  LocalChainError,
  devAccounts,
  deployLocalMarket,
  exited,
  spawnHardhat,
  startHardhatNode,
  stopProcess,
} from "./local-chain";

const ROOT = join(__dirname, "..");
const HOST = "127.0.0.1";
const PORT = 8545;
const RPC_URL = `http://${HOST}:${PORT}`;
const CHAIN_ID = 31337;
const NODE_LOG = join(ROOT, "cache", "hardhat-node.log");

const running = new Set<ChildProcess>();
let stopping = false;
/** Read through a function: a signal handler sets `stopping` while `main` awaits. */
const stopRequested = () => stopping;

function track(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

/** Runs one hardhat command to its end; throws when it fails. */
async function step(title: string, args: string[]): Promise<void> {
  console.log(`\n== ${title}: hardhat ${args.join(" ")}`);
  const code = await exited(track(spawnHardhat(args)));
  if (stopRequested()) return;
  if (code !== 0)
    throw new LocalChainError(`${title} failed (hardhat ${args[0] ?? ""} exited with ${code ?? "a signal"})`);
}

/** Stops every child and waits for them, killing any that lingers. */
async function stopAll(): Promise<void> {
  await Promise.all([...running].map((child) => stopProcess(child)));
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
  const client = createPublicClient({ transport: http(RPC_URL) });
  const accounts = devAccounts(10).map((account) => account.address);
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

  await step("compiling the contracts", ["compile"]);
  if (stopRequested()) return;
  console.log(`\n== starting hardhat node on ${RPC_URL} (log: cache/hardhat-node.log)`);
  const node = await startHardhatNode({ host: HOST, port: PORT, logFile: NODE_LOG });
  track(node.process);
  node.process.once("exit", (code) => {
    if (stopRequested()) return;
    console.error(`\nhardhat node exited unexpectedly (${code ?? "signal"}); its log is ${NODE_LOG}`);
    void stopAll().then(() => process.exit(1));
  });

  console.log("\n== deploying LocalMarket with Ignition (ignition/parameters/localhost.json)");
  await deployLocalMarket(RPC_URL);
  if (stopRequested()) return;
  await step("seeding a provider, a model and a bid", ["run", "--network", "localhost", "scripts/seed.ts"]);
  if (stopRequested()) return;
  console.log(await summary());
}

main().catch(async (error: unknown) => {
  console.error(`\nnpm start failed: ${error instanceof LocalChainError ? error.message : String(error)}`);
  if (!(error instanceof LocalChainError) && error instanceof Error && error.stack) console.error(error.stack);
  stopping = true;
  await stopAll();
  process.exit(1);
});
