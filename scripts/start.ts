/**
 * `npm start`: the whole market on this machine, from a fresh clone after `npm ci`.
 *
 *  1. compiles the contracts (a minute or two the first time, a no-op after), starts `hardhat node`
 *     and writes the tiny test model if needed, side by side;
 *  2. deploys LocalMarket with Ignition (ignition/parameters/localhost.json);
 *  3. starts the indexer (embedded PGlite) and a provider agent serving MODEL_PATH or the tiny model,
 *     each through its own CLI with a config file written into the run directory (cache/market/);
 *     the agent stakes, registers the provider, its model and its bid from that config;
 *  4. runs a consumer once through the client SDK (scripts/consumer/demo.ts): rank, open, chat
 *     streamed to the terminal, close, settle;
 *  5. prints where everything is and the `market` commands to try, then runs until Ctrl-C or
 *     SIGTERM, which stop every process in order. With `--once` (or MARKET_START_ONCE=1) it stops
 *     and exits 0 right after the settled session: CI's smoke test.
 *
 * Any failure, or any process exiting on its own, stops everything with a message saying what
 * failed and a non-zero exit. Each child also stops by itself if this process dies (even SIGKILL),
 * and this process stops if its parent (npm) goes away: no orphans.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { type Hex, getAddress } from "viem";
import { bidIdOf } from "../protocol/index";
import {
  HARDHAT_CLI,
  LOCAL_CHAIN_ID,
  LocalChainError,
  deployLocalMarket,
  devAccounts,
  startHardhatNode,
} from "./local-chain";
import { ModelFileError, ensureTinyModel, ggufModelServing, tinyModelServing } from "./market/models";
import { choosePorts } from "./market/ports";
import { PrefixedOutput } from "./market/prefixed-output";
import { type ManagedProcess, ProcessGroup, describeExit } from "./market/processes";
import { agentConfig, indexerConfig, writeYamlConfig } from "./market/service-configs";
import { marketSummary } from "./market/summary";
import { WaitTimeoutError, httpStatus, waitUntil } from "./market/wait";

const ROOT = join(__dirname, "..");
const HOST = "127.0.0.1";
const DEFAULT_PORTS = { rpc: 8545, indexer: 42069, agent: 8080 };
const AGENT_BIN = join(ROOT, "provider-agent", "bin", "provider-agent.mjs");
const INDEXER_BIN = join(ROOT, "indexer", "bin", "indexer.mjs");
const CONSUMER_DEMO = join(ROOT, "scripts", "consumer", "demo.ts");
/** Dev accounts (Hardhat's public mnemonic) by role. */
const ACCOUNT = { governance: 0, provider: 1, operator: 2, demoConsumer: 3, yours: 4 } as const;
/** The demo bid: 1e12 per second (0.0036 tokens an hour), 1e9 per input token, 4e9 per output token. */
const DEMO_PRICES = { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 4n * 10n ** 9n };
/** The agent's cache of model files' sha256 in its data dir (provider-agent/src/agent.ts). */
const MODEL_HASH_CACHE = "model-hashes.json";
/** How often a long compile says it is still at it. */
const COMPILE_TICK_MS = 20_000;
const AGENT_READY_TIMEOUT_MS = 10 * 60_000; // a large MODEL_PATH takes a while to hash and load
const INDEXER_READY_TIMEOUT_MS = 2 * 60_000;

const USAGE = `npm start [-- options]: a local Inference Market (hardhat node, indexer, provider agent, a consumer)

  --once               exit 0 once the consumer's session settled (non-zero on any failure): CI's smoke test
                       (also MARKET_START_ONCE=1)
  --rpc-port <n>       hardhat node's port (default ${DEFAULT_PORTS.rpc}; 0: any free one)
  --indexer-port <n>   the indexer's GraphQL port (default ${DEFAULT_PORTS.indexer})
  --agent-port <n>     the provider agent's port (default ${DEFAULT_PORTS.agent})
  --run-dir <dir>      configs, data and logs (default cache/market, cache/market-<rpc port> off 8545)
  -h, --help           this text

  MODEL_PATH=<file.gguf> serves that model instead of the tiny generated test model.
  A busy port is replaced by a free one, and the start says so.
`;

/** A failure `npm start` expects (said in one line, no stack). */
class StartError extends Error {}
/** A stop someone asked for (a signal, or the parent process going away): exit 0. */
class StopRequested extends Error {}

interface StartOptions {
  once: boolean;
  ports: { rpc: number; indexer: number; agent: number };
  runDir: string | undefined;
  modelPath: string | undefined;
}

