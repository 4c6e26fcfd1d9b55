/**
 * A whole provider agent in this process: `startAgent` listens at once (so /health answers 503 while
 * starting), then reaches the chain, fetches and hashes the models, brings the on-chain setup to the
 * config (or verifies it), loads the models, reloads the provider's sessions and starts serving.
 * The CLI (`provider-agent start`) runs it; tests and the benchmark call it directly.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import type { Llama } from "node-llama-cpp";
import type { Address } from "viem";
import { type MarketAddresses, type MarketDomain, marketDomain } from "../../protocol/index.js";
import { startBackend } from "./catalog/backend-factory.js";
import { type CatalogEntry, prepareCatalog } from "./catalog/model-catalog.js";
import { resolveAddresses } from "./chain/addresses.js";
import { ChainFollower } from "./chain/chain-follower.js";
import { type ChainClients, createChainClients, fetchChainId } from "./chain/clients.js";
import { ChainClock } from "./chain/clock.js";
import { MarketReader } from "./chain/market.js";
import { type ProvisioningResult, provision } from "./chain/provisioning.js";
import { TransactionSender } from "./chain/transactions.js";
import type { AgentConfig } from "./config/load.js";
import { buildApp } from "./http/app.js";
import type { InferenceBackend } from "./inference/backend.js";
import { type AgentKeys, signingKey } from "./keys/load.js";
import { Logger } from "./log/logger.js";
import { AgentMetrics } from "./metrics/agent-metrics.js";
import { ModelHashCache } from "./models/model-hash.js";
import { AgentRuntime } from "./runtime.js";
import { ApprovalLedger } from "./sessions/approval-ledger.js";
import { ApprovalDesk } from "./sessions/approvals.js";
import { type DataDirLock, lockDataDir } from "./sessions/data-dir-lock.js";
import { Journal } from "./sessions/journal.js";
import { SessionBook } from "./sessions/session-book.js";
import { SessionService } from "./sessions/session-service.js";
import { SessionSync } from "./sessions/session-sync.js";
import { Settler } from "./settlement/settler.js";

const PROJECT_ROOT = fileURLToPath(new URL("../..", import.meta.url));

function agentVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "0.0.0";
  }
}

export class ChainMismatchError extends Error {
  constructor(
    readonly configured: number,
    readonly actual: number,
  ) {
    super(`chain.chainId is ${configured}, but the RPC serves chain ${actual}`);
    this.name = "ChainMismatchError";
  }
}

export interface StartAgentOptions {
  config: AgentConfig;
  keys: AgentKeys;
  logger?: Logger;
  /** Where the market is (default: `deployment` in the config, else Ignition's file for the chain). */
  addresses?: MarketAddresses;
  /** A node-llama-cpp instance to share (tests, the benchmark). */
  llama?: Llama;
  /** Threads node-llama-cpp may use in all (default: the machine's cores). */
  maxThreads?: number;
  /** Where progress bars go on a terminal (default stderr). */
  progressStream?: NodeJS.WriteStream;
  /** Prometheus process metrics (CPU, memory…) in /metrics; off for in-process agents by default. */
  processMetrics?: boolean;
}

/** What a running agent is made of, once ready (tests look inside). */
export interface AgentParts {
  addresses: MarketAddresses;
  domain: MarketDomain;
  provider: Address;
  catalog: readonly CatalogEntry[];
  backend: InferenceBackend;
  book: SessionBook;
  sessions: SessionService;
  ledger: ApprovalLedger;
  follower: ChainFollower;
  settler: Settler;
  reader: MarketReader;
  clock: ChainClock;
  provisioning: ProvisioningResult;
}

export interface RunningAgent {
  /** The base URL it listens on (`http://host:port`). */
  url: string;
  app: FastifyInstance;
  runtime: AgentRuntime;
  logger: Logger;
  metrics: AgentMetrics;
  /** Resolves once the agent serves; rejects with the reason start-up failed. */
  ready: Promise<AgentParts>;
  /** Stops accepting, lets in-flight streams finish (at most `graceMs`), flushes the journal, releases all. */
  stop(options?: { graceMs?: number }): Promise<void>;
}

