/**
 * Follows the market for this provider: loads its unsettled sessions at start (`SessionOpened` logs
 * minus `SessionSettled`, state from `getSessionState`), then processes new events block range by
 * block range, `confirmations` blocks behind the head. New heads come from a websocket subscription
 * when one is configured, else (and also, as a safety net) from polling. When the RPC fails the
 * follower backs off (0.5 s doubling to 30 s) and resumes from the last block it processed, so
 * events missed during an outage are processed once it is back.
 */
import type { Address, Hex, PublicClient } from "viem";
import type { MarketAddresses } from "../../../protocol/index.js";
import type { Logger } from "../log/logger.js";
import type { ChainSession } from "../sessions/session-account.js";
import type { ChainClock } from "./clock.js";
import { LogScanner, byChainOrder } from "./log-scanner.js";
import { type MarketEvent, decodeMarketEvents, followFilters, openedFilter, SELECTORS } from "./market-events.js";
import type { MarketReader } from "./market.js";

export interface ChainFollowerOptions {
  client: PublicClient;
  wsClient?: PublicClient | undefined;
  reader: MarketReader;
  addresses: MarketAddresses;
  provider: Address;
  confirmations: number;
  pollIntervalMs: number;
  fromBlock: bigint;
  logChunkBlocks: number;
  clock: ChainClock;
  logger: Logger;
  /** Applies events in chain order; an error stops the batch and it is retried. */
  onEvents: (events: MarketEvent[]) => Promise<void>;
}

export interface ChainFollowerStatus {
  connected: boolean;
  headBlock: string | null;
  processedBlock: string | null;
  lastError: string | null;
}

const MAX_BACKOFF_MS = 30_000;
const MIN_BACKOFF_MS = 500;

export class ChainFollower {
  private readonly scanner: LogScanner;
  private processed: bigint | undefined;
  private head: bigint | undefined;
  private connected = false;
  private lastError: string | null = null;
  private running = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private unwatch: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ChainFollowerOptions) {
    this.scanner = new LogScanner(options.client, BigInt(options.logChunkBlocks));
  }

  status(): ChainFollowerStatus {
    return {
      connected: this.connected,
      headBlock: this.head?.toString() ?? null,
      processedBlock: this.processed?.toString() ?? null,
      lastError: this.lastError,
    };
  }

  /** The block the follower has processed up to (inclusive). */
  get processedBlock(): bigint | undefined {
    return this.processed;
  }

  private async confirmedHead(): Promise<bigint> {
    const block = await this.options.client.getBlock({ blockTag: "latest" });
    this.options.clock.observe(block.timestamp);
    this.head = block.number;
    const confirmed = block.number - BigInt(this.options.confirmations);
    return confirmed < 0n ? 0n : confirmed;
  }

  /**
   * The provider's unsettled sessions up to the confirmed head, with their current state. Sets the
   * point the follower continues from.
   */
  async loadUnsettled(): Promise<ChainSession[]> {
    const { addresses, provider, fromBlock } = this.options;
    const to = await this.confirmedHead();
    const [openedAndSettled] = followFilters(addresses, provider);
    const logs = to >= fromBlock ? await this.scanner.scan(openedAndSettled!, fromBlock, to) : [];
    const opened = new Map<Hex, ChainSession>();
    for (const event of decodeMarketEvents(logs.sort(byChainOrder), addresses)) {
      if (event.kind === "opened") opened.set(event.session.sessionId, event.session);
      else if (event.kind === "settled") opened.delete(event.sessionId);
    }
    const sessions: ChainSession[] = [];
    for (const session of opened.values()) {
      const current = await this.withState(session);
      if (current) sessions.push(current);
    }
    this.processed = to;
    this.connected = true;
    return sessions;
  }

  /** `session` with its deposit, end and phase from `getSessionState` (undefined when it is gone). */
  private async withState(session: ChainSession): Promise<ChainSession | undefined> {
    const state = await this.options.reader.sessionState(session.sessionId);
    if (state.status === "none") return undefined;
    const updated: ChainSession = { ...session, deposit: state.deposit, endsAt: state.endsAt, phase: state.status };
    if (state.status === "closing") {
      const logs = await this.scanner.findLatest(
        { address: this.options.addresses.sessionRouter, topics: [SELECTORS.closeRequested, session.sessionId] },
        session.openedBlock,
        this.head ?? session.openedBlock,
      );
      const event = decodeMarketEvents(logs.sort(byChainOrder), this.options.addresses)
        .filter((item) => item.kind === "closeRequested")
        .at(-1);
      if (event) {
        updated.closing = {
          closedAt: event.closedAt,
          challengeEndsAt: event.challengeEndsAt,
          receipt: event.receipt,
          closedBy: event.closedBy,
        };
      }
    }
    return updated;
  }

  /**
   * A session by id, at the latest block (no confirmations: a consumer may use a session as soon as
   * its open is mined). Undefined when no such session is open or closing.
   */
  async lookup(sessionId: Hex): Promise<ChainSession | undefined> {
    const state = await this.options.reader.sessionState(sessionId);
    if (state.status === "none") return undefined;
    const latest = await this.options.client.getBlockNumber();
    const logs = await this.scanner.findLatest(
      openedFilter(this.options.addresses, sessionId),
      this.options.fromBlock,
      latest,
    );
    const event = decodeMarketEvents(logs, this.options.addresses).find((item) => item.kind === "opened");
    if (event?.kind !== "opened") return undefined;
    return this.withState(event.session);
  }

  /** Starts following from where `loadUnsettled` stopped. */
  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.options.wsClient) {
      try {
        this.unwatch = this.options.wsClient.watchBlockNumber({
          emitOnBegin: false,
          onBlockNumber: () => this.wake?.(),
          onError: (error) => this.options.logger.debug({ err: error }, "websocket block subscription error"),
        });
      } catch (error) {
        this.options.logger.warn({ err: error }, "cannot subscribe to new blocks over websocket; polling");
      }
    }
    this.loop = this.run();
  }

  /** Processes what is new now (tests and `provider-agent` shutdown use it to be current). */
  async catchUp(): Promise<void> {
    const target = await this.confirmedHead();
    const from = (this.processed ?? this.options.fromBlock - 1n) + 1n;
    if (target < from) return;
    const filters = followFilters(this.options.addresses, this.options.provider);
    let start = from;
    const chunk = BigInt(this.options.logChunkBlocks);
    while (start <= target) {
      const end = start + chunk - 1n < target ? start + chunk - 1n : target;
      const logs = (await Promise.all(filters.map((filter) => this.scanner.scan(filter, start, end)))).flat();
      const events = decodeMarketEvents(logs.sort(byChainOrder), this.options.addresses);
      if (events.length > 0) await this.options.onEvents(events);
      this.processed = end;
      start = end + 1n;
    }
  }

  private async run(): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    while (this.running) {
      try {
        await this.catchUp();
        if (!this.connected) this.options.logger.info({ block: this.processed }, "chain connection back; caught up");
        this.connected = true;
        this.lastError = null;
        backoff = MIN_BACKOFF_MS;
        await this.sleep(this.options.pollIntervalMs);
      } catch (error) {
        const message = error instanceof Error ? error.message.split("\n")[0]! : String(error);
        if (this.connected || this.lastError !== message) {
          this.options.logger.warn(
            { err: message, retryInMs: backoff, processedBlock: this.processed },
            "chain follower: RPC failed; retrying",
          );
        }
        this.connected = false;
        this.lastError = message;
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(this.timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    this.unwatch?.();
    this.wake?.();
    await this.loop;
  }
}