function readOptions(argv: string[], env: NodeJS.ProcessEnv): StartOptions | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        once: { type: "boolean" },
        "rpc-port": { type: "string" },
        "indexer-port": { type: "string" },
        "agent-port": { type: "string" },
        "run-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new StartError(`${(error as Error).message}\n\n${USAGE}`);
  }
  if (values.help) return "help";
  const port = (flag: string, text: string | undefined, fallback: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 0 || value > 65_535) {
      throw new StartError(`--${flag} must be a port number (0 to 65535), not ${JSON.stringify(text)}`);
    }
    return value;
  };
  return {
    once: values.once === true || ["1", "true", "yes"].includes((env.MARKET_START_ONCE ?? "").toLowerCase()),
    ports: {
      rpc: port("rpc-port", values["rpc-port"], DEFAULT_PORTS.rpc),
      indexer: port("indexer-port", values["indexer-port"], DEFAULT_PORTS.indexer),
      agent: port("agent-port", values["agent-port"], DEFAULT_PORTS.agent),
    },
    runDir: values["run-dir"],
    modelPath: env.MODEL_PATH === "" ? undefined : env.MODEL_PATH,
  };
}

const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;
const shown = (path: string) => {
  const relativePath = relative(process.cwd(), path);
  return relativePath.startsWith("..") ? path : relativePath;
};

/** Everything `npm start` starts and how to stop it. */
class LocalMarketRun {
  readonly output = PrefixedOutput.forStdout(8);
  readonly abort = new AbortController();
  readonly group: ProcessGroup;
  private interruptWith: (error: Error) => void = () => undefined;
  private readonly cleanups: (() => void)[] = [];
  /** Rejects when the run must end early: a stop request or a process that died. */
  readonly interrupted: Promise<never>;

  constructor() {
    this.interrupted = new Promise<never>((_, reject) => (this.interruptWith = reject));
    this.interrupted.catch(() => undefined);
    this.group = new ProcessGroup({
      output: this.output,
      detached: true,
      stopGraceMs: 10_000,
      onUnexpectedExit: (managed, status) =>
        this.interrupt(
          new StartError(`${managed.name} exited unexpectedly (${describeExit(status)}); its last lines are above`),
        ),
    });
  }

  interrupt(error: Error): void {
    this.interruptWith(error);
    this.abort.abort(error);
  }

  /** `step`, unless the run is interrupted first. */
  guard<T>(step: Promise<T>): Promise<T> {
    step.catch(() => undefined);
    return Promise.race([step, this.interrupted]);
  }

  say(text: string): void {
    this.output.line(text);
  }