/** Builds and starts an agent from a validated config and its keys. */
export async function startAgent(options: StartAgentOptions): Promise<RunningAgent> {
  const { config, keys } = options;
  const logger = options.logger ?? Logger.create({ level: config.log.level });
  const runtime = new AgentRuntime();
  runtime.provider = keys.providerAddress;
  const lock: DataDirLock = await lockDataDir(config.dataDir);
  let journal: Journal | undefined;
  const parts: Partial<AgentParts> & { clients?: ChainClients } = {};
  const metrics = new AgentMetrics(
    {
      activeSessions: () => parts.book?.unsettled().length ?? 0,
      queueDepth: () =>
        parts.backend?.status().models.map((model) => ({
          model: parts.catalog?.find((entry) => entry.id === model.id)?.name ?? model.id,
          queued: model.queued,
          active: model.activeSequences,
        })) ?? [],
    },
    { processMetrics: options.processMetrics ?? false },
  );

  let app: FastifyInstance | undefined;
  let url: string;
  try {
    const opened = await Journal.open(config.dataDir, logger.child({ component: "journal" }));
    journal = opened.journal;
    app = await buildApp({
      runtime,
      logger,
      metrics,
      bodyLimitBytes: config.server.bodyLimitBytes,
      rateLimitPerIp: config.server.rateLimitPerIp,
      rateLimitPerSession: config.server.rateLimitPerSession,
      docs: config.server.docs,
      version: agentVersion(),
    });
    url = await app.listen({ host: config.server.host, port: config.server.port });
    // Fastify names the first address; prefer the configured host (an IPv4 loopback, say).
    const port = (app.server.address() as { port: number }).port;
    url = `http://${config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host}:${port}`;
    logger.info({ url, provider: keys.providerAddress }, "listening (starting up; /health answers 503 until ready)");

    const startup = async (): Promise<AgentParts> => {
      const journalRecords = opened.records;
      runtime.step = "connecting to the chain";
      const chainId = await fetchChainId(config.chain.rpcUrls);
      if (config.chain.chainId !== undefined && config.chain.chainId !== chainId) {
        throw new ChainMismatchError(config.chain.chainId, chainId);
      }
      const addresses = options.addresses ?? resolveAddresses(config, chainId);
      const clients = createChainClients(chainId, config.chain.rpcUrls, config.chain.pollIntervalMs);
      parts.clients = clients;
      const reader = new MarketReader(clients.publicClient, addresses);
      const clock = new ChainClock();
      runtime.now = () => clock.now();
      const domain = marketDomain(chainId, addresses.sessionRouter);
      const chainLogger = logger.child({ component: "chain" });
      const providerSender =
        keys.provider && config.provider.manageOnChain
          ? new TransactionSender(clients.publicClient, clients.walletFor(keys.provider), chainLogger)
          : undefined;
      const signer = signingKey(keys);
      const settleSender =
        signer === keys.provider && providerSender
          ? providerSender
          : new TransactionSender(clients.publicClient, clients.walletFor(signer), chainLogger);
      const claimSender = keys.provider
        ? (providerSender ?? new TransactionSender(clients.publicClient, clients.walletFor(keys.provider), chainLogger))
        : undefined;

      runtime.step = "preparing model files";
      const catalog = await prepareCatalog({
        config,
        provider: keys.providerAddress,
        hashes: new ModelHashCache(join(config.dataDir, "model-hashes.json")),
        logger: logger.child({ component: "models" }),
        ...(options.progressStream ? { progressStream: options.progressStream } : {}),
      });
      parts.catalog = catalog;

      runtime.step = "checking the on-chain setup";
      const provisioning = await provision({
        reader,
        catalog,
        provider: keys.providerAddress,
        providerSender,
        operator: keys.operator,
        endpoint: config.server.publicEndpoint ?? url,
        metadataURI: config.provider.metadataURI,
        topUpStake: config.provider.topUpStake,
        logger: chainLogger,
      });

      runtime.step = "loading models";
      const backend = await startBackend({
        catalog,
        logger,
        ...(options.llama ? { llama: options.llama } : {}),
        ...(options.maxThreads === undefined ? {} : { maxThreads: options.maxThreads }),
        ...(options.progressStream ? { progressStream: options.progressStream } : {}),
      });
      parts.backend = backend;

      runtime.step = "loading sessions";
      const book = new SessionBook(journal!);
      book.replay(journalRecords);
      const ledger = new ApprovalLedger(journal!);
      ledger.replay(journalRecords);
      ledger.initialize(await reader.nextApprovalNonce(keys.providerAddress));
      parts.book = book;

      const sessionSyncRef: { sync?: SessionSync } = {};
      const follower = new ChainFollower({
        client: clients.publicClient,
        wsClient: clients.wsClient,
        reader,
        addresses,
        provider: keys.providerAddress,
        confirmations: config.chain.confirmations,
        pollIntervalMs: config.chain.pollIntervalMs,
        fromBlock: BigInt(config.chain.fromBlock),
        logChunkBlocks: config.chain.logChunkBlocks,
        clock,
        logger: chainLogger,
        onEvents: (events) => sessionSyncRef.sync!.apply(events),
      });
      for (const session of await follower.loadUnsettled()) {
        book.upsertChain(session);
        ledger.used(session.terms.nonce);
      }
      // Sessions the journal knows and the scan did not find: settled meanwhile, or opened after it.
      for (const sessionId of book.journalOnly()) {
        const session = await follower.lookup(sessionId);
        if (session && session.terms.provider.toLowerCase() === keys.providerAddress.toLowerCase()) {
          book.upsertChain(session);
        } else {
          await book.markSettled(sessionId);
        }
      }
      await journal!.rewrite([...ledger.compactRecords(clock.now()), ...book.compactRecords()]);

      const sessions = new SessionService({
        book,
        lookup: (sessionId) => follower.lookup(sessionId),
        domain,
        provider: keys.providerAddress,
        signer,
        creditLimit: config.sessions.creditLimit,
        maxAuthLifetimeSeconds: config.sessions.maxAuthLifetimeSeconds,
        now: () => clock.now(),
      });
      const served = new Set(backend.models().map((model) => model.id.toLowerCase()));
      const approvals = new ApprovalDesk({
        ledger,
        chain: reader,
        domain,
        provider: keys.providerAddress,
        signer,
        servedModels: () => served,
        unsettledSessions: () => book.unsettled().length,
        maxDeposit: config.sessions.maxDeposit,
        maxDuration: config.sessions.maxDuration,
        maxOpenSessions: config.sessions.maxOpenSessions,
        approvalTtlSeconds: config.sessions.approvalTtlSeconds,
        maxRoyaltyBps: config.sessions.maxRoyaltyBps,
        maxFeeBps: config.sessions.maxFeeBps,
        now: () => clock.now(),
      });
      const settler = new Settler({
        book,
        reader,
        sender: settleSender,
        claimSender,
        now: () => clock.now(),
        logger: logger.child({ component: "settlement" }),
        ...config.settlement,
        onClaimed: (amount) => metrics.claimed.inc(Number(amount)),
      });
      sessionSyncRef.sync = new SessionSync(book, sessions, ledger, logger.child({ component: "sessions" }), {
        onCloseRequested: (sessionId) => void settler.settle(sessionId),
        onSettled: (_sessionId, providerAmount) => metrics.earnings.inc(Number(providerAmount)),
      });
      follower.start();
      settler.start();
      Object.assign(parts, {
        addresses,
        domain,
        provider: keys.providerAddress,
        sessions,
        ledger,
        follower,
        settler,
        reader,
        clock,
        provisioning,
      });
      runtime.serving = {
        sessions,
        approvals,
        backend,
        catalog,
        domain,
        chainStatus: () => follower.status(),
      };
      runtime.phase = "ready";
      runtime.step = "serving";
      logger.info(
        {
          url,
          models: catalog.map((entry) => ({ name: entry.name, id: entry.id })),
          sessions: book.unsettled().length,
          transactions: provisioning.actions,
        },
        "ready",
      );
      return parts as AgentParts;
    };

    const ready = startup().catch((error: unknown) => {
      runtime.phase = "failed";
      runtime.step = error instanceof Error ? error.message : String(error);
      logger.fatal({ err: error }, "start-up failed");
      throw error;
    });
    ready.catch(() => undefined);

    let stopping: Promise<void> | undefined;
    const stop = (stopOptions: { graceMs?: number } = {}) => {
      stopping ??= (async () => {
        const graceMs = stopOptions.graceMs ?? config.server.shutdownGraceSeconds * 1000;
        if (runtime.phase !== "failed") runtime.phase = "draining";
        await ready.catch(() => undefined);
        runtime.phase = "draining";
        const closing = app!.close();
        const timer = setTimeout(() => runtime.shutdown.abort("grace period over"), graceMs);
        await closing;
        clearTimeout(timer);
        await parts.follower?.stop();
        await parts.settler?.stop();
        await parts.backend?.close();
        await journal?.close();
        await parts.clients?.close();
        await lock.release();
        runtime.phase = "stopped";
        logger.info("stopped");
      })();
      return stopping;
    };
    return { url, app, runtime, logger, metrics, ready, stop };
  } catch (error) {
    await app?.close().catch(() => undefined);
    await journal?.close().catch(() => undefined);
    await lock.release();
    throw error;
  }
}
