/**
 * Fetches what one batch of blocks needs to be committed: the market's logs (decoded once, here),
 * and only the block headers it must have — the last block's (the checkpoint) and those whose events
 * need a timestamp. Never a block per event.
 */
import type { RpcLog } from "viem";
import { type MarketEvent, type MarketLogDecoder } from "../events/decode.js";
import { handlerOf } from "../events/handlers.js";
import { IndexerError } from "../errors.js";
import type { FetchedBatch } from "./commitBatch.js";
import { type ChunkSizer, fetchLogs } from "./logChunks.js";
import type { BlockHeader, RpcClient } from "./rpc.js";

/** The node's answers do not fit together (a reorg while we read): fetch again. */
export class InconsistentChainError extends IndexerError {}

export interface BatchSource {
  rpc: RpcClient;
  decoder: MarketLogDecoder;
  sizer: ChunkSizer;
}

export function decodeLogs(decoder: MarketLogDecoder, logs: readonly RpcLog[]): MarketEvent[] {
  const events = logs.map((log) => decoder.decode(log));
  // Nodes return logs in chain order; sort anyway, since ranges may have been split and joined.
  return events.sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
}

const headerRow = (header: BlockHeader) => ({
  number: header.number,
  hash: header.hash,
  parent_hash: header.parentHash,
  timestamp: header.timestamp,
});

/** A batch of final blocks: logs, and the headers of the last block and of blocks whose events need a time. */
export async function fetchFinalBatch(source: BatchSource, fromBlock: number, toBlock: number): Promise<FetchedBatch> {
  const logs = await fetchLogs(source.rpc, source.decoder.addresses, fromBlock, toBlock, source.sizer);
  const events = decodeLogs(source.decoder, logs);
  const wanted = new Set<number>([toBlock]);
  for (const event of events) if (handlerOf(event)?.needsTimestamp) wanted.add(event.blockNumber);
  const numbers = [...wanted];
  const headers = await source.rpc.headers(numbers);
  const timestamps = new Map<number, number>();
  let end: BlockHeader | undefined;
  headers.forEach((header, index) => {
    if (header === null) {
      throw new InconsistentChainError(`block ${numbers[index]} is missing though it had logs`, {
        block: numbers[index],
      });
    }
    timestamps.set(header.number, header.timestamp);
    if (header.number === toBlock) end = header;
  });
  for (const event of events) {
    const expected = headers.find((header) => header?.number === event.blockNumber);
    if (expected && expected.hash !== event.blockHash) {
      throw new InconsistentChainError(`block ${event.blockNumber} changed while it was read`, {
        block: event.blockNumber,
      });
    }
  }
  return { fromBlock, toBlock, events, timestamps, end: end!, headers: [headerRow(end!)] };
}

/**
 * A batch of live blocks whose headers were fetched and checked to link up: the logs must come
 * from exactly those blocks (same hashes), or the chain moved under us.
 */
export async function fetchLiveBatch(source: BatchSource, headers: readonly BlockHeader[]): Promise<FetchedBatch> {
  const first = headers[0]!;
  const last = headers.at(-1)!;
  const logs = await fetchLogs(source.rpc, source.decoder.addresses, first.number, last.number, source.sizer);
  const events = decodeLogs(source.decoder, logs);
  const byNumber = new Map(headers.map((header) => [header.number, header]));
  for (const event of events) {
    if (byNumber.get(event.blockNumber)?.hash !== event.blockHash) {
      throw new InconsistentChainError(`logs of block ${event.blockNumber} belong to another branch`, {
        block: event.blockNumber,
      });
    }
  }
  return {
    fromBlock: first.number,
    toBlock: last.number,
    events,
    timestamps: new Map(headers.map((header) => [header.number, header.timestamp])),
    end: last,
    headers: headers.map(headerRow),
  };
}
