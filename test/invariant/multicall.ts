/**
 * Reads many view functions in one `eth_call`. The invariant run checks ~70 values after every
 * operation; one RPC call each, or ethers' ABI coder over a `bytes[]`, costs more time than the
 * operations themselves. Every view the run reads takes at most one 32-byte argument and returns
 * static words, so calls go in as fixed 56-byte records and results come back as one byte string
 * that is cut by word counts. The reader is the test-only contracts/test/StaticMulticall.sol.
 */
import hre, { ethers } from "hardhat";
import type { BaseContract } from "ethers";

const pad32 = (hex: string) => hex.slice(2).toLowerCase().padStart(64, "0");

/** A batch of view calls; `run` returns each call's return words, in order. */
export class ReadBatch {
  private records: string[] = [];
  private wordCounts: number[] = [];

  constructor(private readonly reader: Multicall) {}

  /** Queues `contract.fn(arg)` (an address or bytes32, or none), which returns `words` static words; returns its index. */
  add(contract: BaseContract, target: string, fn: string, arg: string | undefined, words: number): number {
    this.records.push(
      pad32(target).slice(24) + this.reader.selector(contract, target, fn).slice(2) + pad32(arg ?? "0x0"),
    );
    this.wordCounts.push(words);
    return this.wordCounts.length - 1;
  }

  async run(): Promise<bigint[][]> {
    const hex = (await this.reader.call(`0x${this.records.join("")}`)).slice(2);
    let cursor = 0;
    const results = this.wordCounts.map((count) =>
      Array.from({ length: count }, () => {
        const word = BigInt(`0x${hex.slice(cursor, cursor + 64)}`);
        cursor += 64;
        return word;
      }),
    );
    if (cursor !== hex.length) throw new Error(`reader returned ${hex.length / 64} words, expected ${cursor / 64}`);
    return results;
  }
}

export class Multicall {
  private readonly selectors = new Map<string, string>();

  private constructor(
    private readonly reader: BaseContract,
    private readonly address: string,
  ) {}

  static async deploy(): Promise<Multicall> {
    const reader = await ethers.deployContract("StaticMulticall");
    await reader.waitForDeployment();
    return new Multicall(reader, await reader.getAddress());
  }

  batch(): ReadBatch {
    return new ReadBatch(this);
  }

  selector(contract: BaseContract, target: string, fn: string): string {
    const key = `${target}.${fn}`;
    let selector = this.selectors.get(key);
    if (!selector) {
      selector = contract.interface.getFunction(fn)!.selector;
      this.selectors.set(key, selector);
    }
    return selector;
  }

  /** The reader's `read(calls)`, decoded to the concatenated return data (one `bytes`: offset, length, data). */
  async call(records: string): Promise<string> {
    const data = this.reader.interface.encodeFunctionData("read", [records]);
    // Straight to Hardhat's provider: ethers' wrapper adds nothing here but time.
    const output = await hre.network.provider.request({
      method: "eth_call",
      params: [{ to: this.address, data }, "latest"],
    });
    const [results] = this.reader.interface.decodeFunctionResult("read", output as string);
    return results as string;
  }
}
