/**
 * The writer's loop. At start: make sure the rows belong to the chain behind the RPC (else
 * re-index or refuse). Then, each cycle: undo a reorganised tip, backfill final blocks in bulk,
 * follow the unfinalized rest block by block, and sleep until the next head.
 *
 * Transient failures (RPC, database connection) are retried with backoff forever; what retrying
 * cannot fix (a reorg past finality, a replaced chain under `refuse`, an event the ABI does not
 * know) stops the loop and rejects `run()`.
 */
import { sql } from "kysely";
import type { IndexerConfig } from "../config.js";
import { LogDecodeError, type MarketLogDecoder } from "../events/decode.js";
import { IndexerError, errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import { readChainState, resetChainState, saveHead } from "../store/chainState.js";
import type { Db } from "../store/database.js";
import type { FeedSignal } from "../store/feed.js";
import { MigrationError } from "../store/migrations.js";
import { refreshRankings } from "../ranking/materialized.js";
import { ChainReplacedError, type ExpectedChain, replacedBecause } from "./chainIdentity.js";
import { type CommitOptions, type FetchedBatch, commitBatch } from "./commitBatch.js";
import { findDeploymentBlock } from "./deploymentBlock.js";
import { Wakeup, watchHeadsOverWebSocket } from "./heads.js";
import { backfill } from "./historical.js";
import { ChunkSizer } from "./logChunks.js";
import { BackfillProgress, RateMeter } from "./progress.js";
import { DeepReorgError, type RealtimeOptions, followToHead, reconcileIfTipMoved } from "./realtime.js";
import type { BlockHeader, RpcClient } from "./rpc.js";

export type SyncPhase = "starting" | "backfill" | "realtime" | "stopped" | "failed";

export interface SyncStatus {
  phase: SyncPhase;
  indexed: number;
  head: number;
  finalized: number;
  error?: string;
}

export interface SyncEngineOptions {
  config: IndexerConfig;
  rpc: RpcClient;
  db: Db;
  decoder: MarketLogDecoder;
  expected: ExpectedChain;
  logger: Logger;
  metrics: Metrics;
  feedSignal: FeedSignal;
  /** PostgreSQL NOTIFY channel for API-only replicas; null on PGlite. */
  notifyChannel: string | null;
  /** Draw a progress bar (a terminal). */
  tty: boolean;
}

const ZERO_HASH = `0x${"0".repeat(64)}` as const;
const MAX_BACKOFF_MS = 30_000;

/** Errors that retrying cannot fix. */
function isFatal(error: unknown): boolean {
  return (
    error instanceof DeepReorgError ||
    error instanceof ChainReplacedError ||
    error instanceof LogDecodeError ||
    error instanceof MigrationError
  );
}

export class SyncEngine {
  readonly status: SyncStatus = { phase: "starting", indexed: 0, head: 0, finalized: 0 };
  readonly #options: SyncEngineOptions;
  readonly #abort = new AbortController();
  readonly #wakeup = new Wakeup();
  readonly #sizer: ChunkSizer;
  readonly #progress: BackfillProgress;
  readonly #rate = new RateMeter();
  #lastSavedHead = -1;
  /** Probes reported: every stored ranking is recomputed at the end of the next cycle. */
  #rankingsOutdated = false;
  /** The head was reached since start: batches are live (published, rankings recomputed as they go). */
  #reachedHead = false;

  constructor(options: SyncEngineOptions) {
    this.#options = options;
    const { sync } = options.config;
    this.#sizer = new ChunkSizer({
      initialBlocks: sync.initialChunkBlocks,
      maxBlocks: sync.maxChunkBlocks,
      targetLogs: sync.targetLogsPerRequest,
    });
    this.#progress = new BackfillProgress({ logger: options.logger, tty: options.tty });
  }

  /** True once the head was reached (rankings ready) and the indexed block is within `api.readyLagBlocks` of it. */
  get caughtUp(): boolean {
    return (
      this.status.phase === "realtime" &&
      this.#reachedHead &&
      this.status.head - this.status.indexed <= this.#options.config.api.readyLagBlocks
    );
  }

  /**
   * Ties the database to this chain before anything is served: initialises an empty database,
   * and re-indexes (or refuses) when the rows belong to another chain.
   */
  async prepare(): Promise<void> {
    const { db, rpc, expected, logger, config } = this.#options;
    const state = await readChainState(db);
    if (state !== undefined) {
      const reason = await replacedBecause(rpc, state, expected);
      if (reason === null) {
        this.#updateStatus(state.indexed_number, state.head_number, state.finalized_number);
        return;
      }
      if (config.sync.onChainReplaced === "refuse") {
        throw new ChainReplacedError(
          `${reason}. Refusing to serve or extend rows of another chain (sync.onChainReplaced is "refuse"): ` +
            `use a fresh data dir or schema, or set it to "reindex"`,
          { reason },
        );
      }
      logger.warn("the chain was replaced: re-indexing from the deployment", { reason });
    }
    await this.#initialise();
  }

  /** Runs until `stop()`; rejects when the indexer cannot go on. */
  async run(): Promise<void> {
    const { config, logger } = this.#options;
    const signal = this.#abort.signal;
    const unwatch =
      config.chain.wsUrl === undefined
        ? () => undefined
        : watchHeadsOverWebSocket(config.chain.wsUrl, () => this.#wakeup.wake(), logger);
    let backoff = config.chain.pollIntervalMs;
    try {
      while (!signal.aborted) {
        try {
          await this.#cycle(signal);
          backoff = config.chain.pollIntervalMs;
          await this.#wakeup.sleep(config.chain.pollIntervalMs, signal);
        } catch (error) {
          if (this.#abort.signal.aborted) break;
          if (error instanceof ChainReplacedError && config.sync.onChainReplaced === "reindex") {
            logger.warn("the chain was replaced: re-indexing from the deployment", { reason: error.message });
            await this.#initialise();
            continue;
          }
          if (isFatal(error)) throw error;
          logger.warn("sync failed, retrying", { error, retryInMs: backoff });
          await this.#wakeup.sleep(backoff, signal);
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        }
      }
      this.status.phase = "stopped";
    } catch (error) {
      this.status.phase = "failed";
      this.status.error = errorMessage(error);
      logger.error("sync stopped", { error });
      throw error;
    } finally {
      unwatch();
    }
  }

  stop(): void {
    this.#abort.abort();
  }

  /** Events indexed per second over the last seconds. */
  get eventsPerSecond(): number {
    return this.#rate.perSecond();
  }

  /** New probe results: rankings are recomputed at the next cycle (here, not in the prober, so writes stay in order). */
  rankingsChanged(): void {
    this.#rankingsOutdated = true;
    this.#wakeup.wake();
  }

  async #refreshAllRankings(): Promise<void> {
    const { db, config } = this.#options;
    await db.transaction().execute(async (tx) => {
      const state = (await readChainState(tx))!;
      await refreshRankings(tx, "all", {
        config: config.ranking,
        chainNow: state.indexed_timestamp,
        block: state.indexed_number,
      });
    });
    this.#rankingsOutdated = false;
  }

  /** Wakes the loop now (a new head is known). */
  poke(): void {
    this.#wakeup.wake();
  }

  async #cycle(signal: AbortSignal): Promise<void> {
    const { rpc, db, config } = this.#options;
    const head = await rpc.blockNumber();
    this.status.head = head;
    const realtime = this.#realtimeOptions();
    await reconcileIfTipMoved(realtime, head);

    const state = (await readChainState(db))!;
    const finalTarget = head - config.chain.finalityDepth - config.chain.confirmations;
    if (finalTarget - state.indexed_number > config.sync.realtimeBatchBlocks) {
      this.status.phase = "backfill";
      const from = state.indexed_number + 1;
      this.#progress.start(from, finalTarget);
      await backfill({
        source: { rpc, decoder: this.#options.decoder, sizer: this.#sizer },
        from,
        to: finalTarget,
        concurrency: config.sync.concurrency,
        maxCommitEvents: config.sync.maxCommitEvents,
        signal,
        commit: async (batch) => {
          await this.#commit(batch, { finalized: finalTarget, head, mode: "backfill" });
          this.#progress.update(batch.toBlock, batch.events.length);
        },
      });
      this.#progress.finish();
    }
    this.status.phase = "realtime";
    await followToHead(realtime, head);
    // At the head: from now on batches are live. Rankings left stale by the catch-up (or changed
    // by probes) are recomputed once, here.
    if (!this.#reachedHead || this.#rankingsOutdated) await this.#refreshAllRankings();
    this.#reachedHead = true;
    if (head !== this.#lastSavedHead) {
      await saveHead(db, head);
      this.#lastSavedHead = head;
    }
    this.status.head = head;
  }

  #realtimeOptions(): RealtimeOptions {
    const { rpc, db, config, logger, metrics } = this.#options;
    return {
      source: { rpc, decoder: this.#options.decoder, sizer: this.#sizer },
      db,
      finalityDepth: config.chain.finalityDepth,
      confirmations: config.chain.confirmations,
      batchBlocks: config.sync.realtimeBatchBlocks,
      logger,
      ranking: config.ranking,
      commit: (batch, { finalized, head }) =>
        this.#commit(batch, { finalized, head, mode: this.#reachedHead ? "live" : "catchUp" }),
      assertSameChain: async () => {
        const state = (await readChainState(db))!;
        const reason = await replacedBecause(rpc, state, this.#options.expected);
        if (reason !== null) throw new ChainReplacedError(reason, { reason });
      },
      onReorg: ({ depth }) => {
        metrics.reorgsTotal.inc();
        metrics.reorgDepth.observe(depth);
        void this.#announceFeed();
      },
    };
  }

  async #commit(batch: FetchedBatch, options: Pick<CommitOptions, "finalized" | "head" | "mode">): Promise<void> {
    const { db, metrics, logger, notifyChannel } = this.#options;
    const stopTimer = metrics.batchSeconds.startTimer();
    const result = await commitBatch(db, batch, {
      ...options,
      notifyChannel,
      logger,
      ranking: this.#options.config.ranking,
    });
    stopTimer();
    metrics.eventsTotal.inc(result.events);
    this.#rate.add(result.events);
    metrics.eventsPerSecond.set(this.#rate.perSecond());
    this.#updateStatus(batch.end.number, options.head, Math.min(options.finalized, batch.end.number));
    if (result.feedEntries > 0) this.#options.feedSignal.notify();
  }

  /** After a rollback: tell this process's subscribers, and other processes' through PostgreSQL. */
  async #announceFeed(): Promise<void> {
    this.#options.feedSignal.notify();
    const channel = this.#options.notifyChannel;
    if (channel !== null) await sql`SELECT pg_notify(${channel}, '')`.execute(this.#options.db).catch(() => undefined);
  }

  #updateStatus(indexed: number, head: number, finalized: number): void {
    this.status.indexed = indexed;
    this.status.head = Math.max(head, indexed);
    this.status.finalized = finalized;
  }

  async #initialise(): Promise<void> {
    const { rpc, db, config, decoder, expected, logger } = this.#options;
    const startBlock = config.contracts.startBlock ?? (await findDeploymentBlock(rpc, decoder.addresses));
    const [deployment, parent] = await rpc.headers([startBlock, Math.max(0, startBlock - 1)]);
    if (!deployment || !parent) {
      throw new IndexerError(`the chain has no block ${startBlock} (the start block) yet`, { startBlock });
    }
    // The checkpoint starts just before the start block; at block 0 that is a virtual block whose
    // hash is the genesis block's parent hash (zero), so the first header still links to it.
    const parentRef: BlockHeader =
      startBlock === 0 ? { number: -1, hash: ZERO_HASH, parentHash: ZERO_HASH, timestamp: 0 } : parent;
    await db.transaction().execute((tx) =>
      resetChainState(tx, {
        chainId: expected.chainId,
        deploymentAddress: expected.deploymentAddress,
        deploymentBlock: deployment,
        parentOfDeployment: parentRef,
      }),
    );
    this.#updateStatus(parentRef.number, parentRef.number, parentRef.number);
    this.#lastSavedHead = -1;
    this.#reachedHead = false;
    logger.info("indexing from the deployment", { startBlock, chainId: expected.chainId });
  }
}
