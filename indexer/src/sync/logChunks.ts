/**
 * How many blocks one `eth_getLogs` asks for. The span follows the log density (aiming at
 * `targetLogs` per request) and the node's limits: a refused range is split — where the node names
 * a limit, by that limit, else in halves — and later requests stay under what was refused.
 */
import { type Address, type RpcLog, TimeoutError } from "viem";
import { errorMessage } from "../errors.js";
import { type RpcClient, RpcUnavailableError } from "./rpc.js";

export interface ChunkOptions {
  initialBlocks: number;
  maxBlocks: number;
  targetLogs: number;
}

export class ChunkSizer {
  #span: number;
  #ceiling: number;
  readonly #options: ChunkOptions;

  constructor(options: ChunkOptions) {
    this.#options = options;
    this.#ceiling = options.maxBlocks;
    this.#span = Math.min(options.initialBlocks, options.maxBlocks);
  }

  get span(): number {
    return this.#span;
  }

  get ceiling(): number {
    return this.#ceiling;
  }

  /** A range of `blocks` returned `logs`: move the span toward the target density, growing at most 2× a step. */
  observe(blocks: number, logs: number): void {
    const ideal = logs === 0 ? this.#span * 2 : (blocks * this.#options.targetLogs) / logs;
    this.#span = Math.max(1, Math.min(this.#ceiling, Math.floor(Math.min(ideal, this.#span * 2))));
  }

  /** The node refused `blocks` blocks (or named `limit` as its maximum). */
  refused(blocks: number, limit?: number): void {
    this.#ceiling = Math.max(1, Math.min(this.#ceiling, limit ?? Math.floor(blocks / 2)));
    this.#span = Math.min(this.#span, this.#ceiling);
  }
}

/** Block-range limits nodes state in their errors (Alchemy, Infura, QuickNode, Ankr…). */
const RANGE_LIMIT_PATTERNS: readonly RegExp[] = [
  /block range should work: \[0x([0-9a-f]+), ?0x([0-9a-f]+)\]/i,
  /try with this block range \[0x([0-9a-f]+), ?0x([0-9a-f]+)\]/i,
];
const MAX_BLOCKS_PATTERNS: readonly RegExp[] = [
  /maximum (?:block range|is set to|\[from, to\] blocks distance)[: ]+([\d,]+)/i,
  /limited to (?:a )?([\d,]+)(?: block)?/i,
  /max(?:imum)? range:? ([\d,]+)/i,
  /at most ([\d,]+) blocks/i,
  /exceeds max block range ([\d,]+)/i,
];

/** The largest span a node's error message allows, when it says so. */
export function suggestedSpan(error: unknown): number | undefined {
  const text = `${errorMessage(error)} ${error instanceof Error && "details" in error ? String(error.details) : ""}`;
  for (const pattern of RANGE_LIMIT_PATTERNS) {
    const match = pattern.exec(text);
    if (match) return Number.parseInt(match[2]!, 16) - Number.parseInt(match[1]!, 16) + 1;
  }
  for (const pattern of MAX_BLOCKS_PATTERNS) {
    const match = pattern.exec(text);
    if (match) {
      const limit = Number(match[1]!.replace(/,/g, ""));
      if (Number.isInteger(limit) && limit > 0) return limit;
    }
  }
  return undefined;
}

/**
 * The logs of [fromBlock, toBlock], splitting the range as long as the node refuses it. A single
 * block that still fails is a real error and is thrown.
 */
export async function fetchLogs(
  rpc: RpcClient,
  address: readonly Address[],
  fromBlock: number,
  toBlock: number,
  sizer: ChunkSizer,
): Promise<RpcLog[]> {
  const blocks = toBlock - fromBlock + 1;
  try {
    const logs = await rpc.getLogs({ address, fromBlock, toBlock });
    sizer.observe(blocks, logs.length);
    return logs;
  } catch (error) {
    // No endpoint answered: smaller ranges would not help, unless the range was too slow to answer.
    const timedOut = error instanceof RpcUnavailableError && error.cause instanceof TimeoutError;
    if (blocks === 1 || (error instanceof RpcUnavailableError && !timedOut)) throw error;
    const limit = suggestedSpan(error);
    sizer.refused(blocks, limit);
    const span = Math.max(1, Math.min(limit ?? Math.ceil(blocks / 2), blocks - 1));
    const parts: RpcLog[][] = [];
    for (let start = fromBlock; start <= toBlock; start += span) {
      parts.push(await fetchLogs(rpc, address, start, Math.min(toBlock, start + span - 1), sizer));
    }
    return parts.flat();
  }
}
