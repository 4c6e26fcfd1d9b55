/**
 * Where to start when the config names no start block: the first block at which any market
 * contract has code, found by binary search over `eth_getCode` (a node with historical state, such
 * as a local node or an archive node, is needed; otherwise set `startBlock`).
 */
import type { Address } from "viem";
import { IndexerError, errorMessage } from "../errors.js";
import type { RpcClient } from "./rpc.js";

export class DeploymentNotFoundOnChainError extends IndexerError {}

async function anyDeployed(rpc: RpcClient, addresses: readonly Address[], block: number): Promise<boolean> {
  const codes = await Promise.all(addresses.map((address) => rpc.getCode(address, block)));
  return codes.some((code) => code !== "0x");
}

export async function findDeploymentBlock(rpc: RpcClient, addresses: readonly Address[]): Promise<number> {
  const head = await rpc.blockNumber();
  try {
    if (!(await anyDeployed(rpc, addresses, head))) {
      throw new DeploymentNotFoundOnChainError(
        `no market contract has code on this chain at block ${head} (${addresses.join(", ")}): are the addresses of this chain?`,
        { head, addresses },
      );
    }
    let low = 0;
    let high = head;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      if (await anyDeployed(rpc, addresses, middle)) high = middle;
      else low = middle + 1;
    }
    return low;
  } catch (error) {
    if (error instanceof DeploymentNotFoundOnChainError) throw error;
    throw new DeploymentNotFoundOnChainError(
      `cannot find the deployment block by eth_getCode (${errorMessage(error)}): set \`startBlock\` in the config`,
      { head },
      { cause: error },
    );
  }
}
