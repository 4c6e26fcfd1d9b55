/**
 * A local market: a real `hardhat node` process and the LocalMarket Ignition deployment on it.
 * `npm start` runs one; the agent's, indexer's, client's and end-to-end tests each start their own
 * on a free port (so they can run side by side) and stop it when done.
 *
 * CommonJS like the rest of the Hardhat side, and importable from the ESM services under tsx.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Address, Hex } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { type MarketAddresses, loadMarketAddresses } from "../protocol/addresses";

// `__filename`, not `__dirname`: an ES module importing this file under tsx gets it as a data: URL
// module, where __dirname reads "data:text" but __filename is the real path.
const SCRIPTS = dirname(__filename);
const ROOT = join(SCRIPTS, "..");
export const HARDHAT_CLI = require.resolve("hardhat/internal/cli/bootstrap.js");
/** Preloaded into long-running children: they stop when this process goes away (see the file). */
export const EXIT_WITH_PARENT = join(SCRIPTS, "market", "exit-with-parent.cjs");
export const LOCAL_CHAIN_ID = 31337;
/** Hardhat's well-known development mnemonic: its keys are public, never use them on a real network. */
export const HARDHAT_MNEMONIC = "test test test test test test test test test test test junk";
const NODE_READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;

export interface DevAccount {
  address: Address;
  privateKey: Hex;
}

/** The first `count` accounts of a `hardhat node` (10 are funded with tokens by LocalMarket). */
export function devAccounts(count = 20): DevAccount[] {
  return Array.from({ length: count }, (_, addressIndex) => {
    const account = mnemonicToAccount(HARDHAT_MNEMONIC, { addressIndex });
    const privateKey = account.getHdKey().privateKey;
    if (!privateKey) throw new Error(`no private key derived for dev account ${addressIndex}`);
    return { address: account.address, privateKey: `0x${Buffer.from(privateKey).toString("hex")}` };
  });
}

export class LocalChainError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LocalChainError";
  }
}

/** A port nobody listens on right now (the OS picks it). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === "string") reject(new LocalChainError("no port assigned"));
        else resolve(address.port);
      });
    });
  });
}

/** Rejects with a message naming the port when something already listens on it. */
export async function assertPortFree(port: number, host = "127.0.0.1", hint = ""): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new LocalChainError(`port ${port} on ${host} is already in use${hint ? `: ${hint}` : ""}`)
          : error,
      ),
    );
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

async function rpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = (await response.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new LocalChainError(`${method} on ${url}: ${body.error.message}`);
  return body.result as T;
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export interface SpawnHardhatOptions {
  env?: NodeJS.ProcessEnv;
  /** Where its output goes (appended); default: this process's stdout and stderr. */
  logFile?: string;
  /** Stops it when this process exits, even by SIGKILL (`exit-with-parent.cjs` on a stdin pipe). */
  exitWithParent?: boolean;
  /** Its own process group: a Ctrl-C on the terminal reaches only this process, which stops it. */
  detached?: boolean;
  /** Kills it (SIGTERM) when aborted. */
  signal?: AbortSignal;
}

/** Runs the Hardhat CLI as a child of this process (never through npx: no shell, exact argv). */
export function spawnHardhat(args: string[], options: SpawnHardhatOptions = {}) {
  const stdin = options.exitWithParent ? "pipe" : "ignore";
  let stdio: [typeof stdin, "inherit" | number, "inherit" | number] = [stdin, "inherit", "inherit"];
  let log: number | undefined;
  if (options.logFile !== undefined) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    log = openSync(options.logFile, "a");
    stdio = [stdin, log, log];
  }
  const preload = options.exitWithParent ? ["--require", EXIT_WITH_PARENT] : [];
  const child = spawn(process.execPath, [...preload, HARDHAT_CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio,
    detached: options.detached ?? false,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  // An aborted spawn emits "error" (AbortError); whoever awaits `exited` sees the exit instead.
  child.on("error", () => undefined);
  if (log !== undefined) closeSync(log);
  return child;
}

/** Resolves with the exit code; rejects if the process cannot start. */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => resolve(code));
  });
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
export async function stopProcess(child: ChildProcess, graceMs = STOP_GRACE_MS): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = exited(child).catch(() => null);
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  child.kill("SIGTERM");
  await gone;
  clearTimeout(timer);
}

export interface HardhatNode {
  rpcUrl: string;
  wsUrl: string;
  host: string;
  port: number;
  chainId: number;
  logFile: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface HardhatNodeOptions {
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Where the node's output goes (default: a file in the OS temp dir). */
  logFile?: string;
  /** Stop the node when this process exits, even by SIGKILL (default true): no orphan nodes. */
  exitWithParent?: boolean;
  /** Run the node in its own process group (`npm start` stops it itself on Ctrl-C). */
  detached?: boolean;
}

/** Starts `hardhat node` and resolves once it answers JSON-RPC. */
export async function startHardhatNode(options: HardhatNodeOptions = {}): Promise<HardhatNode> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port || (await freePort(host));
  if (options.port) await assertPortFree(port, host, "is another `hardhat node` (or `npm start`) running?");
  const logFile = options.logFile ?? join(tmpdir(), `hardhat-node-${port}-${process.pid}.log`);
  writeFileSync(logFile, "");
  const rpcUrl = `http://${host}:${port}`;
  const child = spawnHardhat(["node", "--hostname", host, "--port", String(port)], {
    logFile,
    exitWithParent: options.exitWithParent ?? true,
    detached: options.detached ?? false,
  });
  let exitCode: number | null | undefined;
  child.once("exit", (code) => (exitCode = code));

