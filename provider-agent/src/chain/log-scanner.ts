/**
 * `eth_getLogs` over block ranges, in chunks that halve when the RPC refuses a range (too many
 * results, range too wide) and grow back after successes. Raw topics, so one call can ask for
 * several events with an indexed provider in the same position.
 */
import { type Address, type Hex, type PublicClient, type RpcLog, numberToHex, pad } from "viem";

export interface LogFilter {
  address: Address | Address[];
  /** `topics[0]` is the list of event selectors; later positions filter indexed arguments. */
  topics: (Hex | Hex[] | null)[];
}

export class LogScanner {
  private chunk: bigint;

  constructor(
    private readonly client: PublicClient,
    private readonly maxChunk: bigint,
  ) {
    this.chunk = maxChunk;
  }

  /** All logs matching `filter` from `fromBlock` to `toBlock` inclusive, in chain order. */
  async scan(filter: LogFilter, fromBlock: bigint, toBlock: bigint): Promise<RpcLog[]> {
    const logs: RpcLog[] = [];
    let start = fromBlock;
    while (start <= toBlock) {
      const end = start + this.chunk - 1n < toBlock ? start + this.chunk - 1n : toBlock;
      try {
        logs.push(...(await this.fetch(filter, start, end)));
        start = end + 1n;
        if (this.chunk < this.maxChunk) this.chunk = this.chunk * 2n > this.maxChunk ? this.maxChunk : this.chunk * 2n;
      } catch (error) {
        if (this.chunk === 1n || !looksLikeRangeError(error)) throw error;
        this.chunk = this.chunk / 2n;
      }
    }
    return logs;
  }

  /** The logs of `filter` from the newest block backwards, stopping at the first chunk with any. */
  async findLatest(filter: LogFilter, fromBlock: bigint, toBlock: bigint): Promise<RpcLog[]> {
    let end = toBlock;
    while (end >= fromBlock) {
      const start = end - this.chunk + 1n > fromBlock ? end - this.chunk + 1n : fromBlock;
      let logs: RpcLog[];
      try {
        logs = await this.fetch(filter, start, end);
      } catch (error) {
        if (this.chunk === 1n || !looksLikeRangeError(error)) throw error;
        this.chunk = this.chunk / 2n;
        continue;
      }
      if (logs.length > 0) return logs;
      if (start === fromBlock) break;
      end = start - 1n;
    }
    return [];
  }

  private async fetch(filter: LogFilter, fromBlock: bigint, toBlock: bigint): Promise<RpcLog[]> {
    const logs: RpcLog[] = await this.client.request({
      method: "eth_getLogs",
      params: [
        {
          address: filter.address,
          topics: filter.topics,
          fromBlock: numberToHex(fromBlock),
          toBlock: numberToHex(toBlock),
        },
      ],
    });
    return logs;
  }
}

/** An address as a 32-byte topic. */
export function addressTopic(address: Address): Hex {
  return pad(address.toLowerCase() as Hex, { size: 32 });
}

function looksLikeRangeError(error: unknown): boolean {
  const details = (error as { details?: unknown }).details;
  const text = (typeof details === "string" ? details : error instanceof Error ? error.message : "").toLowerCase();
  return /range|too many|limit|exceed|larger than|timeout|10000/.test(text);
}

/** Orders logs by block, then by index in the block. */
export function byChainOrder(a: RpcLog, b: RpcLog): number {
  const blockA = BigInt(a.blockNumber ?? "0x0");
  const blockB = BigInt(b.blockNumber ?? "0x0");
  if (blockA !== blockB) return blockA < blockB ? -1 : 1;
  return Number(BigInt(a.logIndex ?? "0x0") - BigInt(b.logIndex ?? "0x0"));
}