  /** Runs `cleanup` once every process has stopped. */
  onStopped(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  /** Stops every process, then cleans up. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.group.stopAll();
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}

async function compileContracts(run: LocalMarketRun): Promise<void> {
  const firstTime = !existsSync(join(ROOT, "artifacts", "contracts"));
  run.say(
    firstTime
      ? "== compiling the contracts: the first start takes a minute or two (solc as WebAssembly, viaIR); later starts skip it"
      : "== compiling the contracts (nothing to do unless they changed)",
  );
  const compile = run.group.startNode("compile", {
    args: [HARDHAT_CLI, "compile"],
    cwd: ROOT,
    oneShot: true,
    formatLogs: false,
  });
  const started = performance.now();
  const ticker = setInterval(() => run.say(`still compiling (${seconds(started)})…`), COMPILE_TICK_MS);
  const status = await run.guard(compile.exited).finally(() => clearInterval(ticker));
  if (status.code !== 0)
    throw new StartError(`compiling the contracts failed (${describeExit(status)}); the compiler's output is above`);
}

async function waitForService(
  run: LocalMarketRun,
  service: ManagedProcess,
  what: string,
  url: string,
  timeoutMs: number,
): Promise<void> {
  try {
    await run.guard(
      waitUntil(what, async () => (await httpStatus(url)) === 200, {
        timeoutMs,
        intervalMs: 250,
        signal: run.abort.signal,
      }),
    );
  } catch (error) {
    if (error instanceof WaitTimeoutError) {
      throw new StartError(`${error.message} (${service.name} did not answer 200 at ${url}; its lines are above)`);
    }
    throw error;
  }
}

/**
 * A started node is a new chain: what the last run kept about its chain (the agent's journal, the
 * indexer's database, the consumers' sessions) is stale. The agent's cache of model hashes stays: a
 * large MODEL_PATH takes a while to hash.
 */
function forgetLastChain(runDir: string): void {
  for (const stale of ["indexer-data", "consumer", "sessions", "logs"]) {
    rmSync(join(runDir, stale), { recursive: true, force: true });
  }
  const agentData = join(runDir, "agent-data");
  if (existsSync(agentData)) {
    for (const entry of readdirSync(agentData)) {
      if (entry !== MODEL_HASH_CACHE) rmSync(join(agentData, entry), { recursive: true, force: true });
    }
  }
  mkdirSync(join(runDir, "logs"), { recursive: true });
}

/** The served model's on-chain id, as the agent lists it. */
async function servedModelId(agentUrl: string): Promise<Hex> {
  const response = await fetch(`${agentUrl}/v1/models`);
  const body = (await response.json()) as { data?: { id: string }[] };
  const id = body.data?.[0]?.id;
  if (id === undefined || !/^0x[0-9a-fA-F]{64}$/.test(id))
    throw new StartError(`the agent lists no model at ${agentUrl}/v1/models`);
  return id as Hex;
}

async function startMarket(run: LocalMarketRun, options: StartOptions): Promise<void> {
  const started = performance.now();
  run.say("Inference Market: a whole market on this machine (Ctrl-C stops it)");

  const [rpc, indexerPort, agentPort] = await choosePorts([
    { preferred: options.ports.rpc, what: "the hardhat node's JSON-RPC" },
    { preferred: options.ports.indexer, what: "the indexer's GraphQL API" },
    { preferred: options.ports.agent, what: "the provider agent" },
  ]);
  for (const choice of [rpc, indexerPort, agentPort]) if (choice.note) run.say(`note: ${choice.note}`);
  const defaultInstance = rpc.port === DEFAULT_PORTS.rpc;
  const runDir = options.runDir ?? join(ROOT, "cache", defaultInstance ? "market" : `market-${rpc.port}`);
  forgetLastChain(runDir);

  // npm runs scripts from the project's root; a relative MODEL_PATH means where the user was.
  const served = options.modelPath ? ggufModelServing(options.modelPath, process.env.INIT_CWD) : undefined;
  const nodeLog = join(runDir, "logs", "hardhat-node.log");
  const nodeStarted = performance.now();
  const [, model, node] = await run.guard(
    Promise.all([
      compileContracts(run),
      served
        ? Promise.resolve(served)
        : ensureTinyModel().then(({ path, generated }) => {
            if (generated)
              run.say(`wrote the tiny test model to ${shown(path)} (random weights: it answers gibberish)`);
            return tinyModelServing(path);
          }),
      startHardhatNode({ host: HOST, port: rpc.port, logFile: nodeLog, exitWithParent: true, detached: true }).then(
        (started) => {
          run.group.adopt("hardhat node", started.process);
          run.say(`hardhat node on ${started.rpcUrl} (${seconds(nodeStarted)}; its log: ${shown(nodeLog)})`);
          return started;
        },
      ),
    ]),
  );

  run.say("== deploying LocalMarket with Ignition (ignition/parameters/localhost.json)");
  const deployStarted = performance.now();
  const deploymentId = defaultInstance ? `chain-${LOCAL_CHAIN_ID}` : `local-${rpc.port}`;
  const deployed = await run.guard(
    deployLocalMarket(node.rpcUrl, {
      deploymentId,
      logFile: join(runDir, "logs", "ignition.log"),
      signal: run.abort.signal,
    }),
  );
  const deploymentFile = join(deployed.deploymentDir, "deployed_addresses.json");
  // The default instance keeps chain-31337 (the next start replaces it); another one cleans up after itself.
  if (!defaultInstance) run.onStopped(() => rmSync(deployed.deploymentDir, { recursive: true, force: true }));
  run.say(`deployed in ${seconds(deployStarted)}: ${shown(deploymentFile)}`);

  run.say(`== starting the indexer and a provider agent serving ${model.name} (${shown(model.file)})`);
  const servicesStarted = performance.now();
  const accounts = devAccounts(10);
  const indexerFile = join(runDir, "indexer.yaml");
  writeYamlConfig(
    indexerFile,
    indexerConfig({
      rpcUrl: node.rpcUrl,
      wsUrl: node.wsUrl,
      deploymentFile,
      startBlock: deployed.deploymentBlock,
      host: HOST,
      port: indexerPort.port,
      dataDir: join(runDir, "indexer-data"),
    }),
    "Written by npm start (scripts/start.ts) for this run: the indexer on embedded PGlite. See docs/indexer.md.",
  );
  const agentFile = join(runDir, "agent.yaml");
  writeYamlConfig(
    agentFile,
    agentConfig({
      rpcUrl: node.rpcUrl,
      wsUrl: node.wsUrl,
      deploymentFile,
      fromBlock: deployed.deploymentBlock,
      host: HOST,
      port: agentPort.port,
      dataDir: join(runDir, "agent-data"),
      model,
      prices: DEMO_PRICES,
      claimIntervalSeconds: 60,
    }),
    "Written by npm start (scripts/start.ts) for this run. Every field: provider-agent/agent.example.yaml.\n" +
      "Keys come from the environment (PROVIDER_PRIVATE_KEY, OPERATOR_PRIVATE_KEY): dev accounts 1 and 2.",
  );
  const indexer = run.group.startNode("indexer", { args: [INDEXER_BIN, "start", "--config", indexerFile], cwd: ROOT });
  const agent = run.group.startNode("agent", {
    args: [AGENT_BIN, "start", "--config", agentFile],
    cwd: ROOT,
    env: {
      PROVIDER_PRIVATE_KEY: accounts[ACCOUNT.provider].privateKey,
      OPERATOR_PRIVATE_KEY: accounts[ACCOUNT.operator].privateKey,
    },
  });
  const indexerUrl = `http://${HOST}:${indexerPort.port}`;
  const agentUrl = `http://${HOST}:${agentPort.port}`;
  await Promise.all([
    waitForService(
      run,
      indexer,
      "the indexer to catch up with the chain",
      `${indexerUrl}/ready`,
      INDEXER_READY_TIMEOUT_MS,
    ),
    waitForService(run, agent, "the provider agent to serve", `${agentUrl}/health`, AGENT_READY_TIMEOUT_MS),
  ]);
  const modelId = await run.guard(servedModelId(agentUrl));
  const provider = getAddress(accounts[ACCOUNT.provider].address);
  run.say(`indexer and agent ready in ${seconds(servicesStarted)}`);

  run.say("== a consumer, through the client SDK: rank, open, chat, close, settle");
  const consumerStore = join(runDir, "consumer");
  const consumer = run.group.startNode("consumer", {
    args: [
      "--import",
      "tsx",
      CONSUMER_DEMO,
      ...["--rpc-url", node.rpcUrl, "--indexer-url", `${indexerUrl}/graphql`],
      ...["--deployment", deploymentFile, "--store-dir", consumerStore, "--model", modelId],
    ],
    cwd: ROOT,
    env: { MARKET_PRIVATE_KEY: accounts[ACCOUNT.demoConsumer].privateKey },
    streaming: true,
    formatLogs: false,
    oneShot: true,
  });
  const consumerExit = await run.guard(consumer.exited);
  if (consumerExit.code !== 0)
    throw new StartError(`the consumer's flow failed (${describeExit(consumerExit)}); its lines are above`);

  run.say(
    marketSummary({
      startedIn: seconds(started),
      rpcUrl: node.rpcUrl,
      wsUrl: node.wsUrl,
      chainId: node.chainId,
      indexerUrl,
      agentUrl,
      model: { name: model.name, id: modelId },
      bidId: bidIdOf(provider, modelId),
      deploymentFile: shown(deploymentFile),
      runDir: shown(runDir),
      sessionStoreDir: shown(join(runDir, "sessions")),
      defaultDeployment: defaultInstance,
      accounts: {
        governance: accounts[ACCOUNT.governance].address,
        provider,
        operator: accounts[ACCOUNT.operator].address,
        demoConsumer: accounts[ACCOUNT.demoConsumer].address,
        yours: accounts[ACCOUNT.yours],
      },
    }),
  );
}

async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = readOptions(argv, process.env);
  } catch (error) {
    process.stderr.write(`npm start: ${(error as Error).message}\n`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(USAGE);
    return 0;
  }

  const run = new LocalMarketRun();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) run.interrupt(new StopRequested(signal));
    else {
      run.say(`${signal} again: killing everything now`);
      for (const managed of run.group.list()) managed.child.kill("SIGKILL");
      process.exit(1);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // npm forwards SIGTERM to its shell, which dies without passing it on: watch the parent instead.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) run.interrupt(new StopRequested(`the parent process (${parent}) exited`));
  }, 500).unref();

  let code = 0;
  try {
    await startMarket(run, options);
    if (options.once) run.say("--once: the session settled; stopping");
    else {
      run.say("Ctrl-C (or SIGTERM) stops everything.");
      await run.interrupted;
    }
  } catch (error) {
    if (error instanceof StopRequested) {
      run.say(`\n${error.message}: stopping`);
    } else if (error instanceof StartError || error instanceof LocalChainError || error instanceof ModelFileError) {
      run.say(`\nnpm start failed: ${error.message}`);
      code = 1;
    } else {
      run.say(
        `\nnpm start failed unexpectedly (a bug): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
      code = 1;
    }
  }
  await run.stop();
  run.say(code === 0 ? "stopped" : "stopped everything");
  return code;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`npm start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