  const deadline = Date.now() + NODE_READY_TIMEOUT_MS;
  for (;;) {
    if (exitCode !== undefined) {
      throw new LocalChainError(`hardhat node exited (${exitCode ?? "signal"}) before it was ready:\n${tail(logFile)}`);
    }
    try {
      const chainId = Number(await rpc<string>(rpcUrl, "eth_chainId"));
      return {
        rpcUrl,
        wsUrl: `ws://${host}:${port}`,
        host,
        port,
        chainId,
        logFile,
        process: child,
        stop: () => stopProcess(child),
      };
    } catch (error) {
      if (error instanceof LocalChainError) throw error;
      if (Date.now() > deadline) {
        await stopProcess(child);
        throw new LocalChainError(
          `hardhat node did not answer on ${rpcUrl} within ${NODE_READY_TIMEOUT_MS / 1000} s:\n${tail(logFile)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

export interface DeployedMarket {
  addresses: MarketAddresses;
  /** The block of the deployment's first transaction: where an indexer starts. */
  deploymentBlock: bigint;
  /** Ignition's folder for this deployment (holds deployed_addresses.json and the journal). */
  deploymentDir: string;
}

export interface DeployOptions {
  /** Ignition's deployment id, a folder under ignition/deployments/ (default `chain-31337`, replaced). */
  deploymentId?: string;
  /** LocalMarket module parameters overriding ignition/parameters/localhost.json (e.g. `{ challengeWindow: 60 }`). */
  parameters?: Record<string, string | number | boolean>;
  logFile?: string;
  /** Stops the deployment (kills Ignition) when aborted. */
  signal?: AbortSignal;
}

/** Deploys LocalMarket with Ignition's CLI on the node at `rpcUrl`. */
export async function deployLocalMarket(rpcUrl: string, options: DeployOptions = {}): Promise<DeployedMarket> {
  const deploymentId = options.deploymentId ?? `chain-${LOCAL_CHAIN_ID}`;
  const deploymentDir = join(ROOT, "ignition", "deployments", deploymentId);
  // A started node is a new chain with the same chain id: an old journal would not match it.
  rmSync(deploymentDir, { recursive: true, force: true });
  const defaults = (
    JSON.parse(readFileSync(join(ROOT, "ignition", "parameters", "localhost.json"), "utf8")) as {
      LocalMarket: Record<string, unknown>;
    }
  ).LocalMarket;
  const parametersFile = join(tmpdir(), `local-market-${deploymentId}-${process.pid}.json`);
  writeFileSync(parametersFile, JSON.stringify({ LocalMarket: { ...defaults, ...options.parameters } }));

  const logFile = options.logFile ?? join(tmpdir(), `ignition-${deploymentId}.log`);
  const firstBlock = BigInt(await rpc<string>(rpcUrl, "eth_blockNumber")) + 1n;
  const child = spawnHardhat(
    [
      "ignition",
      "deploy",
      "ignition/modules/LocalMarket.ts",
      "--network",
      "localhost",
      "--deployment-id",
      deploymentId,
      "--parameters",
      parametersFile,
    ],
    {
      env: { LOCALHOST_RPC_URL: rpcUrl },
      logFile,
      exitWithParent: true,
      ...(options.signal ? { signal: options.signal } : {}),
    },
  );
  const code = await exited(child).finally(() => rmSync(parametersFile, { force: true }));
  if (code !== 0) {
    throw new LocalChainError(
      `Ignition could not deploy LocalMarket on ${rpcUrl} (exit ${code ?? "signal"}):\n${tail(logFile)}`,
    );
  }
  const addresses = loadMarketAddresses(join(deploymentDir, "deployed_addresses.json"));
  return { addresses, deploymentBlock: firstBlock, deploymentDir };
}

export interface LocalMarket extends HardhatNode, DeployedMarket {
  accounts: DevAccount[];
  /** Stops the node and removes the deployment folder (unless it is the default `chain-31337`). */
  stop(): Promise<void>;
}

/**
 * A fresh chain with the market deployed: what a service test needs. Each call gets its own port
 * and deployment folder, so tests in parallel processes never share a chain.
 */
export async function startLocalMarket(
  options: HardhatNodeOptions & Omit<DeployOptions, "deploymentId"> & { deploymentId?: string } = {},
): Promise<LocalMarket> {
  const node = await startHardhatNode(options);
  const deploymentId = options.deploymentId ?? `local-${node.port}-${process.pid}`;
  try {
    const deployed = await deployLocalMarket(node.rpcUrl, { ...options, deploymentId });
    return {
      ...node,
      ...deployed,
      accounts: devAccounts(),
      stop: async () => {
        await node.stop();
        if (deploymentId !== `chain-${LOCAL_CHAIN_ID}`)
          rmSync(deployed.deploymentDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await node.stop();
    throw error;
  }
}
