/**
 * JSON-RPC to the chain over one or more HTTP endpoints, with failover and retry.
 *
 * Each endpoint is a viem `http` transport (JSON-RPC batching of requests made in the same tick;
 * its own retries off). This client picks the endpoint: it stays on one that works, moves to the
 * next when a request fails at the transport level (network, timeout, HTTP 5xx/429), and comes back
 * to the first after a cool-down. An error *answer* from a node (a JSON-RPC error object) is about
 * the request, not the node, so it goes straight to the caller — `getLogs` splits its range on it.
 */
import {
  type Address,
  type EIP1193Parameters,
  type Hex,
  HttpRequestError,
  type PublicRpcSchema,
  type RpcBlock,
  ResponseBodyTooLargeError,
  type RpcLog,
  TimeoutError,
  http,
} from "viem";
import { IndexerError, errorMessage } from "../errors.js";
import type { Logger } from "../log.js";

export interface BlockHeader {
  number: number;
  hash: Hex;
  parentHash: Hex;
  timestamp: number;
}

export class RpcUnavailableError extends IndexerError {}
export class RpcAnswerError extends IndexerError {}

export interface RpcOptions {
  timeoutMs: number;
  /** Attempts beyond the first across all endpoints before a request fails. */
  retries: number;
  /** Base of the exponential backoff between rounds of attempts. */
  retryDelayMs: number;
  /** How long a failed endpoint is skipped while another one works. */
  cooldownMs: number;
  logger: Logger;
  onRequest?: (sample: { url: string; method: string; ok: boolean; seconds: number }) => void;
}

type Request = EIP1193Parameters<PublicRpcSchema>;
type TransportRequest = (args: Request) => Promise<unknown>;

interface Endpoint {
  url: string;
  request: TransportRequest;
  downUntil: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A failure of the transport (the node did not answer), as opposed to an answer about the request
 * (a JSON-RPC error, or a response too large to take: asking for less is the cure, not another node).
 */
export function isTransportFailure(error: unknown): boolean {
  if (error instanceof ResponseBodyTooLargeError) return false;
  if (error instanceof TimeoutError) return true;
  if (error instanceof HttpRequestError) {
    // 4xx other than 408/429 is an answer about the request (some nodes send range errors as 400/413).
    return error.status === undefined || error.status >= 500 || error.status === 408 || error.status === 429;
  }
  return !(error instanceof Error && "code" in error && typeof error.code === "number");
}

export class RpcClient {
  readonly urls: readonly string[];
  readonly #endpoints: Endpoint[];
  readonly #options: RpcOptions;
  #preferred = 0;

  constructor(urls: readonly string[], options: RpcOptions) {
    if (urls.length === 0) throw new RpcUnavailableError("no RPC URL configured", {});
    this.urls = urls;
    this.#options = options;
    this.#endpoints = urls.map((url) => {
      const transport = http(url, { batch: { batchSize: 100 }, retryCount: 0, timeout: options.timeoutMs })({
        retryCount: 0,
      });
      return { url, request: transport.request, downUntil: 0 };
    });
  }

  /** Sends a request to the first healthy endpoint, failing over and backing off on transport failures. */
  async request<T>(args: Request): Promise<T> {
    const { retries, retryDelayMs, cooldownMs, logger, onRequest } = this.#options;
    let lastError: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      const endpoint = this.#pick();
      const started = performance.now();
      try {
        const result = (await endpoint.request(args)) as T;
        onRequest?.({
          url: endpoint.url,
          method: args.method,
          ok: true,
          seconds: (performance.now() - started) / 1000,
        });
        return result;
      } catch (error) {
        onRequest?.({
          url: endpoint.url,
          method: args.method,
          ok: false,
          seconds: (performance.now() - started) / 1000,
        });
        if (!isTransportFailure(error)) throw error;
        lastError = error;
        endpoint.downUntil = Date.now() + cooldownMs;
        const next = this.#pick();
        if (next !== endpoint) {
          logger.warn("RPC endpoint failed, switching", {
            from: endpoint.url,
            to: next.url,
            error: errorMessage(error),
          });
          continue;
        }
        // Every endpoint is down: wait before the next round.
        await sleep(Math.min(retryDelayMs * 2 ** attempt, 30_000));
      }
    }
    throw new RpcUnavailableError(
      `${args.method} failed on every RPC endpoint after ${retries + 1} attempts: ${errorMessage(lastError)}`,
      { method: args.method, urls: this.urls },
      { cause: lastError },
    );
  }

  /** The first endpoint not cooling down (in configured order), or the one that recovers soonest. */
  #pick(): Endpoint {
    const now = Date.now();
    const healthy = this.#endpoints.findIndex((endpoint) => endpoint.downUntil <= now);
    if (healthy !== -1) {
      this.#preferred = healthy;
      return this.#endpoints[healthy]!;
    }
    return this.#endpoints.reduce((soonest, endpoint) => (endpoint.downUntil < soonest.downUntil ? endpoint : soonest));
  }

  get currentUrl(): string {
    return this.#endpoints[this.#preferred]!.url;
  }

  async chainId(): Promise<number> {
    return Number(await this.request<Hex>({ method: "eth_chainId" }));
  }

  async blockNumber(): Promise<number> {
    return Number(await this.request<Hex>({ method: "eth_blockNumber" }));
  }

  /** A block's header, or null when the chain has no such block (yet). */
  async header(block: number | "latest" | "finalized"): Promise<BlockHeader | null> {
    const tag = typeof block === "number" ? (`0x${block.toString(16)}` as const) : block;
    const raw = await this.request<RpcBlock | null>({ method: "eth_getBlockByNumber", params: [tag, false] });
    return raw === null ? null : toHeader(raw);
  }

  /** Headers of many blocks, sent together (one JSON-RPC batch per 100); null where a block is missing. */
  async headers(numbers: readonly number[]): Promise<(BlockHeader | null)[]> {
    return Promise.all(numbers.map((number) => this.header(number)));
  }

  async getLogs(filter: { address: readonly Address[]; fromBlock: number; toBlock: number }): Promise<RpcLog[]> {
    return this.request<RpcLog[]>({
      method: "eth_getLogs",
      params: [
        {
          address: [...filter.address],
          fromBlock: `0x${filter.fromBlock.toString(16)}`,
          toBlock: `0x${filter.toBlock.toString(16)}`,
        },
      ],
    });
  }

  async getCode(address: Address, block: number): Promise<Hex> {
    return this.request<Hex>({ method: "eth_getCode", params: [address, `0x${block.toString(16)}`] });
  }
}

function toHeader(raw: RpcBlock): BlockHeader {
  if (raw.number === null || raw.hash === null) {
    throw new RpcAnswerError("the node returned a pending block where a mined one was asked for", {});
  }
  return { number: Number(raw.number), hash: raw.hash, parentHash: raw.parentHash, timestamp: Number(raw.timestamp) };
}
