/**
 * Turns raw `eth_getLogs` entries into typed market events, from the contracts' ABIs in
 * `protocol/abis.ts` (so a changed event is a changed type, and the handlers stop compiling until
 * they follow it). Each event's selector and parameter lists are computed once, not per log.
 */
import {
  type Abi,
  type Address,
  type ContractEventName,
  type GetEventArgs,
  type Hex,
  type RpcLog,
  getAddress,
  toEventSelector,
} from "viem";
import {
  type MarketAddresses,
  escrowAbi,
  marketplaceAbi,
  modelRegistryAbi,
  providerRegistryAbi,
  sessionRouterAbi,
  stakingAbi,
} from "../../../protocol/index.js";
import { IndexerError } from "../errors.js";
import { compileParameters, compileTopic } from "./abiDecoder.js";

/** The contracts whose events the indexer follows (the token's transfers are not market events). */
export const marketAbis = {
  staking: stakingAbi,
  providerRegistry: providerRegistryAbi,
  modelRegistry: modelRegistryAbi,
  marketplace: marketplaceAbi,
  sessionRouter: sessionRouterAbi,
  escrow: escrowAbi,
} as const;

export type ContractName = keyof typeof marketAbis;
export type EventName<C extends ContractName> = ContractEventName<(typeof marketAbis)[C]>;
/** Every argument of an event, indexed or not, as decoded (uint → bigint, small uints → number). */
export type EventArgs<C extends ContractName, N extends EventName<C>> = GetEventArgs<
  (typeof marketAbis)[C],
  N,
  { EnableUnion: false; IndexedOnly: false; Required: true }
>;

/** Where an event sits in the chain. */
export interface LogPosition {
  blockNumber: number;
  blockHash: Hex;
  transactionHash: Hex;
  logIndex: number;
}

export interface MarketEvent<
  C extends ContractName = ContractName,
  N extends EventName<C> = EventName<C>,
> extends LogPosition {
  contract: C;
  name: N;
  args: EventArgs<C, N>;
}

export class LogDecodeError extends IndexerError {}

interface EventDecoder {
  contract: ContractName;
  name: string;
  topics: { name: string; decode: (topic: Hex) => unknown }[];
  data: (hex: Hex) => Record<string, unknown>;
}

/** Decodes the logs of one deployment; logs of other addresses or unknown events are an error. */
export class MarketLogDecoder {
  readonly addresses: readonly Address[];
  readonly #byAddress = new Map<string, Map<string, EventDecoder>>();

  constructor(addresses: MarketAddresses) {
    const followed: Address[] = [];
    for (const [contract, abi] of Object.entries(marketAbis) as [ContractName, readonly unknown[]][]) {
      const address = addresses[contract];
      followed.push(address);
      const bySelector = new Map<string, EventDecoder>();
      for (const item of abi as Abi) {
        if (item.type !== "event") continue;
        bySelector.set(toEventSelector(item), {
          contract,
          name: item.name,
          topics: item.inputs
            .filter((input) => input.indexed)
            .map((input) => ({ name: input.name!, decode: compileTopic(input) })),
          data: compileParameters(item.inputs.filter((input) => !input.indexed)),
        });
      }
      this.#byAddress.set(address.toLowerCase(), bySelector);
    }
    this.addresses = followed;
  }

  decode(log: RpcLog): MarketEvent {
    const position = logPosition(log);
    const selector = log.topics[0];
    const decoder = selector && this.#byAddress.get(log.address.toLowerCase())?.get(selector);
    if (!decoder) {
      throw new LogDecodeError(`log ${position.logIndex} of block ${position.blockNumber} is no known market event`, {
        address: log.address,
        selector,
      });
    }
    let args: Record<string, unknown>;
    try {
      args = decoder.data(log.data);
      decoder.topics.forEach((topic, index) => {
        const value = log.topics[index + 1];
        if (value === undefined) throw new Error(`topic ${index + 1} is missing`);
        args[topic.name] = topic.decode(value);
      });
    } catch (error) {
      throw new LogDecodeError(
        `cannot decode ${decoder.contract}.${decoder.name} (log ${position.logIndex} of block ${position.blockNumber})`,
        { ...position },
        { cause: error },
      );
    }
    // The decoder is picked by selector, so name and args match; TypeScript cannot follow that map.
    return { ...position, contract: decoder.contract, name: decoder.name, args } as unknown as MarketEvent;
  }
}

function logPosition(log: RpcLog): LogPosition {
  if (log.blockNumber === null || log.blockHash === null || log.transactionHash === null || log.logIndex === null) {
    throw new LogDecodeError("a pending log (no block) was returned for a mined range", {});
  }
  return {
    blockNumber: Number(log.blockNumber),
    blockHash: log.blockHash,
    transactionHash: log.transactionHash,
    logIndex: Number(log.logIndex),
  };
}

/** A checksummed address, or null for the zero address (an unset operator, a base model…). */
export function addressOrNull(address: Address): Address | null {
  return BigInt(address) === 0n ? null : getAddress(address);
}
